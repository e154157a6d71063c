"""Running an MCP service: an api channel, the MCP tools over HTTP, gRPC health beside.

A tools module gets one `McpMesh`: the channel to the api, the service's settings and
credentials (to open channels to other mesh services), and `api_metadata()`, the
metadata to send with an api call made for the MCP request being served.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
from mcp.server import MCPServer

from services.runtime.channels import mesh_channel
from services.runtime.logs import get_logger
from services.runtime.mcp_http import McpSettings, serving_http
from services.runtime.server import Service
from services.runtime.tls import ServiceCredentials, ensure_service_credentials

SettingsT = TypeVar("SettingsT", bound=McpSettings)

_log = get_logger("ampmesh.mcp")


@dataclass(frozen=True)
class McpMesh(Generic[SettingsT]):
    """What an MCP server's tools reach the mesh with."""

    settings: SettingsT
    api: grpc.aio.Channel
    credentials: ServiceCredentials

    def api_metadata(self) -> list[tuple[str, str]]:
        """Metadata for an api call made on behalf of the current MCP request."""
        if self.settings.api_key is None:
            return []
        return [("x-api-key", self.settings.api_key.get_secret_value())]


# Builds the MCP server's tools from what reaches the mesh.
ToolsFactory = Callable[[McpMesh[SettingsT]], MCPServer]


def mcp_services(
    build: ToolsFactory[SettingsT],
) -> Callable[[SettingsT], AbstractAsyncContextManager[list[Service]]]:
    """A service factory for run_service: the MCP tools run while the gRPC server does."""

    @asynccontextmanager
    async def open_services(settings: SettingsT) -> AsyncIterator[list[Service]]:
        credentials = ensure_service_credentials(
            settings.cert_dir, settings.identity, create=settings.create_certs
        )
        channel = mesh_channel(
            settings.api_address, credentials, server_identity=settings.api_identity
        )
        try:
            server = build(McpMesh(settings=settings, api=channel, credentials=credentials))
            app = server.streamable_http_app(host=settings.mcp_host)
            async with serving_http(app, settings.mcp_host, settings.mcp_port) as port:
                _log.info("mcp serving", url=f"http://{settings.mcp_host}:{port}/mcp")
                yield []  # gRPC: health (and reflection) only
        finally:
            await channel.close()

    return open_services
