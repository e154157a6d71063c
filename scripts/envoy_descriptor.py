"""Derive what Envoy loads from the contracts' descriptor set: its copy of the descriptor
set, and the per-method facts the edge applies on top of the transcoder.

Our contracts declare `response_body` on lists the reference returns as a bare JSON array
(that is the REST shape we promise), but Envoy 1.40's grpc_json_transcoder refuses
`response_body` on anything but a google.api.HttpBody field and will not start. So Envoy
loads a copy with `response_body` cleared, and the edge unwraps those responses itself.
Likewise the reference answers 201 or 204 where the transcoder answers 200, and the OAuth
callback must tolerate query parameters we do not declare: the contracts say so with the
`(ampmesh.edge.v1.rest)` method option.

    python scripts/envoy_descriptor.py gen/ampmesh.binpb gen/envoy
        writes gen/envoy/ampmesh.binpb and gen/envoy/routes.json

routes.json maps each transcoded gRPC path that needs the edge's help to its facts:

    "/ampmesh.platform.v1.ProjectService/ListProjects": {
      "rest": ["GET /v1/projects"],   # the method's REST bindings
      "unwrap": "projects"            # JSON name of the field that is the whole body
    }
    ... "successStatus": 201          # HTTP status of a success (204: no body)
    ... "ignoreUnknownQueryParameters": true
    ... "bodyField": "project"        # the request field the REST body is bound to, so the
                                      # edge can name a body error as the client wrote it
    ... "bodyShape": {...}            # where the body must hold lists and maps (below)

bodyShape exists because the transcoder is lenient where the contract is not: it reads
`"scopes": "AAA"` as `["AAA"]`, drops the null of `[null]` (an empty list, which for an
API key meant every scope), and writes a corrupt message for an object where a
map<string, string> value belongs. The edge (request_guard.lua) checks those places in the
JSON before the transcoder sees it. The shape names only the fields that are, or lead to,
a list or a map; each as {"kind": "list"|"map"|"object", "items": "scalar"|"any"|<shape>}
(items: what each element or value must be; "any" for google.protobuf.Struct, Value,
ListValue and Any, whose JSON is free), under its JSON name, with "proto": its proto
name where that differs (the transcoder takes both).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ampmesh.edge.v1 import options_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2
from google.rpc import (  # type: ignore[import-untyped, unused-ignore]
    error_details_pb2,
    status_pb2,
)

EMPTY = ".google.protobuf.Empty"
# protoc's .pyi types an extension as a plain FieldDescriptor, which Extensions[] refuses.
REST: Any = options_pb2.rest


class ContractError(SystemExit):
    """The contracts ask the edge for something it cannot do; the message says where."""


def _clear_response_body(rule: http_pb2.HttpRule) -> str:
    field = rule.response_body
    rule.response_body = ""
    for extra in rule.additional_bindings:
        _clear_response_body(extra)
    return field


def _bindings(rule: http_pb2.HttpRule) -> list[str]:
    """The rule's REST bindings as "VERB /path/{template}"."""
    kind = rule.WhichOneof("pattern")
    found = []
    if kind == "custom":
        found.append(f"{rule.custom.kind.upper()} {rule.custom.path}")
    elif kind:
        found.append(f"{kind.upper()} {getattr(rule, kind)}")
    for extra in rule.additional_bindings:
        found.extend(_bindings(extra))
    return found


def _json_name(message: descriptor_pb2.DescriptorProto, field_name: str) -> str:
    for field in message.field:
        if field.name == field_name:
            return field.json_name
    raise ContractError(f"{message.name} has no field {field_name!r} named by response_body")


def _edge_facts(
    path: str, method: descriptor_pb2.MethodDescriptorProto, unwrap: str
) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if unwrap:
        facts["unwrap"] = unwrap
    if method.options.HasExtension(REST):
        rest = method.options.Extensions[REST]
        status = rest.success_status
        if status:
            if not 200 <= status <= 299:
                raise ContractError(f"{path}: success_status {status} is not a 2xx status")
            if status == 204 and (unwrap or method.output_type != EMPTY):
                raise ContractError(
                    f"{path}: success_status 204 drops the body, so the method must "
                    "return google.protobuf.Empty"
                )
            if status != 200:
                facts["successStatus"] = status
        if rest.ignore_unknown_query_parameters:
            facts["ignoreUnknownQueryParameters"] = True
    return facts


