"""builder-mcp's tools. Each one calls the api service through its generated stub.

Validation of a manifest is local (the same typed parse the api service runs), so an
editor can check amp.yaml without credentials; everything else is the public API, and an
RPC the api does not serve yet comes back as the tool's error, naming the issue.
"""

from __future__ import annotations

from typing import Any

import grpc
from ampmesh.platform.v1 import (
    installations_pb2,
    installations_pb2_grpc,
    integrations_pb2,
    integrations_pb2_grpc,
    operations_pb2,
    operations_pb2_grpc,
    providers_pb2,
    providers_pb2_grpc,
)
from google.protobuf import json_format
from google.protobuf.message import Message
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from services.domain.manifest import ManifestError, parse_manifest
from services.runtime.mcp_http import McpSettings
from services.runtime.mcp_service import McpMesh


class ManifestCheck(BaseModel):
    """The outcome of validating an amp.yaml manifest."""

    valid: bool
    integrations: list[str]
    issues: list[str]


class ApiResult(BaseModel):
    """A public API response, as the REST API would print it."""

    result: dict[str, Any]


def _json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


class ApiError(ToolError):
    """An api call that failed: the tool answers with the api's own message."""


async def _call(rpc: Any, request: Message, metadata: list[tuple[str, str]]) -> Message:
    try:
        response: Message = await rpc(request, metadata=metadata)
    except grpc.aio.AioRpcError as error:
        raise ApiError(f"{error.code().name}: {error.details()}") from None
    return response


def build_server(mesh: McpMesh[McpSettings]) -> MCPServer:
    """The builder-mcp MCP server, calling the api service over `mesh.api`."""
    server = MCPServer("ampmesh-builder", instructions="Build integrations on ampmesh.")
    providers = providers_pb2_grpc.ProviderServiceStub(mesh.api)
    integrations = integrations_pb2_grpc.IntegrationServiceStub(mesh.api)
    installations = installations_pb2_grpc.InstallationServiceStub(mesh.api)
    operations = operations_pb2_grpc.OperationServiceStub(mesh.api)

    @server.tool()
    async def validate_manifest(source_yaml: str) -> ManifestCheck:
        """Check an amp.yaml manifest: every problem names integration, field and line."""
        try:
            manifest = parse_manifest(source_yaml)
        except ManifestError as error:
            return ManifestCheck(
                valid=False, integrations=[], issues=[str(i) for i in error.issues]
            )
        return ManifestCheck(
            valid=True, integrations=[i.name for i in manifest.integrations], issues=[]
        )

    @server.tool()
    async def list_providers() -> ApiResult:
        """The providers catalog: every SaaS provider ampmesh can connect to."""
        response = await _call(
            providers.ListProviders, providers_pb2.ListProvidersRequest(), mesh.api_metadata()
        )
        return ApiResult(result=_json(response))

    @server.tool()
    async def deploy_manifest(
        project: str, source_yaml: str, destructive: bool = False
    ) -> ApiResult:
        """Deploy an amp.yaml to a project (creates or updates its integrations)."""
        request = integrations_pb2.BatchUpsertIntegrationsRequest(
            project_id_or_name=project,
            destructive=destructive,
            source=integrations_pb2.IntegrationSource(source_yaml=source_yaml),
        )
        response = await _call(integrations.BatchUpsertIntegrations, request, mesh.api_metadata())
        return ApiResult(result=_json(response))

    @server.tool()
    async def list_installations(project: str) -> ApiResult:
        """The installations of every integration of a project."""
        request = installations_pb2.ListInstallationsForProjectRequest(project_id_or_name=project)
        response = await _call(
            installations.ListInstallationsForProject, request, mesh.api_metadata()
        )
        return ApiResult(result=_json(response))

    @server.tool()
    async def list_operations(
        project: str, integration_id: str, installation_id: str, page_token: str = ""
    ) -> ApiResult:
        """One page of an installation's operations (reads, writes), newest first."""
        request = operations_pb2.ListOperationsRequest(
            project_id_or_name=project,
            integration_id=integration_id,
            installation_id=installation_id,
            page_token=page_token,
        )
        response = await _call(operations.ListOperations, request, mesh.api_metadata())
        return ApiResult(result=_json(response))

    return server
