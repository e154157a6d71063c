"""YAML documents parsed into protobuf messages, with errors that name field and line.

A builder's amp.yaml is read by people, so a mistake must be reported where they can find
it: `integrations[0].read.objects[1].schedule (line 14): expected a string`. protobuf's
own JSON parser stops at the first error and knows nothing of lines, so the document is
first walked beside the message descriptor, collecting every problem with its line
(ruamel.yaml keeps line numbers), and only a document without problems is handed to
`json_format.ParseDict`.

Documents come from outside, so reading one is bounded (`YamlLimits`): its size, how deep it
nests, and how much its anchors and aliases expand it are checked while ruamel reads it,
before anything recursive (ruamel's composer and constructor, the walks below, ParseDict)
sees it. Every way a text can fail to be YAML, including characters YAML forbids and values
Python cannot hold, becomes a DocumentError with the line and column.
"""

from __future__ import annotations

import datetime
import difflib
import functools
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
)
from ruamel.yaml.parser import RoundTripParser
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import RoundTripScanner

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


_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


@dataclass(frozen=True)
class Issue:
    """One problem in a document: where (field path, 1-based line and column) and what."""

    path: str
    line: int | None
    message: str
    column: int | None = None

    @property
    def where(self) -> str:
        """ "line 3, column 7", "line 3" or ""."""
        if self.line is None:
            return ""
        return f"line {self.line}" + (f", column {self.column}" if self.column else "")

    def __str__(self) -> str:
        where = self.path or "document"
        if self.where:
            where += f" ({self.where})"
        return f"{where}: {self.message}"


