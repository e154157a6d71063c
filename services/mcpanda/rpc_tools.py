"""One MCP tool per RPC: its name, description and input schema from the contract, and a
call through the RPC's generated stub.

Public RPCs (the api's route groups) are called over the api channel with the MCP
request's credential (`mesh.api_metadata()`), so a tool's reach is exactly the REST API's.
Operator RPCs (messenger, scribe, metrics, the sandbox) are called over mTLS as mcpanda;
those naming a project first ask the api whether the caller may act on it, and the
sandbox's need a credential the api accepts.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import grpc
from ampmesh.scribe.v1 import scribe_pb2
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from mcp.server.mcpserver.exceptions import ToolError

from services.mcpanda.schema import message_schema
from services.runtime.errors import status_from_error, unpack_details

# How long one RPC a tool makes may take; the server's own deadlines are shorter.
CALL_TIMEOUT = 60.0
# Tool names: what MCP clients accept everywhere (the spec allows up to 128 characters,
# some clients only 64).
MAX_NAME = 64

# Who may call: the api decides (public RPCs), the api must let the caller see the named
# project (project-scoped operator RPCs), or any credential the api accepts (the sandbox).
Scope = Literal["api", "project", "credential"]


def snake(name: str) -> str:
    """CreateProject -> create_project; GetHydratedRevision -> get_hydrated_revision."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def http_binding(method: MethodDescriptor) -> str:
    """The RPC's REST binding, e.g. "POST /v1/projects"; empty when it has none."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return ""
    rule = options.Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern") or ""
    return f"{verb.upper()} {getattr(rule, verb)}" if verb and verb != "custom" else ""


# Descriptor sets that may carry the contract's comments, next to the generated package:
# a docs set with source info, else the one Envoy loads (which gen.sh builds without).
DESCRIPTOR_SETS = ("ampmesh.docs.binpb", "ampmesh.binpb")


def comments_from(path: Path) -> dict[str, str]:
    """Leading comments of the RPCs in a descriptor set, by "package.Service.Method";
    empty when the set was built without source info."""
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    found: dict[str, str] = {}
    for file in files.file:
        for location in file.source_code_info.location:
            # path [6, s, 2, m]: service s's method m.
            parts = list(location.path)
            if len(parts) == 4 and parts[0] == 6 and parts[2] == 2 and location.leading_comments:
                service = file.service[parts[1]]
                method = service.method[parts[3]]
                text = " ".join(location.leading_comments.split())
                found[f"{file.package}.{service.name}.{method.name}"] = text
    return found


@cache
def _comments() -> dict[str, str]:
    import ampmesh

    for root in ampmesh.__path__:
        for name in DESCRIPTOR_SETS:
            path = Path(root).parent / name
            if path.is_file():
                found = comments_from(path)
                if found:
                    return found
    return {}


def describe(method: MethodDescriptor, comments: Mapping[str, str] | None = None) -> str:
    """The RPC's proto comment (when the contract's source info is at hand), its REST
    binding, and its request and response messages."""
    parts = []
    comment = (_comments() if comments is None else comments).get(method.full_name, "")
    if comment:
        parts.append(comment)
    binding = http_binding(method)
    call = f"{method.containing_service.full_name}/{method.name}"
    parts.append(f"RPC {call}" + (f" (REST: {binding})" if binding else "") + ".")
    parts.append(
        f"Arguments: {method.input_type.full_name} as JSON; returns {method.output_type.full_name}."
    )
    return " ".join(parts)


def _stub_method(method: MethodDescriptor, channel: grpc.aio.Channel) -> Any:
    service = method.containing_service
    module = importlib.import_module(
        service.file.name.removesuffix(".proto").replace("/", ".") + "_pb2_grpc"
    )
    stub = getattr(module, f"{service.name}Stub")(channel)
    return getattr(stub, method.name)


def request_message(method: MethodDescriptor, arguments: dict[str, Any]) -> Message:
    """The request arguments describe, or a ToolError naming what is wrong."""
    cls = message_factory.GetMessageClass(method.input_type)
    try:
        return json_format.ParseDict(arguments, cls(), ignore_unknown_fields=False)
    except json_format.ParseError as error:
        raise ToolError(f"bad arguments for {method.name}: {error}") from None


def response_json(response: Message) -> dict[str, Any]:
    """A response as its REST JSON; an HttpBody as its content type and text (or base64)."""
    if response.DESCRIPTOR.full_name == "google.api.HttpBody":
        content_type = getattr(response, "content_type", "")
        data: bytes = getattr(response, "data", b"")
        try:
            return {"contentType": content_type, "text": data.decode()}
        except UnicodeDecodeError:
            return {"contentType": content_type, "base64": base64.b64encode(data).decode()}
    return json_format.MessageToDict(response)


class RpcFailed(ToolError):
    """An RPC answered a status other than OK: its code, message and details, as text
    (what an MCP client shows) and as data."""

    def __init__(self, method: str, error: grpc.aio.AioRpcError) -> None:
        self.code = error.code().name
        self.message = error.details() or ""
        self.details: list[dict[str, Any]] = []
        status = status_from_error(error)
        if status is not None:
            for detail in unpack_details(status):
                if detail.DESCRIPTOR.name == "DebugInfo":
                    continue  # stack traces are for the server's logs
                entry = json_format.MessageToDict(detail)
                entry["@type"] = detail.DESCRIPTOR.full_name
                self.details.append(entry)
        super().__init__(self._text(method))

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    def _text(self, method: str) -> str:
        lines = [f"{method} failed: {self.code}: {self.message}"]
        for detail in self.details:
            for violation in detail.get("fieldViolations", []):
                lines.append(
                    f"field violation: {violation.get('field', '')}: "
                    f"{violation.get('description', '')}"
                )
        if self.details:
            lines.append("details: " + json.dumps(self.details, sort_keys=True))
        return "\n".join(lines)


async def call_rpc(
    method: MethodDescriptor,
    channel: grpc.aio.Channel,
    request: Message,
    metadata: list[tuple[str, str]] | None = None,
) -> Message:
    """One call through the generated stub; a failure raises RpcFailed."""
    try:
        response: Message = await _stub_method(method, channel)(
            request, metadata=metadata or None, timeout=CALL_TIMEOUT
        )
    except grpc.aio.AioRpcError as error:
        raise RpcFailed(method.name, error) from None
    return response


@dataclass(frozen=True)
class RpcTool:
    """An RPC offered as an MCP tool."""

    name: str
    method: MethodDescriptor
    scope: Scope
    # The channel to call it over (opened on first use; a missing address raises).
    channel: Callable[[], grpc.aio.Channel]

    @property
    def description(self) -> str:
        notes = {
            "api": "",
            "project": " projectId (id or name) is required: the api is asked first whether "
            "the caller may act on that project.",
            "credential": " Needs a credential the api accepts.",
        }
        return describe(self.method) + notes[self.scope]

    @property
    def input_schema(self) -> dict[str, Any]:
        schema = message_schema(self.method.input_type)
        if self.scope == "project":
            # The check needs a project: an unscoped operator call would reach every one.
            schema["required"] = sorted({*schema.get("required", []), "projectId"})
        return schema


# What a project-scoped tool asks the api before calling: the project's id, if the
# caller may act on it (else the api's own refusal is raised).
ProjectCheck = Callable[[str], Awaitable[str]]
CredentialCheck = Callable[[], Awaitable[None]]


async def run_tool(
    tool: RpcTool,
    arguments: dict[str, Any],
    *,
    metadata: list[tuple[str, str]],
    project_check: ProjectCheck,
    credential_check: CredentialCheck,
) -> dict[str, Any]:
    """Call tool's RPC with arguments (its request as JSON); the response as JSON."""
    request = request_message(tool.method, arguments)
    if tool.scope == "project":
        wanted = str(getattr(request, "project_id", ""))
        if not wanted:
            raise ToolError(f"{tool.name}: projectId is required")
        # A name is resolved too: the operator services know projects by id only.
        request.project_id = await project_check(wanted)  # type: ignore[attr-defined]
        if tool.method.full_name == RETRY_DEAD_LETTERS and list(getattr(request, "ids", ())):
            await _own_dead_letters(tool.channel(), request)
    elif tool.scope == "credential":
        await credential_check()
    channel = tool.channel()
    response = await call_rpc(
        tool.method, channel, request, metadata if tool.scope == "api" else None
    )
    return response_json(response)


