"""How a service that calls the token-manager (api, temporal) reaches its shards: two
settings and a stub over the edge's ring hash, with the service's own certificate (the
shards accept only the identities their policy names); and what its failures mean.

A failure's reason is one of the contract's TokenFailureReason values, carried as text in
the status's google.rpc.ErrorInfo (the value's name without its prefix). The token-manager
writes it with `reason_text`, callers read it with `failure_reason`: the only two places
that know the spelling.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import cast

import grpc
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from ampmesh.token.v1.token_manager_pb2 import TokenFailureReason
from google.rpc import error_details_pb2
from pydantic import Field

from services.runtime.channels import token_manager_channel
from services.runtime.config import ServiceSettings
from services.runtime.errors import status_from_error, unpack_details
from services.runtime.tls import ensure_service_credentials

# ErrorInfo.domain of the token-manager's errors.
ERROR_DOMAIN = "token.ampmesh"
_PREFIX = "TOKEN_FAILURE_REASON_"
_UNSPECIFIED = token_manager_pb2.TOKEN_FAILURE_REASON_UNSPECIFIED
# Reason text -> value, from the contract (every value but UNSPECIFIED).
_BY_TEXT: dict[str, TokenFailureReason] = {
    name.removeprefix(_PREFIX): cast(TokenFailureReason, number)
    for name, number in TokenFailureReason.items()
    if number != _UNSPECIFIED
}


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


def reason_text(reason: TokenFailureReason) -> str:
    """The ErrorInfo.reason that carries `reason` (e.g. "BAD_CREDENTIALS")."""
    return TokenFailureReason.Name(reason).removeprefix(_PREFIX)


def failure_reason(error: grpc.aio.AioRpcError) -> TokenFailureReason:
    """Why a token-manager call failed, from its status's first ErrorInfo: UNSPECIFIED
    when there is none, or its reason is not one of the contract's."""
    status = status_from_error(error)
    for detail in unpack_details(status) if status is not None else ():
        if isinstance(detail, error_details_pb2.ErrorInfo):
            return _BY_TEXT.get(detail.reason, _UNSPECIFIED)
    return _UNSPECIFIED
