"""MCP servers (builder-mcp, mcpanda) served over streamable HTTP beside the gRPC server.

An MCP service is a mesh service like any other (mTLS gRPC port with health, settings,
logs, SIGTERM drain) that also serves its MCP tools over HTTP. The HTTP server runs in
the same event loop for as long as the gRPC server does, and it binds 127.0.0.1 unless
told otherwise: MCP clients are local tools.

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

import asyncio
import contextlib
import enum
import hashlib
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextvars import ContextVar
from typing import Any

import uvicorn
from pydantic import Field, SecretStr

from services.runtime.config import ServiceSettings
from services.runtime.logs import get_logger

_log = get_logger("ampmesh.mcp.auth")


class McpSettings(ServiceSettings):
    """Where an MCP service listens and how it reaches the api service."""

    mcp_host: str = Field("127.0.0.1", description="MCP streamable-HTTP listen address")
    mcp_port: int = Field(8300, ge=0, le=65535, description="MCP HTTP port (path /mcp)")
    api_address: str = Field("127.0.0.1:50051", description="the api service's gRPC address")
    api_identity: str = Field(
        "api", description="identity the api endpoint's certificate names (envoy via the edge)"
    )
    api_key: SecretStr | None = Field(
        None,
        description="API key the tools act with for a request that presents none "
        "(on a loopback bind, or with mcp_allow_configured_key)",
    )
    mcp_require_credential: bool = Field(
        False,
        description="every MCP request must present an API key, even on a loopback bind",
    )
    mcp_allow_configured_key: bool = Field(
        False,
        description="off loopback (or with mcp_require_credential), still let a request "
        "without an API key act with the configured api_key",
    )

    def configured_key_serves_anonymous(self) -> bool:
        """Whether a request without a credential acts with the configured key."""
        if self.api_key is None:
            return False
        if self.mcp_allow_configured_key:
            return True
        return not self.mcp_require_credential and is_loopback(self.mcp_host)


def is_loopback(host: str) -> bool:
    """A bind only this machine's processes can reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume others can reach it


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


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the mesh runtime owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serving_http(app: Any, host: str, port: int) -> AsyncIterator[int]:
    """Serve an ASGI app until the block exits; yields the bound port."""
    server = _EmbeddedUvicorn(
        uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            # uvicorn logs the cause (e.g. the port is taken) and exits; say where.
            with contextlib.suppress(SystemExit):
                task.result()
            raise RuntimeError(f"the MCP HTTP server could not start on {host}:{port}")
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield int(bound)
    finally:
        server.should_exit = True
        await task
