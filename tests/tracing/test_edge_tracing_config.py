"""The edge's tracing configuration: none at all without AMPMESH_OTLP_ENDPOINT, and with it
an OpenTelemetry tracer on every public listener that Envoy accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from services.launcher.edge import (
    TRANSCODED_SURFACES,
    Edge,
    EdgeError,
    TracingSettings,
)
from services.launcher.ports import PortBook
from tests.edge.harness import SHARDS, validate

PUBLIC = {*TRANSCODED_SURFACES, "grpc"}


def _render(home: Path, tracing: TracingSettings) -> tuple[Path, dict[str, Any]]:
    edge = Edge(home, PortBook(home), home / "certs", tracing=tracing)
    path = edge.render("api.internal:50051", SHARDS)
    return path, json.loads(json.dumps(YAML(typ="safe", pure=True).load(path)))


def _managers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        listener["name"]: listener["filter_chains"][0]["filters"][0]["typed_config"]
        for listener in config["static_resources"]["listeners"]
    }


def test_without_an_endpoint_the_edge_has_no_tracing_at_all(tmp_path: Path) -> None:
    path, config = _render(tmp_path, TracingSettings.from_environment({}))
    text = path.read_text()
    assert "opentelemetry" not in text and "otlp" not in text
    assert all("tracing" not in m for m in _managers(config).values())
    assert "layered_runtime" not in config


def test_with_an_endpoint_every_public_listener_traces_and_envoy_accepts_it(
    tmp_path: Path,
) -> None:
    tracing = TracingSettings.from_environment(
        {"AMPMESH_OTLP_ENDPOINT": "http://127.0.0.1:4317", "AMPMESH_TRACE_SAMPLE_RATIO": "0.25"}
    )
    path, config = _render(tmp_path, tracing)
    managers = _managers(config)
    traced = {name for name, m in managers.items() if "tracing" in m}
    # Not the proxy (calls to providers) nor the internal listeners.
    assert traced == PUBLIC
    sample = managers["api"]["tracing"]
    assert sample["random_sampling"] == {"value": 25.0}
    assert sample["provider"]["typed_config"]["service_name"] == "envoy"
    collector = next(
        c for c in config["static_resources"]["clusters"] if c["name"] == "otlp_collector"
    )
    address = collector["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert address["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 4317}
    assert "transport_socket" not in collector  # http:// is plaintext
    # Exports are batched, not one request per 5 spans (Envoy's default).
    (layer,) = config["layered_runtime"]["layers"]
    assert layer["static_layer"]["tracing.opentelemetry.min_flush_spans"] >= 100
    result = validate(path)
    assert result.returncode == 0, result.stderr[-2000:]


def test_an_https_collector_is_reached_over_tls_checking_its_name(tmp_path: Path) -> None:
    path, config = _render(tmp_path, TracingSettings("https://otel.example.com:4317"))
    collector = next(
        c for c in config["static_resources"]["clusters"] if c["name"] == "otlp_collector"
    )
    tls = collector["transport_socket"]["typed_config"]
    assert tls["sni"] == "otel.example.com"
    result = validate(path)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"AMPMESH_OTLP_ENDPOINT": "127.0.0.1:4317"}, "AMPMESH_OTLP_ENDPOINT"),
        ({"AMPMESH_TRACE_SAMPLE_RATIO": "2"}, "AMPMESH_TRACE_SAMPLE_RATIO"),
        ({"AMPMESH_TRACE_SAMPLE_RATIO": "all"}, "AMPMESH_TRACE_SAMPLE_RATIO"),
    ],
)
def test_bad_tracing_settings_are_refused_naming_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(EdgeError, match=variable):
        TracingSettings.from_environment(environ)
