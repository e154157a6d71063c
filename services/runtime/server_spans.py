"""The SERVER span of one RPC, made without the OpenTelemetry SDK's general machinery.

The server interceptor traces every RPC, so the SDK's general span path (sampler objects,
attribute validation, the span processors' fan-out, locks: about 27 us) was most of what
tracing cost a cheap RPC. `start_server_span` reads the W3C `traceparent`/`tracestate`
with the propagator's rules, follows the caller's sampling decision or samples a new trace
at the configured ratio, and returns a `ServerSpan` (about 5 us): a slotted object that
reads like the SDK's ReadableSpan to the batch processor and the exporter, and like any
span to OpenTelemetry's API, so the SDK's spans started inside the handler are its
children and the log processor reads its ids. tracing.setup_tracing configures it.
tests/runtime/test_server_spans.py holds it to the SDK's behaviour.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

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
    TraceState,
)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# What start_server_span needs (set by configure, from setup_tracing): the batch processor
# its spans are handed to, the resource and scope they are exported under, and the ratio
# sampler's bound on a new trace's id (a trace is sampled when its low 64 bits are below).
_PROCESSOR: Any = None
_RESOURCE: Any = None
_SCOPE: Any = None
_ROOT_BOUND = 0
_LOW_64 = (1 << 64) - 1
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


def configure(processor: Any, resource: Any, scope: Any, root_bound: int) -> None:
    """Hand server spans to processor under resource and scope; a new trace is sampled
    when its id's low 64 bits are below root_bound (the SDK's TraceIdRatioBased bound)."""
    global _PROCESSOR, _RESOURCE, _SCOPE, _ROOT_BOUND
    _PROCESSOR, _RESOURCE, _SCOPE, _ROOT_BOUND = processor, resource, scope, root_bound


def reset() -> None:
    configure(None, None, None, 0)


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
