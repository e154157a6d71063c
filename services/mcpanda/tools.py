"""mcpanda's tools: list every public RPC, and call any of them with a JSON request.

Calls go through the generated stub of the RPC's service (found from the contract's
descriptor), so a test agent exercises exactly what a client would. The sandbox and
delivery tools arrive with the issues that build those parts (#5, #6).
"""

from __future__ import annotations

import importlib
from typing import Any

import grpc
from google.api import annotations_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from services.domain.routes import ROUTE_GROUPS
from services.runtime.mcp_http import McpSettings
from services.runtime.mcp_service import McpMesh


class Rpc(BaseModel):
    """One public RPC: its full name, route group and REST binding."""

    method: str
    group: str
    http: str


class RpcList(BaseModel):
    """Every public RPC ampmesh declares."""

    rpcs: list[Rpc]


class RpcResult(BaseModel):
    """An RPC's response, printed as its REST JSON."""

    response: dict[str, Any]


def _http(method: MethodDescriptor) -> str:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return ""
    rule = options.Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern") or ""
    return f"{verb.upper()} {getattr(rule, verb)}" if verb and verb != "custom" else ""


def _methods() -> dict[str, tuple[str, MethodDescriptor]]:
    return {
        f"{service.full_name}/{method.name}": (group, method)
        for group, services in ROUTE_GROUPS.items()
        for service in services
        for method in service.methods
    }


def build_server(mesh: McpMesh[McpSettings]) -> MCPServer:
    """The mcpanda MCP server, calling the api service over `mesh.api`."""
    server = MCPServer("ampmesh-mcpanda", instructions="Drive ampmesh's public API in tests.")
    methods = _methods()

    @server.tool()
    async def list_rpcs() -> RpcList:
        """Every public RPC, e.g. ampmesh.platform.v1.ProjectService/CreateProject."""
        return RpcList(
            rpcs=[
                Rpc(method=name, group=group, http=_http(method))
                for name, (group, method) in sorted(methods.items())
            ]
        )

    @server.tool()
    async def call_rpc(method: str, request: dict[str, Any]) -> RpcResult:
        """Call one public RPC (as named by list_rpcs) with its request as REST JSON."""
        if method not in methods:
            raise ToolError(f"unknown RPC {method!r}; list_rpcs names them all")
        _, descriptor = methods[method]
        service = descriptor.containing_service
        module = importlib.import_module(
            service.file.name.removesuffix(".proto").replace("/", ".") + "_pb2_grpc"
        )
        stub = getattr(module, f"{service.name}Stub")(mesh.api)
        try:
            message = json_format.ParseDict(
                request,
                message_factory.GetMessageClass(descriptor.input_type)(),
                ignore_unknown_fields=False,
            )
        except json_format.ParseError as error:
            raise ToolError(f"bad request for {method}: {error}") from None
        try:
            response = await getattr(stub, descriptor.name)(message, metadata=mesh.api_metadata())
        except grpc.aio.AioRpcError as error:
            raise ToolError(f"{error.code().name}: {error.details()}") from None
        return RpcResult(response=json_format.MessageToDict(response))

    return server
