"""Traces: OpenTelemetry spans exported over OTLP/gRPC, one trace from the edge to the webhook.

    tracing = setup_tracing(settings)       # entrypoint.py, at start
    ...
    tracing.shutdown()                      # after the drain: flushes what is batched

With AMPMESH_OTLP_ENDPOINT empty nothing is installed: `TRACER` stays None, and every hot
path (the server interceptor, the channels, the publishers, the log processor) checks that
one module global and does nothing else. With it set, a TracerProvider (service.name = the
service's name, a parent-based ratio sampler) batches spans to the collector, and becomes
the global provider so that libraries asking OpenTelemetry for a tracer (temporalio's
TracingInterceptor) export through it.

Cost: the server interceptor traces every RPC, so its span is made by
server_spans.start_server_span (about 5 us) rather than by the SDK's general machinery
(about 27 us), and the exporter encodes with cached attribute messages
(otlp_encoding.py, about 7 us a span rather than 26). Spans started elsewhere (publish,
consume, Temporal's) are the SDK's, children of it as of any.

Propagation is W3C trace context (`traceparent`, `tracestate`): gRPC metadata between
services (interceptors.py continues it, channels.py sends it), the Envoy edge starts it,
the envelope's meta and the Pub/Sub message attributes carry it across the bus
(`publish_span`, subscriber.py), and messenger sends it to the builder's webhook.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Span,
    SpanKind,
    Tracer,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.runtime import server_spans
from services.runtime.config import ServiceSettings
from services.runtime.logs import get_logger, include_trace_ids
from services.runtime.otlp_encoding import otlp_exporter
from services.runtime.server_spans import TRACEPARENT, TRACESTATE, start_server_span

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "Tracing",
    "consume_span",
    "current_trace_id",
    "extract",
    "inject",
    "publish_span",
    "setup_tracing",
    "start_server_span",
    "trace_id_of",
]


_log = get_logger("ampmesh.tracing")

# None: tracing is off. Read directly (`tracing.TRACER is None`) on hot paths.
TRACER: Tracer | None = None

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass
class Tracing:
    """What setup_tracing installed; shutdown() flushes and stops the exporter."""

    provider: Any = None

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def shutdown(self) -> None:
        global TRACER
        if self.provider is None:
            return
        try:
            # force_flush first: shutdown() alone drops what a slow collector has not
            # taken within the batch processor's export timeout. Bounded, so that an
            # unreachable collector delays the exit by seconds, within the launcher's
            # stop grace, rather than by the exporter's minute of retries.
            self.provider.force_flush(timeout_millis=3000)
            self.provider.shutdown()
        except Exception as error:  # a collector gone at shutdown must not fail the exit
            _log.warning("traces not flushed", error=type(error).__name__)
        TRACER = None
        server_spans.reset()
        include_trace_ids(False)


def setup_tracing(settings: ServiceSettings) -> Tracing:
    """Install the exporter the settings ask for (nothing when otlp_endpoint is empty)."""
    global TRACER
    endpoint = settings.otlp_endpoint
    if not endpoint:
        TRACER = None
        server_spans.reset()
        include_trace_ids(False)
        return Tracing()
    # Imported here: a process with tracing off never loads the SDK and the exporter.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    name = settings.service_name or settings.identity or "ampmesh"
    ratio = TraceIdRatioBased(settings.trace_sample_ratio)
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}), sampler=ParentBased(ratio)
    )
    exporter = otlp_exporter(endpoint)
    # Batches of up to 2048 spans: at a thousand RPCs a second the exporter thread wakes
    # once or twice a second rather than every 512 spans.
    processor = BatchSpanProcessor(
        exporter, schedule_delay_millis=1000, max_queue_size=8192, max_export_batch_size=2048
    )
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    TRACER = provider.get_tracer("ampmesh")
    server_spans.configure(
        processor, provider.resource, InstrumentationScope("ampmesh"), ratio.bound
    )
    include_trace_ids()
    _log.info("tracing on", endpoint=endpoint, sample_ratio=settings.trace_sample_ratio)
    return Tracing(provider)


def extract(carrier: Mapping[str, str]) -> otel_context.Context:
    """The context a W3C `traceparent`/`tracestate` carrier continues."""
    return _PROPAGATOR.extract(carrier)


def inject(carrier: MutableMapping[str, str]) -> None:
    """Write the current span's `traceparent`/`tracestate` into carrier (nothing when no
    span is recording or tracing is off)."""
    if TRACER is not None:
        _PROPAGATOR.inject(carrier)


def current_trace_id() -> str:
    """The current span's trace id (32 hex digits), or "" outside a span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def trace_id_of(traceparent: str) -> str:
    """The trace id a `traceparent` header names, or "" when it is not a valid one."""
    parts = traceparent.split("-")
    if len(parts) != 4 or len(parts[1]) != 32:
        return ""
    trace_id = parts[1].lower()
    if trace_id == "0" * 32 or any(c not in "0123456789abcdef" for c in trace_id):
        return ""
    return trace_id


@contextmanager
def publish_span(topic: str, envelope: Any, attributes: dict[str, str]) -> Iterator[None]:
    """A PRODUCER span for handing one envelope to Pub/Sub, child of the context the
    envelope's meta carries (the span that made the event, possibly in another process:
    the outbox relay publishes later); its `traceparent` is added to the message's
    attributes, so the consumer's span follows this one. Nothing when tracing is off or
    the event carries no trace."""
    tracer = TRACER
    meta = envelope.meta
    if tracer is None or not meta.traceparent:
        yield
        return
    parent = extract({TRACEPARENT: meta.traceparent, TRACESTATE: meta.tracestate})
    with tracer.start_as_current_span(
        f"{topic} publish",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "gcp_pubsub",
            "messaging.destination.name": topic,
            "messaging.operation.type": "publish",
            "messaging.message.id": meta.id,
        },
    ):
        inject(attributes)
        yield


@contextmanager
def consume_span(subscription: str, attributes: Mapping[str, str]) -> Iterator[Span | None]:
    """A CONSUMER span around handling one message, continuing the trace its attributes
    carry (the publish span's); nothing when tracing is off or the message has none."""
    tracer = TRACER
    traceparent = attributes.get(TRACEPARENT) if tracer is not None else None
    if tracer is None or not traceparent:
        yield None
        return
    parent = extract(attributes)
    with tracer.start_as_current_span(
        f"{subscription} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "gcp_pubsub",
            "messaging.destination.subscription.name": subscription,
            "messaging.operation.type": "process",
        },
    ) as span:
        yield span


def temporal_interceptors() -> list[Any]:
    """For Client.connect(interceptors=...): temporalio's TracingInterceptor with tracing
    on (workflow and activity spans, trace context in Temporal's headers; a worker built
    on the client inherits it), none with tracing off."""
    if TRACER is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]
