"""JSON Schemas of request messages, as MCP tools' input schemas.

A tool's arguments are the request message's proto3 JSON (REST camelCase names), so the
schema follows protobuf's JSON mapping: enums are their names, Timestamp is an RFC 3339
string, Duration a string such as "1.5s", FieldMask a comma-separated string of paths,
Struct/Value anything. Output-only fields are left out: a client never sets them.

Every schema has one `type` (or an anyOf of single types): clients that map tool schemas
onto a single-type dialect (Gemini's OpenAPI subset) refuse a type list, and the MCP
inspector's --strict check warns of it.
"""

from __future__ import annotations

from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

# How deep nested messages are spelled out. Recursive messages (a filter of filters)
# would otherwise never end; past this depth a message is "any object".
MAX_DEPTH = 8

_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}
_INT32 = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_SFIXED32,
}

_WRAPPERS: dict[str, dict[str, Any]] = {
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "contentEncoding": "base64"},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.DoubleValue": {"type": "number"},
    "google.protobuf.FloatValue": {"type": "number"},
    "google.protobuf.Int32Value": {"type": "integer"},
    "google.protobuf.UInt32Value": {"type": "integer"},
    "google.protobuf.Int64Value": {"type": "integer"},
    "google.protobuf.UInt64Value": {"type": "integer"},
}

_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339, e.g. 2026-01-31T12:00:00Z",
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]+)?s$",
        "description": 'seconds with an "s" suffix, e.g. "1.5s"',
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "comma-separated camelCase field paths, e.g. name,metadata.url",
    },
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {
        "anyOf": [{"type": t} for t in ("string", "number", "boolean", "object", "array", "null")]
    },
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    **_WRAPPERS,
}


def _behaviors(field: FieldDescriptor) -> set[int]:
    options = field.GetOptions()
    return set(options.Extensions[field_behavior_pb2.field_behavior])


def _scalar(field: FieldDescriptor, depth: int, path: tuple[str, ...]) -> dict[str, Any]:
    kind = field.type
    if field.message_type is not None:
        return message_schema(field.message_type, depth + 1, path)
    if field.enum_type is not None:
        return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
    if kind == FieldDescriptor.TYPE_STRING:
        return {"type": "string"}
    if kind == FieldDescriptor.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    if kind == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if kind in _INT32:
        return {"type": "integer"}
    if kind in _INT64:
        # proto3 JSON prints them as strings, but parses numbers too: a number is what a
        # client sends, and the counts and seeds here stay far below 2**53.
        return {"type": "integer"}
    return {"type": "number"}  # float, double


def field_schema(field: FieldDescriptor, depth: int, path: tuple[str, ...]) -> dict[str, Any]:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        value = message.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _scalar(value, depth, path)}
    schema = _scalar(field, depth, path)
    if field.is_repeated:
        return {"type": "array", "items": schema}
    return schema


def message_schema(
    message: Descriptor, depth: int = 0, path: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The JSON Schema of message's proto3 JSON form, as a client sends it."""
    if message.full_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[message.full_name])
    if message.full_name in path or depth > MAX_DEPTH:
        return {"type": "object", "description": f"{message.name} (nested further)"}
    inner = (*path, message.full_name)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in message.fields:
        behaviors = _behaviors(field)
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            continue
        properties[field.json_name] = field_schema(field, depth, inner)
        if field_behavior_pb2.REQUIRED in behaviors:
            required.append(field.json_name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    # ParseDict refuses unknown names too; saying so lets a client catch a typo first.
    schema["additionalProperties"] = False
    oneofs = [o for o in message.oneofs if not (len(o.fields) == 1 and o.name.startswith("_"))]
    if oneofs:
        schema["description"] = "; ".join(
            f"at most one of {', '.join(f.json_name for f in o.fields)}" for o in oneofs
        )
    return schema
