"""Shedding at the edge and the client's request id: the settings (AMPMESH_EDGE_*), what
they render on each listener and the api cluster, and what a real Envoy running the
rendered edge answers: a key past its rate gets a 429 problem+json with Retry-After,
while other keys go on; a client's sane x-request-id is kept, any other replaced.

No api runs behind the edge here (its port is closed), so a request the edge lets through
is answered 503 "upstream service unavailable": a 429 is the edge's decision alone.
tests/e2e/test_overload.py drives the whole mesh past its limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.launcher.edge import (
    API_INTERNAL,
    API_WRITE,
    BUFFER_FILTER,
    GEN_ENVOY,
    OVERLOAD_VARIABLES,
    PORT_NAMES,
    PROXY,
    RATE_LIMIT_FILTER,
    REQUEST_GUARD_FILTER,
    REQUEST_ID_FILTER,
    SUBSCRIBE,
    SURFACES,
    TRANSCODED_SURFACES,
    Edge,
    EdgeError,
    OverloadSettings,
    load_route_facts,
    render_config,
    write_lua,
)
from services.launcher.ports import PortBook, free_port
from services.runtime.tls import ensure_service_credentials
from tests.edge.harness import running_envoy

PUBLIC = (*SURFACES, "grpc")
# Providers send no API key (services/launcher/edge.py, SUBSCRIBE): no per-key limit.
KEYED = tuple(name for name in PUBLIC if name != SUBSCRIBE)
INTERNAL = ("token-manager", "proxy-authz")
FRESH_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


# The settings ------------------------------------------------------------------------------


def test_the_settings_come_from_the_environment() -> None:
    assert OverloadSettings.from_environment({}) == OverloadSettings()
    read = OverloadSettings.from_environment(
        {
            "AMPMESH_EDGE_RATE_LIMIT_PER_KEY": "50",
            "AMPMESH_EDGE_MAX_REQUESTS": " 20 ",
            "AMPMESH_EDGE_MAX_WRITE_REQUESTS": "30",
            "AMPMESH_EDGE_MAX_PENDING_REQUESTS": "5",
        }
    )
    # The burst follows the rate when only the rate is set.
    assert read == OverloadSettings(
        per_key_rate=50,
        per_key_burst=100,
        max_requests=20,
        max_write_requests=30,
        max_pending_requests=5,
    )
    both = {"AMPMESH_EDGE_RATE_LIMIT_PER_KEY": "50", "AMPMESH_EDGE_RATE_LIMIT_BURST": "60"}
    assert OverloadSettings.from_environment(both).per_key_burst == 60


@pytest.mark.parametrize("variable", sorted(OVERLOAD_VARIABLES.values()))
@pytest.mark.parametrize("value", ["0", "-3", "ten", "1.5", "1e3"])
def test_a_bad_value_is_refused_naming_its_variable(variable: str, value: str) -> None:
    with pytest.raises(EdgeError, match=f"^{variable}: .*whole number"):
        OverloadSettings.from_environment({variable: value})


def test_a_burst_smaller_than_the_rate_is_refused() -> None:
    with pytest.raises(EdgeError, match="AMPMESH_EDGE_RATE_LIMIT_BURST"):
        OverloadSettings.from_environment(
            {"AMPMESH_EDGE_RATE_LIMIT_PER_KEY": "50", "AMPMESH_EDGE_RATE_LIMIT_BURST": "10"}
        )


def test_the_edge_reads_the_settings_and_refuses_a_bad_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AMPMESH_EDGE_MAX_REQUESTS", "7")
    assert Edge(tmp_path, PortBook(tmp_path), tmp_path / "certs").overload.max_requests == 7
    monkeypatch.setenv("AMPMESH_EDGE_MAX_REQUESTS", "many")
    with pytest.raises(EdgeError, match="AMPMESH_EDGE_MAX_REQUESTS"):
        Edge(tmp_path, PortBook(tmp_path), tmp_path / "certs")


# The rendered configuration ------------------------------------------------------------------


def _render(overload: OverloadSettings, directory: Path, **ports: int) -> dict[str, Any]:
    certs = directory / "certs"
    ensure_service_credentials(certs, "envoy")
    booked = {name: free_port() for name in PORT_NAMES}
    booked.update(ports)
    config = render_config(
        ports=booked,
        api_address="127.0.0.1:1",  # nothing listens: the answers are the edge's own
        token_manager_shards={"token-manager-0": "127.0.0.1:2"},
        cert_dir=certs,
        descriptor=GEN_ENVOY / "ampmesh.binpb",
        lua=write_lua(directory),
        route_facts=load_route_facts(),
        overload=overload,
    )
    # Plain dicts and lists, as Envoy reads the file.
    loaded: dict[str, Any] = json.loads(json.dumps(config))
    return loaded


def _manager(config: dict[str, Any], name: str) -> dict[str, Any]:
    listener = next(x for x in config["static_resources"]["listeners"] if x["name"] == name)
    manager: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return manager


def _filter_names(config: dict[str, Any], listener: str) -> list[str]:
    return [f["name"] for f in _manager(config, listener)["http_filters"]]


def test_every_public_listener_limits_each_key_and_no_internal_one_does(tmp_path: Path) -> None:
    settings = OverloadSettings(per_key_rate=3, per_key_burst=5)
    config = _render(settings, tmp_path)
    assert RATE_LIMIT_FILTER not in _filter_names(config, SUBSCRIBE)
    for name in KEYED:
        names = _filter_names(config, name)
        assert names.count(RATE_LIMIT_FILTER) == 1, name
        limit = _manager(config, name)["http_filters"][names.index(RATE_LIMIT_FILTER)]
        buckets = [d["token_bucket"] for d in limit["typed_config"]["descriptors"]]
        assert buckets == [{"max_tokens": 5, "tokens_per_fill": 3, "fill_interval": "1s"}] * 2
        headers = [
            a["request_headers"]["header_name"]
            for rule in limit["typed_config"]["rate_limits"]
            for a in rule["actions"]
        ]
        assert headers == ["x-api-key", "authorization"], name
    for name in INTERNAL:
        assert RATE_LIMIT_FILTER not in _filter_names(config, name), name
    for surface in set(TRANSCODED_SURFACES) & set(KEYED):
        names = _filter_names(config, surface)
        # After the header guard (and api_key.lua: `?apiKey=` counts as the header), and
        # before the body is buffered.
        limit = names.index(RATE_LIMIT_FILTER)
        assert names.index(REQUEST_GUARD_FILTER) < limit < names.index(BUFFER_FILTER)
        if "envoy.filters.http.lua.api_key" in names:
            assert names.index("envoy.filters.http.lua.api_key") < limit
    proxy = _filter_names(config, PROXY)
    assert proxy.index(RATE_LIMIT_FILTER) < proxy.index("envoy.filters.http.lua.proxy")


def test_the_api_cluster_caps_public_requests_but_not_the_edges_own_calls(
    tmp_path: Path,
) -> None:
    settings = OverloadSettings(max_requests=11, max_write_requests=30, max_pending_requests=4)
    config = _render(settings, tmp_path)
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    (threshold,) = clusters["api"]["circuit_breakers"]["thresholds"]
    assert (threshold["max_requests"], threshold["max_pending_requests"]) == (11, 4)
    # The write surface is capped apart.
    (threshold,) = clusters[API_WRITE]["circuit_breakers"]["thresholds"]
    assert (threshold["max_requests"], threshold["max_pending_requests"]) == (30, 4)
    write_routes = _manager(config, "write")["route_config"]["virtual_hosts"][0]["routes"]
    assert {r["route"]["cluster"] for r in write_routes} == {API_WRITE, "unrouted"}
    # The same host, health-checked alike, without the cap.
    internal = clusters[API_INTERNAL]
    assert "circuit_breakers" not in internal
    assert (
        internal["load_assignment"]["endpoints"] == clusters["api"]["load_assignment"]["endpoints"]
    )
    assert internal["health_checks"] == clusters["api"]["health_checks"]
    for name in PUBLIC:
        for route in _manager(config, name)["route_config"]["virtual_hosts"][0]["routes"]:
            assert route.get("route", {}).get("cluster") != API_INTERNAL, name
    (authz,) = _manager(config, "proxy-authz")["route_config"]["virtual_hosts"][0]["routes"]
    assert authz["route"]["cluster"] == API_INTERNAL
    loggers = _manager(config, PROXY)["access_log"]
    grpc_logs = [a for a in loggers if a["name"] == "envoy.access_loggers.http_grpc"]
    service = grpc_logs[0]["typed_config"]["common_config"]["grpc_service"]
    assert service["envoy_grpc"]["cluster_name"] == API_INTERNAL


def test_every_public_listener_judges_the_clients_request_id_first(tmp_path: Path) -> None:
    config = _render(OverloadSettings(), tmp_path)
    for name in PUBLIC:
        manager = _manager(config, name)
        assert manager["early_header_mutation_extensions"], name
        names = _filter_names(config, name)
        # Before any filter that may answer (problem.lua, first on REST, has no request path).
        first = 1 if name in TRANSCODED_SURFACES else 0
        assert names.index(REQUEST_ID_FILTER) == first, (name, names)
    for name in INTERNAL:
        assert REQUEST_ID_FILTER not in _filter_names(config, name), name


# A real Envoy running the rendered edge ----------------------------------------------------


def _edge_harness(overload: OverloadSettings, directory: Path) -> Callable[..., dict[str, Any]]:
    def harness(port: int, admin: int, scripts: dict[str, Path]) -> dict[str, Any]:
        del scripts  # _render writes its own beside the configuration
        return _render(overload, directory, api=port, **{"envoy-admin": admin})

    return harness


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory = tmp_path_factory.mktemp("overload-edge")
    # One request a second, two at once: a test's few requests cross it.
    settings = OverloadSettings(per_key_rate=1, per_key_burst=2)
    with running_envoy(directory, _edge_harness(settings, directory)) as (client, _):
        yield client


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["requestId"] == response.headers["x-request-id"]
    return problem


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_a_key_past_its_rate_is_told_to_retry_and_other_keys_go_on(
    edge: httpx.Client, header: str
) -> None:
    secret = f"secret-{header}-a"
    if header == "authorization":
        secret = f"Bearer {secret}"
    path = "/v1/projects/p"
    answers = [edge.get(path, headers={header: secret}) for _ in range(4)]
    # The burst (2) passes to the api, which is down here; the bucket refills one a
    # second, so of the next two at most one more passes.
    assert [a.status_code for a in answers[:2]] == [503, 503]
    shed = [a for a in answers[2:] if a.status_code == 429]
    assert shed, [a.status_code for a in answers]
    problem = _problem(shed[0], 429)
    assert problem["title"] == "Too Many Requests"
    assert problem["detail"]
    assert shed[0].headers["retry-after"] == "1"
    assert secret not in shed[0].text
    assert "secret" not in json.dumps(dict(shed[0].headers))
    # Another key, and a caller with none, are not this key's bucket.
    assert edge.get(path, headers={header: f"{secret}-other"}).status_code == 503
    assert edge.get(path).status_code == 503


def test_a_sane_client_request_id_is_kept_and_any_other_replaced(edge: httpx.Client) -> None:
    kept = edge.get("/v1/projects/p", headers={"x-request-id": "client-1.a_b:c"})
    assert _problem(kept, 503)["requestId"] == "client-1.a_b:c"
    for bad in ("a" * 129, "two words", 'quote"d', "{x}"):
        replaced = edge.get("/v1/projects/p", headers={"x-request-id": bad})
        assert FRESH_ID.fullmatch(_problem(replaced, 503)["requestId"]), bad
    # A client cannot pass an id off through the header the edge sets the id aside in.
    aside = edge.get("/v1/projects/p", headers={"x-ampmesh-client-request-id": "sneaky"})
    assert FRESH_ID.fullmatch(_problem(aside, 503)["requestId"])
