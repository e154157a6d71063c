"""MCP servers (builder-mcp, mcpanda) served over streamable HTTP beside the gRPC server.

An MCP service is a mesh service like any other (mTLS gRPC port with health, settings,
logs, SIGTERM drain) that also serves its MCP tools over HTTP. The HTTP server runs in
the same event loop for as long as the gRPC server does, and it binds 127.0.0.1 unless
told otherwise: MCP clients are local tools.

Who may call is `mcp_auth.McpAuth`'s business; `McpSettings` holds what it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Generator
from typing import Any

import uvicorn
from pydantic import Field, SecretStr

from services.runtime.config import ServiceSettings


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
