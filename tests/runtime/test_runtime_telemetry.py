"""Request ids, access logs and Prometheus metrics per RPC."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Callable

import grpc
import pytest
from prometheus_client import CollectorRegistry
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from services.runtime.identity import AccessPolicy
from services.runtime.interceptors import RpcMetrics
from services.runtime.metrics_http import start_metrics_http
from services.runtime.request_id import REQUEST_ID_HEADER
from services.runtime.tls import ServiceCredentials
from tests.support.probe import PROBE_SERVICE, SECRET, Probe, dial, method, serving

CredsFor = Callable[[str], ServiceCredentials]


def handled(registry: CollectorRegistry, name: str, code: str) -> float:
    value = registry.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_service": PROBE_SERVICE,
            "grpc_method": name,
            "grpc_type": "unary",
            "grpc_code": code,
        },
    )
    return value or 0.0


async def test_metrics_count_each_status_code(
    server_creds: ServiceCredentials,
    creds_for: CredsFor,
    registry: CollectorRegistry,
    metrics: RpcMetrics,
) -> None:
    policy = AccessPolicy(allowed=frozenset({"api"}))
    async with (
        serving(server_creds, [Probe().service()], policy=policy, metrics=metrics) as server,
        dial(server, creds_for("api")) as api,
        dial(server, creds_for("scribe")) as other,
    ):
        for _ in range(3):
            await api.unary_unary(method("Whoami"))(b"", timeout=5)
        for name, channel in [("NotFound", api), ("Boom", api), ("Whoami", other)]:
            with pytest.raises(grpc.aio.AioRpcError):
                await channel.unary_unary(method(name))(b"x", timeout=5)
        async for _ in api.unary_stream(method("Count"))(b"2", timeout=5):
            pass

    assert handled(registry, "Whoami", "OK") == 3
    assert handled(registry, "Whoami", "PERMISSION_DENIED") == 1
    assert handled(registry, "NotFound", "NOT_FOUND") == 1
    assert handled(registry, "Boom", "INTERNAL") == 1
    assert handled(registry, "Boom", "OK") == 0
    streamed = registry.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_service": PROBE_SERVICE,
            "grpc_method": "Count",
            "grpc_type": "server_stream",
            "grpc_code": "OK",
        },
    )
    assert streamed == 1
    latency_count = registry.get_sample_value(
        "grpc_server_handling_seconds_count",
        {"grpc_service": PROBE_SERVICE, "grpc_method": "Whoami", "grpc_type": "unary"},
    )
    assert latency_count == 4


async def test_request_id_is_taken_from_the_caller_and_echoed(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    async with (
        serving(server_creds, [Probe().service()]) as server,
        dial(server, creds_for("api")) as channel,
    ):
        whoami = channel.unary_unary(method("Whoami"))

        call = whoami(b"", metadata=((REQUEST_ID_HEADER, "req-abc.123"),), timeout=5)
        seen = json.loads(await call)
        echoed = dict(await call.trailing_metadata())[REQUEST_ID_HEADER]
        assert seen["request_id"] == echoed == "req-abc.123"

        fresh = whoami(b"", timeout=5)
        fresh_id = json.loads(await fresh)["request_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", fresh_id)
        assert dict(await fresh.trailing_metadata())[REQUEST_ID_HEADER] == fresh_id

        # A caller's id that could forge log lines or bloat headers is replaced.
        hostile = whoami(b"", metadata=((REQUEST_ID_HEADER, "x" * 500),), timeout=5)
        assert re.fullmatch(r"[0-9a-f]{32}", json.loads(await hostile)["request_id"])

        # Errors carry it too: a plain abort(), an abort with rich details (trailers of
        # its own), and an abort by the runtime for an exception.
        for name in ("Flaky", "NotFound", "Boom"):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await channel.unary_unary(method(name))(
                    b"k:1", metadata=((REQUEST_ID_HEADER, f"req-{name}"),), timeout=5
                )
            trailers = dict(failed.value.trailing_metadata())
            assert trailers[REQUEST_ID_HEADER] == f"req-{name}", name


async def test_one_access_log_line_per_rpc_without_bodies(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    with capture_logs(processors=[merge_contextvars]) as logs:
        async with (
            serving(server_creds, [Probe().service()]) as server,
            dial(server, creds_for("api")) as channel,
        ):
            await channel.unary_unary(method("Headers"))(
                SECRET.encode(), metadata=((REQUEST_ID_HEADER, "req-log"),), timeout=5
            )
            with pytest.raises(grpc.aio.AioRpcError):
                await channel.unary_unary(method("NotFound"))(b"conn-7", timeout=5)

    rpcs = [e for e in logs if e["event"] == "rpc"]
    assert len(rpcs) == 2
    ok, not_found = rpcs
    assert ok["method"] == method("Headers")
    assert ok["code"] == "OK"
    assert ok["peer"] == "api"
    assert ok["request_id"] == "req-log"
    assert isinstance(ok["duration_ms"], float) and ok["duration_ms"] >= 0
    assert ok["log_level"] == "info"
    assert not_found["code"] == "NOT_FOUND"
    assert not_found["message"] == "connection 'conn-7' not found"
    assert SECRET not in repr(logs)


async def test_metrics_exposed_over_http(registry: CollectorRegistry, metrics: RpcMetrics) -> None:
    metrics.handled.labels(PROBE_SERVICE, "Whoami", "unary", "OK").inc()
    exposition = start_metrics_http(0, registry=registry)
    try:
        url = f"http://127.0.0.1:{exposition.port}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    finally:
        exposition.close()
    assert (
        b'grpc_server_handled_total{grpc_code="OK",grpc_method="Whoami",'
        b'grpc_service="ampmesh.test.v1.Probe",grpc_type="unary"} 1.0'
    ) in body
