"""mcpanda's tools: every public RPC as its own tool, the operator-side services' RPCs
(sandbox, messenger, scribe, metrics), Temporal histories, and scenario tools that string
them together (connect a sandbox account, backfill to a receiver, wait for an operation).

The generated tools are not Python functions: their names, descriptions and JSON Schemas
come from the contract's descriptors, so `McpandaServer` lists them beside the decorated
tools and dispatches their calls itself. `list_rpcs` and `call_rpc` remain for agents that
prefer one tool taking any RPC by its full name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
from ampmesh.messenger.v1 import messenger_pb2
from ampmesh.metrics.v1 import metrics_pb2
from ampmesh.platform.v1 import projects_pb2
from ampmesh.sandbox.v1 import sandbox_pb2
from ampmesh.scribe.v1 import scribe_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult, TextContent
from mcp_types import Tool as MCPTool
from pydantic import BaseModel

from services.domain.routes import NOT_BUILT_YET, ROUTE_GROUPS
from services.mcpanda import scenarios
from services.mcpanda.rpc_tools import (
    RpcFailed,
    RpcTool,
    Scope,
    call_rpc,
    http_binding,
    request_message,
    response_json,
    run_tool,
    tools_of,
)
from services.mcpanda.settings import McpandaSettings
from services.runtime.channels import mesh_channel
from services.runtime.mcp_service import McpMesh

# Public RPCs no MCP client can use meaningfully: the providers' change webhooks take the
# provider's raw signed body on the subscribe host (no API key), and services the api
# answers UNIMPLEMENTED for (NOT_BUILT_YET) would only ever fail.
SKIPPED_GROUPS = frozenset({"subscribe"})

# The operator-side services: tool prefix, contract, setting with its address, the
# identity its certificate names, and who may call through mcpanda.
_OPERATOR: tuple[tuple[str, ServiceDescriptor, str, str], ...] = (
    (
        "sandbox",
        sandbox_pb2.DESCRIPTOR.services_by_name["SandboxControlService"],
        "sandbox_address",
        "sandbox",
    ),
    (
        "messenger",
        messenger_pb2.DESCRIPTOR.services_by_name["MessengerService"],
        "messenger_address",
        "messenger",
    ),
    (
        "scribe",
        scribe_pb2.DESCRIPTOR.services_by_name["ScribeService"],
        "scribe_address",
        "scribe",
    ),
    (
        "metrics",
        metrics_pb2.DESCRIPTOR.services_by_name["MetricsService"],
        "metrics_address",
        "metrics",
    ),
)


class Rpc(BaseModel):
    """One public RPC: its full name, route group, REST binding and tool name."""

    method: str
    group: str
    http: str
    tool: str


class RpcList(BaseModel):
    """Every public RPC ampmesh declares that mcpanda offers."""

    rpcs: list[Rpc]


class RpcResult(BaseModel):
    """An RPC's response, printed as its REST JSON."""

    response: dict[str, Any]


class Mesh:
    """What mcpanda's tools reach: the api (as the MCP caller), the operator-side
    services (as mcpanda, over mTLS) and Temporal. Channels open on first use."""

    def __init__(self, mesh: McpMesh[McpandaSettings]) -> None:
        self.mesh = mesh
        self.settings = mesh.settings
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel_to(self, setting: str, identity: str) -> Callable[[], grpc.aio.Channel]:
        def open_channel() -> grpc.aio.Channel:
            if setting not in self._channels:
                address = str(getattr(self.settings, setting))
                if not address:
                    variable = self.settings.env_var(setting)
                    raise ToolError(f"{identity} is not configured: mcpanda has no {variable}")
                self._channels[setting] = mesh_channel(
                    address, self.mesh.credentials, server_identity=identity
                )
            return self._channels[setting]

        return open_channel

    async def api(self, method: MethodDescriptor, request: dict[str, Any]) -> dict[str, Any]:
        """A public RPC, as the MCP caller; the response's REST JSON."""
        message = request_message(method, request)
        response = await call_rpc(method, self.mesh.api, message, self.mesh.api_metadata())
        return response_json(response)

    async def operator(
        self, prefix: str, method: MethodDescriptor, request: dict[str, Any]
    ) -> dict[str, Any]:
        """An operator-side RPC, as mcpanda (the caller's right is checked before)."""
        setting, identity = next((s, i) for p, _, s, i in _OPERATOR if p == prefix)
        message = request_message(method, request)
        response = await call_rpc(method, self.channel_to(setting, identity)(), message)
        return response_json(response)

    async def project_id(self, project: str) -> str:
        """The id of project (id or name) if the caller may act on it; else the api's
        refusal (NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED) as the tool's error."""
        method = projects_pb2.DESCRIPTOR.services_by_name["ProjectService"].methods_by_name[
            "GetProject"
        ]
        got = await self.api(method, {"projectIdOrName": project})
        return str(got["id"])

    async def check_credential(self) -> None:
        """Refuses a caller whose credential the api does not accept."""
        method = projects_pb2.DESCRIPTOR.services_by_name["ProjectService"].methods_by_name[
            "ListProjects"
        ]
        await self.api(method, {})