class DocumentError(ValueError):
    """A document that does not fit its message; `issues` lists every problem found."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


@dataclass(frozen=True)
class YamlLimits:
    """How large a document may be, read before anything builds its structure.

    chars: characters of the text. depth: collections nested in one another. values: nodes
    (scalars, keys, collections) once every alias is replaced by the node it names, and
    value_chars: characters of all scalars counted the same way; these two bound what any
    later walk or message built from the document can cost, whatever its aliases do
    ("billion laughs"). anchors, aliases: how many the text may define and use."""

    chars: int
    depth: int
    values: int
    value_chars: int
    anchors: int
    aliases: int


def load_yaml(text: str, limits: YamlLimits) -> Any:
    """Parse YAML 1.2 keeping line numbers, within limits; a text that is not YAML or
    exceeds a limit becomes a DocumentError with its line and column."""
    if len(text) > limits.chars:
        raise DocumentError(
            [Issue("", None, f"is {len(text)} characters long; the limit is {limits.chars}")]
        )
    yaml = YAML(typ="rt")
    yaml.Scanner = functools.partial(_LimitedScanner, limits=limits)
    yaml.Parser = functools.partial(_LimitedParser, limits=limits)
    yaml.Composer = _QuietComposer
    yaml.Constructor = _LocatingConstructor
    try:
        return yaml.load(text)
    except ReaderError as error:
        line, column = _position(text, error.position)
        what = (
            f"character U+{error.character:04X} is not allowed in YAML"
            if isinstance(error.character, int)
            else "the text is not valid Unicode"
        )
        raise DocumentError([Issue("", line, f"invalid YAML: {what}", column)]) from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "not valid YAML"
        raise DocumentError([_at(mark, f"invalid YAML: {problem}")]) from None
    except YAMLError:
        raise DocumentError([Issue("", None, "invalid YAML")]) from None


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _at(mark: Any, message: str) -> Issue:
    if mark is None:
        return Issue("", None, message)
    return Issue("", mark.line + 1, message, mark.column + 1)


class _LimitedScanner(RoundTripScanner):
    """Refuses flow collections ([ and {) nested past the limit as it reads them: the
    scanner looks up to 1,024 characters ahead for a possible key, at a cost that grows
    with the nesting, so "[[[[..." costs seconds before the parser sees an event."""

    def __init__(self, *args: Any, limits: YamlLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits

    def fetch_flow_collection_start(self, token_class: Any, to_push: str) -> None:
        if self.flow_level >= self.limits.depth:
            raise DocumentError([_at(self.reader.get_mark(), _too_deep(self.limits))])
        super().fetch_flow_collection_start(token_class, to_push)


class _LimitedParser(RoundTripParser):
    """Counts every event as the composer takes it, which ruamel's parser makes without
    recursing: nesting depth, anchors, aliases, and the values and characters the document
    holds once every alias is expanded (an anchor's size is known when its node ends)."""

    def __init__(self, *args: Any, limits: YamlLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        # Open collections: (anchor, values and value characters counted before it).
        self.open: list[tuple[str | None, int, int]] = []
        self.sizes: dict[str, tuple[int, int]] = {}
        self.values = self.value_chars = self.anchors = self.aliases = 0

    def get_event(self) -> Any:
        event = super().get_event()
        if isinstance(event, (NodeEvent, CollectionEndEvent)):
            self.count(event)
        return event

    def count(self, event: Any) -> None:
        limits = self.limits
        if isinstance(event, AliasEvent):
            self.aliases += 1
            if self.aliases > limits.aliases:
                self.refuse(event, f"uses more than {limits.aliases} aliases (the limit)")
            if any(anchor == event.anchor for anchor, _, _ in self.open):
                self.refuse(event, f"alias *{event.anchor} is inside the node it names")
            # An unknown alias is the composer's to report.
            values, chars = self.sizes.get(event.anchor, (0, 0))
            self.grow(event, values, chars)
            return
        if isinstance(event, CollectionEndEvent):
            if self.open:
                anchor, values, chars = self.open.pop()
                if anchor is not None:
                    self.sizes[anchor] = (self.values - values, self.value_chars - chars)
            return
        if event.anchor is not None:
            self.anchors += 1
            if self.anchors > limits.anchors:
                self.refuse(event, f"defines more than {limits.anchors} anchors (the limit)")
            self.sizes.pop(event.anchor, None)
        if isinstance(event, ScalarEvent):
            self.grow(event, 1, len(event.value))
            if event.anchor is not None:
                self.sizes[event.anchor] = (1, len(event.value))
        elif isinstance(event, CollectionStartEvent):
            if len(self.open) >= limits.depth:
                self.refuse(event, _too_deep(limits))
            self.open.append((event.anchor, self.values, self.value_chars))
            self.grow(event, 1, 0)

    def grow(self, event: Any, values: int, chars: int) -> None:
        self.values += values
        self.value_chars += chars
        if self.values > self.limits.values:
            self.refuse(
                event,
                f"holds more than {self.limits.values} values, counting each alias as the "
                "values it repeats (the limit)",
            )
        if self.value_chars > self.limits.value_chars:
            self.refuse(
                event,
                f"holds more than {self.limits.value_chars} characters of values, counting "
                "each alias as the values it repeats (the limit)",
            )

    def refuse(self, event: Any, message: str) -> None:
        raise DocumentError([_at(event.start_mark, message)])


def _too_deep(limits: YamlLimits) -> str:
    return f"nests collections more than {limits.depth} levels deep (the limit)"


class _QuietComposer(Composer):
    """YAML lets a later anchor of the same name replace an earlier one; ruamel warns on
    stderr for each, which would let one document write hundreds of log lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warn_double_anchors = False


class _LocatingConstructor(RoundTripConstructor):
    """Values YAML can write but Python refuses (month 13, integers over 4,300 digits, a
    !!float that is not a number) as issues at the value's line, not as exceptions."""

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except DocumentError:
            raise  # a value inside this node, already located
        except (ValueError, OverflowError):
            tag = getattr(node.tag, "value", node.tag) or ""
            kind = str(tag).rsplit(":", 1)[-1] or "value"
            message = f"invalid YAML: not a valid {kind} (quote it to make it a string)"
            raise DocumentError([_at(node.start_mark, message)]) from None


def parse_yaml_message(text: str, message_type: type[M], limits: YamlLimits) -> M:
    """Parse a YAML document into a new `message_type`, or raise DocumentError."""
    document = load_yaml(text, limits)
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
        low, high = _INTEGER_RANGES[kind]
        ok = isinstance(value, int) and not isinstance(value, bool)
        expected = "a whole number"
        if ok and not low <= value <= high:
            issues.append(Issue(path, line, f"expected a whole number from {low} to {high}"))
            return
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
