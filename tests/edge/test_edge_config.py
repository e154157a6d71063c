"""The edge's configuration: what it renders, that Envoy accepts it, that gen/envoy/routes.json
says what the contracts and the reference say, and what envoy/problem.lua and
envoy/api_key.lua do to responses and requests.

The Lua scripts run in a real Envoy here (there is no Lua interpreter besides Envoy's):
a small listener whose routes answer canned responses (direct_response) carrying the
same route metadata and headers the edge's routes and the transcoder produce, so each
rewrite is checked byte for byte without depending on which RPCs are built.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ampmesh.edge.v1 import options_pb2
from ruamel.yaml import YAML

from services.domain.routes import ROUTE_GROUPS
from services.launcher.edge import (
    GEN_ENVOY,
    LUA_FILTER,
    LUA_SCRIPTS,
    ORIGINAL_URI_FILTER,
    SUBSCRIBE,
    SURFACES,
    TRANSCODED_SURFACES,
    TRANSCODER_FILTER,
    UNROUTED,
    Edge,
    EdgeError,
    load_route_facts,
    public_services,
    render_config,
    surface_services,
    template_regex,
    with_omitted_empties,
)
from services.launcher.ports import PortBook, free_port
from tests.edge.harness import SHARDS, running_envoy, validate
from tests.support.bindings import bindings
from tests.support.reference import operations

INTERNAL_PACKAGES = ("token", "sandbox", "messenger", "scribe", "metrics")
# protoc's .pyi types an extension as a plain FieldDescriptor, which Extensions[] refuses.
REST: Any = options_pb2.rest

# Served on the proxy host's data path, not transcoded (envoy/proxy.lua).
PROXY_SERVICES = tuple(service.full_name for service in ROUTE_GROUPS["proxy"])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    home = tmp_path_factory.mktemp("edge-home")
    edge = Edge(home, PortBook(home), home / "certs")
    # A name, as at scale: the api cluster resolves it by DNS.
    path = edge.render("api.internal:50051", SHARDS)
    # Plain dicts and lists, as Envoy reads the file.
    config = json.loads(json.dumps(YAML(typ="safe", pure=True).load(path)))
    return path, config


def listener(config: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        item for item in config["static_resources"]["listeners"] if item["name"] == name
    )
    return found


def manager(config: dict[str, Any], name: str) -> dict[str, Any]:
    typed: dict[str, Any] = listener(config, name)["filter_chains"][0]["filters"][0]["typed_config"]
    return typed


def routes_of(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = manager(config, name)["route_config"]["virtual_hosts"][0][
        "routes"
    ]
    return routes


def cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        c for c in config["static_resources"]["clusters"] if c["name"] == name
    )
    return found


# --- the rendered configuration ---------------------------------------------------------


def test_envoy_accepts_the_rendered_edge(rendered: tuple[Path, dict[str, Any]]) -> None:
    path, _ = rendered
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_rest_surface_transcodes_only_its_own_services(
    rendered: tuple[Path, dict[str, Any]],
) -> None:
    _, config = rendered
    seen: set[str] = set()
    for surface in TRANSCODED_SURFACES:
        filters = manager(config, surface)["http_filters"]
        transcoder = next(f for f in filters if f["name"] == TRANSCODER_FILTER)["typed_config"]
        assert transcoder["services"] == surface_services(surface)
        assert not seen & set(transcoder["services"]), "a service on two surfaces"
        seen |= set(transcoder["services"])
        assert transcoder["convert_grpc_status"] is True
        assert transcoder["max_request_body_size"] == 1024 * 1024
        assert all(transcoder["request_validation_options"].values())
        printing = transcoder["print_options"]["always_print_primitive_fields"]
        assert printing is (surface != "write"), surface
        # problem.lua first (last on responses), then request_id.lua (every answer names
        # the id the request keeps), CORS (preflights answered, and cors.lua after the
        # cors filter on responses), then request_guard.lua before anything reads the
        # request; api_key.lua before the per-key limit (test_overload_config.py) and the
        # transcoder; body_shape.lua reads the whole body the buffer filter holds, then
        # the transcoder does.
        names = [f["name"] for f in filters]
        assert names[0] == LUA_FILTER and names[-1] == "envoy.filters.http.router"
        assert names[1:5] == [
            "envoy.filters.http.lua.request_id",
            "envoy.filters.http.lua.cors",
            "envoy.filters.http.cors",
            "envoy.filters.http.lua.request_guard",
        ]
        if surface == SUBSCRIBE:
            # Providers' raw bodies: no key to limit by, no shape to judge; the URL they
            # called is taken before the transcoder rewrites :path.
            assert names[4:-1] == [
                "envoy.filters.http.lua.request_guard",
                ORIGINAL_URI_FILTER,
                "envoy.filters.http.buffer",
                TRANSCODER_FILTER,
            ]
            continue
        assert names[-5:-1] == [
            "envoy.filters.http.local_ratelimit",
            "envoy.filters.http.buffer",  # caps bodies whatever their chunking
            "envoy.filters.http.lua.body_shape",
            TRANSCODER_FILTER,
        ]
        assert (len(names) == 11) is (surface in ("read", "write")), names
        prefixes = {
            r["match"]["prefix"] for r in routes_of(config, surface) if "prefix" in r["match"]
        }
        # and the catch-all, whose cluster does not exist (test_cors_config.py)
        assert prefixes == {f"/{s}/" for s in surface_services(surface)} | {"/"}
    # The proxy host forwards on Envoy's data path: its REST bindings are not transcoded.
    everything = {s.full_name for services in ROUTE_GROUPS.values() for s in services}
    assert seen == everything - set(PROXY_SERVICES)


def test_routes_carry_the_rest_shape_problem_lua_applies(
    rendered: tuple[Path, dict[str, Any]],
) -> None:
    _, config = rendered
    on_routes: dict[str, dict[str, Any]] = {}
    for surface in TRANSCODED_SURFACES:
        for route in routes_of(config, surface):
            metadata = route.get("metadata", {}).get("filter_metadata", {}).get(LUA_FILTER)
            if metadata:
                on_routes[route["match"]["path"]] = metadata
    facts = with_omitted_empties(load_route_facts())
    transcoded = {s for surface in TRANSCODED_SURFACES for s in surface_services(surface)}
    expected = {
        fact.path: fact.lua_metadata
        for fact in facts
        if fact.lua_metadata and fact.service in transcoded
    }
    assert on_routes == expected
    assert on_routes["/ampmesh.platform.v1.ProjectService/ListProjects"] == {"unwrap": "projects"}
    assert on_routes["/ampmesh.platform.v1.ProjectService/CreateProject"] == {
        "successStatus": 201,
        "bodyField": "project",  # body errors are named relative to it
    }
    assert on_routes["/ampmesh.read.v1.ReadService/PauseReads"] == {"successStatus": 204}


def test_only_the_oauth_callback_tolerates_unknown_query_parameters(
    rendered: tuple[Path, dict[str, Any]],
) -> None:
    _, config = rendered
    tolerant = [
        (surface, route)
        for surface in TRANSCODED_SURFACES
        if surface != SUBSCRIBE  # test_the_subscribe_host_takes_raw_bodies_and_any_query
        for route in routes_of(config, surface)
        if route.get("typed_per_filter_config", {})
        .get(TRANSCODER_FILTER, {})
        .get("ignore_unknown_query_parameters")
    ]
    assert len(tolerant) == 1
    surface, route = tolerant[0]
    assert surface == "api"
    assert re.fullmatch(route["match"]["safe_regex"]["regex"], "/callbacks/v1/oauth")
    assert route["match"]["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]
    override = route["typed_per_filter_config"][TRANSCODER_FILTER]
    assert override["ignore_unknown_query_parameters"] is True
    assert override["request_validation_options"]["reject_unknown_query_parameters"] is False
    assert override["request_validation_options"]["reject_unknown_method"] is True


def test_installation_answers_leave_out_empty_destinations_and_schedules(
    rendered: tuple[Path, dict[str, Any]],
) -> None:
    """Every installation method's transcoded route tells problem.lua which members to
    leave out when empty (OMIT_EMPTY); no other route does."""
    _, config = rendered
    omitting = {
        route["match"]["path"]: route["metadata"]["filter_metadata"][LUA_FILTER]
        for surface in TRANSCODED_SURFACES
        for route in routes_of(config, surface)
        if "omitEmpty" in route.get("metadata", {}).get("filter_metadata", {}).get(LUA_FILTER, {})
    }
    service = "/ampmesh.platform.v1.InstallationService/"
    assert {p for p in omitting if not p.startswith(service)} == set()
    expected = {fact.path for fact in with_omitted_empties(load_route_facts()) if fact.omit_empty}
    assert set(omitting) == expected
    assert f"{service}GetInstallation" in expected and f"{service}ListInstallations" in expected
    assert all(m["omitEmpty"] == ["destination", "schedule"] for m in omitting.values())
    # And kept the list's own shape.
    assert omitting[f"{service}ListInstallations"]["unwrap"] == "installations"


def test_the_grpc_listener_routes_public_services_only(
    rendered: tuple[Path, dict[str, Any]],
) -> None:
    _, config = rendered
    routes = routes_of(config, "grpc")
    prefixes = [r["match"]["prefix"] for r in routes]
    assert prefixes == [f"/{s}/" for s in public_services()]
    writes = {f"/{s}/" for s in surface_services("write")}
    for route in routes:
        written = route["match"]["prefix"] in writes
        assert route["route"]["cluster"] == ("api_write" if written else "api")
    for package in INTERNAL_PACKAGES:
        assert not any(p.startswith(f"/ampmesh.{package}.") for p in prefixes)
    assert not any("grpc." in p for p in prefixes)  # health, reflection
    # Webhooks only through the subscribe host, which sets the URL their signature covers.
    assert not any(p.startswith("/ampmesh.subscribe.") for p in prefixes)
    names = [f["name"] for f in manager(config, "grpc")["http_filters"]]
    # Statuses pass through untouched; headers gRPC cannot carry are refused first (after
    # the request id is settled, which the refusal's log names), then each key's limit.
    assert names == [
        "envoy.filters.http.lua.request_id",
        "envoy.filters.http.lua.request_guard",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.router",
    ]


def test_the_token_manager_listener_requires_mesh_certificates_and_hashes(
    rendered: tuple[Path, dict[str, Any]],
) -> None:
    _, config = rendered
    tls = listener(config, "token-manager")["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    # The mesh CA comes from an SDS file, so a renewed one is taken up without a restart.
    combined = tls["common_tls_context"]["combined_validation_context"]
    source = combined["validation_context_sds_secret_config"]["sds_config"]["path_config_source"]
    (secret,) = json.loads(Path(source["path"]).read_text())["resources"]
    assert secret["validation_context"]["trusted_ca"]["filename"].endswith("ca.pem")
    hcm = manager(config, "token-manager")
    assert hcm["forward_client_cert_details"] == "SANITIZE_SET"
    assert hcm["set_current_client_cert_details"] == {"dns": True}
    (route,) = routes_of(config, "token-manager")
    assert route["match"] == {"prefix": "/ampmesh.token.v1.TokenManagerService/"}
    assert route["route"]["hash_policy"][0]["header"]["header_name"] == "x-ampmesh-connection-id"
    # Only a dead or draining shard is retried on the next: a live shard's UNAVAILABLE
    # (PROVIDER_UNAVAILABLE, RATE_LIMITED) would be repeated against the same provider.
    retry_on = set(route["route"]["retry_policy"]["retry_on"].split(","))
    assert retry_on == {"reset", "connect-failure", "refused-stream"}

    shards = cluster(config, "token_manager")
    assert shards["lb_policy"] == "RING_HASH"
    assert shards["common_lb_config"]["consistent_hashing_lb_config"] == {
        "use_hostname_for_hashing": True
    }
    endpoints = shards["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert {e["endpoint"]["hostname"] for e in endpoints} == set(SHARDS)
    (check,) = shards["health_checks"]
    assert check["grpc_health_check"] == {"service_name": "ampmesh.token.v1.TokenManagerService"}
    upstream = shards["transport_socket"]["typed_config"]["common_tls_context"]
    assert upstream["alpn_protocols"] == ["h2"]
    verify = upstream["combined_validation_context"]["default_validation_context"]
    assert verify["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "token-manager"}}
    ]


def test_the_api_cluster_is_mtls_h2_and_health_checked(
    rendered: tuple[Path, dict[str, Any]],
) -> None:
    _, config = rendered
    api = cluster(config, "api")
    assert api["type"] == "STRICT_DNS"
    address = api["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address == {"socket_address": {"address": "api.internal", "port_value": 50051}}
    tls = api["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["alpn_protocols"] == ["h2"]
    verify = tls["combined_validation_context"]["default_validation_context"]
    assert verify["match_typed_subject_alt_names"][0]["matcher"] == {"exact": "api"}
    assert api["health_checks"][0]["grpc_health_check"] == {}
    # The write surface's own copy, capped apart (test_overload_config.py).
    write = cluster(config, "api_write")
    assert {k: v for k, v in write.items() if k not in ("name", "circuit_breakers")} == {
        **{k: v for k, v in api.items() if k not in ("name", "circuit_breakers")},
        "load_assignment": {**api["load_assignment"], "cluster_name": "api_write"},
    }
    writes = {f"/{s}/" for s in surface_services("write")}
    for surface in (*TRANSCODED_SURFACES, "grpc"):
        for route in routes_of(config, surface):
            if route["route"]["cluster"] == UNROUTED:
                continue  # the REST catch-all: never reaches a cluster
            written = surface == "write" or route["match"].get("prefix") in writes
            assert route["route"]["cluster"] == ("api_write" if written else "api")
            assert route["route"]["max_stream_duration"]["grpc_timeout_header_max"]


def test_every_listener_and_the_admin_bind_loopback_on_booked_ports(
    rendered: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, config = rendered
    addresses = [
        item["address"]["socket_address"] for item in config["static_resources"]["listeners"]
    ]
    addresses.append(config["admin"]["address"]["socket_address"])
    assert {a["address"] for a in addresses} == {"127.0.0.1"}
    assert len({a["port_value"] for a in addresses}) == len(addresses)

    edge = Edge(tmp_path, PortBook(tmp_path), tmp_path / "certs")
    again = Edge(tmp_path, PortBook(tmp_path), tmp_path / "certs")
    assert edge.endpoints() == again.endpoints()  # the same URLs on every start
    assert set(edge.endpoints()) == {*SURFACES, "grpc", "token-manager", "envoy-admin"}


def test_rendering_refuses_what_envoy_could_not_serve(tmp_path: Path) -> None:
    edge = Edge(tmp_path, PortBook(tmp_path), tmp_path / "certs")
    with pytest.raises(EdgeError, match="token-manager shard"):
        edge.render("127.0.0.1:1", {})
    with pytest.raises(EdgeError, match="not host:port"):
        edge.render("127.0.0.1", SHARDS)
    with pytest.raises(EdgeError, match="variable pattern"):
        template_regex("/v1/{name=projects/*}")


async def test_the_edge_is_not_ready_while_a_cluster_has_no_healthy_host(
    tmp_path: Path,
) -> None:
    edge = Edge(tmp_path, PortBook(tmp_path), tmp_path / "certs")
    nothing_there = f"127.0.0.1:{free_port()}"
    edge.render(nothing_there, {"token-manager-0": nothing_there})
    try:
        with pytest.raises(EdgeError, match="healthy host in cluster"):
            await edge.start(within=3)
    finally:
        await edge.stop()
    assert edge.pid is None  # a failed start leaves no Envoy behind


def test_path_templates_become_anchored_regexes() -> None:
    regex = template_regex("/v1/projects/{project_id_or_name}/integrations:batch")
    assert re.fullmatch(regex, "/v1/projects/p-1/integrations:batch")
    assert not re.fullmatch(regex, "/v1/projects/a/b/integrations:batch")
    assert not re.fullmatch(regex, "/v1/projects/p/integrationsXbatch")
    assert re.fullmatch(template_regex("/files/{path=**}"), "/files/a/b/c")


def test_render_config_is_pure_and_deterministic(tmp_path: Path) -> None:
    arguments: dict[str, Any] = {
        "ports": {
            name: 10000 + n
            for n, name in enumerate(
                [*SURFACES, "grpc", "token-manager", "proxy-authz", "envoy-admin"]
            )
        },
        "api_address": "127.0.0.1:50051",
        "token_manager_shards": SHARDS,
        "cert_dir": tmp_path,
        "descriptor": GEN_ENVOY / "ampmesh.binpb",
        "lua": {name: tmp_path / name for name in LUA_SCRIPTS},
        "route_facts": load_route_facts(),
    }
    assert render_config(**arguments) == render_config(**arguments)


# --- routes.json against the contracts and the reference ----------------------------


def test_routes_json_lists_every_bare_array_response() -> None:
    declared = {
        f"/{b.rpc.containing_service.full_name}/{b.rpc.name}": b.rpc.output_type.fields_by_name[
            b.response_body
        ].json_name
        for b in bindings()
        if b.response_body
    }
    unwrap = {fact.path: fact.unwrap for fact in load_route_facts() if fact.unwrap}
    assert unwrap == declared


def test_routes_json_success_statuses_are_the_contracts_options() -> None:
    declared = {}
    for b in bindings():
        options = b.rpc.GetOptions()
        if options.HasExtension(REST):
            status = options.Extensions[REST].success_status
            if status:
                declared[f"/{b.rpc.containing_service.full_name}/{b.rpc.name}"] = status
    facts = {fact.path: fact.success_status for fact in load_route_facts()}
    assert {path: facts.get(path, 200) for path in declared} == declared
    assert {p for p, s in facts.items() if s != 200} == set(declared)


def test_success_statuses_are_the_reference_operations() -> None:
    """Each bound reference operation succeeds with its status: 201, 204, or 200."""
    by_key: dict[tuple[str, str, str], list[str]] = {}
    for b in bindings():
        by_key.setdefault(b.key, []).append(f"/{b.rpc.containing_service.full_name}/{b.rpc.name}")
    facts = {fact.path: fact.success_status for fact in load_route_facts()}
    wrong = []
    for op in operations():
        successes = {
            int(code) for code in op.spec.get("responses", {}) if str(code).startswith("2")
        }
        for path in by_key.get(op.key, []):
            if facts.get(path, 200) not in successes:
                wrong.append(f"{op}: reference {sorted(successes)}, edge {facts.get(path, 200)}")
    assert wrong == []


def test_oauth_callback_is_the_only_tolerant_route() -> None:
    tolerant = [f.path for f in load_route_facts() if f.ignore_unknown_query_parameters]
    assert tolerant == ["/ampmesh.platform.v1.ConnectionService/OauthCallback"]


# --- problem.lua and api_key.lua, run by Envoy --------------------------------------------

STATUS_BODY = {
    "code": 5,
    "message": 'thing "x" not found\n\tü \u0001 \U0001f600 back\\slash',
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [
                {"field": "path.name", "description": "must not be 'bad'"},
                {"field": "query.pageSize", "description": "must be positive"},
                {"field": "size", "description": "must be >= 0"},
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "NOPE", "domain": "x"},
    ],
}
LEAK = (
    "Unexpected <class 'google.protobuf.message.DecodeError'>: Error parsing message with "
    "type 'ampmesh.platform.v1.GetProviderRequest' String field had bad UTF-8 " + "x" * 400
)
LEAK_STATUS = {
    "code": 13,
    "message": LEAK,
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "path.provider", "description": LEAK}],
        }
    ],
}
NESTED = (
    '{"decoy":"\\"items\\":[\\"no\\"]","items":[{"a":{"b":[1,-2.5e3,{"c":"}]"}]},'
    '"s":"q\\"\\\\ \\u00fc \\ud83d\\ude00","t":true,"n":null,"e":{}}],"after":[]}'
)
UNWRAPPED = (
    '[{"a":{"b":[1,-2.5e3,{"c":"}]"}]},'
    '"s":"q\\"\\\\ \\u00fc \\ud83d\\ude00","t":true,"n":null,"e":{}}]'
)


def _canned(
    path: str,
    status: int,
    body: str,
    content_type: str = "application/json",
    metadata: dict[str, Any] | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """A route answering like the transcoder would, with the edge's route metadata."""
    added = [("content-type", content_type), *headers]
    route: dict[str, Any] = {
        "match": {"path": path},
        "direct_response": {"status": status, "body": {"inline_string": body}},
        "response_headers_to_add": [
            {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for k, v in added
        ],
    }
    if metadata:
        route["metadata"] = {"filter_metadata": {LUA_FILTER: metadata}}
    return route


# What an installation's answer looks like to problem.lua, with decoys: the names inside
# strings and keys, a non-empty value, and nested empties in objects and arrays.
OMIT_BODY = (
    '{"config":{"content":{"read":{"objects":{"contacts":{"objectName":"contacts",'
    '"schedule":"","destination":"","selectedFields":{},"selectedFieldMappings":{}},'
    '"deals":{"destination":"hook","schedule":"0 * * * *"},'
    '"x\\"destination\\"":{"schedule" : "" , "note":"\\"schedule\\":\\"\\""}}}}},'
    '"list":[{"destination":""},[],{}],"n":1.50,"empty":""}'
)
OMITTED = (
    '{"config":{"content":{"read":{"objects":{"contacts":{"objectName":"contacts",'
    '"selectedFields":{},"selectedFieldMappings":{}},'
    '"deals":{"destination":"hook","schedule":"0 * * * *"},'
    '"x\\"destination\\"":{"note":"\\"schedule\\":\\"\\""}}}}},'
    '"list":[{},[],{}],"n":1.50,"empty":""}'
)


CANNED = [
    _canned("/unwrap/nested", 200, NESTED, metadata={"unwrap": "items"}),
    _canned("/unwrap/empty", 200, '{"items":[]}', metadata={"unwrap": "items"}),
    _canned("/unwrap/absent", 200, '{"nextPageToken":""}', metadata={"unwrap": "items"}),
    _canned("/unwrap/spaced", 200, '{ "items" : [ 1 , "a b" ] }\n', metadata={"unwrap": "items"}),
    _canned("/unwrap/broken", 200, '{"items":[1,', metadata={"unwrap": "items"}),
    _canned(
        "/created",
        200,
        '{"id":"p-1"}',
        metadata={"successStatus": 201},
        headers=(("grpc-status", "0"), ("grpc-message", ""), ("grpc-accept-encoding", "gzip")),
    ),
    _canned("/deleted", 200, "{}", metadata={"successStatus": 204}),
    _canned("/omit", 200, OMIT_BODY, metadata={"omitEmpty": ["destination", "schedule"]}),
    _canned(
        "/omit/list",
        200,
        '{"items":[{"schedule":"","a":1},{"schedule":"0 * * * *"}]}',
        metadata={"unwrap": "items", "omitEmpty": ["schedule"]},
    ),
    _canned("/omit/broken", 200, '{"schedule":"",', metadata={"omitEmpty": ["schedule"]}),
    _canned("/plain", 200, '{"id":"p-1"}', headers=(("grpc-status", "0"),)),
    _canned("/status", 404, json.dumps(STATUS_BODY)),
    _canned("/status/no-details", 501, '{"code":12,"message":"not built yet"}'),
    # 500s (INTERNAL, UNKNOWN, DATA_LOSS): only the runtime's own text reaches clients.
    _canned("/internal/leak", 500, json.dumps(LEAK_STATUS)),
    _canned(
        "/internal/ours",
        500,
        '{"code":13,"message":"internal error (request id 7f0c-upstream-id)"}',
    ),
    _canned(
        "/internal/grpc-message",
        500,
        "",
        content_type="application/grpc",
        headers=(("grpc-status", "2"), ("grpc-message", "Illegal header key: x~y")),
    ),
    _canned("/internal/text", 500, "Traceback (most recent call last):\n  File x", "text/plain"),
    # Other 5xx keep their messages: what is unavailable, what is not built.
    _canned(
        "/unavailable",
        503,
        json.dumps(
            {
                "code": 14,
                "message": "provider salesforce is unavailable",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "5s"}
                ],
            }
        ),
    ),
    # The transcoder gave up (a detail type it does not know): only grpc-message is left.
    _canned(
        "/gave-up",
        503,
        "",
        content_type="application/grpc",
        headers=(("grpc-status", "14"), ("grpc-message", "caf%%C3%%A9 is down")),
    ),
    _canned("/text", 502, "upstream said no", content_type="text/plain"),
    _canned("/binary", 500, "\u0000\u0001", content_type="application/octet-stream"),
    # A native gRPC error: HTTP 200, the status in grpc-status. (A canned reply needs a
    # body to keep its content-type.)
    _canned(
        "/native", 200, "\u0000", content_type="application/grpc", headers=(("grpc-status", "5"),)
    ),
    # Envoy's own replies, already problem+json (local_reply_config).
    _canned(
        "/local/query",
        400,
        '{"type":"about:blank","title":"Bad Request","status":400,"detail":"Could not find field '
        '\\"foo\\" in the type \\"x.v1.GetRequest\\".","requestId":"rid-local"}',
        content_type="application/problem+json",
    ),
    _canned(
        "/local/body",
        400,
        '{"type":"about:blank","title":"Bad Request","status":400,'
        '"detail":"project.org_id: invalid value true for type TYPE_STRING","requestId":"r"}',
        content_type="application/problem+json",
    ),
    _canned(
        "/local/other",
        404,
        '{"detail":"Could not resolve /v1/nope to a method.","requestId":"r","status":404,'
        '"title":"Not Found","type":"about:blank"}',
        content_type="application/problem+json",
    ),
    # Echoes what api_key.lua left of the request.
    {
        "match": {"prefix": "/key"},
        "direct_response": {"status": 200, "body": {"inline_string": "{}"}},
        "response_headers_to_add": [
            {"header": {"key": "x-seen-key", "value": "%REQ(X-API-KEY)%"}},
            {"header": {"key": "x-seen-path", "value": "%REQ(:PATH)%"}},
        ],
    },
]