def _public_methods() -> dict[str, tuple[str, MethodDescriptor]]:
    """Every public RPC by full name, those without a tool too (call_rpc reaches them)."""
    return {
        f"{service.full_name}/{method.name}": (group, method)
        for group, services in ROUTE_GROUPS.items()
        for service in services
        for method in service.methods
    }


def generated_tools(mesh: Mesh) -> dict[str, RpcTool]:
    """Every public RPC (but the skipped) and every operator RPC, by tool name."""
    tools: list[RpcTool] = []
    api: Callable[[], grpc.aio.Channel] = lambda: mesh.mesh.api  # noqa: E731
    for group, services in ROUTE_GROUPS.items():
        if group in SKIPPED_GROUPS:
            continue
        tools += tools_of(group, services, "api", api, skip=frozenset(NOT_BUILT_YET))
    for prefix, service, setting, identity in _OPERATOR:
        scope: Scope = "credential" if prefix == "sandbox" else "project"
        tools += tools_of(prefix, (service,), scope, mesh.channel_to(setting, identity))
    by_name: dict[str, RpcTool] = {}
    for tool in tools:
        if tool.name in by_name:
            raise ValueError(f"two RPCs would be tool {tool.name!r}")
        by_name[tool.name] = tool
    return by_name


class McpandaServer(MCPServer):
    """An MCP server whose RPC tools are listed and called from their descriptors."""

    def __init__(self, mesh: Mesh, rpc_tools: dict[str, RpcTool], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._mesh = mesh
        self._rpc_tools = rpc_tools
        # Built once: the schemas are the contract's, fixed for the process's life.
        self._listed = {
            t.name: MCPTool(name=t.name, description=t.description, input_schema=t.input_schema)
            for t in rpc_tools.values()
        }

    async def list_tools(self) -> list[MCPTool]:
        return [*await super().list_tools(), *self._listed.values()]

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        listed = self._listed.get(name)
        return listed.input_schema if listed is not None else super()._tool_input_schema(name)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = self._rpc_tools.get(name)
        if tool is None:
            try:
                return await super().call_tool(name, arguments, context)
            except ToolError as error:
                failed = error if isinstance(error, RpcFailed) else error.__cause__
                if isinstance(failed, RpcFailed):
                    return _failed(failed)
                raise
        try:
            response = await run_tool(
                tool,
                arguments,
                metadata=self._mesh.mesh.api_metadata(),
                project_check=self._mesh.project_id,
                credential_check=self._mesh.check_credential,
            )
        except RpcFailed as error:
            return _failed(error)
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(response))],
            structured_content=response,
        )


def _failed(error: RpcFailed) -> CallToolResult:
    """An RPC's failure as an MCP tool error: text for people, the status as data."""
    return CallToolResult(
        content=[TextContent(type="text", text=str(error))],
        structured_content=error.as_json(),
        is_error=True,
    )


def build_server(mcp_mesh: McpMesh[McpandaSettings]) -> MCPServer:
    """The mcpanda MCP server."""
    mesh = Mesh(mcp_mesh)
    rpc_tools = generated_tools(mesh)
    server = McpandaServer(
        mesh,
        rpc_tools,
        name="ampmesh-mcpanda",
        instructions=(
            "Drive ampmesh in tests: every public RPC as a tool (platform_*, read_*, "
            "write_*, search_*), the provider sandbox (sandbox_*), deliveries (messenger_*), "
            "ingestion and dead letters (scribe_*), metrics (metrics_*), Temporal "
            "(temporal_*), and scenario_* tools that chain them. Generated tools take "
            "the request message's REST JSON (camelCase names); scenario_* and temporal_* "
            "tools take snake_case arguments."
        ),
    )
    methods = _public_methods()
    tool_of = {
        f"{t.method.containing_service.full_name}/{t.method.name}": n for n, t in rpc_tools.items()
    }

    @server.tool()
    async def list_rpcs() -> RpcList:
        """Every public RPC, e.g. ampmesh.platform.v1.ProjectService/CreateProject, with
        its REST binding and the tool that calls it."""
        return RpcList(
            rpcs=[
                Rpc(method=name, group=group, http=http_binding(method), tool=tool_of.get(name, ""))
                for name, (group, method) in sorted(methods.items())
            ]
        )

    @server.tool()
    async def call_rpc(method: str, request: dict[str, Any]) -> RpcResult:
        """Call one public RPC (as named by list_rpcs) with its request as REST JSON."""
        if method not in methods:
            raise ToolError(f"unknown RPC {method!r}; list_rpcs names them all")
        _, descriptor = methods[method]
        return RpcResult(response=await mesh.api(descriptor, request))

    scenarios.register(server, mesh)
    return server
