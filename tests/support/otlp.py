"""An in-process OTLP/gRPC trace collector for tests.

opentelemetry-proto's TraceService on a grpc.aio server in the test process: it keeps
every span any process (Envoy included) exports, with the service.name of the resource
that sent it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self.exports = 0
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.exports += 1
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        ExportedSpan(
                            service=service,
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={
                                a.key: a.value.WhichOneof("value")
                                and getattr(a.value, a.value.WhichOneof("value") or "string_value")
                                for a in span.attributes
                            },
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: str) -> list[ExportedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]

    async def wait_until(self, done: Callable[[], bool], patience: float = 60.0) -> None:
        deadline = time.monotonic() + patience
        while True:
            if done() or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.5)
