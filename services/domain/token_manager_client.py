"""How a service that calls the token-manager (api, temporal) reaches its shards: two
settings and a stub over the edge's ring hash, with the service's own certificate (the
shards accept only the identities their policy names)."""

from __future__ import annotations

from contextlib import AsyncExitStack

from ampmesh.token.v1 import token_manager_pb2_grpc
from pydantic import Field

from services.runtime.channels import token_manager_channel
from services.runtime.config import ServiceSettings
from services.runtime.tls import ensure_service_credentials


class TokenManagerClientSettings(ServiceSettings):
    """Settings of a service that calls the token-manager: subclass it."""

    token_manager_address: str = Field(
        "", description="host:port of the token-manager shards (the edge's internal listener)"
    )
    token_manager_server_name: str = Field(
        "envoy", description="identity the token-manager address's certificate must name"
    )


def token_manager_stub(
    settings: TokenManagerClientSettings, resources: AsyncExitStack
) -> token_manager_pb2_grpc.TokenManagerServiceStub:
    """A stub for the shards at settings.token_manager_address; its channel closes with
    resources."""
    credentials = ensure_service_credentials(
        settings.cert_dir, settings.identity, create=settings.create_certs
    )
    channel = token_manager_channel(
        settings.token_manager_address,
        credentials,
        server_identity=settings.token_manager_server_name,
    )
    resources.push_async_callback(channel.close)
    return token_manager_pb2_grpc.TokenManagerServiceStub(channel)