def _lua_harness(port: int, admin: int, scripts: dict[str, Path]) -> dict[str, Any]:
    """A listener with the REST listeners' Lua filters (as write_lua wrote them) in front
    of CANNED."""

    def filter_(name: str, kind: str, config: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "typed_config": {"@type": f"type.googleapis.com/{kind}", **config}}

    def lua(name: str, script: str) -> dict[str, Any]:
        source = {"default_source_code": {"filename": str(scripts[script])}}
        return filter_(name, "envoy.extensions.filters.http.lua.v3.Lua", source)

    # As on the edge's REST listeners: problem.lua reads x-request-id from responses.
    request_id = {
        "header": {"key": "x-request-id", "value": "%REQ(X-REQUEST-ID)%"},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
    }
    host = {
        "name": "lua",
        "domains": ["*"],
        "routes": CANNED,
        "response_headers_to_add": [request_id],
    }
    manager = filter_(
        "envoy.filters.network.http_connection_manager",
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        {
            "stat_prefix": "lua",
            "route_config": {"virtual_hosts": [host]},
            "http_filters": [
                lua(LUA_FILTER, "problem.lua"),
                lua("api_key", "api_key.lua"),
                filter_("router", "envoy.extensions.filters.http.router.v3.Router", {}),
            ],
        },
    )
    loopback = {"address": "127.0.0.1"}
    return {
        "admin": {"address": {"socket_address": {**loopback, "port_value": admin}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "lua",
                    "address": {"socket_address": {**loopback, "port_value": port}},
                    "filter_chains": [{"filters": [manager]}],
                }
            ]
        },
    }


