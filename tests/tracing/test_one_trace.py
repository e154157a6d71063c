"""One trace across the mesh: a backfill, from the REST call that installs the integration
to the webhook that delivers its records, is ONE trace in the collector, with spans from
the edge (Envoy), the api, Temporal's workflow and activities in the worker, the Pub/Sub
publish and consume, and messenger's delivery; the builder's receiver sees a
`traceparent` naming it; the operation's metadata.traceId names it; and the api's log
lines about it carry it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from ampmesh.sandbox.v1 import sandbox_pb2_grpc

from services.runtime.tracing import trace_id_of
from tests.support.otlp import Collector, ExportedSpan
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, serve
from tests.tracing.tracing_world import backfilled

pytestmark = pytest.mark.e2e

PATIENCE = 120.0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve(Receiver()) as running:
        yield running


def _read_deliveries(receiver: Receiver) -> list[dict[str, str]]:
    """The headers of the webhook requests that delivered read results."""
    return [r.headers for r in receiver.at(HOOK) if b'"result"' in r.body]


async def test_a_backfill_is_one_trace_from_the_edge_to_the_webhook(
    traced: Stack,
    traced_sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
    receiver: Receiver,
    collector: Collector,
) -> None:
    _, installation, operation = await backfilled(traced, traced_sandbox, receiver)
    assert operation["status"] == "success", operation

    # The operation names its trace.
    trace_id = operation["metadata"].get("traceId", "")
    assert len(trace_id) == 32, operation

    # Every delivery of the read's records carries a traceparent of that trace.
    deliveries = _read_deliveries(receiver)
    assert deliveries
    delivered_in = {trace_id_of(h.get("traceparent", "")) for h in deliveries}
    if delivered_in != {trace_id}:
        await asyncio.sleep(6)  # let the processes export, to say where the trace broke
        pytest.fail(
            f"the operation's trace {_names(collector, trace_id)}; the deliveries' "
            f"{[_names(collector, t) for t in delivered_in]}"
        )

    def spans() -> list[ExportedSpan]:
        return collector.trace(trace_id)

    def complete() -> bool:
        services = {s.service for s in spans()}
        names = {s.name for s in spans()}
        return {"envoy", "api", "temporal", "messenger"} <= services and any(
            n == "webhook delivery" for n in names
        )

    # Processes export in batches (the SDK every second, Envoy every 5 s).
    await collector.wait_until(complete, patience=60)
    found = spans()
    by_service: dict[str, list[ExportedSpan]] = {}
    for span in found:
        by_service.setdefault(span.service, []).append(span)
    summary = sorted({(s.service, s.name) for s in found})
    assert {"envoy", "api", "temporal", "messenger"} <= by_service.keys(), summary

    # The api continued the edge's trace: its installation span's parent is Envoy's.
    envoy_ids = {s.span_id for s in by_service["envoy"]}
    create = [s for s in by_service["api"] if s.name.endswith("/CreateInstallation")]
    assert create, summary
    assert create[0].parent_span_id in envoy_ids, summary

    names = {s.name for s in found}
    # Temporal: the api started the workflow; the worker ran it and its activities.
    assert any(n.startswith("StartWorkflow:") for n in names), summary
    assert any(n.startswith("RunWorkflow:") for n in by_names(by_service["temporal"])), summary
    assert any(n.startswith("RunActivity:") for n in by_names(by_service["temporal"])), summary
    # Pub/Sub: the worker published the pages, messenger consumed them and delivered.
    assert any(n.endswith(" publish") for n in by_names(by_service["temporal"])), summary
    assert any(n.endswith(" process") for n in by_names(by_service["messenger"])), summary
    delivery = [s for s in by_service["messenger"] if s.name == "webhook delivery"]
    assert delivery, summary
    # The receiver saw the delivery span itself as the parent of its request.
    parents = {h["traceparent"].split("-")[2] for h in deliveries}
    assert parents <= {s.span_id for s in delivery}

    # The api's log lines about the installation carry the trace id.
    lines = [json.loads(line) for line in _log_lines(traced, "api")]
    started = [
        line
        for line in lines
        if line.get("event") == "backfill started" and line.get("trace_id") == trace_id
    ]
    assert started, "the api logged the backfill's start without its trace id"
    assert any(
        line.get("event") == "rpc"
        and str(line.get("method", "")).endswith("/CreateInstallation")
        and line.get("trace_id") == trace_id
        for line in lines
    )
    assert installation["id"]


def _names(collector: Collector, trace_id: str) -> str:
    return f"{trace_id}: {sorted({(s.service, s.name) for s in collector.trace(trace_id)})}"


def by_names(spans: list[ExportedSpan]) -> set[str]:
    return {s.name for s in spans}


def _log_lines(stack: Stack, service: str) -> list[str]:
    text = (stack.home / "logs" / f"{service}.log").read_text(errors="replace")
    return [line for line in text.splitlines() if line.startswith("{")]
