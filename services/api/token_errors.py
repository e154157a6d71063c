"""What the api answers when a token-manager call fails (connection RPCs, and every RPC
that calls a provider through a connection).

The token-manager's reason (services.domain.token_manager_client.failure_reason) decides:
refused credentials are the caller's to fix (FAILED_PRECONDITION, or at connect time a
field violation), a provider that cannot answer or limits the rate is worth a retry
(UNAVAILABLE with the token-manager's RetryInfo, and a Retry-After header), anything else
is the token-manager's fault (UNAVAILABLE when unreachable, else INTERNAL). The OAuth
callback, which answers a browser with a page, gets the same decision as a FlowFailure.
The token-manager's messages are passed on: its contract keeps secrets out of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, NoReturn

import grpc
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from services.api.context import ApiContext
from services.domain.token_manager_client import failure_reason, reason_text
from services.runtime.errors import (
    abort_with_details,
    error_info,
    status_from_error,
    unpack_details,
)
from services.runtime.logs import get_logger

# RFC 9110's advice to a client told to come back later (gRPC initial metadata, which the
# edge passes on as a response header).
RETRY_AFTER_HEADER = "retry-after"
# How long a caller is told to wait when the token-manager gave no RetryInfo of its own.
DEFAULT_RETRY_SECONDS = 5
# The provider, not the token-manager, could not answer.
_PROVIDER_REASONS = (
    tm.TOKEN_FAILURE_REASON_PROVIDER_UNAVAILABLE,
    tm.TOKEN_FAILURE_REASON_RATE_LIMITED,
)

_log = get_logger("ampmesh.api.connections")


async def require_token_manager(
    ctx: ApiContext, context: Any
) -> token_manager_pb2_grpc.TokenManagerServiceStub:
    """The token-manager's stub, or UNAVAILABLE when this deployment has none."""
    if ctx.tokens is None:
        await abort_with_details(
            context,
            grpc.StatusCode.UNAVAILABLE,
            "this deployment has no token-manager (AMPMESH_TOKEN_MANAGER_ADDRESS is unset)",
            error_info("TOKEN_MANAGER_NOT_CONFIGURED"),
        )
    return ctx.tokens


def retry_delay(error: grpc.aio.AioRpcError) -> int:
    """Whole seconds to wait before retrying, from the token-manager's RetryInfo."""
    status = status_from_error(error)
    for detail in unpack_details(status) if status is not None else ():
        if isinstance(detail, error_details_pb2.RetryInfo):
            return max(1, math.ceil(detail.retry_delay.ToTimedelta().total_seconds()))
    return DEFAULT_RETRY_SECONDS


async def abort_retry_later(context: Any, message: str, reason: str, seconds: int) -> NoReturn:
    """UNAVAILABLE with google.rpc.RetryInfo, and the delay as a Retry-After response
    header too, which REST clients see on the 503."""
    with contextlib.suppress(grpc.aio.UsageError, RuntimeError):  # headers already sent
        await context.send_initial_metadata(((RETRY_AFTER_HEADER, str(seconds)),))
    await abort_with_details(
        context,
        grpc.StatusCode.UNAVAILABLE,
        f"{message}; try again in {seconds} s",
        error_info(reason),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)),
    )


async def abort_token_manager(context: Any, error: grpc.aio.AioRpcError, doing: str) -> NoReturn:
    """The token-manager failed in a way the caller cannot fix: UNAVAILABLE when it could
    not be reached (worth a retry), INTERNAL otherwise. Its message names no secret."""
    code = error.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        await abort_retry_later(
            context,
            f"the token-manager could not be reached to {doing}",
            "TOKEN_MANAGER_UNAVAILABLE",
            DEFAULT_RETRY_SECONDS,
        )
    _log.error("token-manager call failed", doing=doing, code=code.name, detail=error.details())
    await abort_with_details(
        context,
        grpc.StatusCode.INTERNAL,
        f"the token-manager could not {doing} ({code.name})",
        error_info("TOKEN_MANAGER_FAILED"),
    )


def provider_unavailable(error: grpc.aio.AioRpcError) -> bool:
    """The token-manager is fine, the provider could not answer (or limits the rate)."""
    return (
        error.code() == grpc.StatusCode.UNAVAILABLE and failure_reason(error) in _PROVIDER_REASONS
    )


async def abort_token_error(context: Any, error: grpc.aio.AioRpcError, doing: str) -> NoReturn:
    """A token-manager failure the caller can act on, passed on with the token-manager's
    message (its contract keeps secrets out of it): refused credentials are
    FAILED_PRECONDITION (a person must reconnect or rotate them), an unreachable or
    rate-limiting provider UNAVAILABLE with the token-manager's retry delay; anything
    else as abort_token_manager."""
    code, reason = error.code(), failure_reason(error)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        message = error.details() or f"the token-manager could not {doing}"
        if reason == tm.TOKEN_FAILURE_REASON_BAD_CREDENTIALS:
            message = (
                f"the provider refused the connection's credentials ({message}); reconnect "
                "it (oauth-update) or rotate them (PATCH)"
            )
        await abort_with_details(
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            message,
            error_info(reason_text(reason) if reason else "FAILED_PRECONDITION"),
        )
    if provider_unavailable(error):
        await abort_retry_later(
            context,
            f"could not {doing}: {error.details() or 'the provider could not be reached'}",
            reason_text(reason),
            retry_delay(error),
        )
    await abort_token_manager(context, error, doing)


@dataclasses.dataclass(frozen=True)
class FlowFailure:
    """Why an OAuth flow could not finish, in one line for the page, and the HTTP status
    of that page (503 with a Retry-After when a later attempt may succeed)."""

    message: str
    status: int = 400
    retry_after: int = 0


def exchange_failure(error: grpc.aio.AioRpcError) -> FlowFailure:
    """Why an authorization code could not be exchanged."""
    code = error.code()
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FlowFailure("the provider refused the authorization code; start connecting again")
    if provider_unavailable(error):
        return FlowFailure(
            "the provider could not be reached to finish connecting; start connecting "
            "again shortly",
            503,
            retry_delay(error),
        )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return FlowFailure(
            "ampmesh could not reach its token service; start connecting again shortly",
            503,
            DEFAULT_RETRY_SECONDS,
        )
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return FlowFailure("this deployment cannot exchange authorization codes yet")
    reason = failure_reason(error)
    _log.error(
        "authorization code exchange failed",
        code=code.name,
        reason=reason_text(reason) if reason else "",
    )
    return FlowFailure("the connection could not be stored; try again")
