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

Cost: the server interceptor traces every RPC, so its span is made by start_server_span
(a ServerSpan: the W3C parse, the parent-based ratio decision and a slotted object, about
5 us) rather than by the SDK's general machinery (about 27 us), and the exporter encodes
with cached attribute messages (_otlp_exporter, about 7 us a span rather than 26). Spans
started elsewhere (publish, consume, Temporal's) are the SDK's, children of it as of any.

Propagation is W3C trace context (`traceparent`, `tracestate`): gRPC metadata between
services (interceptors.py continues it, channels.py sends it), the Envoy edge starts it,
the envelope's meta and the Pub/Sub message attributes carry it across the bus
(`publish_span`, subscriber.py), and messenger sends it to the builder's webhook.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN_ID,
    INVALID_TRACE_ID,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    TraceState,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.runtime.config import ServiceSettings
from services.runtime.logs import get_logger, include_trace_ids

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

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_log = get_logger("ampmesh.tracing")

# None: tracing is off. Read directly (`tracing.TRACER is None`) on hot paths.
TRACER: Tracer | None = None

_PROPAGATOR = TraceContextTextMapPropagator()

# What start_server_span needs besides TRACER (set by setup_tracing): the batch processor
# its spans are handed to, the resource and scope they are exported under, and the ratio
# sampler's bound on a new trace's id (a trace is sampled when its low 64 bits are below).
_PROCESSOR: Any = None
_RESOURCE: Any = None
_SCOPE: Any = None
_ROOT_BOUND = 0
_LOW_64 = (1 << 64) - 1
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


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
        _reset_server_spans()
        include_trace_ids(False)


def _reset_server_spans() -> None:
    global _PROCESSOR, _RESOURCE, _SCOPE, _ROOT_BOUND
    _PROCESSOR = _RESOURCE = _SCOPE = None
    _ROOT_BOUND = 0


def setup_tracing(settings: ServiceSettings) -> Tracing:
    """Install the exporter the settings ask for (nothing when otlp_endpoint is empty)."""
    global TRACER, _PROCESSOR, _RESOURCE, _SCOPE, _ROOT_BOUND
    endpoint = settings.otlp_endpoint
    if not endpoint:
        TRACER = None
        _reset_server_spans()
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
    exporter = _otlp_exporter(endpoint)
    # Batches of up to 2048 spans: at a thousand RPCs a second the exporter thread wakes
    # once or twice a second rather than every 512 spans.
    processor = BatchSpanProcessor(
        exporter, schedule_delay_millis=1000, max_queue_size=8192, max_export_batch_size=2048
    )
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    TRACER = provider.get_tracer("ampmesh")
    _PROCESSOR, _RESOURCE, _SCOPE = processor, provider.resource, InstrumentationScope("ampmesh")
    _ROOT_BOUND = ratio.bound
    include_trace_ids()
    _log.info("tracing on", endpoint=endpoint, sample_ratio=settings.trace_sample_ratio)
    return Tracing(provider)


class ServerSpan(Span):
    """The SERVER span of one RPC, made by start_server_span without the SDK's general
    machinery (sampler objects, attribute validation, span processors' fan-out, locks):
    the interceptor makes one per RPC, so that machinery was most of what tracing cost a
    cheap RPC. It reads like the SDK's ReadableSpan to the batch processor and the exporter
    (_otlp_exporter), and like any span to OpenTelemetry's API: the SDK's spans started
    inside the handler are its children, and the log processor reads its ids."""

    __slots__ = (
        "_status",
        "attributes",
        "context",
        "end_time",
        "events",
        "name",
        "parent",
        "start_time",
    )

    kind = SpanKind.SERVER
    links: tuple[Any, ...] = ()
    dropped_attributes = dropped_events = dropped_links = 0

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        attributes: dict[str, Any],
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.attributes = attributes
        self.events: list[Any] = []
        self._status = Status(StatusCode.UNSET)
        self.start_time = time.time_ns()
        self.end_time: int | None = None

    @property
    def resource(self) -> Any:
        return _RESOURCE

    @property
    def instrumentation_scope(self) -> Any:
        return _SCOPE

    @property
    def status(self) -> Status:
        return self._status

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if self.end_time is None:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.end_time is None:
            self.attributes.update(attributes)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        from opentelemetry.sdk.trace import Event

        if self.end_time is None:
            self.events.append(Event(name, attributes, timestamp or time.time_ns()))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None or self._status.status_code is StatusCode.OK:
            return  # OK is final, as in the SDK
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Any = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        # Type and message only: a traceback's text is the exporter's to send elsewhere,
        # and our errors never put secrets in messages, but frames can (see errors.py).
        self.add_event(
            "exception",
            {
                "exception.type": type(exception).__qualname__,
                "exception.message": str(exception)[:300],
                **(attributes or {}),
            },
            timestamp,
        )

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time or time.time_ns()
        processor = _PROCESSOR
        if processor is not None:
            processor.on_end(self)


def start_server_span(
    name: str, attributes: Mapping[str, Any], metadata: Sequence[tuple[str, Any]] | None
) -> Span:
    """The SERVER span of an RPC whose invocation metadata is `metadata`: continuing its
    `traceparent` (sampled as the caller decided, its `tracestate` carried on), else a
    new trace sampled at the configured ratio. Call only while TRACER is set."""
    traceparent = tracestate = None
    for key, value in metadata or ():
        if key == TRACEPARENT:
            traceparent = value if isinstance(value, str) else value.decode("latin-1")
        elif key == TRACESTATE:
            tracestate = value if isinstance(value, str) else value.decode("latin-1")
    parent = _parse_traceparent(traceparent, tracestate) if traceparent else None
    span_id = random.getrandbits(64) or 1
    if parent is not None:
        trace_id = parent.trace_id
        sampled = parent.trace_flags.sampled
        state = parent.trace_state
    else:
        trace_id = random.getrandbits(128) or 1
        sampled = trace_id & _LOW_64 < _ROOT_BOUND
        state = None
    if not sampled:
        return NonRecordingSpan(SpanContext(trace_id, span_id, False, _NOT_SAMPLED, state))
    context = SpanContext(trace_id, span_id, False, _SAMPLED, state)
    return ServerSpan(name, context, parent, dict(attributes))


def _parse_traceparent(value: str, tracestate: str | None) -> SpanContext | None:
    """The remote parent a W3C `traceparent` names, or None when it is not a valid one
    (the checks of OpenTelemetry's propagator: version ff and a version 00 with more
    fields are invalid, as are all-zero ids)."""
    match = _TRACEPARENT_SHAPE.match(value)
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == INVALID_TRACE_ID or span_id == INVALID_SPAN_ID:
        return None
    flags = TraceFlags(int(flags_hex, 16) & TraceFlags.SAMPLED)
    # Envoy sends an empty tracestate with every request: only a non-empty one is parsed.
    state = TraceState.from_header([tracestate]) if tracestate else None
    return SpanContext(trace_id, span_id, True, flags, state)


_TRACEPARENT_SHAPE = re.compile(
    r"^\s*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.+)?\s*$"
)


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


def _otlp_exporter(endpoint: str) -> Any:
    """The SDK's OTLP/gRPC span exporter (same endpoint, retries, timeouts) with a cheaper
    encoder. The SDK's builds every attribute's protobuf messages afresh, hashes each
    span's resource (a JSON dump of its attributes) to group spans, and encodes empty
    statuses: about 26 us a span, in the exporter's thread, holding the GIL the event loop
    needs. This one encodes the same request (resource, scope, spans) caching the (key,
    value) attribute messages (a service's spans repeat a few methods' names), grouping by
    identity and leaving out what is empty: 7 to 10 us a span (bench/tracing.py). Defined
    here, on first use, so that a process with tracing off never imports the exporter."""
    from opentelemetry.exporter.otlp.proto.common._internal import (
        _encode_attributes,
        _encode_instrumentation_scope,
        _encode_resource,
    )
    from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
        _encode_events,
        _encode_links,
    )
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, SpanFlags, Status
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
    from opentelemetry.trace import SpanKind, StatusCode

    kinds = {
        SpanKind.INTERNAL: PbSpan.SpanKind.SPAN_KIND_INTERNAL,
        SpanKind.SERVER: PbSpan.SpanKind.SPAN_KIND_SERVER,
        SpanKind.CLIENT: PbSpan.SpanKind.SPAN_KIND_CLIENT,
        SpanKind.PRODUCER: PbSpan.SpanKind.SPAN_KIND_PRODUCER,
        SpanKind.CONSUMER: PbSpan.SpanKind.SPAN_KIND_CONSUMER,
    }
    local_parent = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
    remote_parent = local_parent | SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
    # Bounded: an attribute with a value per request (an id) must not grow it for ever.
    cache_limit = 4096
    attribute_cache: dict[tuple[str, type, Any], KeyValue] = {}

    def value_of(value: Any) -> AnyValue:
        kind = type(value)
        if kind is str:
            return AnyValue(string_value=value)
        if kind is bool:
            return AnyValue(bool_value=value)
        if kind is int:
            return AnyValue(int_value=value)
        return AnyValue(double_value=value)

    def attributes_of(attributes: Any) -> list[KeyValue]:
        if not attributes:
            return []
        cache = attribute_cache
        encoded = []
        for key, value in attributes.items():
            kind = type(value)
            if kind is str or kind is int or kind is bool or kind is float:
                # The type is part of the key: True == 1 and 1 == 1.0 would share an entry.
                cached = cache.get((key, kind, value))
                if cached is None:
                    if len(cache) >= cache_limit:
                        cache.clear()
                    cached = cache[(key, kind, value)] = KeyValue(key=key, value=value_of(value))
                encoded.append(cached)
            else:  # sequences and the rest: the SDK's encoder knows them all
                encoded.extend(_encode_attributes({key: value}))
        return encoded

    def span_of(span: Any) -> PbSpan:
        context = span.context
        parent = span.parent
        encoded = PbSpan(
            trace_id=context.trace_id.to_bytes(16, "big"),
            span_id=context.span_id.to_bytes(8, "big"),
            name=span.name,
            kind=kinds[span.kind],
            start_time_unix_nano=span.start_time,
            end_time_unix_nano=span.end_time,
            attributes=attributes_of(span.attributes),
            flags=remote_parent if parent is not None and parent.is_remote else local_parent,
        )
        if parent is not None:
            encoded.parent_span_id = parent.span_id.to_bytes(8, "big")
        trace_state = context.trace_state
        if trace_state:
            encoded.trace_state = ",".join(f"{k}={v}" for k, v in trace_state.items())
        status = span.status
        if status is not None and status.status_code is not StatusCode.UNSET:
            encoded.status.CopyFrom(
                Status(code=status.status_code.value, message=status.description or "")
            )
        if span.events:
            encoded.events.extend(_encode_events(span.events) or ())
        if span.links:
            encoded.links.extend(_encode_links(span.links) or ())
        if span.dropped_attributes:
            encoded.dropped_attributes_count = span.dropped_attributes
        if span.dropped_events:
            encoded.dropped_events_count = span.dropped_events
        if span.dropped_links:
            encoded.dropped_links_count = span.dropped_links
        return encoded

    def encode_spans(spans: Sequence[Any]) -> ExportTraceServiceRequest:
        """The OTLP request carrying spans (the SDK's ReadableSpans and tracing.ServerSpans)."""
        # By identity: a process has one resource and a few scopes, all alive as long as it.
        resources: dict[int, Any] = {}
        scopes: dict[int, Any] = {}
        groups: dict[int, dict[int, list[PbSpan]]] = {}
        for span in spans:
            resource, scope = span.resource, span.instrumentation_scope
            resources[id(resource)] = resource
            scopes[id(scope)] = scope
            groups.setdefault(id(resource), {}).setdefault(id(scope), []).append(span_of(span))
        request = ExportTraceServiceRequest()
        for resource_id, by_scope in groups.items():
            resource = resources[resource_id]
            resource_spans = request.resource_spans.add()
            resource_spans.resource.CopyFrom(_encode_resource(resource))
            if resource.schema_url:
                resource_spans.schema_url = resource.schema_url
            for scope_id, encoded in by_scope.items():
                scope = scopes[scope_id]
                scope_spans: ScopeSpans = resource_spans.scope_spans.add()
                scope_spans.scope.CopyFrom(_encode_instrumentation_scope(scope))
                if scope is not None and scope.schema_url:
                    scope_spans.schema_url = scope.schema_url
                scope_spans.spans.extend(encoded)
        return request

    class FastOTLPSpanExporter(OTLPSpanExporter):
        """OTLPSpanExporter (same endpoint, retries, timeouts) encoding with encode_spans."""

        def _translate_data(self, data: Sequence[Any]) -> ExportTraceServiceRequest:
            return encode_spans(data)

    return FastOTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