RETRY_DEAD_LETTERS = "ampmesh.scribe.v1.ScribeService.RetryDeadLetters"


async def _own_dead_letters(channel: grpc.aio.Channel, request: Any) -> None:
    """Scribe retries dead letters by id across projects (ids and a project are exclusive
    there): each id must be one of the checked project's, which then leaves the request."""
    service = scribe_pb2.DESCRIPTOR.services_by_name["ScribeService"]
    listing = scribe_pb2.ListDeadLettersRequest(project_id=request.project_id, page_size=500)
    owned: set[str] = set()
    while True:
        page: Any = await call_rpc(service.methods_by_name["ListDeadLetters"], channel, listing)
        owned.update(letter.id for letter in page.dead_letters)
        if not page.next_page_token:
            break
        listing.page_token = page.next_page_token
    foreign = [i for i in request.ids if i not in owned]
    if foreign:
        raise ToolError(
            f"ids: {', '.join(foreign[:5])} are not dead letters of project {request.project_id}"
        )
    request.ClearField("project_id")


def tools_of(
    prefix: str,
    services: tuple[ServiceDescriptor, ...],
    scope: Scope,
    channel: Callable[[], grpc.aio.Channel],
    *,
    skip: frozenset[str] = frozenset(),
) -> list[RpcTool]:
    """A tool per method of services (but those in skip, by full method name)."""
    tools = []
    for service in services:
        for method in service.methods:
            if method.full_name in skip or service.full_name in skip:
                continue
            name = f"{prefix}_{snake(method.name)}"
            if len(name) > MAX_NAME:
                raise ValueError(f"tool name {name!r} is longer than {MAX_NAME} characters")
            tools.append(RpcTool(name=name, method=method, scope=scope, channel=channel))
    return tools