@pytest.fixture(scope="module")
def lua_envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """An Envoy running the edge's Lua scripts in front of canned responses, and its log."""
    with running_envoy(tmp_path_factory.mktemp("lua-harness"), _lua_harness) as running:
        yield running


@pytest.fixture(scope="module")
def lua(lua_envoy: tuple[httpx.Client, Path]) -> httpx.Client:
    return lua_envoy[0]


def _logged(log: Path, text: str) -> str:
    """The line of Envoy's log holding `text` (Envoy writes its log asynchronously)."""
    for _ in range(100):
        for line in log.read_text().splitlines():
            if text in line:
                return line
        time.sleep(0.05)
    pytest.fail(f"Envoy's log has no line with {text!r}: {log.read_text()[-2000:]}")


def test_omit_empty_leaves_out_only_the_named_empty_members(lua: httpx.Client) -> None:
    response = lua.get("/omit")
    assert response.status_code == 200
    # Byte for byte otherwise: the numbers as printed, the decoys in strings and keys kept,
    # the empty maps the reference requires kept.
    assert response.text == OMITTED
    assert json.loads(OMITTED)  # still JSON
    listed = lua.get("/omit/list")
    assert listed.json() == [{"a": 1}, {"schedule": "0 * * * *"}]


def test_omit_empty_leaves_a_body_it_cannot_read_alone(
    lua_envoy: tuple[httpx.Client, Path],
) -> None:
    client, log = lua_envoy
    response = client.get("/omit/broken")
    assert response.status_code == 200 and response.text == '{"schedule":"",'
    assert "omitEmpty" in _logged(log, "omitEmpty: the response is not JSON")


