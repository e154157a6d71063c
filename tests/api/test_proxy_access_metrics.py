"""The proxy host's per-call metrics, from access log entries streamed as Envoy's
http_grpc access logger streams them, to the api's AccessLogService over real mTLS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import pytest
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from prometheus_client import CollectorRegistry

from services.api.proxy import access_metrics
from services.api.proxy.access_metrics import ProxyCallMetrics, service
from services.runtime.identity import AccessPolicy
from services.runtime.interceptors import RpcMetrics
from services.runtime.tls import ServiceCredentials
from tests.support.probe import dial, serving

CredsFor = Callable[[str], ServiceCredentials]
ALS = "envoy.service.accesslog.v3.AccessLogService"
SECRET_PATH = "/crm/v3/objects/contacts?hapikey=s3cr3t-key"


def entry(
    code: int,
    tags: dict[str, str] | None = None,
    *,
    downstream_ms: int | None = None,
    upstream_last_ms: int | None = None,
    upstream_first_ms: int | None = None,
) -> Any:
    log = accesslog_pb2.HTTPAccessLogEntry()
    # What a real entry carries and the metrics must never show.
    log.request.path = SECRET_PATH
    log.request.request_headers["authorization"] = "Bearer s3cr3t-token"
    if code:
        log.response.response_code.value = code
    common = log.common_properties
    if tags is not None:
        common.metadata.filter_metadata[access_metrics.METADATA_NAMESPACE].update(tags)
    if downstream_ms is not None:
        common.time_to_last_downstream_tx_byte.FromMilliseconds(downstream_ms)
    if upstream_last_ms is not None:
        common.time_to_last_upstream_rx_byte.FromMilliseconds(upstream_last_ms)
    if upstream_first_ms is not None:
        common.time_to_first_upstream_rx_byte.FromMilliseconds(upstream_first_ms)
    return log


def tags(project: str, provider: str, origin: str | None) -> dict[str, str]:
    found = {"project": project, "provider": provider, "installation": "i-1", "connection": "c-1"}
    if origin is not None:
        found["origin"] = origin
    return found


async def stream(
    registry: CollectorRegistry, creds_for: CredsFor, batches: Iterable[list[Any]]
) -> None:
    """Send the batches on one stream, as the edge does, and wait for its end."""

    async def messages() -> AsyncIterator[Any]:
        for number, batch in enumerate(batches):
            message = als_pb2.StreamAccessLogsMessage()
            if number == 0:  # Envoy names itself on a stream's first message only
                message.identifier.log_name = "proxy"
                message.identifier.node.id = "edge"
            message.http_logs.log_entry.extend(batch)
            yield message

    policy = AccessPolicy(per_service={ALS: frozenset({"envoy"})})
    async with (
        serving(
            creds_for("api"),
            [service(registry)],
            policy=policy,
            metrics=RpcMetrics(CollectorRegistry()),
        ) as server,
        dial(server, creds_for("envoy")) as channel,
    ):
        response = await als_pb2_grpc.AccessLogServiceStub(channel).StreamAccessLogs(
            messages(), timeout=10
        )
    assert response == als_pb2.StreamAccessLogsResponse()


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
