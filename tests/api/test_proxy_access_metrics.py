"""The proxy host's per-call metrics, from access log entries streamed as Envoy's
http_grpc access logger streams them, to the api's AccessLogService over real mTLS.

The messages are encoded by hand with Envoy's field numbers (envoy/service/accesslog/v3/
als.proto, envoy/data/accesslog/v3/accesslog.proto, envoy/config/core/v3/base.proto), and
read into ampmesh.edge.v1's subsets: a subset that drifted from Envoy's numbering fails
here, and the fields the subsets leave out (the request's path and headers, which carry
credentials) travel along, are skipped, and must never show."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
import pytest
from ampmesh.edge.v1.access_log_pb2 import (
    HTTPAccessLogEntry,
    StreamAccessLogsMessage,
    StreamAccessLogsResponse,
)
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct
from google.protobuf.wrappers_pb2 import UInt32Value
from prometheus_client import CollectorRegistry

from services.api.proxy import access_metrics
from services.api.proxy.access_metrics import ProxyCallMetrics, service
from services.runtime.identity import AccessPolicy
from services.runtime.interceptors import RpcMetrics
from services.runtime.tls import ServiceCredentials
from tests.support.probe import dial, serving

CredsFor = Callable[[str], ServiceCredentials]
# What Envoy calls, spelled out rather than the module's constant: a renamed constant
# fails here rather than at the edge.
ALS = "envoy.service.accesslog.v3.AccessLogService"
STREAM_ACCESS_LOGS = f"/{ALS}/StreamAccessLogs"
SECRET_PATH = "/crm/v3/objects/contacts?hapikey=s3cr3t-key"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (message, string, map entry) in protobuf's encoding."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _duration(ms: int) -> bytes:
    duration = Duration()
    duration.FromMilliseconds(ms)
    return duration.SerializeToString()


def entry(
    code: int,
    tags: dict[str, str] | None = None,
    *,
    downstream_ms: int | None = None,
    upstream_last_ms: int | None = None,
    upstream_first_ms: int | None = None,
) -> HTTPAccessLogEntry:
    """An envoy.data.accesslog.v3.HTTPAccessLogEntry as Envoy encodes it."""
    common = b""  # AccessLogCommon
    if upstream_first_ms is not None:
        common += _field(9, _duration(upstream_first_ms))  # time_to_first_upstream_rx_byte
    if upstream_last_ms is not None:
        common += _field(10, _duration(upstream_last_ms))  # time_to_last_upstream_rx_byte
    if downstream_ms is not None:
        common += _field(12, _duration(downstream_ms))  # time_to_last_downstream_tx_byte
    if tags is not None:
        values = Struct()
        values.update(tags)
        namespace = access_metrics.METADATA_NAMESPACE.encode()
        # metadata (17): Metadata.filter_metadata (1), map entries of key (1) and value (2)
        filter_metadata = _field(1, _field(1, namespace) + _field(2, values.SerializeToString()))
        common += _field(17, filter_metadata)
    # request: HTTPRequestProperties' path (5) and request_headers (13): what a real entry
    # carries and the metrics must never show.
    request = _field(5, SECRET_PATH.encode()) + _field(
        13, _field(1, b"authorization") + _field(2, b"Bearer s3cr3t-token")
    )
    # response: HTTPResponseProperties.response_code (1), unset when nothing was answered
    response = _field(1, UInt32Value(value=code).SerializeToString()) if code else b""
    encoded = _field(1, common) + _field(3, request) + _field(4, response)
    return HTTPAccessLogEntry.FromString(encoded)


def message(batch: list[HTTPAccessLogEntry], *, first: bool) -> StreamAccessLogsMessage:
    """An envoy.service.accesslog.v3.StreamAccessLogsMessage as Envoy encodes it."""
    # http_logs (2): HTTPAccessLogEntries.log_entry (1), repeated
    encoded = _field(2, b"".join(_field(1, e.SerializeToString()) for e in batch))
    if first:  # Envoy names itself on a stream's first message only
        # identifier (1): node (1, envoy.config.core.v3.Node.id (1)) and log_name (2)
        encoded = _field(1, _field(1, _field(1, b"edge")) + _field(2, b"proxy")) + encoded
    return StreamAccessLogsMessage.FromString(encoded)


def tags(project: str, provider: str, origin: str | None) -> dict[str, str]:
    found = {"project": project, "provider": provider, "installation": "i-1", "connection": "c-1"}
    if origin is not None:
        found["origin"] = origin
    return found


async def stream(
    registry: CollectorRegistry,
    creds_for: CredsFor,
    batches: Iterable[list[HTTPAccessLogEntry]],
    *,
    caller: str = "envoy",
) -> None:
    """Send the batches on one stream, as the edge does, and wait for its end."""

    async def messages() -> AsyncIterator[StreamAccessLogsMessage]:
        for number, batch in enumerate(batches):
            yield message(batch, first=number == 0)

    # The api's policy: its usual callers, and only the edge for the access log service.
    policy = AccessPolicy(
        allowed=frozenset({"envoy", "mcpanda"}), per_service={ALS: frozenset({"envoy"})}
    )
    async with (
        serving(
            creds_for("api"),
            [service(registry)],
            policy=policy,
            metrics=RpcMetrics(CollectorRegistry()),
        ) as server,
        dial(server, creds_for(caller)) as channel,
    ):
        call = channel.stream_unary(
            STREAM_ACCESS_LOGS,
            request_serializer=StreamAccessLogsMessage.SerializeToString,
            response_deserializer=StreamAccessLogsResponse.FromString,
        )
        response = await call(messages(), timeout=10)
    assert response == StreamAccessLogsResponse()


def calls(
    registry: CollectorRegistry, project: str, provider: str, status: str, origin: str
) -> Any:
    return registry.get_sample_value(
        "ampmesh_proxy_calls_total",
        {"project": project, "provider": provider, "status_class": status, "origin": origin},
    )


async def test_calls_are_counted_and_timed_by_project_provider_and_status(
    creds_for: CredsFor,
) -> None:
    registry = CollectorRegistry()
    hubspot = tags("p1", "hubspot", "provider")
    refused = tags("p2", "salesforce", "ampmesh")
    await stream(
        registry,
        creds_for,
        [
            [
                entry(200, hubspot, downstream_ms=120, upstream_first_ms=80),
                entry(429, hubspot, downstream_ms=30, upstream_first_ms=20),
            ],
            [
                # ampmesh's answer, though a provider had answered first: not the provider's time
                entry(401, refused, downstream_ms=4, upstream_first_ms=3),
                # no downstream time (the caller went away mid-body): the upstream's last byte
                entry(200, hubspot, upstream_last_ms=1500, upstream_first_ms=1000),
            ],
        ],
    )

    assert calls(registry, "p1", "hubspot", "2xx", "provider") == 2
    assert calls(registry, "p1", "hubspot", "4xx", "provider") == 1
    assert calls(registry, "p2", "salesforce", "4xx", "ampmesh") == 1
    assert calls(registry, "p2", "salesforce", "4xx", "provider") is None

    ok = {"provider": "hubspot", "status_class": "2xx"}
    assert registry.get_sample_value("ampmesh_proxy_call_seconds_count", ok) == 2
    assert registry.get_sample_value("ampmesh_proxy_call_seconds_sum", ok) == pytest.approx(1.62)
    fast = {**ok, "le": "0.25"}
    assert registry.get_sample_value("ampmesh_proxy_call_seconds_bucket", fast) == 1
    refused_time = {"provider": "salesforce", "status_class": "4xx"}
    assert registry.get_sample_value(
        "ampmesh_proxy_call_seconds_sum", refused_time
    ) == pytest.approx(0.004)

    upstream = {"provider": "hubspot"}
    assert registry.get_sample_value("ampmesh_proxy_upstream_seconds_count", upstream) == 3
    assert registry.get_sample_value(
        "ampmesh_proxy_upstream_seconds_sum", upstream
    ) == pytest.approx(1.1)
    assert (
        registry.get_sample_value(
            "ampmesh_proxy_upstream_seconds_count", {"provider": "salesforce"}
        )
        is None
    )

    shown = {
        value
        for family in registry.collect()
        for sample in family.samples
        for value in sample.labels.values()
    }
    assert not any("s3cr3t" in value or "i-1" in value or "c-1" in value for value in shown)


async def test_untagged_and_unanswered_calls_count_as_ampmesh_with_no_status(
    creds_for: CredsFor,
) -> None:
    registry = CollectorRegistry()
    await stream(
        registry,
        creds_for,
        [
            [
                entry(0),  # no tags, no response, no timing: the caller left at once
                entry(204, downstream_ms=2),  # a CORS preflight Envoy answered itself
            ],
            [entry(0, tags("p1", "hubspot", None), upstream_first_ms=50)],
        ],
    )

    assert calls(registry, "", "", "none", "ampmesh") == 1
    assert calls(registry, "", "", "2xx", "ampmesh") == 1
    # Tagged without an origin: not the provider's answer.
    assert calls(registry, "p1", "hubspot", "none", "ampmesh") == 1
    untimed = {"provider": "", "status_class": "none"}
    assert registry.get_sample_value("ampmesh_proxy_call_seconds_count", untimed) == 0
    assert (
        registry.get_sample_value(
            "ampmesh_proxy_call_seconds_count", {"provider": "", "status_class": "2xx"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("ampmesh_proxy_upstream_seconds_count", {"provider": "hubspot"})
        is None
    )


def test_projects_past_the_label_limit_are_counted_as_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(access_metrics, "MAX_LABEL_SETS", 2)
    registry = CollectorRegistry()
    metrics = ProxyCallMetrics(registry)
    for project in ("p1", "p2", "made-up-1", "made-up-2", "p1"):
        metrics.observe(entry(200, tags(project, "hubspot", "provider"), downstream_ms=10))

    assert calls(registry, "p1", "hubspot", "2xx", "provider") == 2
    assert calls(registry, "p2", "hubspot", "2xx", "provider") == 1
    assert calls(registry, "made-up-1", "hubspot", "2xx", "provider") is None
    assert calls(registry, "other", "other", "2xx", "provider") == 2


async def test_only_the_edge_may_stream_access_logs(creds_for: CredsFor) -> None:
    registry = CollectorRegistry()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream(
            registry,
            creds_for,
            [[entry(200, tags("p1", "hubspot", "provider"), downstream_ms=10)]],
            caller="mcpanda",
        )

    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert calls(registry, "p1", "hubspot", "2xx", "provider") is None
