"""The SDK's OTLP/gRPC span exporter with a cheaper encoder.

The SDK's encoder builds every attribute's protobuf messages afresh, hashes each span's
resource (a JSON dump of its attributes) to group spans, and encodes empty statuses:
about 26 us a span, in the exporter's thread, holding the GIL the event loop needs. This
one encodes the same request caching the (key, value) attribute messages, grouping by
identity and leaving out what is empty: 7 to 10 us a span (bench/tracing.py).
tests/runtime/test_server_spans.py checks it encodes what the SDK's encoder does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def otlp_exporter(endpoint: str) -> Any:
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
