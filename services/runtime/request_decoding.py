"""Requests that cannot become a message, or carry what no field may hold, are refused
with INVALID_ARGUMENT naming the field, before any handler runs.

grpc.aio deserializes a request before any interceptor sees it, and answers a
deserializer's exception with UNKNOWN "Unexpected <class 'DecodeError'>: …": exception
text, a 500 over REST, and no log line of ours. Envoy's transcoder lets such requests
through: a path or query value that is not UTF-8 (`/v1/providers/%FF`) becomes a string
field with bad UTF-8, and a JSON object where a map<string, string> value belongs becomes a
corrupt message. checked_deserializer() wraps a method's deserializer so that it returns
an Undecodable (the field and why) instead of raising; the interceptor then aborts with
INVALID_ARGUMENT before calling the handler.

It also refuses U+0000 in any string field of any request: PostgreSQL stores no NUL in
text or jsonb, so a NUL that gets in fails later, as a 500, wherever it is stored. Bytes
fields may hold anything. (Other control characters are text some field may mean, such
as a record's; the fields that cannot hold them say so themselves: names by their
patterns, sourceYaml by the YAML reader.)

The field is named as the edge's problem+json wants it: `<in>.<jsonPath>`, where `in` is
`path`, `query` or `body`, read from the method's google.api.http binding (see
request_locations); methods without a REST binding name the JSON path alone.

Finding the field means reading the wire format against the message's descriptor
(find_problem), in Python: 2 to 25 times the parse's own cost (bench/request_decoding.py).
So it runs only when the parse fails, or when the request's bytes hold a zero byte at
all, which in proto3 (defaults are not sent) takes an empty string in a list, a zero in a
packed list, a false or zero map value or a fixed-width number: the common request pays
one memchr.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError

_NUL_BYTE = b"\x00"


@dataclass(frozen=True, slots=True)
class Undecodable:
    """What a checked deserializer returns instead of a request it refuses."""

    field: str  # `<in>.<jsonPath>`, or the JSON path alone; "" when no field is to blame
    reason: str

    @property
    def message(self) -> str:
        if not self.field:
            return f"the request {self.reason}"
        return f"the request is not valid: {self.field}: {self.reason}"


# --- reading the wire format -----------------------------------------------------------

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = range(6)

_T = FieldDescriptor
_WIRE_TYPE = {
    **dict.fromkeys(
        (
            _T.TYPE_INT32,
            _T.TYPE_INT64,
            _T.TYPE_UINT32,
            _T.TYPE_UINT64,
            _T.TYPE_SINT32,
            _T.TYPE_SINT64,
            _T.TYPE_BOOL,
            _T.TYPE_ENUM,
        ),
        _VARINT,
    ),
    **dict.fromkeys((_T.TYPE_FIXED64, _T.TYPE_SFIXED64, _T.TYPE_DOUBLE), _FIXED64),
    **dict.fromkeys((_T.TYPE_FIXED32, _T.TYPE_SFIXED32, _T.TYPE_FLOAT), _FIXED32),
    **dict.fromkeys((_T.TYPE_STRING, _T.TYPE_BYTES, _T.TYPE_MESSAGE), _LENGTH),
    _T.TYPE_GROUP: _START_GROUP,
}

_TYPE_NAMES = {
    _VARINT: "a number",
    _FIXED64: "a number",
    _FIXED32: "a number",
    _LENGTH: "a string, an object or a list",
    _START_GROUP: "a group",
}
_VALUE_KINDS = {
    _T.TYPE_STRING: "a string",
    _T.TYPE_BYTES: "a string",
    _T.TYPE_MESSAGE: "an object",
    _T.TYPE_BOOL: "true or false",
}
_NOT_A_MESSAGE = "is not a valid message"


class _Broken(Exception):
    """The bytes end early or a number runs on: no field is to blame but the enclosing one."""


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Broken
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _skip(data: bytes, pos: int, end: int, wire_type: int, field_number: int) -> int:
    if wire_type == _VARINT:
        return _varint(data, pos, end)[1]
    if wire_type == _FIXED64:
        pos += 8
    elif wire_type == _FIXED32:
        pos += 4
    elif wire_type == _LENGTH:
        size, pos = _varint(data, pos, end)
        pos += size
    elif wire_type == _START_GROUP:
        while True:
            tag, pos = _varint(data, pos, end)
            if tag >> 3 == 0:
                raise _Broken
            if tag & 7 == _END_GROUP:
                if tag >> 3 != field_number:
                    raise _Broken
                return pos
            pos = _skip(data, pos, end, tag & 7, tag >> 3)
    else:
        raise _Broken
    if pos > end:
        raise _Broken
    return pos


@dataclass(frozen=True, slots=True)
class _Field:
    """What the walk needs of one field, looked up once per message type."""

    json_name: str
    wire_type: int
    packable: bool  # a repeated number: its values may come packed, length-delimited
    string: bool
    message: Descriptor | None
    indexed: bool  # a list (not a map): its elements are named name[i]
    map_value: bool  # the value of a map entry, whose type a wrong JSON value breaks
    value_kind: str


_TABLES: dict[str, tuple[dict[int, _Field], bool]] = {}


def _table(message: Descriptor) -> tuple[dict[int, _Field], bool]:
    """The fields of message by number, and whether it is a map entry."""
    found = _TABLES.get(message.full_name)
    if found is not None:
        return found
    map_entry = bool(message.GetOptions().map_entry)
    fields = {}
    for field in message.fields:
        inner = field.message_type
        wire_type = _WIRE_TYPE[field.type]
        fields[field.number] = _Field(
            json_name=field.json_name,
            wire_type=wire_type,
            packable=field.is_repeated and wire_type in (_VARINT, _FIXED64, _FIXED32),
            string=field.type == _T.TYPE_STRING,
            message=inner,
            indexed=field.is_repeated and not (inner is not None and inner.GetOptions().map_entry),
            map_value=map_entry and field.name == "value",
            value_kind=_VALUE_KINDS.get(field.type, "a value"),
        )
    found = _TABLES[message.full_name] = (fields, map_entry)
    return found


# The path to a field, spelled only when there is a problem to name: (parent, field,
# index in its list or -1).
_Trail = tuple[Any, _Field, int] | None


def _path(trail: _Trail) -> str:
    parts: list[str] = []
    while trail is not None:
        trail, field, index = trail
        parts.append(f".{field.json_name}[{index}]" if index >= 0 else f".{field.json_name}")
    return "".join(reversed(parts)).lstrip(".")


def _walk(
    data: bytes, pos: int, end: int, message: Descriptor, trail: _Trail, nul: bool
) -> tuple[str, str] | None:
    """The first problem in the fields of `message` in data[pos:end], as (path, reason)."""
    fields, map_entry = _table(message)
    counts: dict[int, int] | None = None
    while pos < end:
        byte = data[pos]
        if byte < 0x80:  # a one-byte tag, as for every field numbered below 16
            tag, pos = byte, pos + 1
        else:
            try:
                tag, pos = _varint(data, pos, end)
            except _Broken:
                return _path(trail), _NOT_A_MESSAGE
        number, wire_type = tag >> 3, tag & 7
        field = fields.get(number)
        if field is None or number == 0:
            try:
                pos = _skip(data, pos, end, wire_type, number)
            except _Broken:
                return _path(trail), _NOT_A_MESSAGE
            continue
        if map_entry:
            here = trail  # a map's key and value are the map's to answer for
        elif field.indexed:
            if counts is None:
                counts = {}
            index = counts.get(number, 0)
            counts[number] = index + 1
            here = (trail, field, index)
        else:
            here = (trail, field, -1)
        if wire_type != field.wire_type and not (wire_type == _LENGTH and field.packable):
            return _path(here), f"must be {_TYPE_NAMES.get(field.wire_type, 'something else')}"
        try:
            if wire_type != _LENGTH:
                pos = _skip(data, pos, end, wire_type, number)
                continue
            byte = data[pos] if pos < end else 0x80
            if byte < 0x80:
                size, pos = byte, pos + 1
            else:
                size, pos = _varint(data, pos, end)
            stop = pos + size
            if stop > end:
                raise _Broken
        except _Broken:
            if field.map_value:
                # How Envoy's transcoder writes a map value of the wrong JSON type.
                return _path(here), f"must map each key to {field.value_kind}"
            return _path(here), "is not a valid value"
        if field.string:
            value = data[pos:stop]
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return _path(here), "is not valid UTF-8 text"
            if nul and _NUL_BYTE in value:
                return _path(here), "contains a NUL character (U+0000), which no field accepts"
        elif field.message is not None:
            problem = _walk(data, pos, stop, field.message, here, nul)
            if problem is not None:
                return problem
        pos = stop
    return None


def find_problem(data: bytes, message: Any, *, nul: bool = True) -> tuple[str, str] | None:
    """The first field of a serialized message of type `message` (a Descriptor) in data
    that is malformed (wrong wire type, bad UTF-8, truncated) or, with nul, a string
    holding U+0000: (JSON path, reason). None when every field reads well."""
    return _walk(data, 0, len(data), message, None, nul)


# --- where a field came from over REST -------------------------------------------------

_VARIABLE = re.compile(r"\{([^}=]+)")


@dataclass(frozen=True, slots=True)
class RequestLocations:
    """Where the top-level fields of a method's request travel over REST."""

    path_fields: frozenset[str]  # json names of the request's fields bound to the path
    body: str  # the body binding: "" (none), "*" or a top-level field's json name

    def locate(self, json_path: str) -> str:
        """`<in>.<jsonPath>` for a JSON path of the request message."""
        head = re.split(r"[.\[]", json_path, maxsplit=1)[0]
        if head in self.path_fields:
            return f"path.{json_path}"
        if self.body == "*":
            return f"body.{json_path}"
        if self.body and head == self.body:
            rest = json_path[len(head) :].lstrip(".")
            return f"body.{rest}" if rest else "body"
        return f"query.{json_path}"


