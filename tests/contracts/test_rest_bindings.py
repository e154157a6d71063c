"""Our REST surface against the reference platform's OpenAPI documents.

The bindings come from gen/ampmesh.binpb, the descriptor set Envoy's copy is derived from
(test_envoy_loads_contracts.py shows Envoy accepts that copy). Each reference operation must be
bound (or listed in ARCHITECTURE.md with the reason it is not), path and query
parameters must carry the reference's names, and JSON built from every property of
the reference's request and response schemas must parse into our messages, so a client
written for the reference API can talk to ampmesh.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from google.protobuf import descriptor, json_format

from tests.support.bindings import (
    Binding,
    bindings,
    message_class,
    public_methods_without_binding,
)
from tests.support.reference import (
    REPO,
    Operation,
    SchemaResolver,
    example_instance,
    one_per_oneof,
    operations,
)

DESTINATION = "/v1/projects/{project_id_or_name}/destinations/{destination_id_or_name}"
# Bindings on a reference host that the reference's OpenAPI documents do not describe,
# with the reason they exist.
OUR_ADDITIONS = {
    ("api", "GET", "/callbacks/v1/oauth"): (
        "the OAuth redirect target (reference-platform.md §3.1); not in the OpenAPI documents"
    ),
    **{
        ("api", method, f"{DESTINATION}{tail}"): (
            "a webhook destination's deliveries and endpoint (DeliveryService): the issue "
            "asks that deliveries can be listed and replayed, and the reference has no "
            "endpoint for it"
        )
        for method, tail in (
            ("GET", "/deliveries"),
            ("GET", "/deliveries/{delivery_id}"),
            ("POST", "/deliveries/{delivery_id}:redeliver"),
            ("POST", "/deliveries:replay"),
            ("GET", "/endpoint"),
            ("POST", "/endpoint:enable"),
            ("POST", ":test"),
        )
    },
    ("api", "GET", "/v1/projects/{project_id_or_name}/metrics"): (
        "a project's application metrics (ProjectMetricsService): the issue asks for them "
        "through the edge, and the reference has no metrics endpoint"
    ),
}
# Path variables named otherwise than the reference's parameter, because a body field of
# the same request already has the reference's name. Path variable names never reach
# JSON, so REST clients see no difference.
RENAMED_PATH_VARIABLES = {
    ("apiKey", "key"): "UpdateApiKey's body field is `apiKey`",
    ("destination", "destinationIdOrName"): "UpdateDestination's body field is `destination`",
}
ARCHITECTURE = REPO / "ARCHITECTURE.md"


def covered() -> tuple[list[tuple[Operation, list[Binding]]], list[Operation]]:
    by_key: dict[tuple[str, str, str], list[Binding]] = defaultdict(list)
    for binding in bindings():
        by_key[binding.key].append(binding)
    matched, missing = [], []
    for op in operations():
        if op.key in by_key:
            matched.append((op, by_key[op.key]))
        else:
            missing.append(op)
    return matched, missing


def test_every_public_rpc_is_reachable_over_rest() -> None:
    assert public_methods_without_binding() == []


def test_reference_operations_are_bound_or_explained() -> None:
    matched, missing = covered()
    print(f"\n{len(matched)} reference operations bound, {len(missing)} not bound:")
    for op in missing:
        print(f"  not bound: {op}")
    text = ARCHITECTURE.read_text()
    unexplained = [str(op) for op in missing if f"`{op.method} {op.path}`" not in text]
    assert unexplained == [], "ARCHITECTURE.md must give the reason for each of these"


def test_no_binding_outside_the_reference() -> None:
    reference_keys = {op.key for op in operations()}
    strays = [
        str(b)
        for b in bindings()
        if b.host != "proxy"
        and b.key not in reference_keys
        and (b.host, b.method, b.path) not in OUR_ADDITIONS
    ]
    assert strays == []


def test_each_route_has_one_rpc() -> None:
    by_key: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for b in bindings():
        by_key[b.key].append(b.rpc.full_name)
    clashes = {k: v for k, v in by_key.items() if len(v) > 1}
    assert clashes == {}


def _variables(path: str) -> list[str]:
    return [v.split("=")[0] for v in re.findall(r"\{([^}]*)\}", path)]


def _field_json_name(message: descriptor.Descriptor | None, dotted: str) -> str:
    field = None
    for part in dotted.split("."):
        assert message is not None, f"{dotted} goes through a scalar"
        field = message.fields_by_name[part]
        message = field.message_type
    assert field is not None
    return field.json_name


def test_path_and_query_parameters_carry_reference_names() -> None:
    matched, _ = covered()
    problems = []
    for op, found in matched:
        params = op.spec.get("parameters", [])
        for binding in found:
            request = binding.rpc.input_type
            ours = [_field_json_name(request, v) for v in _variables(binding.path)]
            theirs = re.findall(r"\{([^}]*)\}", op.path)
            renamed = [
                ref if (ref, our) in RENAMED_PATH_VARIABLES else our
                for our, ref in zip(ours, theirs, strict=False)
            ]
            if renamed != theirs:
                problems.append(f"{binding}: path variables {ours} != reference {theirs}")
            json_names = {f.json_name for f in request.fields}
            for param in params:
                if "$ref" in param:
                    param, _ = SchemaResolver().resolve(param, op.document)
                if param.get("in") == "query" and param["name"] not in json_names:
                    problems.append(f"{binding}: no field for query parameter {param['name']!r}")
    for line in problems:
        print(line)
    assert problems == []


def _json_schema(spec: dict[str, Any]) -> dict[str, Any] | None:
    content = spec.get("content") or {}
    for media_type in ("application/json", "application/problem+json"):
        if media_type in content and "schema" in content[media_type]:
            schema: dict[str, Any] = content[media_type]["schema"]
            return schema
    return None


def _parse_into(value: Any, message: descriptor.Descriptor, field_path: str, branch: int) -> None:
    """Parse `value` into `message`, or into its field `field_path` when one is named."""
    if field_path and field_path != "*":
        field = message.fields_by_name[field_path]
        value = {field.json_name: value}
    value = one_per_oneof(value, message, branch)
    json_format.ParseDict(value, message_class(message)(), ignore_unknown_fields=False)


def _check_parses(
    label: str, schema: dict[str, Any], op: Operation, target: descriptor.Descriptor, field: str
) -> list[str]:
    problems: list[str] = []
    if target.full_name == "google.api.HttpBody":
        return problems
    for branch in range(3):
        instance = example_instance(schema, op.document, branch=branch)
        try:
            _parse_into(instance, target, field, branch)
        except json_format.ParseError as error:
            problems.append(f"{op} {label} (variant {branch}) into {target.full_name}: {error}")
    return problems


def test_reference_requests_and_responses_parse_into_our_messages() -> None:
    matched, _ = covered()
    problems: list[str] = []
    checked = 0
    for op, found in matched:
        for binding in found:
            request_schema = _json_schema(op.spec.get("requestBody", {}))
            if request_schema is not None:
                checked += 1
                problems += _check_parses(
                    "request", request_schema, op, binding.rpc.input_type, binding.body
                )
            for code in ("200", "201", "202"):
                response = op.spec.get("responses", {}).get(code) or op.spec.get(
                    "responses", {}
                ).get(int(code))
                schema = _json_schema(response) if response else None
                if schema is not None:
                    checked += 1
                    problems += _check_parses(
                        f"{code} response",
                        schema,
                        op,
                        binding.rpc.output_type,
                        binding.response_body,
                    )
    print(f"\n{checked} reference request/response schemas checked, {len(problems)} problems")
    for line in problems:
        print(" ", line)
    assert problems == []
