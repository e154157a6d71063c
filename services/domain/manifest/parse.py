"""amp.yaml text to `ampmesh.manifest.v1.Manifest`: the typed parse, with the line of every
field kept for later checks (`load_manifest`, `parse_manifest`), and the problems it finds
(`ManifestIssue`, `ManifestError`) named by integration, field path and line.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ampmesh.manifest.v1 import manifest_pb2
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from services.domain.proto_yaml import (
    DocumentError,
    Issue,
    YamlLimits,
    load_yaml,
    parse_document,
)

SUPPORTED_SPEC_VERSIONS = ("1.0.0",)

# What an amp.yaml may be, checked before its structure is built. Real manifests are a few
# KB; one listing 100 objects with 40 fields each is about 150 KB and 15,000 values, and its
# deepest field (integrations[].subscribe.objects[].updateEvent.requiredWatchFields[]) is 8
# collections down; anchors and aliases, where used, share a field list or two. So each
# limit is far above any real manifest and far below what costs the api: ruamel reads about
# 100-300 KB a second in pure Python, and its scanner's cost grows with nesting (1,000
# levels of "[" take seconds, and recursion fails from about 300).
MANIFEST_LIMITS = YamlLimits(
    chars=256 * 1024,
    depth=32,
    values=50_000,
    # Every alias repeating a 256 KB field list four times over is still 1 MiB.
    value_chars=1024 * 1024,
    anchors=200,
    aliases=1_000,
)


@dataclass(frozen=True)
class ManifestIssue:
    """A problem in a manifest, with the integration it belongs to where there is one."""

    integration: str | None
    path: str
    line: int | None
    message: str
    column: int | None = None

    @property
    def _line_column(self) -> str:
        if self.line is None:
            return ""
        return f"line {self.line}" + (f", column {self.column}" if self.column else "")

    def __str__(self) -> str:
        where = f"integration {self.integration!r}: " if self.integration else ""
        where += self.path or "manifest"
        if self.line is not None:
            where += f" ({self._line_column})"
        return f"{where}: {self.message}"

    @property
    def detail(self) -> str:
        """The message with where it is (line, integration), for an issue whose field is
        already named elsewhere (e.g. a REST problem's issues[].name)."""
        where = [self._line_column] if self.line is not None else []
        if self.integration:
            where.append(f"integration {self.integration!r}")
        return f"{self.message} ({', '.join(where)})" if where else self.message


class ManifestError(ValueError):
    """A manifest that cannot be deployed; `issues` lists every problem found."""

    def __init__(self, issues: list[ManifestIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


@dataclass(frozen=True)
class SourceLines:
    """The 1-based line of every field of a YAML document, by field path
    (`integrations[0].read.objects[1].schedule`, JSON names)."""

    lines: Mapping[str, int] = field(default_factory=dict)

    def line(self, path: str) -> int | None:
        """The line of path, or of its nearest ancestor written in the document (a field
        that is missing is reported at the line of the object that lacks it)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = _parent(path)
        return None


@dataclass(frozen=True)
class ParsedManifest:
    manifest: manifest_pb2.Manifest
    lines: SourceLines


_INTEGRATION_PATH = re.compile(r"^integrations\[(\d+)\]")
_LAST_SEGMENT = re.compile(r"(?:\.[^.\[\]]+|\[[^\]]*\])$")
_SNAKE = re.compile(r"_([a-z0-9])")


def _parent(path: str) -> str:
    return _LAST_SEGMENT.sub("", path) if _LAST_SEGMENT.search(path) else ""


def _integration_name(document: Any, path: str) -> str | None:
    match = _INTEGRATION_PATH.match(path)
    if not match or not isinstance(document, dict):
        return None
    integrations = document.get("integrations")
    index = int(match.group(1))
    if isinstance(integrations, list) and index < len(integrations):
        entry = integrations[index]
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            return str(entry["name"])
    return None


def _named(document: Any, issues: list[Issue]) -> list[ManifestIssue]:
    return [
        ManifestIssue(_integration_name(document, i.path), i.path, i.line, i.message, i.column)
        for i in issues
    ]


def _index_lines(node: Any, path: str, into: dict[str, int]) -> None:
    # The typed parse accepts proto field names too (object_name); paths use JSON names.
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            name = _SNAKE.sub(lambda m: m.group(1).upper(), str(key))
            child = f"{path}.{name}" if path else name
            with contextlib.suppress(KeyError, TypeError):
                into[child] = int(node.lc.key(key)[0]) + 1
            _index_lines(value, child, into)
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            child = f"{path}[{index}]"
            with contextlib.suppress(KeyError, IndexError, TypeError):
                into[child] = int(node.lc.item(index)[0]) + 1
            _index_lines(value, child, into)


def load_manifest(source_yaml: str) -> ParsedManifest:
    """Parse amp.yaml text into a Manifest and the line of each of its fields, or raise
    ManifestError naming every problem. Within MANIFEST_LIMITS; it may still take a second
    or more of CPU, so a server runs it off its event loop (services/api/manifest_parsing.py)."""
    try:
        document = load_yaml(source_yaml, MANIFEST_LIMITS)
    except DocumentError as error:
        raise ManifestError(_named(None, error.issues)) from None
    if document is None:
        raise ManifestError([ManifestIssue(None, "", None, "the manifest is empty")])
    try:
        manifest = parse_document(document, manifest_pb2.Manifest)
    except DocumentError as error:
        raise ManifestError(_named(document, error.issues)) from None
    problems = []
    if manifest.spec_version not in SUPPORTED_SPEC_VERSIONS:
        line = document.lc.key("specVersion")[0] + 1 if "specVersion" in document else None
        problems.append(
            ManifestIssue(
                None,
                "specVersion",
                line,
                f"unsupported spec version {manifest.spec_version!r}; "
                f"supported: {', '.join(SUPPORTED_SPEC_VERSIONS)}",
            )
        )
    if not manifest.integrations:
        problems.append(ManifestIssue(None, "integrations", None, "no integration is declared"))
    if problems:
        raise ManifestError(problems)
    lines: dict[str, int] = {}
    _index_lines(document, "", lines)
    return ParsedManifest(manifest, SourceLines(lines))


def parse_manifest(source_yaml: str) -> manifest_pb2.Manifest:
    """Parse amp.yaml text into a Manifest, or raise ManifestError naming every problem."""
    return load_manifest(source_yaml).manifest
