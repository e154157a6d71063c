"""Running an MCP service: an api channel, the MCP tools over HTTP, gRPC health beside.

A tools module gets one `McpMesh`: the channel to the api, the service's settings and
credentials (to open channels to other mesh services), and `api_metadata()`, the
metadata to send with an api call made for the MCP request being served (the caller's
API key: see mcp_auth.py). `api_error(error)` turns a failed api call into
the tool's MCP error, with the api's problem detail.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
from ampmesh.platform.v1 import projects_pb2, projects_pb2_grpc
from google.rpc import error_details_pb2  # type: ignore[import-untyped, unused-ignore]
from grpc_status import rpc_status
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from services.runtime.channels import mesh_channel
from services.runtime.logs import get_logger
from services.runtime.mcp_auth import KeyVerifier, McpAuth, Verdict, request_api_key
from services.runtime.mcp_http import McpSettings, serving_http
from services.runtime.server import Service
from services.runtime.tls import ServiceCredentials, ensure_service_credentials

SettingsT = TypeVar("SettingsT", bound=McpSettings)

_log = get_logger("ampmesh.mcp")

# The longest a tool waits for one api call.
API_CALL_SECONDS = 60.0


@dataclass(frozen=True)
class McpMesh(Generic[SettingsT]):
    """What an MCP server's tools reach the mesh with."""

    settings: SettingsT
    api: grpc.aio.Channel
    credentials: ServiceCredentials

    def api_metadata(self) -> list[tuple[str, str]]:
        """Metadata for an api call made on behalf of the current MCP request."""
        key = request_api_key()
        if key is None and self.settings.api_key is not None:
            # Not over HTTP (an in-process client): the configured key, as before auth.
            key = self.settings.api_key.get_secret_value()
        return [("x-api-key", key)] if key else []


class ApiError(ToolError):
    """An api call that failed: the tool's MCP error, with the api's problem detail."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def api_error(error: grpc.aio.AioRpcError) -> ApiError:
    """The MCP error for a failed api call: its code, message, and the fields it names.

    e.g. "NOT_FOUND: project 'acme' not found (projectIdOrName)" or "INVALID_ARGUMENT:
    ... [body.groupRef: required]" — what the REST API's problem+json says, on one line.
    """
    code = error.code()
    text = f"{code.name}: {error.details() or ''}"
    details: list[str] = []
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        status = None
    for packed in status.details if status is not None else ():
        if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            packed.Unpack(request)
            details += [f"{v.field}: {v.description}" for v in request.field_violations]
        elif packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            details.append(f"reason: {info.reason}")
        elif packed.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            resource = error_details_pb2.ResourceInfo()
            packed.Unpack(resource)
            details.append(f"{resource.resource_type}: {resource.resource_name}")
    if details:
        text += " [" + "; ".join(details) + "]"
    return ApiError(code, text)


def api_key_verifier(api: grpc.aio.Channel) -> KeyVerifier:
    """Checks a key with the cheapest call any valid key may make (its projects)."""
    projects = projects_pb2_grpc.ProjectServiceStub(api)

    async def verify(key: str) -> Verdict:
        try:
            await projects.ListProjects(
                projects_pb2.ListProjectsRequest(), metadata=[("x-api-key", key)], timeout=10
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                return Verdict.INVALID
            _log.warning("mcp credential check failed", code=error.code().name)
            return Verdict.UNKNOWN
        return Verdict.VALID

    return verify


# Builds the MCP server's tools from what reaches the mesh.
ToolsFactory = Callable[[McpMesh[SettingsT]], MCPServer]


def _reachable(host: str) -> str:
    """An address this machine reaches a server bound to host at."""
    try:
        unspecified = ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return host
    return "127.0.0.1" if unspecified else host


@asynccontextmanager
async def serving_mcp(
    build: ToolsFactory[SettingsT], settings: SettingsT, credentials: ServiceCredentials
) -> AsyncIterator[str]:
    """The MCP tools served over HTTP (behind McpAuth) until the block exits; yields
    their URL."""
    # A tool's api call may be slow (a deploy checks every object with its provider): the
    # channel's default 5 s deadline would cut it; each call sets its own instead.
    channel = mesh_channel(
        settings.api_address,
        credentials,
        server_identity=settings.api_identity,
        timeout=API_CALL_SECONDS,
    )
    try:
        server = build(McpMesh(settings=settings, api=channel, credentials=credentials))
        app = McpAuth(
            server.streamable_http_app(host=settings.mcp_host),
            settings,
            api_key_verifier(channel),
        )
        async with serving_http(app, settings.mcp_host, settings.mcp_port) as port:
            yield f"http://{_reachable(settings.mcp_host)}:{port}/mcp"
    finally:
        await channel.close()


def mcp_services(
    build: ToolsFactory[SettingsT],
) -> Callable[[SettingsT], AbstractAsyncContextManager[list[Service]]]:
    """A service factory for run_service: the MCP tools run while the gRPC server does."""

    @asynccontextmanager
    async def open_services(settings: SettingsT) -> AsyncIterator[list[Service]]:
        credentials = ensure_service_credentials(
            settings.cert_dir, settings.identity, create=settings.create_certs
        )
        async with serving_mcp(build, settings, credentials) as url:
            _log.info(
                "mcp serving",
                url=url,
                anonymous_requests="configured key"
                if settings.configured_key_serves_anonymous()
                else "refused (401)",
            )
            yield []  # gRPC: health (and reflection) only

    return open_services
