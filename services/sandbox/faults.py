"""Injected faults: the book of active faults (which requests each matches, how often it
fires, when it retires), and how a fired fault answers on the provider HTTP APIs (a delay,
a damaged token, a 429 or 5xx in the provider's shape, or a dropped connection)."""

from __future__ import annotations

import asyncio
import enum
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from services.sandbox.errors import provider_error
from services.sandbox.providers import Provider
from services.sandbox.tokens import Token

if TYPE_CHECKING:  # the state holds a FaultBook: imported for types only
    from services.sandbox.oauth import SandboxRequest
    from services.sandbox.state import SandboxState


class FaultKind(enum.IntEnum):
    """Mirrors ampmesh.sandbox.v1.FaultKind."""

    UNSPECIFIED = 0
    RATE_LIMIT = 1
    SERVER_ERROR = 2
    SLOW_RESPONSE = 3
    EXPIRED_TOKEN = 4
    REVOKED_TOKEN = 5
    DROP_CONNECTION = 6
    # Webhooks only (webhooks.py acts on them when it sends).
    DUPLICATE_EVENT = 7
    REORDER_EVENTS = 8
    BAD_SIGNATURE = 9
    STALE_TIMESTAMP = 10


# The kinds that change what the sandbox sends to subscribers, not how it answers.
WEBHOOK_KINDS = frozenset(
    {
        FaultKind.DUPLICATE_EVENT,
        FaultKind.REORDER_EVENTS,
        FaultKind.BAD_SIGNATURE,
        FaultKind.STALE_TIMESTAMP,
    }
)


class Endpoint(enum.IntEnum):
    """Mirrors ampmesh.sandbox.v1.FaultEndpoint."""

    UNSPECIFIED = 0
    TOKEN = 1
    REVOKE = 2
    # The record reads (and the metadata APIs); writes are WRITES, so a test can fail
    # one side and not the other. UNSPECIFIED matches both.
    RECORDS = 3
    PROXY_TEST = 4
    WRITES = 5
    # The change events the sandbox sends (webhooks.py): only the webhook kinds apply.
    WEBHOOKS = 6
    # HubSpot's webhooks API, Salesforce's Tooling API subscription sObjects.
    SUBSCRIPTIONS = 7


# The endpoints that take a bearer access token, where token faults make sense.
BEARER_ENDPOINTS = frozenset(
    {Endpoint.RECORDS, Endpoint.PROXY_TEST, Endpoint.WRITES, Endpoint.SUBSCRIPTIONS}
)


@dataclass
class Fault:
    """An injected fault, with the limits and counters of ampmesh.sandbox.v1.Fault."""

    id: str
    kind: FaultKind
    endpoint: Endpoint = Endpoint.UNSPECIFIED
    provider: Provider = Provider.UNSPECIFIED
    object_name: str = ""
    grant_type: str = ""
    client_id: str = ""
    skip: int = 0
    count: int = 0
    duration: float | None = None
    http_status: int = 503
    retry_after: float = 1.0
    delay: float = 0.0
    fired: int = 0
    matched: int = 0
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def expires(self) -> datetime | None:
        if self.duration is None:
            return None
        return self.created + timedelta(seconds=self.duration)

    def retired(self, now: datetime) -> bool:
        if self.count and self.fired >= self.count:
            return True
        expires = self.expires
        return expires is not None and now >= expires


@dataclass(frozen=True)
class RequestInfo:
    """What a fault can match a request on."""

    endpoint: Endpoint
    provider: Provider
    # The record API's object, or the proxy-test route's name (echo, download, upload).
    object_name: str = ""
    grant_type: str = ""
    client_id: str = ""


