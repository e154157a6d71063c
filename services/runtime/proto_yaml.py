"""YAML documents parsed into protobuf messages, with errors that name field and line.

A builder's amp.yaml is read by people, so a mistake must be reported where they can find
it: `integrations[0].read.objects[1].schedule (line 14): expected a string`. protobuf's
own JSON parser stops at the first error and knows nothing of lines, so the document is
first walked beside the message descriptor, collecting every problem with its line
(ruamel.yaml keeps line numbers), and only a document without problems is handed to
`json_format.ParseDict`.
"""

from __future__ import annotations

import datetime
import difflib
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

M = TypeVar("M", bound=Message)

_INTEGER_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
# Well-known types whose JSON form is free: any mapping, any value, any list.
_FREE_FORM = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}


@dataclass(frozen=True)
class Issue:
    """One problem in a document: where (field path and 1-based line) and what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path or "document"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class DocumentError(ValueError):
    """A document that does not fit its message; `issues` lists every problem found."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


def load_yaml(text: str) -> Any:
    """Parse YAML 1.2 keeping line numbers; a syntax error becomes a DocumentError."""
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        raise DocumentError([Issue("", line, f"invalid YAML: {problem}")]) from None


def parse_yaml_message(text: str, message_type: type[M]) -> M:
    """Parse a YAML document into a new `message_type`, or raise DocumentError."""
    document = load_yaml(text)
    if document is None:
        raise DocumentError([Issue("", None, "the document is empty")])
    return parse_document(document, message_type)


def parse_document(document: Any, message_type: type[M]) -> M:
    """Parse an already loaded document (ruamel or plain Python) into `message_type`."""
    issues: list[Issue] = []
    descriptor: Descriptor = message_type.DESCRIPTOR  # type: ignore[assignment]
    _check_message(document, descriptor, "", None, issues)
    if issues:
        raise DocumentError(issues)
    message = message_type()
    try:
        json_format.ParseDict(_plain(document), message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        # The walk above mirrors ParseDict's rules; this is a safety net, not a path.
        raise DocumentError([Issue("", None, str(error))]) from None
    return message


def _line_of(container: Any, key: Any) -> int | None:
    try:
        if isinstance(container, CommentedMap):
            return int(container.lc.key(key)[0]) + 1
        if isinstance(container, CommentedSeq):
            return int(container.lc.item(key)[0]) + 1
    except (KeyError, IndexError, TypeError):
        return None
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date (quote it to make it a string)"
    return type(value).__name__


def _check_message(
    node: Any, descriptor: Descriptor, path: str, line: int | None, issues: list[Issue]
) -> None:
    if descriptor.full_name in _FREE_FORM:
        if descriptor.full_name == "google.protobuf.Struct" and not isinstance(node, dict):
            issues.append(Issue(path, line, f"expected a mapping, found {_kind(node)}"))
        if descriptor.full_name == "google.protobuf.ListValue" and not isinstance(node, list):
            issues.append(Issue(path, line, f"expected a list, found {_kind(node)}"))
        return
    if descriptor.full_name.startswith("google.protobuf."):
        # Timestamps, durations and wrappers: ParseDict knows their JSON forms.
        if isinstance(node, (dict, list)):
            issues.append(Issue(path, line, f"expected a single value, found {_kind(node)}"))
        return
    if not isinstance(node, dict):
        issues.append(Issue(path, line, f"expected a mapping, found {_kind(node)}"))
        return
    fields = {f.json_name: f for f in descriptor.fields}
    fields.update({f.name: f for f in descriptor.fields})
    chosen: dict[str, str] = {}
    for key, value in node.items():
        key_line = _line_of(node, key) or line
        key_path = _join(path, str(key))
        field = fields.get(str(key))
        if field is None:
            known = sorted({f.json_name for f in descriptor.fields})
            hint = difflib.get_close_matches(str(key), known, n=1)
            message = f"unknown field {key!r}"
            message += (
                f"; did you mean {hint[0]!r}?" if hint else f"; known fields: {', '.join(known)}"
            )
            issues.append(Issue(key_path, key_line, message))
            continue
        oneof = field.containing_oneof
        if oneof is not None and value is not None:
            if oneof.name in chosen:
                issues.append(
                    Issue(
                        key_path,
                        key_line,
                        f"only one of {chosen[oneof.name]!r} and {key!r} may be set",
                    )
                )
            chosen.setdefault(oneof.name, str(key))
        _check_field(value, field, key_path, key_line, issues)


def _check_field(
    value: Any, field: FieldDescriptor, path: str, line: int | None, issues: list[Issue]
) -> None:
    if value is None:
        return  # null means "not set" in proto3 JSON
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        if not isinstance(value, dict):
            issues.append(Issue(path, line, f"expected a mapping, found {_kind(value)}"))
            return
        value_field = message_type.fields_by_name["value"]
        for key, item in value.items():
            _check_field(
                item, value_field, f"{path}[{key!r}]", _line_of(value, key) or line, issues
            )
        return
    if field.is_repeated:
        if not isinstance(value, list):
            issues.append(Issue(path, line, f"expected a list, found {_kind(value)}"))
            return
        for index, item in enumerate(value):
            _check_single(item, field, f"{path}[{index}]", _line_of(value, index) or line, issues)
        return
    _check_single(value, field, path, line, issues)


def _check_single(
    value: Any, field: FieldDescriptor, path: str, line: int | None, issues: list[Issue]
) -> None:
    if field.message_type is not None:
        _check_message(value, field.message_type, path, line, issues)
        return
    kind = field.type
    ok: bool
    expected: str
    if kind == FieldDescriptor.TYPE_STRING or kind == FieldDescriptor.TYPE_BYTES:
        ok, expected = isinstance(value, str), "a string"
    elif kind == FieldDescriptor.TYPE_BOOL:
        ok, expected = isinstance(value, bool), "true or false"
    elif kind in _INTEGER_TYPES:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif kind in _FLOAT_TYPES:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        expected = "a number"
    elif kind == FieldDescriptor.TYPE_ENUM:
        names = [v.name for v in field.enum_type.values] if field.enum_type else []
        ok, expected = value in names, f"one of {', '.join(names)}"
    else:
        ok, expected = True, ""
    if not ok:
        issues.append(Issue(path, line, f"expected {expected}, found {_kind(value)}"))


def _plain(node: Any) -> Any:
    """ruamel's commented containers as the plain dicts and lists ParseDict expects."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node
