"""`python -m services.token_manager`: one token-manager shard.

Only DescribeShard is built so far (which shard serves a connection, as the edge's hashing
decides); credentials, exchanges and refresh are built by issue #5 and answer
UNIMPLEMENTED until then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from pydantic import Field

from services.runtime.channels import CONNECTION_ID_HEADER
from services.runtime.config import ServiceSettings
from services.runtime.entrypoint import run_service
from services.runtime.errors import abort_invalid_argument
from services.runtime.identity import current_caller
from services.runtime.interceptors import metadata_value
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

# The mesh identities allowed to call it (through Envoy, which forwards theirs); any
# other certificate is refused.
CALLERS = ("api", "temporal")
NOT_BUILT = "credentials and refresh are built by issue #5"


class TokenManagerSettings(ServiceSettings):
    shard_name: str = Field(
        "", description="this shard's name, e.g. token-manager-0 (default: the service name)"
    )


class TokenManager(token_manager_pb2_grpc.TokenManagerServiceServicer):
    def __init__(self, shard: str) -> None:
        self.shard = shard

    async def DescribeShard(
        self, request: token_manager_pb2.DescribeShardRequest, context: grpc.aio.ServicerContext
    ) -> token_manager_pb2.DescribeShardResponse:
        await require_hash_header(request.connection_id, context)
        return token_manager_pb2.DescribeShardResponse(
            shard=self.shard, connection_id=request.connection_id, caller=current_caller() or ""
        )


async def require_hash_header(connection_id: str, context: grpc.aio.ServicerContext) -> None:
    """The edge hashes on the header, the shard serves the body: they must agree, or one
    connection's calls could land on two shards at once."""
    if not connection_id:
        await abort_invalid_argument(
            context, "connection_id is required", {"body.connection_id": "is required"}
        )
    header = metadata_value(context.invocation_metadata(), CONNECTION_ID_HEADER)
    if header != connection_id:
        await abort_invalid_argument(
            context,
            f"the {CONNECTION_ID_HEADER} header must equal connection_id",
            {f"header.{CONNECTION_ID_HEADER}": "must equal the request's connection_id"},
        )


@asynccontextmanager
async def open_services(settings: TokenManagerSettings) -> AsyncIterator[list[Service]]:
    yield [
        partially_built(
            token_manager_pb2.DESCRIPTOR.services_by_name["TokenManagerService"],
            token_manager_pb2_grpc.add_TokenManagerServiceServicer_to_server,
            TokenManager(settings.shard_name or settings.service_name),
            NOT_BUILT,
        )
    ]


def main() -> None:
    run_service(
        name="token-manager",
        services=open_services,
        allowed_callers=CALLERS,
        settings_cls=TokenManagerSettings,
    )


if __name__ == "__main__":
    main()
