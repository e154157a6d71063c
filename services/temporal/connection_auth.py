"""How a read or write activity gets a connection's provider auth: a token from the
token-manager, and the catalog's base URL filled with the connection's workspace. Every
failure becomes the ApplicationError its workflow acts on: a connection gone or refused
by the provider (only the customer reconnecting helps) fails the operation at once, a
token-manager that is unavailable is retried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import grpc
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from temporalio.exceptions import ApplicationError

from services.domain.connectors.base import ProviderAuth

TOKEN_DEADLINE = 20.0
# Error types the workflows act on (ApplicationError.type).
INSTALLATION_GONE = "InstallationGone"
CREDENTIALS_REFUSED = "CredentialsRefused"
# The token-manager's answers for a connection whose credentials the provider refuses.
_CREDENTIALS_REFUSED = (
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
)

AuthFor = Callable[
    [providers_pb2.ProviderInfo, str, token_manager_pb2.GetTokenResponse], ProviderAuth
]


async def connection_auth(
    tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
    auth_for: AuthFor,
    *,
    connection_id: str,
    project_id: str,
    provider: str,
    workspace: str,
    unusable: str,
    force: bool = False,
) -> ProviderAuth:
    """The connection's provider auth; `force` asks for a refreshed token (the provider
    refused the last one). `unusable` is the non-retryable error type for a connection
    the catalog cannot serve (its provider gone from it, a workspace it lacks)."""
    request = token_manager_pb2.GetTokenRequest(connection_id=connection_id, project_id=project_id)
    if force:
        request.refresh = token_manager_pb2.REFRESH_MODE_FORCE
    try:
        response = await tokens.GetToken(request, timeout=TOKEN_DEADLINE)
    except grpc.aio.AioRpcError as error:
        code = error.code()
        if code == grpc.StatusCode.NOT_FOUND:
            raise ApplicationError(
                f"connection {connection_id} is gone", type=INSTALLATION_GONE, non_retryable=True
            ) from None
        if code in _CREDENTIALS_REFUSED:
            # The provider refused the connection's credentials (bad_credentials): only
            # the customer reconnecting helps, so the operation fails now, visibly,
            # instead of retrying for ever.
            raise ApplicationError(
                f"connection {connection_id} has credentials the provider refuses: reconnect it",
                type=CREDENTIALS_REFUSED,
                non_retryable=True,
            ) from None
        # The status message is the token-manager's: only its code leaves here.
        raise ApplicationError(
            f"the token-manager refused a token for connection {connection_id} ({code.name})",
            type="TokenUnavailable",
        ) from None
    info = catalog.get(provider)
    if info is None:
        raise ApplicationError(
            f"provider {provider!r} is not in the catalog", type=unusable, non_retryable=True
        )
    try:
        return auth_for(info, workspace, response)
    except ValueError as error:
        # The connection lacks what the provider's URL needs (its workspace): only
        # reconnecting it can help.
        raise ApplicationError(str(error), type=unusable, non_retryable=True) from None
