"""The REST bindings our contracts declare, read from the contracts' descriptor set.

Envoy loads a copy derived from it (gen/envoy/, see scripts/envoy_descriptor.py).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import ampmesh
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from tests.support.reference import HOST_OF_PACKAGE, normalize_path

REPO = Path(__file__).resolve().parents[2]
DESCRIPTOR_SET = REPO / "gen" / "ampmesh.binpb"


@dataclass(frozen=True)
class Binding:
    host: str
    method: str
    path: str
    body: str
    response_body: str
    rpc: descriptor.MethodDescriptor

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.host, self.method, normalize_path(self.path))

    def __str__(self) -> str:
        return f"{self.host}: {self.method} {self.path} -> {self.rpc.full_name}"


@cache
def import_generated() -> None:
    """Import every generated module so the default pool knows every message."""
    for module in pkgutil.walk_packages(ampmesh.__path__, "ampmesh."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)


def message_class(message: descriptor.Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(message)


def _patterns(rule: http_pb2.HttpRule) -> list[tuple[str, str, str, str]]:
    found = []
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        found.append((rule.custom.kind.upper(), rule.custom.path, rule.body, rule.response_body))
    elif kind:
        found.append((kind.upper(), getattr(rule, kind), rule.body, rule.response_body))
    for extra in rule.additional_bindings:
        found.extend(_patterns(extra))
    return found


@cache
def bindings() -> tuple[Binding, ...]:
    """Every google.api.http binding of every public service in the descriptor set."""
    import_generated()
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    pool = descriptor_pool.Default()
    found = []
    for file in files.file:
        host = HOST_OF_PACKAGE.get(file.package)
        if host is None:
            continue
        for service in file.service:
            service_descriptor = pool.FindServiceByName(f"{file.package}.{service.name}")
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                rpc = service_descriptor.methods_by_name[method.name]
                for verb, path, body, response_body in _patterns(rule):
                    found.append(Binding(host, verb, path, body, response_body, rpc))
    return tuple(found)


def public_methods_without_binding() -> list[str]:
    """Public RPCs that REST clients could not reach."""
    import_generated()
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    missing = []
    for file in files.file:
        if file.package not in HOST_OF_PACKAGE:
            continue
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    missing.append(f"{file.package}.{service.name}.{method.name}")
    return missing
