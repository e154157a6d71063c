"""Calling a customer's provider from the api, through one of their connections.

Object metadata, hydrated revisions and search answer while the caller waits, so the api
calls the provider itself (reads and writes of many pages go through Temporal instead).
A call here takes the connection's token from the token-manager, fills the catalog's base
URL with the connection's workspace (services/domain/connectors/registry.py), and runs
one connector function with it. A token the provider refuses is refreshed once and the
call made again; what still fails becomes a status the caller can act on:

- the provider refused the request (4xx): NOT_FOUND for 404 (an object or record the
  customer's instance does not have), else FAILED_PRECONDITION, with the provider's own
  message (connectors strip credentials from it);
- the provider could not answer (429, 5xx, network) after the connector's retries, or
  not within CALL_BUDGET (the caller is a person waiting on a screen): UNAVAILABLE with
  the provider's Retry-After;
- the token-manager's own failures as the connection RPCs answer them (token_errors.py).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC
from typing import Any, NoReturn, TypeVar

import aiohttp
import grpc
from ampmesh.token.v1 import token_manager_pb2 as tm

from services.api.common import abort_missing
from services.api.context import ApiContext
from services.api.token_errors import (
    DEFAULT_RETRY_SECONDS,
    abort_retry_later,
    abort_token_error,
    require_token_manager,
)
from services.domain.connectors.base import (
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    TokenRejected,
)
from services.domain.connectors.registry import provider_auth
from services.runtime.errors import abort_with_details, error_info

T = TypeVar("T")
# What a call runs: one connector function, given the shared session and the auth.
ProviderCall = Callable[[aiohttp.ClientSession, ProviderAuth], Awaitable[T]]
# Seconds a call may take, the connector's retries of a provider that limits or fails
# included: the caller waits (a connector alone would retry for up to a minute).
CALL_BUDGET = 20.0
# How long the api waits for a token.
TOKEN_DEADLINE = 10.0


def require_http(ctx: ApiContext) -> aiohttp.ClientSession:
    """The session provider calls share; a context without one is a wiring mistake."""
    if ctx.http is None:
        raise RuntimeError("this ApiContext was built without a provider HTTP session")
    return ctx.http


async def connection_auth(
    ctx: ApiContext,
    context: Any,
    *,
    project_id: str,
    connection: Mapping[str, Any],
    force_refresh: bool = False,
) -> ProviderAuth:
    """Where and how to call the provider of `connection` (a connections row). Reused
    for up to AUTH_REUSE_SECONDS (ctx.provider_auths): a write or a search in a loop
    then costs the provider call, not also a token-manager round trip each time; a
    token the provider refuses is refreshed (force_refresh) and replaces the kept one."""
    connection_id = str(connection["id"])
    if not force_refresh:
        kept = ctx.provider_auths.get(connection_id)
        if kept is not None:
            return kept
    tokens = await require_token_manager(ctx, context)
    request = tm.GetTokenRequest(connection_id=str(connection["id"]), project_id=project_id)
    if force_refresh:
        request.refresh = tm.REFRESH_MODE_FORCE
    try:
        answer = await tokens.GetToken(request, timeout=TOKEN_DEADLINE)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:  # deleted meanwhile
            await abort_missing(context, "connection", str(connection["id"]))
        await abort_token_error(context, error, "get the connection's token")
    provider = connection["provider"]
    info = ctx.catalog.get(provider)
    if info is None:
        await abort_with_details(
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            f"provider {provider!r} of the connection is not in this deployment's catalog",
            error_info("PROVIDER_NOT_IN_CATALOG"),
        )
    try:
        auth = provider_auth(info, connection["provider_workspace_ref"] or "", answer)
    except ValueError as error:  # the URL needs a workspace the connection lacks
        await abort_with_details(
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            str(error),
            error_info("CONNECTION_INCOMPLETE"),
        )
    expires = (
        answer.token.expire_time.ToDatetime(tzinfo=UTC)
        if answer.token.HasField("expire_time")
        else None
    )
    ctx.provider_auths.put(connection_id, auth, expires)
    return auth


async def call_provider(
    ctx: ApiContext,
    context: Any,
    *,
    project_id: str,
    connection: Mapping[str, Any],
    call: ProviderCall[T],
    doing: str,
) -> T:
    """Run `call` against the connection's provider, refreshing a refused token once.
    `doing` completes "could not …" in errors (e.g. "describe object contacts")."""
    http = require_http(ctx)
    auth = await connection_auth(ctx, context, project_id=project_id, connection=connection)
    try:
        async with asyncio.timeout(CALL_BUDGET):
            try:
                return await call(http, auth)
            except TokenRejected:
                auth = await connection_auth(
                    ctx, context, project_id=project_id, connection=connection, force_refresh=True
                )
                return await call(http, auth)
    except TimeoutError:
        await abort_retry_later(
            context,
            f"could not {doing}: the provider did not answer within {CALL_BUDGET:g} s",
            "PROVIDER_UNAVAILABLE",
            DEFAULT_RETRY_SECONDS,
        )
    except TokenRejected as error:
        await abort_with_details(
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            f"could not {doing}: the provider refused the connection's token even after a "
            f"refresh ({error}); reconnect it",
            error_info("PROVIDER_REFUSED_TOKEN"),
        )
    except ProviderUnavailable as error:
        seconds = math.ceil(error.retry_after) if error.retry_after else DEFAULT_RETRY_SECONDS
        await abort_retry_later(
            context, f"could not {doing}: {error}", "PROVIDER_UNAVAILABLE", max(1, seconds)
        )
    except ProviderRequestError as error:
        await abort_provider_refusal(context, error, doing)


async def abort_provider_refusal(context: Any, error: ProviderRequestError, doing: str) -> NoReturn:
    """The provider refused the request itself: NOT_FOUND for its 404, else
    FAILED_PRECONDITION, naming what the provider said."""
    code = grpc.StatusCode.NOT_FOUND if error.status == 404 else grpc.StatusCode.FAILED_PRECONDITION
    await abort_with_details(
        context, code, f"could not {doing}: {error}", error_info("PROVIDER_REFUSED_REQUEST")
    )