def request_locations(method: MethodDescriptor) -> RequestLocations | None:
    """How `method`'s google.api.http binding lays out its request; None without one."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule = options.Extensions[annotations_pb2.http]
    rules = [rule, *rule.additional_bindings]
    request = method.input_type
    path_fields: set[str] = set()
    for binding in rules:
        template = getattr(binding, binding.WhichOneof("pattern") or "get", "")
        if isinstance(template, http_pb2.CustomHttpPattern):
            template = template.path
        for variable in _VARIABLE.findall(template):
            top = request.fields_by_name.get(variable.split(".", 1)[0])
            if top is not None:
                path_fields.add(top.json_name)
    body = rule.body
    if body and body != "*":
        field = request.fields_by_name.get(body)
        body = field.json_name if field is not None else body
    return RequestLocations(frozenset(path_fields), body)


def _method_descriptor(method: str) -> MethodDescriptor | None:
    """The descriptor of "/pkg.Service/Method" from the default pool, if it is there."""
    service, _, name = method.lstrip("/").partition("/")
    try:
        found: MethodDescriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except KeyError:
        return None
    return found


# --- the deserializer ------------------------------------------------------------------

Deserializer = Callable[[bytes], Any]


def checked_deserializer(deserializer: Deserializer | None, method: str) -> Deserializer | None:
    """deserializer, returning an Undecodable for a request it cannot read or that holds a
    NUL in a string. Deserializers that are not a generated message's FromString (or
    none: the request stays bytes) are returned unchanged."""
    message_class = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)
    if deserializer is None or not isinstance(descriptor, Descriptor):
        return deserializer
    method_descriptor = _method_descriptor(method)
    locations = request_locations(method_descriptor) if method_descriptor else None
    parse = deserializer

    def refuse(problem: tuple[str, str] | None) -> Undecodable:
        if problem is None:
            return Undecodable("", f"is not a valid {descriptor.full_name} message")
        path, reason = problem
        if path and locations is not None:
            path = locations.locate(path)
        return Undecodable(path, reason)

    def deserialize(data: bytes) -> Any:
        try:
            request = parse(data)
        except DecodeError:
            return refuse(find_problem(data, descriptor, nul=False))
        if _NUL_BYTE in data:
            problem = find_problem(data, descriptor)
            if problem is not None:
                return refuse(problem)
        return request

    return deserialize


__all__ = [
    "RequestLocations",
    "Undecodable",
    "checked_deserializer",
    "find_problem",
    "request_locations",
]
