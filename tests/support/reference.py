"""The reference platform's public OpenAPI documents, read in place.

They live outside the project (``../shared/reference`` beside the checkout, or
``$AMPMESH_REFERENCE_DIR``) and are never copied into it. Tests that compare our
contracts with them skip, saying why, when the documents are absent.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import descriptor

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO.parent / "shared" / "reference" / "ampersand" / "openapi"

# Which public host each reference document describes, and which of our proto packages
# serve that host (DESIGN.md: the hosts are told apart by virtual host in Envoy).
HOST_DOCUMENTS = {
    "api": "api/api.yaml",
    "read": "api/read.yaml",
    "write": "api/write.yaml",
    "search": "api/search.yaml",
}
HOST_OF_PACKAGE = {
    "ampmesh.platform.v1": "api",
    "ampmesh.read.v1": "read",
    "ampmesh.write.v1": "write",
    "ampmesh.search.v1": "search",
    "ampmesh.proxy.v1": "proxy",
}
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def reference_dir() -> Path:
    directory = Path(os.environ.get("AMPMESH_REFERENCE_DIR", DEFAULT_DIR))
    if not (directory / "api" / "api.yaml").is_file():
        pytest.skip(f"reference OpenAPI documents not found in {directory}")
    return directory


@cache
def load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        document: dict[str, Any] = yaml.safe_load(f)
    return document


def normalize_path(path: str) -> str:
    """`/v1/projects/{projectIdOrName}` and `/v1/projects/{project_id_or_name}` compare equal."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@dataclass(frozen=True)
class Operation:
    host: str
    method: str  # upper case
    path: str  # as the public URL has it, /v1 included
    operation_id: str
    document: Path
    spec: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.host, self.method, normalize_path(self.path))

    def __str__(self) -> str:
        return f"{self.host}: {self.method} {self.path} ({self.operation_id})"


def operations() -> list[Operation]:
    """Every operation of the four reference documents, with its full public path."""
    directory = reference_dir()
    found = []
    for host, name in HOST_DOCUMENTS.items():
        path = directory / name
        document = load(path)
        base = document["servers"][0]["url"].split("://", 1)[1]
        prefix = base[base.index("/") :] if "/" in base else ""
        for route, item in document["paths"].items():
            for method in HTTP_METHODS:
                if method in item:
                    spec = item[method]
                    found.append(
                        Operation(
                            host,
                            method.upper(),
                            prefix + route,
                            spec.get("operationId", ""),
                            path,
                            spec,
                        )
                    )
    return found


class SchemaResolver:
    """Follows `$ref`s within and across the reference documents."""

    def resolve(self, schema: dict[str, Any], base: Path) -> tuple[dict[str, Any], Path]:
        seen = 0
        while "$ref" in schema:
            target, _, pointer = schema["$ref"].partition("#")
            document_path = (base.parent / target).resolve() if target else base
            node: Any = load(document_path)
            for part in pointer.strip("/").split("/"):
                if part:
                    node = node[part.replace("~1", "/").replace("~0", "~")]
            schema, base = node, document_path
            seen += 1
            if seen > 50:
                raise ValueError(f"$ref loop at {schema}")
        return schema, base


def example_instance(schema: dict[str, Any], base: Path, branch: int = 0, depth: int = 0) -> Any:
    """A JSON value holding every property the schema names, nested ones included.

    Where the schema offers alternatives (oneOf/anyOf) the `branch`-th is taken, so
    calling with branch 0, 1, 2 … visits each alternative. Values are the schema's own
    example or enum where it gives one, else a plain value of its type.
    """
    resolver = SchemaResolver()
    schema, base = resolver.resolve(schema, base)
    if depth > 12:
        return None
    for key in ("oneOf", "anyOf"):
        if key in schema:
            options = schema[key]
            merged = {k: v for k, v in schema.items() if k != key}
            chosen = {**merged, **resolver.resolve(options[branch % len(options)], base)[0]}
            return example_instance(chosen, base, branch, depth + 1)
    if "allOf" in schema:
        value: dict[str, Any] = {}
        for part in schema["allOf"]:
            piece = example_instance(part, base, branch, depth + 1)
            if isinstance(piece, dict):
                value.update(piece)
        for key, prop in schema.get("properties", {}).items():
            value[key] = example_instance(prop, base, branch, depth + 1)
        return value
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema or "additionalProperties" in schema:
        value = {
            key: example_instance(prop, base, branch, depth + 1)
            for key, prop in schema.get("properties", {}).items()
        }
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            value["someKey"] = example_instance(extra, base, branch, depth + 1)
        return {k: v for k, v in value.items() if v is not None}
    if kind == "array":
        item = example_instance(schema.get("items", {}), base, branch, depth + 1)
        return [] if item is None else [item]
    if "enum" in schema:
        return schema["enum"][branch % len(schema["enum"])]
    fmt = schema.get("format")
    if kind == "string" and fmt == "date-time":
        return "2024-01-02T03:04:05Z"
    if "example" in schema and not isinstance(schema["example"], (dict, list)):
        example = schema["example"]
        # YAML reads unquoted timestamps as datetimes; JSON carries them as RFC 3339.
        if isinstance(example, datetime.datetime):
            return example.isoformat().replace("+00:00", "Z")
        if isinstance(example, datetime.date):
            return example.isoformat()
        return example
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "string":
        if fmt == "date":
            return "2024-01-02"
        if fmt in ("uuid",):
            return "8f2a6b1e-3c4d-4e5f-9a0b-1c2d3e4f5a6b"
        if fmt in ("uri", "url"):
            return "https://example.com/x"
        return "text"
    return {}


def one_per_oneof(value: Any, message: descriptor.Descriptor, branch: int) -> Any:
    """Keep one member of each oneof that `value` sets (the `branch`-th), recursively.

    The reference often lists alternatives (apiKey, basicAuth, …) as sibling properties
    and says in prose that one is allowed; our contracts make them a oneof. The
    synthesized instance sets every property, so it is cut down to one alternative.
    """
    if not isinstance(value, dict) or message.full_name.startswith("google.protobuf."):
        return value
    by_json = {f.json_name: f for f in message.fields}
    value = dict(value)
    for oneof in message.oneofs:
        present = [f.json_name for f in oneof.fields if f.json_name in value]
        for index, name in enumerate(present):
            if index != branch % len(present):
                del value[name]
    for key, item in value.items():
        field = by_json.get(key)
        if field is None or field.message_type is None:
            continue
        target = field.message_type
        if target.GetOptions().map_entry:
            value_field = target.fields_by_name["value"]
            if value_field.message_type is not None and isinstance(item, dict):
                value[key] = {
                    k: one_per_oneof(v, value_field.message_type, branch) for k, v in item.items()
                }
        elif isinstance(item, list):
            value[key] = [one_per_oneof(v, target, branch) for v in item]
        else:
            value[key] = one_per_oneof(item, target, branch)
    return value
