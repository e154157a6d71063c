"""The tracing fast paths against the OpenTelemetry SDK they stand in for.

server_spans.ServerSpan and otlp_encoding's encoder replace SDK code on the hot path
(see their modules); these tests hold them to the SDK's behaviour, so an upgrade of the
pinned SDK that changes what a span or an export is fails here, not in a trace backend.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

from services.runtime import server_spans
from services.runtime.otlp_encoding import otlp_exporter
from services.runtime.server_spans import ServerSpan, start_server_span

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Kept(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: object) -> SpanExportResult:
        self.spans.extend(spans)  # type: ignore[arg-type]
        return SpanExportResult.SUCCESS


@pytest.fixture
def kept() -> Iterator[tuple[Kept, TracerProvider]]:
    exporter = Kept()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "test"}),
        sampler=ParentBased(TraceIdRatioBased(1.0)),
    )
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    server_spans.configure(
        processor, provider.resource, InstrumentationScope("ampmesh"), TraceIdRatioBased(1.0).bound
    )
    yield exporter, provider
    server_spans.reset()
    provider.shutdown()


def test_a_server_span_continues_its_callers_trace_and_carries_its_tracestate(
    kept: tuple[Kept, TracerProvider],
) -> None:
    exporter, provider = kept
    span = start_server_span(
        "svc/Method", {"rpc.system": "grpc"}, [("traceparent", PARENT), ("tracestate", "a=1")]
    )
    assert isinstance(span, ServerSpan)
    context = span.get_span_context()
    assert format(context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent is not None and span.parent.is_remote
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert dict(context.trace_state) == {"a": "1"}
    # An SDK span started inside it is its child, in the same trace.
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        with provider.get_tracer("t").start_as_current_span("inner") as inner:
            assert isinstance(inner, ReadableSpan) and inner.parent is not None
            assert inner.parent.span_id == context.span_id
    finally:
        otel_context.detach(token)
    span.end()
    assert [s.name for s in exporter.spans] == ["inner", "svc/Method"]


@pytest.mark.parametrize(
    ("metadata", "recording", "continues"),
    [
        ([("traceparent", PARENT[:-2] + "00")], False, True),  # the caller did not sample
        ([("traceparent", "00-" + "0" * 32 + "-00f067aa0ba902b7-01")], True, False),
        ([("traceparent", "ff" + PARENT[2:])], True, False),  # version ff is invalid
        ([("traceparent", PARENT + "-extra")], True, False),  # version 00 has 4 fields
        ([("traceparent", "garbage")], True, False),
        ([("traceparent", PARENT), ("tracestate", "")], True, True),  # Envoy's empty one
        ([], True, False),
    ],
)
def test_a_server_span_reads_traceparent_as_the_sdk_propagator_does(
    kept: tuple[Kept, TracerProvider],
    metadata: list[tuple[str, str]],
    recording: bool,
    continues: bool,
) -> None:
    span = start_server_span("svc/Method", {}, metadata)
    assert span.is_recording() == recording
    same_trace = format(span.get_span_context().trace_id, "032x") == PARENT[3:35]
    assert same_trace == continues
    span.end()


def test_at_ratio_zero_a_new_trace_is_not_recorded(kept: tuple[Kept, TracerProvider]) -> None:
    server_spans.configure(None, None, None, TraceIdRatioBased(0.0).bound)
    assert not start_server_span("svc/Method", {}, []).is_recording()
    # A sampled caller's decision still wins, as ParentBased's does.
    assert start_server_span("svc/Method", {}, [("traceparent", PARENT)]).is_recording()


def test_the_encoder_sends_what_the_sdks_encoder_sends(kept: tuple[Kept, TracerProvider]) -> None:
    exporter, provider = kept
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span(
        "outer", kind=SpanKind.SERVER, attributes={"s": "x", "i": 3, "b": True, "f": 1.5}
    ) as outer:
        outer.add_event("happened", {"k": "v"})
        with tracer.start_as_current_span("inner", attributes={"list": ["a", "b"]}) as inner:
            inner.set_status(StatusCode.ERROR, "broke")
    server = start_server_span(
        "svc/Method", {"rpc.system": "grpc", "n": 1}, [("traceparent", PARENT)]
    )
    server.set_status(StatusCode.ERROR, "UNAVAILABLE")
    server.end()
    spans = exporter.spans
    assert len(spans) == 3

    ours = otlp_exporter("http://127.0.0.1:1")._translate_data(spans)
    theirs = encode_spans(spans)
    # The SDK encodes an unset status as an empty message; ours leaves it out.
    for resource_spans in theirs.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if span.status.code == 0 and not span.status.message:
                    span.ClearField("status")

    def by_span(request: object) -> dict[bytes, object]:
        found: dict[bytes, object] = {}
        for resource_spans in request.resource_spans:  # type: ignore[attr-defined]
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found[span.span_id] = (
                        resource_spans.resource,
                        scope_spans.scope,
                        span,
                    )
        return found

    assert by_span(ours) == by_span(theirs)
