"""The edge's subscribe host (providers' change webhooks): its routes pass raw bodies and
any query to the api's ProviderWebhookService, with no per-key limit, and
envoy/original_uri.lua tells the api the URL the provider called, whatever a client says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from services.domain.subscribe_names import (
    ORIGINAL_URI_HEADER,
    installation_webhook_path,
    integration_webhook_path,
)
from services.launcher.edge import (
    BODY_SHAPE_FILTER,
    ORIGINAL_URI_FILTER,
    RATE_LIMIT_FILTER,
    SUBSCRIBE,
    TRANSCODER_FILTER,
    Edge,
    surface_services,
)
from services.launcher.ports import PortBook
from tests.edge.harness import running_envoy

SERVICE = "ampmesh.subscribe.v1.ProviderWebhookService"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("edge-home")
    edge = Edge(home, PortBook(home), home / "certs")
    path = edge.render("127.0.0.1:50051", {"token-manager-0": "127.0.0.1:50061"})
    assert edge.endpoints()[SUBSCRIBE] == f"http://127.0.0.1:{edge.ports[SUBSCRIBE]}"
    loaded: dict[str, Any] = json.loads(json.dumps(YAML(typ="safe", pure=True).load(path)))
    return loaded


def _manager(config: dict[str, Any]) -> dict[str, Any]:
    (found,) = [
        item for item in config["static_resources"]["listeners"] if item["name"] == SUBSCRIBE
    ]
    manager: dict[str, Any] = found["filter_chains"][0]["filters"][0]["typed_config"]
    return manager


def test_the_subscribe_host_transcodes_only_the_webhook_service(config: dict[str, Any]) -> None:
    assert surface_services(SUBSCRIBE) == [SERVICE]
    filters = _manager(config)["http_filters"]
    names = [f["name"] for f in filters]
    transcoder = filters[names.index(TRANSCODER_FILTER)]["typed_config"]
    assert transcoder["services"] == [SERVICE]
    # The URL is taken before the transcoder rewrites :path; nothing judges the raw body
    # (it is not JSON the contract describes) and no API key is expected.
    assert names.index(ORIGINAL_URI_FILTER) < names.index(TRANSCODER_FILTER)
    assert BODY_SHAPE_FILTER not in names
    assert RATE_LIMIT_FILTER not in names


def test_the_subscribe_host_takes_raw_bodies_and_any_query(config: dict[str, Any]) -> None:
    routes = _manager(config)["route_config"]["virtual_hosts"][0]["routes"]
    rest = [r for r in routes if "safe_regex" in r["match"]]
    paths = {
        integration_webhook_path("p", "i"): False,
        installation_webhook_path("p", "i", "n"): False,
    }
    for route in rest:
        assert route["route"]["cluster"] == "api"
        assert "metadata" not in route or BODY_SHAPE_FILTER not in str(route["metadata"])
        tolerant = route["typed_per_filter_config"][TRANSCODER_FILTER]
        assert tolerant["ignore_unknown_query_parameters"] is True
        assert tolerant["request_validation_options"]["reject_unknown_query_parameters"] is False
        assert route["match"]["headers"] == [{"name": ":method", "string_match": {"exact": "POST"}}]
        for path in paths:
            if re.fullmatch(route["match"]["safe_regex"]["regex"], path):
                paths[path] = True
    assert all(paths.values()), paths


# --- original_uri.lua, run by Envoy --------------------------------------------------------


def _harness(port: int, admin: int, scripts: dict[str, Path]) -> dict[str, Any]:
    """original_uri.lua in front of a route echoing the header it set, and the path."""
    echo = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": "{}"}},
        "response_headers_to_add": [
            {"header": {"key": "x-seen-uri", "value": f"%REQ({ORIGINAL_URI_HEADER})%"}},
            {"header": {"key": "x-seen-path", "value": "%REQ(:PATH)%"}},
        ],
    }
    lua = {
        "name": ORIGINAL_URI_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"filename": str(scripts["original_uri.lua"])},
        },
    }
    router = {
        "name": "router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        },
    }
    manager = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network"
            ".http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "subscribe",
            "route_config": {
                "virtual_hosts": [{"name": "echo", "domains": ["*"], "routes": [echo]}]
            },
            "http_filters": [lua, router],
        },
    }
    loopback = {"address": "127.0.0.1"}
    return {
        "admin": {"address": {"socket_address": {**loopback, "port_value": admin}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "subscribe",
                    "address": {"socket_address": {**loopback, "port_value": port}},
                    "filter_chains": [{"filters": [manager]}],
                }
            ]
        },
    }


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with running_envoy(tmp_path_factory.mktemp("original-uri"), _harness) as (client, _):
        yield client


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        # The path and query as sent, escapes and all (the signature is over them).
        (
            "/v1/projects/p/integrations/i?portal=1&x=%2Fa%20b",
            {"host": "hooks.example.test:8443"},
            "http://hooks.example.test:8443/v1/projects/p/integrations/i?portal=1&x=%2Fa%20b",
        ),
        # A client's own value never survives.
        (
            "/v1/projects/p/integrations/i",
            {"host": "h", ORIGINAL_URI_HEADER: "https://evil.test/other"},
            "http://h/v1/projects/p/integrations/i",
        ),
        # Behind a TLS proxy the scheme is the one the provider used.
        (
            "/v1/x",
            {"host": "h", "x-forwarded-proto": "https"},
            "https://h/v1/x",
        ),
    ],
)
def test_the_original_uri_is_the_url_the_provider_called(
    envoy: httpx.Client, path: str, headers: dict[str, str], expected: str
) -> None:
    response = envoy.post(path, headers=headers, content=b"[]")
    assert response.status_code == 200
    assert response.headers["x-seen-uri"] == expected
    assert response.headers["x-seen-path"] == path
