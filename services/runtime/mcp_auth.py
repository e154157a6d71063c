"""Who may call an MCP server (builder-mcp, mcpanda): an ASGI middleware in front of both.

Who calls. Each HTTP request may carry an ampmesh API key (`Authorization: Bearer <key>`,
or `x-api-key: <key>` as the reference's MCP server takes it). `McpAuth` checks a presented
key with the api before serving and keeps it in a contextvar for the request, so every api
call a tool makes for it sends that key: the caller can do through MCP exactly what the
key can do through the REST API. A request without a key acts with the configured key
(`AMPMESH_API_KEY`, the local builder's) only where that is safe: on a loopback bind, or
where the operator says so (`AMPMESH_MCP_ALLOW_CONFIGURED_KEY`); anywhere else (or with
`AMPMESH_MCP_REQUIRE_CREDENTIAL`) it is answered 401 with `WWW-Authenticate: Bearer`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from services.runtime.logs import get_logger
from services.runtime.mcp_http import McpSettings

_log = get_logger("ampmesh.mcp.auth")


# The API key the current MCP request acts with (the caller's, or the configured one);
# unset outside a request served over HTTP (an in-process client in a test).
_request_key: ContextVar[str | None] = ContextVar("ampmesh_mcp_request_key", default=None)


def request_api_key() -> str | None:
    """The API key of the MCP request being served, if it came over HTTP."""
    return _request_key.get()


class Verdict(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"  # the api says the key is not valid or not active
    UNKNOWN = "unknown"  # the api could not be asked


# Asks the api whether a key is valid (see mcp_service.py: a cheap authenticated call).
KeyVerifier = Callable[[str], Awaitable[Verdict]]

# A verdict is reused this long: a revoked key keeps working through MCP at most this much
# longer, and a tool's burst of calls costs the api one check.
VERDICT_SECONDS = 30.0
_MAX_VERDICTS = 4096


class McpAuth:
    """ASGI middleware: the credential of each HTTP request to an MCP server (see above)."""

    def __init__(self, app: Any, settings: McpSettings, verify: KeyVerifier) -> None:
        self.app = app
        self.settings = settings
        self.verify = verify
        # sha256(key) -> (verdict, monotonic expiry); never the key itself.
        self._verdicts: dict[bytes, tuple[Verdict, float]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key, problem = self._presented(scope)
        if problem:
            await _unauthorized(send, "invalid_request", problem)
            return
        if key is None:
            if not self.settings.configured_key_serves_anonymous():
                await _unauthorized(
                    send,
                    "invalid_request",
                    "this MCP server needs an ampmesh API key: send "
                    "'Authorization: Bearer <API key>' (or 'x-api-key: <API key>')",
                )
                return
            assert self.settings.api_key is not None
            key = self.settings.api_key.get_secret_value()
        else:
            verdict = await self._verdict(key)
            if verdict is Verdict.INVALID:
                await _unauthorized(send, "invalid_token", "the API key is not valid or not active")
                return
            if verdict is Verdict.UNKNOWN:
                await _answer(
                    send,
                    503,
                    {
                        "error": "temporarily_unavailable",
                        "error_description": "the api cannot check the API key right now; "
                        "try again shortly",
                    },
                    [(b"retry-after", b"1")],
                )
                return
        token = _request_key.set(key)
        try:
            await self.app(scope, receive, send)
        finally:
            _request_key.reset(token)

    @staticmethod
    def _presented(scope: Any) -> tuple[str | None, str]:
        """(the key the request presents or None, a problem with what it presented)."""
        headers: dict[bytes, str] = {}
        for name, value in scope.get("headers", ()):
            headers.setdefault(name.lower(), value.decode("latin-1"))
        authorization = headers.get(b"authorization", "").strip()
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                return None, "the Authorization header must be 'Bearer <API key>'"
            return credential.strip(), ""
        key = headers.get(b"x-api-key", "").strip()
        return (key or None), ""

    async def _verdict(self, key: str) -> Verdict:
        digest = hashlib.sha256(key.encode()).digest()
        now = time.monotonic()
        kept = self._verdicts.get(digest)
        if kept is not None and kept[1] > now:
            return kept[0]
        verdict = await self.verify(key)
        if verdict is not Verdict.UNKNOWN:
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts = {d: v for d, v in self._verdicts.items() if v[1] > now}
                if len(self._verdicts) >= _MAX_VERDICTS:
                    self._verdicts.clear()
            self._verdicts[digest] = (verdict, now + VERDICT_SECONDS)
        if verdict is Verdict.INVALID:
            _log.info("mcp request refused: invalid API key")
        return verdict


async def _answer(
    send: Any, status: int, body: dict[str, str], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _unauthorized(send: Any, error: str, description: str) -> None:
    # RFC 6750 §3: a wrong token's challenge names the error; a request that sent none (or
    # not as a bearer) gets the bare challenge, which only says what to send.
    challenge = 'Bearer realm="ampmesh"'
    if error == "invalid_token":
        challenge += f', error="{error}"'
    await _answer(
        send,
        401,
        {"error": error, "error_description": description},
        [(b"www-authenticate", challenge.encode())],
    )
