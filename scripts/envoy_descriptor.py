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


def derive(files: descriptor_pb2.FileDescriptorSet) -> dict[str, dict[str, Any]]:
    """Clear response_body in place; return {"/pkg.Service/Method": edge facts}."""
    messages = {
        f".{file.package}.{message.name}": message
        for file in files.file
        for message in file.message_type
    }
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
