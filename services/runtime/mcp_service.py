"""Running an MCP service: an api channel, the MCP tools over HTTP, gRPC health beside."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import grpc
from mcp.server import MCPServer

from services.runtime.channels import mesh_channel
from services.runtime.logs import get_logger
from services.runtime.mcp_http import McpSettings, serving_http
from services.runtime.server import Service
from services.runtime.tls import ensure_service_credentials

# Builds the MCP server from a channel to the api service and the metadata to send.
ToolsFactory = Callable[[grpc.aio.Channel, list[tuple[str, str]]], MCPServer]

_log = get_logger("ampmesh.mcp")


def mcp_services(
    build: ToolsFactory,
) -> Callable[[McpSettings], AbstractAsyncContextManager[list[Service]]]:
    """A service factory for run_service: the MCP tools run while the gRPC server does."""

    @asynccontextmanager
    async def open_services(settings: McpSettings) -> AsyncIterator[list[Service]]:
        credentials = ensure_service_credentials(
            settings.cert_dir, settings.identity, create=settings.create_certs
        )
        metadata = []
        if settings.api_key is not None:
            metadata.append(("x-api-key", settings.api_key.get_secret_value()))
        channel = mesh_channel(
            settings.api_address, credentials, server_identity=settings.api_identity
        )
        try:
            server = build(channel, metadata)
            app = server.streamable_http_app(host=settings.mcp_host)
            async with serving_http(app, settings.mcp_host, settings.mcp_port) as port:
                _log.info("mcp serving", url=f"http://{settings.mcp_host}:{port}/mcp")
                yield []  # gRPC: health (and reflection) only
        finally:
            await channel.close()

    return open_services