class FaultBook:
    """The active faults, oldest first."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self.fired_total = 0

    def add(self, fault: Fault) -> Fault:
        fault.id = f"fault-{next(self._ids)}"
        self._faults.append(fault)
        return fault

    def active(self) -> list[Fault]:
        self._retire()
        return list(self._faults)

    def clear(self, ids: list[str] | None = None) -> int:
        before = len(self._faults)
        if ids:
            wanted = set(ids)
            self._faults = [fault for fault in self._faults if fault.id not in wanted]
        else:
            self._faults = []
        return before - len(self._faults)

    def fire(self, request: RequestInfo) -> list[Fault]:
        """The faults this request meets, counting it against every matching one."""
        self._retire()
        firing = []
        for fault in self._faults:
            if not _matches(fault, request):
                continue
            fault.matched += 1
            if fault.matched <= fault.skip:
                continue
            fault.fired += 1
            self.fired_total += 1
            firing.append(fault)
        self._retire()
        return firing

    def _retire(self) -> None:
        now = datetime.now(UTC)
        self._faults = [fault for fault in self._faults if not fault.retired(now)]


def _matches(fault: Fault, request: RequestInfo) -> bool:
    if fault.endpoint is not Endpoint.UNSPECIFIED and fault.endpoint is not request.endpoint:
        return False
    if fault.provider is not Provider.UNSPECIFIED and fault.provider is not request.provider:
        return False
    if fault.object_name and fault.object_name != request.object_name:
        return False
    if fault.grant_type and fault.grant_type != request.grant_type:
        return False
    if fault.client_id and fault.client_id != request.client_id:
        return False
    # What is sent to subscribers meets only the webhook kinds, and only it does.
    if (fault.kind in WEBHOOK_KINDS) != (request.endpoint is Endpoint.WEBHOOKS):
        return False
    # Token faults only make sense where tokens are presented or refreshed.
    if fault.kind is FaultKind.EXPIRED_TOKEN:
        return request.endpoint in BEARER_ENDPOINTS
    if fault.kind is FaultKind.REVOKED_TOKEN:
        return request.endpoint in BEARER_ENDPOINTS or (
            request.endpoint is Endpoint.TOKEN and request.grant_type == "refresh_token"
        )
    return True


# --- answering on the HTTP APIs ----------------------------------------------------


async def apply_faults(
    state: SandboxState,
    info: RequestInfo,
    error: Callable[[Fault, int], Response],
    *,
    token: Token | None = None,
    refresh: SandboxRequest | None = None,
) -> Response | None:
    """Delays, token damage, then the first fault that answers instead."""
    fired = state.faults.fire(info)
    answer: Response | None = None
    for fault in fired:
        if fault.kind is FaultKind.SLOW_RESPONSE:
            await asyncio.sleep(fault.delay)
        elif fault.kind is FaultKind.EXPIRED_TOKEN and token is not None:
            token.forced_expired = True
        elif fault.kind is FaultKind.REVOKED_TOKEN:
            _revoke_for_fault(state, token, refresh)
        elif answer is None and fault.kind is FaultKind.RATE_LIMIT:
            answer = error(fault, 429)
        elif answer is None and fault.kind is FaultKind.SERVER_ERROR:
            answer = error(fault, fault.http_status)
        elif answer is None and fault.kind is FaultKind.DROP_CONNECTION:
            answer = DroppedConnection()
    return answer


def _revoke_for_fault(
    state: SandboxState, token: Token | None, refresh: SandboxRequest | None
) -> None:
    if refresh is not None:
        # The refresh token presented: Authlib then answers invalid_grant on its own.
        token = state.tokens.by_refresh.get(refresh.form.get("refresh_token", ""))
    if token is not None:
        state.tokens.revoke_grant(token.grant_id)


class DroppedConnection(Response):
    """No answer: the status line and headers promise a body that never comes.

    ASGI gives an application no way to close its connection, but a server must close
    one whose response the application left incomplete (uvicorn does, logging that it
    did), so the client sees the connection drop mid-answer."""

    def __init__(self) -> None:
        super().__init__(status_code=200, headers={"content-length": "64"})
        self.status_code = 0  # for the counters: nothing was answered

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})


def retry_after(fault: Fault) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(fault.retry_after)))}


def oauth_error(fault: Fault, status: int) -> Response:
    headers = retry_after(fault) if status == 429 else None
    body = {"error": "temporarily_unavailable", "error_description": f"sandbox fault {fault.id}"}
    return JSONResponse(body, status_code=status, headers=headers)


def record_fault_error(provider: Provider, fault: Fault, status: int) -> Response:
    if status == 429:
        code = "RATE_LIMITS" if provider is Provider.HUBSPOT else "REQUEST_LIMIT_EXCEEDED"
        body = provider_error(provider, status, code, f"rate limited (sandbox fault {fault.id})")
        return JSONResponse(body, status_code=status, headers=retry_after(fault))
    code = "INTERNAL_ERROR" if provider is Provider.HUBSPOT else "SERVER_UNAVAILABLE"
    body = provider_error(provider, status, code, f"server error (sandbox fault {fault.id})")
    return JSONResponse(body, status_code=status)