# Messages whose JSON form is free (any value) or a scalar (a string or a number).
_FREE_JSON = frozenset(
    f".google.protobuf.{name}" for name in ("Struct", "Value", "ListValue", "Any")
)
_SCALAR_JSON = frozenset(
    f".google.protobuf.{name}"
    for name in (
        "Timestamp", "Duration", "FieldMask", "Empty", "DoubleValue", "FloatValue",
        "Int64Value", "UInt64Value", "Int32Value", "UInt32Value", "BoolValue",
        "StringValue", "BytesValue",
    )
)  # fmt: skip
# Deeper than any body of ours; stops a message that contains itself.
_MAX_SHAPE_DEPTH = 8

Messages = dict[str, descriptor_pb2.DescriptorProto]


def _all_messages(files: descriptor_pb2.FileDescriptorSet) -> Messages:
    """Every message of the set, nested ones (map entries) included, by full name."""
    found: Messages = {}

    def add(prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{message.name}"
        found[name] = message
        for nested in message.nested_type:
            add(name, nested)

    for file in files.file:
        for message in file.message_type:
            add(f".{file.package}" if file.package else "", message)
    return found


def _element(type_name: str, messages: Messages, depth: int) -> Any:
    """What one element of a list (or value of a map) of this field type must be."""
    if not type_name or type_name in _SCALAR_JSON or type_name not in messages:
        return "scalar"  # scalars and enums (an enum's type name is not a message)
    if type_name in _FREE_JSON:
        return "any"
    return _shape(messages[type_name], messages, depth + 1) or {}


def _shape(message: descriptor_pb2.DescriptorProto, messages: Messages, depth: int = 0) -> Any:
    """The bodyShape of a message: its fields that are, or lead to, a list or a map."""
    if depth > _MAX_SHAPE_DEPTH:
        return {}
    shape: dict[str, Any] = {}
    repeated = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    for field in message.field:
        entry = messages.get(field.type_name)
        check: dict[str, Any] | None = None
        if field.label == repeated and entry is not None and entry.options.map_entry:
            value = next(f for f in entry.field if f.name == "value")
            check = {"kind": "map", "items": _element(value.type_name, messages, depth)}
        elif field.label == repeated:
            check = {"kind": "list", "items": _element(field.type_name, messages, depth)}
        elif entry is not None and field.type_name not in _FREE_JSON | _SCALAR_JSON:
            inner = _shape(entry, messages, depth + 1)
            if inner:
                check = {"kind": "object", "items": inner}
        if check is not None:
            if field.name != field.json_name:
                check["proto"] = field.name
            shape[field.json_name] = check
    return shape


def _body_shape(method: descriptor_pb2.MethodDescriptorProto, body: str, messages: Messages) -> Any:
    request = messages[method.input_type]
    if body == "*":
        return _shape(request, messages)
    field = next((f for f in request.field if f.name == body), None)
    if field is None or field.type_name not in messages:
        return {}
    return _shape(messages[field.type_name], messages)


def derive(files: descriptor_pb2.FileDescriptorSet) -> dict[str, dict[str, Any]]:
    """Clear response_body in place; return {"/pkg.Service/Method": edge facts}."""
    messages = _all_messages(files)
    routes: dict[str, dict[str, Any]] = {}
    for file in files.file:
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                rest = _bindings(rule)
                field = _clear_response_body(rule)
                path = f"/{file.package}.{service.name}/{method.name}"
                unwrap = _json_name(messages[method.output_type], field) if field else ""
                facts = _edge_facts(path, method, unwrap)
                if rule.body not in ("", "*"):
                    facts["bodyField"] = rule.body
                if rule.body:
                    shape = _body_shape(method, rule.body, messages)
                    if shape:
                        facts["bodyShape"] = shape
                if facts:
                    routes[path] = {"rest": rest, **facts}
    return routes


def add_error_details(files: descriptor_pb2.FileDescriptorSet) -> None:
    """Add google.rpc.Status and its detail messages when the contracts do not import them.

    Services attach BadRequest, ErrorInfo, ResourceInfo, ... to their errors; a detail
    whose type the transcoder's descriptor set lacks makes it give up on the whole error
    (an empty body, the grpc-status headers left as they were), so Envoy must know them.
    """
    present = {file.name for file in files.file}
    for module in (status_pb2, error_details_pb2):
        if module.DESCRIPTOR.name not in present:
            module.DESCRIPTOR.CopyToProto(files.file.add())


def main(source: str, out_dir: str) -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(Path(source).read_bytes())
    routes = derive(files)
    add_error_details(files)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # deterministic=True: the bytes depend on the contracts only, so CI can check drift.
    (out / "ampmesh.binpb").write_bytes(files.SerializeToString(deterministic=True))
    (out / "routes.json").write_text(json.dumps(routes, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
