"""The runtime's tracing, in one process: a service's RPC continues its caller's
`traceparent` as a SERVER span, the calls it makes on mesh channels carry that span on,
log lines name it, and spans reach the OTLP collector; with no endpoint nothing is traced
and nothing is sent on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from services.runtime import logs, tracing
from services.runtime.channels import mesh_channel
from services.runtime.config import ConfigError, ServiceSettings, load_settings
from services.runtime.interceptors import RpcMetrics
from services.runtime.server import MeshServer, Service
from services.runtime.tls import ServiceCredentials
from tests.support.otlp import Collector

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
OUTER = "/ampmesh.test.v1.Outer/Call"
INNER = "/ampmesh.test.v1.Inner/Call"


async def _call_through(
    creds_for: Callable[[str], ServiceCredentials], metadata: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    """Outer's handler calls Inner on a mesh channel; what Inner received, and the log
    fields Outer's handler would log."""
    seen: dict[str, Any] = {}
    server_creds = creds_for("trace-server")

    async def inner(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen["inner"] = dict(context.invocation_metadata() or ())
        return request

    async def outer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen["log"] = logs._add_trace_ids(None, "info", {})
        async with mesh_channel(
            f"127.0.0.1:{seen['port']}", server_creds, server_identity="trace-server"
        ) as channel:
            return bytes(await channel.unary_unary(INNER)(request, timeout=5))

    services = [
        Service.from_handler(
            name,
            grpc.method_handlers_generic_handler(
                name, {"Call": grpc.unary_unary_rpc_method_handler(handler)}
            ),
        )
        for name, handler in (
            ("ampmesh.test.v1.Outer", outer),
            ("ampmesh.test.v1.Inner", inner),
        )
    ]
    async with MeshServer(
        credentials=server_creds,
        services=services,
        grace_period=0,
        metrics=RpcMetrics(CollectorRegistry()),
    ) as server:
        seen["port"] = server.port
        async with mesh_channel(
            f"127.0.0.1:{server.port}", creds_for("trace-client"), server_identity="trace-server"
        ) as channel:
            assert await channel.unary_unary(OUTER)(b"x", timeout=5, metadata=metadata) == b"x"
    return seen


async def test_an_rpc_continues_its_callers_trace_and_carries_it_on(
    creds_for: Callable[[str], ServiceCredentials], collector: Collector
) -> None:
    traced = tracing.setup_tracing(
        load_settings(
            ServiceSettings, service_name="trace-server", otlp_endpoint=collector.endpoint
        )
    )
    try:
        assert tracing.TRACER is not None
        seen = await _call_through(creds_for, (("traceparent", TRACEPARENT),))
    finally:
        # Flushing blocks until the collector answers, and it answers on this loop.
        await asyncio.to_thread(traced.shutdown)
    assert tracing.TRACER is None

    spans = {s.name: s for s in collector.trace(CALLER_TRACE) if s.service == "trace-server"}
    outer, inner = spans[OUTER.lstrip("/")], spans[INNER.lstrip("/")]
    assert outer.parent_span_id == CALLER_SPAN
    assert outer.attributes["rpc.method"] == "Call"
    # The call Outer made carried Outer's span: Inner's span is its child.
    assert inner.parent_span_id == outer.span_id
    assert tracing.trace_id_of(seen["inner"]["traceparent"]) == CALLER_TRACE
    assert seen["inner"]["traceparent"].split("-")[2] == outer.span_id
    # Log lines written while Outer ran name its trace and span.
    assert seen["log"] == {"trace_id": CALLER_TRACE, "span_id": outer.span_id}


async def test_without_an_endpoint_nothing_is_traced_or_sent_on(
    creds_for: Callable[[str], ServiceCredentials], collector: Collector
) -> None:
    before = len(collector.spans)
    off = tracing.setup_tracing(load_settings(ServiceSettings, service_name="trace-server"))
    assert not off.enabled and tracing.TRACER is None
    seen = await _call_through(creds_for, (("traceparent", TRACEPARENT),))
    off.shutdown()
    # The caller's own header is not forwarded either: no tracer, no propagation.
    assert "traceparent" not in seen["inner"]
    assert seen["log"] == {}
    assert len(collector.spans) == before


@pytest.mark.parametrize(
    ("traceparent", "trace_id"),
    [
        (TRACEPARENT, CALLER_TRACE),
        ("00-" + "0" * 32 + "-b7ad6b7169203331-01", ""),
        ("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", CALLER_TRACE),
        ("garbage", ""),
        ("", ""),
    ],
)
def test_trace_id_of_reads_only_valid_traceparents(traceparent: str, trace_id: str) -> None:
    assert tracing.trace_id_of(traceparent) == trace_id


def test_a_bad_endpoint_or_ratio_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="AMPMESH_OTLP_ENDPOINT"):
        load_settings(ServiceSettings, otlp_endpoint="127.0.0.1:4317")
    with pytest.raises(ConfigError, match="AMPMESH_TRACE_SAMPLE_RATIO"):
        load_settings(ServiceSettings, trace_sample_ratio=1.5)
