"""CORS at the edge: the setting (AMPMESH_CORS_ALLOWED_ORIGINS), the policy it renders on
every public REST surface, and what a real Envoy running the rendered edge answers a
browser: preflights 204, Access-Control-Allow-Origin on errors and Envoy's own replies,
nothing for an origin not allowed. No api runs behind it: the answers checked here are
the edge's own (tests/e2e/test_cors.py checks the api's answers through the whole mesh).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.launcher.cors import (
    ALLOWED_HEADERS,
    ENVIRONMENT_VARIABLE,
    CorsSettingError,
    CorsSettings,
)
from services.launcher.edge import (
    GEN_ENVOY,
    PORT_NAMES,
    SURFACES,
    Edge,
    EdgeError,
    load_route_facts,
    render_config,
    write_lua,
)
from services.launcher.ports import PortBook, free_port
from services.runtime.tls import ensure_service_credentials
from tests.edge.harness import running_envoy

ALLOWED = "https://app.example.com"
OTHER = "https://elsewhere.example.net"
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type,x-api-key,x-amp-client,x-amp-client-version",
}


# The setting ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "*", " * ", ","])
def test_blank_or_star_allows_any_origin(text: str) -> None:
    assert CorsSettings.parse(text).any_origin


def test_a_list_of_origins_is_kept_exact_lowered_and_once() -> None:
    settings = CorsSettings.parse(
        "https://App.Example.com, http://localhost:3000,https://app.example.com"
    )
    assert settings.origins == ("https://app.example.com", "http://localhost:3000")
    matchers = settings.policy()["allow_origin_string_match"]
    assert matchers == [{"exact": "https://app.example.com"}, {"exact": "http://localhost:3000"}]


@pytest.mark.parametrize(
    "text",
    [
        "app.example.com",  # no scheme
        "https://app.example.com/",  # a path
        "https://app.example.com/ui",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://app.example.com,*",  # '*' among others
    ],
)
def test_what_is_not_an_origin_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(CorsSettingError, match=ENVIRONMENT_VARIABLE):
        CorsSettings.parse(text)


def test_the_edge_reads_the_setting_and_refuses_a_bad_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, ALLOWED)
    assert Edge(tmp_path, PortBook(tmp_path), tmp_path / "certs").cors.origins == (ALLOWED,)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "app.example.com")
    with pytest.raises(EdgeError, match="is not an origin"):
        Edge(tmp_path, PortBook(tmp_path), tmp_path / "certs")


# The rendered configuration ----------------------------------------------------------------


def _render(cors: CorsSettings, tmp_path: Path, **ports: int) -> dict[str, Any]:
    certs = tmp_path / "certs"
    ensure_service_credentials(certs, "envoy")
    booked = {name: free_port() for name in PORT_NAMES}
    booked.update(ports)
    return render_config(
        ports=booked,
        api_address="127.0.0.1:1",  # nothing listens: the answers are the edge's own
        token_manager_shards={"token-manager-0": "127.0.0.1:2"},
        cert_dir=certs,
        descriptor=GEN_ENVOY / "ampmesh.binpb",
        lua=write_lua(tmp_path),
        route_facts=load_route_facts(),
        cors=cors,
    )


def _manager(config: dict[str, Any], name: str) -> dict[str, Any]:
    listener = next(x for x in config["static_resources"]["listeners"] if x["name"] == name)
    manager: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return manager


def test_every_public_surface_has_the_policy(tmp_path: Path) -> None:
    config = _render(CorsSettings.parse(ALLOWED), tmp_path)
    for surface in SURFACES:
        (host,) = _manager(config, surface)["route_config"]["virtual_hosts"]
        policy = host["typed_per_filter_config"]["envoy.filters.http.cors"]
        assert policy["allow_origin_string_match"] == [{"exact": ALLOWED}], surface
        assert policy["forward_not_matching_preflights"] is False
        assert policy["allow_credentials"] is False
        # The catch-all, so that every request finds the policy on a route.
        assert host["routes"][-1]["match"] == {"prefix": "/"}
    # Native gRPC clients are not browsers.
    grpc = _manager(config, "grpc")
    assert "typed_per_filter_config" not in grpc["route_config"]["virtual_hosts"][0]


# A real Envoy running the rendered edge -------------------------------------------------


def _edge_harness(cors: CorsSettings, directory: Path) -> Callable[..., dict[str, Any]]:
    def harness(port: int, admin: int, scripts: dict[str, Path]) -> dict[str, Any]:
        del scripts  # _render writes its own beside the configuration
        return json.loads(json.dumps(_render(cors, directory, api=port, **{"envoy-admin": admin})))

    return harness


@pytest.fixture(scope="module")
def any_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory = tmp_path_factory.mktemp("cors-any")
    with running_envoy(directory, _edge_harness(CorsSettings(), directory)) as (client, _):
        yield client


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory = tmp_path_factory.mktemp("cors-restricted")
    settings = CorsSettings.parse(ALLOWED)
    with running_envoy(directory, _edge_harness(settings, directory)) as (client, _):
        yield client


def _allowed_headers(response: httpx.Response) -> set[str]:
    return {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}


@pytest.mark.parametrize("path", ["/v1/projects/p/integrations", "/no/such/path"])
def test_a_preflight_is_answered_204_with_the_policy(any_origin: httpx.Client, path: str) -> None:
    response = any_origin.options(path, headers={"origin": OTHER, **PREFLIGHT})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == OTHER  # echoed, not '*'
    methods = set(response.headers["access-control-allow-methods"].split(","))
    assert methods == {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    assert set(ALLOWED_HEADERS) <= _allowed_headers(response)
    assert {"x-amp-client", "x-amp-client-version", "x-api-key"} <= _allowed_headers(response)
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in response.headers["vary"].lower()


def test_edge_errors_carry_the_origin(any_origin: httpx.Client) -> None:
    origin = {"origin": OTHER}
    answers = {
        # The transcoder's own 404 for a path no method has.
        "unknown path": any_origin.get("/v1/no/such/thing", headers=origin),
        # request_guard.lua's 400.
        "refused header": any_origin.get("/v1/projects/p", headers={**origin, "x~y": "1"}),
        # The transcoder's 400 for a body that is not JSON.
        "bad body": any_origin.post(
            "/v1/projects", headers={**origin, "content-type": "application/json"}, content="{"
        ),
        # The buffer filter's 413.
        "too large": any_origin.post(
            "/v1/projects",
            headers={**origin, "content-type": "application/json"},
            content=b"x" * (1024 * 1024 + 10),
        ),
        # The api is down: Envoy's 503.
        "upstream down": any_origin.get("/v1/projects/p", headers=origin),
    }
    for what, response in answers.items():
        assert response.status_code >= 400, what
        assert response.headers["content-type"] == "application/problem+json", what
        assert response.headers.get("access-control-allow-origin") == OTHER, what
        assert "x-request-id" in response.headers["access-control-expose-headers"], what


def test_a_request_envoy_could_not_read_still_tells_the_page(any_origin: httpx.Client) -> None:
    response = any_origin.get("/v1/projects/p", headers={"origin": OTHER, "x-big": "a" * 70_000})
    assert response.status_code == 431
    assert response.headers["access-control-allow-origin"] == "*"


def test_an_origin_not_listed_gets_no_cors_headers(restricted: httpx.Client) -> None:
    allowed = restricted.options("/v1/projects/p", headers={"origin": ALLOWED, **PREFLIGHT})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    refused = restricted.options("/v1/projects/p", headers={"origin": OTHER, **PREFLIGHT})
    assert "access-control-allow-origin" not in refused.headers
    for origin in (OTHER, ALLOWED + ".evil.example", "http://app.example.com"):
        error = restricted.get("/v1/no/such/thing", headers={"origin": origin})
        assert error.status_code == 404
        assert "access-control-allow-origin" not in error.headers, origin
    assert (
        restricted.get("/v1/no/such/thing", headers={"origin": ALLOWED}).headers[
            "access-control-allow-origin"
        ]
        == ALLOWED
    )
    # Envoy never read this request, so it cannot know the Origin: nothing is allowed.
    big = restricted.get("/v1/projects/p", headers={"origin": ALLOWED, "x-big": "a" * 70_000})
    assert big.status_code == 431
    assert "access-control-allow-origin" not in big.headers


def test_a_request_without_origin_gets_no_cors_headers(any_origin: httpx.Client) -> None:
    response = any_origin.get("/v1/no/such/thing")
    assert response.status_code == 404
    assert "access-control-allow-origin" not in response.headers
    # An OPTIONS that is not a preflight is no CORS matter: the transcoder has no method.
    assert any_origin.options("/v1/projects/p").status_code == 404
