"""Per-call Prometheus metrics for the proxy host, from Envoy's gRPC access log stream.

The proxy's calls never reach Python (envoy/proxy.lua decides, Envoy forwards), so the
edge streams one HTTPAccessLogEntry per call here (envoy.access_loggers.http_grpc calls
envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs), in batches, on a stream it
keeps open. The messages are ampmesh.edge.v1's wire-compatible subsets of Envoy's
(proto/ampmesh/edge/v1/access_log.proto), served by a generic handler under Envoy's
service name, so the api needs no Envoy protos. proxy.lua tags each call with stream
dynamic metadata under "ampmesh.proxy" (project, provider, origin: "provider" when the
provider answered, "ampmesh" when ampmesh refused or failed), which Envoy copies into the
entry's common_properties.metadata. From them:

    ampmesh_proxy_calls_total{project, provider, status_class, origin}
    ampmesh_proxy_call_seconds{provider, status_class}    first byte in to last byte out
    ampmesh_proxy_upstream_seconds{provider}              the provider's time to answer

An entry without the tags (a CORS preflight, a request refused before proxy.lua ran) is
counted with project and provider "" and origin "ampmesh". Labels come only from those
tags and the status code, never from request headers or paths, which carry credentials.

With a database, each call answered with a status is also added to the per-minute rollup
the metrics service reads (call_rollup.py): a dict increment here, stored every few
seconds by a task off this path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

import asyncpg
import grpc
from ampmesh.edge.v1.access_log_pb2 import (
    HTTPAccessLogEntry,
    StreamAccessLogsMessage,
    StreamAccessLogsResponse,
)
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Value
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from services.api.proxy.call_rollup import CallRollup
from services.runtime.logs import get_logger
from services.runtime.server import Service

_log = get_logger("ampmesh.proxy.metrics")

# The name Envoy's http_grpc access logger calls; the api's AccessPolicy should let only
# the edge (identity "envoy") call it, or any caller could write made-up calls.
SERVICE_NAME = "envoy.service.accesslog.v3.AccessLogService"
STREAM_METHOD = "StreamAccessLogs"

METADATA_NAMESPACE = "ampmesh.proxy"
PROVIDER_ORIGIN = "provider"
AMPMESH_ORIGIN = "ampmesh"
NO_STATUS = "none"  # response code 0: the caller went away before any response
# The label values every project or provider past MAX_LABEL_SETS is counted under.
OVERFLOW = "other"

# Distinct (project, provider, status class, origin) label sets kept; past it, new ones are
# folded into OVERFLOW. proxy.lua should only tag calls with what a decision names, but a
# refused call's tags may echo what its caller claimed, and one time series per made-up
# project would let any caller grow the api's memory and every scrape without bound.
MAX_LABEL_SETS = 10_000
# Project ids and provider names are far shorter; a longer value is cut, not refused.
MAX_LABEL_LENGTH = 128

# HTTP calls to SaaS providers: a cached answer in a few ms, a bulk export in tens of s.
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)

_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
# The classes the metrics service reports (a call with no status reached no caller).
_ROLLED_UP = frozenset({"2xx", "3xx", "4xx", "5xx"})


@dataclass(slots=True)
class _Series:
    """The labelled children one label set observes into, looked up once."""

    calls: Counter
    call_seconds: Histogram
    upstream_seconds: Histogram | None


class ProxyCallMetrics:
    """The proxy's per-call metrics, observed from access log entries."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.calls = Counter(
            "ampmesh_proxy_calls_total",
            "Calls on the proxy host, by project, provider, HTTP status class and who "
            "answered (provider or ampmesh).",
            ["project", "provider", "status_class", "origin"],
            registry=registry,
        )
        self.call_seconds = Histogram(
            "ampmesh_proxy_call_seconds",
            "Time from a proxy call's first byte in to its last byte out, at the edge.",
            ["provider", "status_class"],
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "ampmesh_proxy_upstream_seconds",
            "Time from a proxy call's first byte in to the provider's first byte back, for "
            "calls the provider answered.",
            ["provider"],
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        self._overflowed = False
        # Set by the api that has a database (AccessLogMetrics); None: no rollup.
        self.rollup: CallRollup | None = None

    def observe(self, entry: HTTPAccessLogEntry) -> None:
        """Count one access log entry (Envoy's envoy.data.accesslog.v3.HTTPAccessLogEntry)."""
        common = entry.common_properties
        # Fields read directly: this runs for every proxied call (no MessageToDict).
        # .get, not [], on the map: [] would add an empty entry to a message we only read.
        tags = common.metadata.filter_metadata.get(METADATA_NAMESPACE)
        if tags is None:
            project = provider = ""
            origin = AMPMESH_ORIGIN
        else:
            fields = tags.fields
            project = _text(fields, "project")
            provider = _text(fields, "provider")
            answered = _text(fields, "origin") == PROVIDER_ORIGIN
            origin = PROVIDER_ORIGIN if answered else AMPMESH_ORIGIN
        status_class = _STATUS_CLASSES.get(entry.response.response_code.value // 100, NO_STATUS)

        key = (project, provider, status_class, origin)
        series = self._series.get(key) or self._new_series(key)
        series.calls.inc()
        if self.rollup is not None and status_class in _ROLLED_UP:
            self.rollup.add(project, status_class)
        if common.HasField("time_to_last_downstream_tx_byte"):
            series.call_seconds.observe(_seconds(common.time_to_last_downstream_tx_byte))
        elif common.HasField("time_to_last_upstream_rx_byte"):
            series.call_seconds.observe(_seconds(common.time_to_last_upstream_rx_byte))
        # No time at all: the caller left before anything was sent; counted, not timed.
        if series.upstream_seconds is not None and common.HasField(
            "time_to_first_upstream_rx_byte"
        ):
            series.upstream_seconds.observe(_seconds(common.time_to_first_upstream_rx_byte))

    def _new_series(self, key: tuple[str, str, str, str]) -> _Series:
        if len(self._series) >= MAX_LABEL_SETS:
            if not self._overflowed:
                self._overflowed = True
                _log.warning(
                    "proxy call metrics: too many label sets; further projects and "
                    "providers are counted as 'other'",
                    max_label_sets=MAX_LABEL_SETS,
                )
            key = (OVERFLOW, OVERFLOW, key[2], key[3])
            existing = self._series.get(key)
            if existing is not None:
                return existing
        project, provider, status_class, origin = key
        series = _Series(
            self.calls.labels(project, provider, status_class, origin),
            self.call_seconds.labels(provider, status_class),
            self.upstream_seconds.labels(provider) if origin == PROVIDER_ORIGIN else None,
        )
        self._series[key] = series
        return series


def _text(fields: Mapping[str, Value], key: str) -> str:
    value = fields.get(key)
    return "" if value is None else value.string_value[:MAX_LABEL_LENGTH]


def _seconds(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


@lru_cache(maxsize=1)
def default_metrics() -> ProxyCallMetrics:
    """The process-wide metrics on the default registry (metrics register only once)."""
    return ProxyCallMetrics()


class AccessLogMetrics:
    """envoy.service.accesslog.v3.AccessLogService: counts the HTTP entries it is sent.

    Envoy keeps one stream open per logger and worker and sends a message per flush; the
    stream ends only when Envoy closes it, and Envoy reopens it when it breaks.
    """

    def __init__(
        self, registry: CollectorRegistry = REGISTRY, rollup: CallRollup | None = None
    ) -> None:
        self.metrics = default_metrics() if registry is REGISTRY else ProxyCallMetrics(registry)
        self.metrics.rollup = rollup

    async def StreamAccessLogs(
        self,
        request_iterator: AsyncIterator[StreamAccessLogsMessage],
        context: grpc.aio.ServicerContext,
    ) -> StreamAccessLogsResponse:
        observe = self.metrics.observe
        if self.metrics.rollup is not None:
            self.metrics.rollup.ensure_running()
        async for message in request_iterator:
            # tcp_logs (and the first message's identifier) carry nothing we count.
            for entry in message.http_logs.log_entry:
                observe(entry)
        return StreamAccessLogsResponse()


def service(registry: CollectorRegistry = REGISTRY, pool: asyncpg.Pool | None = None) -> Service:
    """The AccessLogService under Envoy's name, for the api's server. Without registry, the
    metrics go to the process's default registry, which the metrics port serves; with a
    pool, calls are also rolled up per minute into PostgreSQL for the metrics service."""
    servicer = AccessLogMetrics(registry, CallRollup(pool) if pool is not None else None)
    handler = grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            STREAM_METHOD: grpc.stream_unary_rpc_method_handler(
                servicer.StreamAccessLogs,
                request_deserializer=StreamAccessLogsMessage.FromString,
                response_serializer=StreamAccessLogsResponse.SerializeToString,
            )
        },
    )
    return Service.from_handler(SERVICE_NAME, handler)
