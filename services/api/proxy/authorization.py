"""ProxyAuthorizationService: what the edge does with the calls of one set of caller
headers (ampmesh/edge/v1/proxy_authorization.proto).

A decision is made from the caller's headers alone (never the path or body), so the edge
can keep it and apply it to every call with the same headers, in memory, for
`cache_seconds`: that is how the provider's bytes stay on Envoy's data path and most
calls never reach Python (envoy/proxy.lua). A decision therefore ends before the token in
it expires, and before the rate window its lease was taken from ends. Calls in throttle
mode are always decided here, because a hold recorded through another edge must stop
them (limits.py).

Making one: the caller is authenticated (a builder's key: the proxy spends the
customer's credentials on any path), the installation is found by id or by integration
name and group ref, its integration must enable the proxy (and its config must not turn
it off), its connection must be usable, the catalog must allow proxying to its provider,
the host comes from the catalog (targets.py), and the credentials from the token-manager.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import grpc
import redis.exceptions
from ampmesh.edge.v1 import proxy_authorization_pb2 as authorization_pb2
from ampmesh.edge.v1 import proxy_authorization_pb2_grpc as authorization_pb2_grpc
from ampmesh.token.v1 import token_manager_pb2 as tm
from cachetools import TTLCache
from google.protobuf import duration_pb2

from services.api.common import abort_invalid, abort_missing
from services.api.context import ApiContext
from services.api.proxy.limits import ProxyLimits, hold_from_retry_after
from services.api.proxy.refusals import (
    CALLER_HEADERS,
    GROUP_HEADER,
    INSTALLATION_HEADER,
    INTEGRATION_HEADER,
    MODE_HEADER,
    PROJECT_HEADER,
    THROTTLE,
    abort_held,
    abort_rate_limited,
    check_headers,
)
from services.api.proxy.targets import TargetError, base_url_template, proxy_target
from services.api.stored import INSTALLATION_KIND, config_content, integration_content
from services.api.token_errors import (
    abort_retry_later,
    abort_token_error,
    require_token_manager,
)
from services.domain.catalog.rate_limits import RateLimit
from services.domain.connectors.registry import token_credentials
from services.runtime.errors import abort_with_reason
from services.runtime.logs import get_logger
from services.runtime.server import Service

SERVICE_NAME = authorization_pb2.DESCRIPTOR.services_by_name["ProxyAuthorizationService"].full_name
# Decisions kept for throttled calls (one per set of caller headers).
RECENT_DECISIONS = 10_000
# A decision ends this long before its token expires, so no call carries a token that
# expires on the way.
TOKEN_MARGIN_SECONDS = 30.0
TOKEN_DEADLINE = 10.0
REDIS_UNAVAILABLE = "REDIS_UNAVAILABLE"
REDIS_RETRY_SECONDS = 5
T = TypeVar("T")
_log = get_logger("ampmesh.api.proxy")

# The installation, what its integration and config say about the proxy, and its
# connection, within the caller's project.
_INSTALLATION = """
    SELECT i.id, i.group_ref, g.name AS integration_name, r.content AS revision_content,
           c.content AS config_content, n.id AS connection_id, n.provider,
           n.provider_workspace_ref, n.status AS connection_status
    FROM installations i
    JOIN integrations g ON g.id = i.integration_id
    LEFT JOIN LATERAL (
        SELECT revision_id, content FROM configs WHERE installation_id = i.id
        ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN revisions r ON r.id = c.revision_id
    LEFT JOIN connections n ON n.id = i.connection_id
    WHERE g.project_id = $1
"""
_BY_ID = _INSTALLATION + " AND i.id = $2"
_BY_GROUP = _INSTALLATION + " AND g.name = $2 AND i.group_ref = $3"


def _headers(context: Any) -> dict[str, str]:
    """The request metadata, first value of each (keys are lower case)."""
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        found.setdefault(str(key), str(value))
    return found


@dataclass(frozen=True)
class _Made:
    decision: authorization_pb2.Decision  # without the call's mode, hold or lease
    expires: float  # time.monotonic() after which it is made again


class ProxyAuthorization(authorization_pb2_grpc.ProxyAuthorizationServiceServicer):
    def __init__(
        self,
        ctx: ApiContext,
        limits: ProxyLimits | None,
        rate_limits: Mapping[str, RateLimit],
        cache_seconds: float,
    ) -> None:
        self.ctx = ctx
        self.limits = limits
        self.rate_limits = dict(rate_limits)
        self.cache_seconds = cache_seconds
        # Decisions by caller headers, as the edge keeps them: throttled calls come here
        # one by one, and each needs only its connection's hold (and lease) checked anew.
        # Made again at each call outside throttle mode (the edge keeps those itself).
        self._recent: TTLCache[tuple[str, ...], _Made] = TTLCache(
            maxsize=RECENT_DECISIONS, ttl=max(cache_seconds, 0.001)
        )
        self._deciding: dict[tuple[str, ...], asyncio.Future[_Made | None]] = {}

    async def Authorize(
        self, request: authorization_pb2.AuthorizeRequest, context: grpc.aio.ServicerContext
    ) -> authorization_pb2.Decision:
        headers = _headers(context)
        throttle = headers.get(MODE_HEADER, "") == THROTTLE
        key = tuple(headers.get(name, "") for name in CALLER_HEADERS)
        # The edge asks outside throttle mode when its decision ends or nears its end:
        # it gets a new one, for a full life. Throttled calls reuse the one here.
        made = self._recent.get(key) if throttle and not request.token_rejected else None
        if made is None or made.expires <= time.monotonic():
            made = await self._decide_once(context, key, headers, request.token_rejected)
        decision = authorization_pb2.Decision()
        decision.CopyFrom(made.decision)
        decision.cache_seconds = max(0.0, made.expires - time.monotonic())
        decision.throttle = throttle
        if throttle:
            connection_id = decision.connection_id
            hold = await self._shared(context, lambda limits: limits.hold(connection_id))
            if hold is not None:
                await abort_held(context, hold)
        limit = self.rate_limits.get(decision.provider)
        if limit is not None:
            # A throttled call is decided alone (the edge keeps no decision for it).
            lease = await self._shared(
                context,
                lambda limits: limits.lease(decision.connection_id, limit, single=throttle),
            )
            if lease.calls == 0:
                await abort_rate_limited(context, decision.provider, limit, lease.seconds_left)
            decision.calls = lease.calls
            decision.cache_seconds = min(decision.cache_seconds, lease.seconds_left)
        return decision

    async def _decide_once(
        self,
        context: Any,
        key: tuple[str, ...],
        headers: Mapping[str, str],
        token_rejected: bool,
    ) -> _Made:
        """One decision per set of headers at a time: calls arriving while it is made
        (every edge worker's, when their decisions end together) wait for it, and make
        their own only if it fails."""
        pending = self._deciding.get(key)
        if pending is not None and not token_rejected:
            shared = await asyncio.shield(pending)
            if shared is not None:
                return shared
        future: asyncio.Future[_Made | None] = asyncio.get_running_loop().create_future()
        self._deciding[key] = future
        try:
            made = await self._decide(context, headers, token_rejected)
        except BaseException:
            future.set_result(None)
            raise
        finally:
            if self._deciding.get(key) is future:
                del self._deciding[key]
        future.set_result(made)
        self._recent[key] = made
        return made

    async def _decide(
        self, context: Any, headers: Mapping[str, str], token_rejected: bool
    ) -> _Made:
        """The decision for these headers, checked from the caller to the token (without
        the connection's hold or rate limit, which are checked for every call)."""
        principal = await self.ctx.auth.authenticate(context)
        await check_headers(context, headers)
        project = await self.ctx.auth.project(context, principal, headers[PROJECT_HEADER])
        await self.ctx.auth.require_builder(context, principal)
        row = await self._installation(context, project.id, headers)
        provider = str(row["provider"])
        integration = integration_content(row["revision_content"] or "{}")
        info = self.ctx.catalog.get(provider)
        if info is None or not info.support.proxy:
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the catalog does not allow proxying to {provider!r}",
                "PROXY_NOT_SUPPORTED",
            )
        try:
            target = proxy_target(
                base_url_template(info, integration),
                {"workspace": row["provider_workspace_ref"] or ""},
                provider,
            )
        except TargetError as error:
            await abort_with_reason(
                context, grpc.StatusCode.FAILED_PRECONDITION, str(error), "CONNECTION_INCOMPLETE"
            )
        cache_seconds = self.cache_seconds
        token = await self._token(context, project.id, row, token_rejected)
        if token.token.HasField("expire_time"):
            left = token.token.expire_time.seconds - time.time() - TOKEN_MARGIN_SECONDS
            cache_seconds = max(0.0, min(cache_seconds, left))
        credential_headers, credential_query = token_credentials(token)
        decision = authorization_pb2.Decision(
            scheme=target.scheme,
            authority=target.authority,
            path_prefix=target.path_prefix,
            headers={name.lower(): value for name, value in credential_headers.items()},
            query=_encoded(credential_query),
            installation_id=str(row["id"]),
            connection_id=str(row["connection_id"]),
            project_id=project.id,
            provider=provider,
        )
        return _Made(decision, time.monotonic() + cache_seconds)

    async def RecordHold(
        self, request: authorization_pb2.RecordHoldRequest, context: grpc.aio.ServicerContext
    ) -> authorization_pb2.Hold:
        # Only the caller whose call met the 429 may hold its connection.
        principal = await self.ctx.auth.authenticate(context)
        headers = _headers(context)
        await check_headers(context, headers)
        project = await self.ctx.auth.project(context, principal, headers[PROJECT_HEADER])
        await self.ctx.auth.require_builder(context, principal)
        row = await self._installation(context, project.id, headers)
        if str(row["connection_id"]) != request.connection_id:
            await abort_invalid(
                context, {"connection_id": "is not the connection of these headers' installation"}
            )
        asked = hold_from_retry_after(request.retry_after)
        hold = await self._shared(
            context, lambda limits: limits.record_hold(request.connection_id, asked)
        )
        return authorization_pb2.Hold(
            retry_at=hold.rfc3339,
            retryable=hold.retryable,
            retry_after_seconds=hold.seconds_left(),
        )

    async def _installation(
        self, context: Any, project_id: str, headers: Mapping[str, str]
    ) -> asyncpg.Record:
        """The installation the headers name, checked to allow proxying."""
        project = uuid.UUID(project_id)
        installation_id = headers.get(INSTALLATION_HEADER, "")
        if installation_id:
            named = installation_id
            row = await self.ctx.pool.fetchrow(_BY_ID, project, uuid.UUID(installation_id))
        else:
            integration, group = headers[INTEGRATION_HEADER], headers[GROUP_HEADER]
            named = f"{integration}/{group}"
            row = await self.ctx.pool.fetchrow(_BY_GROUP, project, integration, group)
        if row is None:
            await abort_missing(context, INSTALLATION_KIND, named)
        revision = integration_content(row["revision_content"] or "{}")
        config = config_content(row["config_content"] or "{}")
        if not revision.proxy.enabled or (config.HasField("proxy") and not config.proxy.enabled):
            where = (
                "its config turns it off (config.content.proxy.enabled)"
                if revision.proxy.enabled
                else "add proxy: {enabled: true} to the integration in amp.yaml"
            )
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"integration {row['integration_name']!r} does not enable the proxy for this "
                f"installation: {where}",
                "PROXY_NOT_ENABLED",
            )
        if row["connection_id"] is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"installation {named!r} has no connection: connect the customer's account",
                "NO_CONNECTION",
            )
        if row["connection_status"] == "bad_credentials":
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                "the provider refused the connection's credentials; reconnect it "
                "(oauth-update) or rotate them (PATCH)",
                "BAD_CREDENTIALS",
            )
        return row

    async def _token(
        self, context: Any, project_id: str, row: asyncpg.Record, rejected: bool
    ) -> tm.GetTokenResponse:
        tokens = await require_token_manager(self.ctx, context)
        request = tm.GetTokenRequest(
            connection_id=str(row["connection_id"]),
            project_id=project_id,
            # Valid for the whole time the edge may reuse the decision.
            min_validity=duration_pb2.Duration(
                seconds=int(self.cache_seconds + TOKEN_MARGIN_SECONDS)
            ),
        )
        if rejected:
            # The provider refused the token the edge had: refresh it, once.
            request.refresh = tm.REFRESH_MODE_FORCE
        try:
            return await tokens.GetToken(request, timeout=TOKEN_DEADLINE)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                await abort_missing(context, "connection", str(row["connection_id"]))
            await abort_token_error(context, error, "get the connection's token")

    async def _shared(self, context: Any, call: Callable[[ProxyLimits], Awaitable[T]]) -> T:
        """call on the shared limits; UNAVAILABLE (retry) when Redis is missing or down:
        a hold or limit nobody can check must not let calls through."""
        if self.limits is None:
            await abort_retry_later(
                context,
                "throttling and rate limits need Redis, which this api was not given",
                REDIS_UNAVAILABLE,
                REDIS_RETRY_SECONDS,
            )
        try:
            return await call(self.limits)
        except redis.exceptions.RedisError:
            _log.warning("the proxy's limits could not be read or written in Redis")
            await abort_retry_later(
                context,
                "the proxy's shared limits (Redis) could not be reached",
                REDIS_UNAVAILABLE,
                REDIS_RETRY_SECONDS,
            )


def _encoded(query: Mapping[str, str]) -> str:
    return urllib.parse.urlencode(sorted(query.items()))


def service(
    ctx: ApiContext,
    limits: ProxyLimits | None,
    rate_limits: Mapping[str, RateLimit],
    cache_seconds: float,
) -> Service:
    return Service.from_servicer(
        authorization_pb2.DESCRIPTOR.services_by_name["ProxyAuthorizationService"],
        authorization_pb2_grpc.add_ProxyAuthorizationServiceServicer_to_server,
        ProxyAuthorization(ctx, limits, rate_limits, cache_seconds),
    )