def test_unwrap_copies_the_member_exactly(lua: httpx.Client) -> None:
    response = lua.get("/unwrap/nested")
    assert response.status_code == 200
    # Bytes as the transcoder printed them: escapes, numbers and key order untouched, and
    # the decoy (the member's name inside a string) not taken for the member.
    assert response.text == UNWRAPPED
    assert response.json() == json.loads(NESTED)["items"]
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "body"),
    [("/unwrap/empty", "[]"), ("/unwrap/absent", "[]"), ("/unwrap/spaced", '[ 1 , "a b" ]')],
)
def test_unwrap_of_empty_absent_and_spaced_lists(lua: httpx.Client, path: str, body: str) -> None:
    response = lua.get(path)
    assert (response.status_code, response.text) == (200, body)


def test_a_body_that_is_not_json_is_left_alone(lua: httpx.Client) -> None:
    response = lua.get("/unwrap/broken")
    assert (response.status_code, response.text) == (200, '{"items":[1,')


def test_success_status_and_grpc_headers(lua: httpx.Client) -> None:
    created = lua.get("/created")
    assert (created.status_code, created.text) == (201, '{"id":"p-1"}')
    assert not [h for h in created.headers if h.startswith("grpc-")]

    deleted = lua.get("/deleted")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert "content-type" not in deleted.headers
    assert "content-length" not in deleted.headers

    plain = lua.get("/plain")
    assert (plain.status_code, plain.text) == (200, '{"id":"p-1"}')
    assert "grpc-status" not in plain.headers


def test_grpc_status_json_becomes_a_problem_with_issues(lua: httpx.Client) -> None:
    response = lua.get("/status", headers={"x-request-id": "rid-1"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "rid-1"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": STATUS_BODY["message"],  # quotes, \n, \t, ü, U+0001, an emoji, a backslash
        "requestId": "rid-1",
        "issues": [
            {"in": "path", "name": "name", "detail": "must not be 'bad'"},
            {"in": "query", "name": "pageSize", "detail": "must be positive"},
            {"in": "body", "name": "size", "detail": "must be >= 0"},
        ],
    }


def test_a_problem_without_violations_has_no_issues(lua: httpx.Client) -> None:
    response = lua.get("/status/no-details")
    problem = response.json()
    assert (response.status_code, problem["title"], problem["detail"]) == (
        501,
        "Not Implemented",
        "not built yet",
    )
    assert "issues" not in problem
    assert problem["requestId"] == response.headers["x-request-id"]


def test_fallbacks_never_quote_binary_bodies(lua: httpx.Client) -> None:
    gave_up = lua.get("/gave-up")
    assert gave_up.status_code == 503
    assert gave_up.json()["detail"] == "café is down"  # grpc-message, percent-decoded
    assert not [h for h in gave_up.headers if h.startswith("grpc-")]
    assert lua.get("/text").json()["detail"] == "upstream said no"
    binary = lua.get("/binary").json()
    assert (binary["title"], binary["detail"]) == ("Internal Server Error", "Internal Server Error")


def test_native_grpc_responses_pass_untouched(lua: httpx.Client) -> None:
    response = lua.get("/native")
    assert response.status_code == 200
    assert response.headers["grpc-status"] == "5"
    assert response.headers["content-type"] == "application/grpc"


def test_local_replies_gain_issues_only_where_envoy_says_which_input(lua: httpx.Client) -> None:
    query = lua.get("/local/query").json()
    assert query["issues"] == [{"in": "query", "name": "foo", "detail": "unknown query parameter"}]
    assert query["requestId"] == "rid-local"  # Envoy's own, kept
    body = lua.get("/local/body").json()
    assert body["issues"] == [
        {
            "in": "body",
            # camel-cased as the client wrote it; this canned route binds no body field
            "name": "project.orgId",
            "detail": "invalid value true for type TYPE_STRING",
        }
    ]
    other = lua.get("/local/other")
    assert other.text == (
        '{"detail":"Could not resolve /v1/nope to a method.","requestId":"r","status":404,'
        '"title":"Not Found","type":"about:blank"}'
    )


@pytest.mark.parametrize(
    ("url", "headers", "key", "path"),
    [
        ("/key/a?x=1&apiKey=k%2By&z=2", {}, "k+y", "/key/a?x=1&z=2"),
        ("/key/b?apiKey=only", {}, "only", "/key/b"),
        ("/key/c?apiKey=first&apiKey=second", {}, "first", "/key/c"),
        # A header the client set wins; the query parameter still leaves.
        ("/key/d?apiKey=query", {"x-api-key": "header"}, "header", "/key/d"),
        # CR/LF cannot be smuggled into a header: the key is dropped.
        ("/key/e?apiKey=bad%0d%0aX-Evil:%201", {}, None, "/key/e"),
        ("/key/f?apiKeyish=1", {}, None, "/key/f?apiKeyish=1"),
        ("/key/g", {}, None, "/key/g"),
    ],
)
def test_api_key_moves_from_the_query_to_the_header(
    lua: httpx.Client, url: str, headers: dict[str, str], key: str | None, path: str
) -> None:
    response = lua.get(url, headers=headers)
    assert response.status_code == 200
    assert response.headers.get("x-seen-key") == key
    assert response.headers["x-seen-path"] == path


def test_a_500_never_passes_on_upstream_text(lua_envoy: tuple[httpx.Client, Path]) -> None:
    lua, log = lua_envoy
    response = lua.get("/internal/leak", headers={"x-request-id": "rid-leak"})
    assert response.status_code == 500
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        # The runtime's own form (services/runtime/errors.py internal_error_message), with
        # this request's id; the violations went with the text they might quote.
        "detail": "internal error (request id rid-leak)",
        "requestId": "rid-leak",
    }
    # The operator finds what was withheld by the request id, cut short.
    line = _logged(log, "rid-leak")
    assert "[warning]" in line
    assert "withheld" in line
    assert LEAK[:300] in line
    assert LEAK[:301] not in line

    for path in ("/internal/grpc-message", "/internal/text"):
        problem = lua.get(path, headers={"x-request-id": "rid-2"}).json()
        assert (problem["status"], problem["detail"]) == (500, "internal error (request id rid-2)")
    _logged(log, "Illegal header key: x~y")

    # The runtime's own form is kept: its id is the one the api logged the trace under.
    problem = lua.get("/internal/ours", headers={"x-request-id": "rid-3"}).json()
    assert problem["detail"] == "internal error (request id 7f0c-upstream-id)"
    assert problem["requestId"] == "rid-3"


def test_other_errors_keep_their_messages(lua: httpx.Client) -> None:
    unavailable = lua.get("/unavailable").json()
    assert (unavailable["status"], unavailable["detail"]) == (
        503,
        "provider salesforce is unavailable",
    )
    assert lua.get("/status/no-details").json()["detail"] == "not built yet"  # 501
    assert lua.get("/status").json()["detail"] == STATUS_BODY["message"]  # 404
