"""The application gauges on the metrics process's Prometheus registry, refreshed by a
scheduler: every AMPMESH_METRICS_INTERVAL seconds the query set runs once for every
project (services/metrics/queries.py) and the exposition shows that snapshot.

A collector, not prometheus_client Gauges: each scrape yields exactly the last snapshot's
series, so a project (or provider, integration, status) that is gone loses its series
with the next refresh, and label sets are bounded by what PostgreSQL holds. A refresh
that fails (the database down) is logged and the previous snapshot stays, with its
timestamp (`ampmesh_app_metrics_refresh_timestamp_seconds`) saying how stale it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.metrics.queries import Computed, Scope, compute
from services.runtime.logs import get_logger

_log = get_logger("ampmesh.metrics.exporter")

RECORD_KINDS = ("read", "written", "write_failed", "delivered")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


class AppMetricsCollector(Collector):
    """The gauges of the last snapshot (none before the first refresh)."""

    def __init__(self) -> None:
        self.snapshot: Computed | None = None
        self.refreshed_at: float | None = None

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        refreshed = GaugeMetricFamily(
            "ampmesh_app_metrics_refresh_timestamp_seconds",
            "When the application metrics were last computed (unix seconds).",
        )
        if self.refreshed_at is not None:
            refreshed.add_metric([], self.refreshed_at)
        yield refreshed
        if snapshot is None:
            return
        query_seconds = GaugeMetricFamily(
            "ampmesh_app_metrics_query_seconds",
            "How long each application metrics query took at the last refresh.",
            labels=["query"],
        )
        for name, seconds in snapshot.query_seconds.items():
            query_seconds.add_metric([name], seconds)
        yield query_seconds
        yield from _families(snapshot)


def _families(snapshot: Computed) -> Iterator[Metric]:
    connections = GaugeMetricFamily(
        "ampmesh_app_connections",
        "Connections now, by provider and status.",
        labels=["project", "provider", "status"],
    )
    installations = GaugeMetricFamily(
        "ampmesh_app_installations",
        "Installations now, by integration.",
        labels=["project", "integration"],
    )
    operations = GaugeMetricFamily(
        "ampmesh_app_operations",
        "Operations created in the recent window, by action and current status.",
        labels=["project", "action", "status"],
    )
    durations = GaugeMetricFamily(
        "ampmesh_app_operation_duration_seconds",
        "Time from creation to end of the operations created in the recent window that "
        "ended, by action (quantiles 0.5 and 0.99).",
        labels=["project", "action", "quantile"],
    )
    records = GaugeMetricFamily(
        "ampmesh_app_records",
        "Records read, written, failed to write and delivered in the recent window.",
        labels=["project", "kind"],
    )
    deliveries = GaugeMetricFamily(
        "ampmesh_app_deliveries",
        "Webhook deliveries created in the recent window that succeeded or failed, and "
        "those outstanding now.",
        labels=["project", "status"],
    )
    oldest = GaugeMetricFamily(
        "ampmesh_app_oldest_undelivered_seconds",
        "Age of the oldest webhook delivery neither delivered nor given up (0 when none).",
        labels=["project"],
    )
    disabled = GaugeMetricFamily(
        "ampmesh_app_endpoints_disabled",
        "Webhook endpoints disabled now.",
        labels=["project"],
    )
    dead_letters = GaugeMetricFamily(
        "ampmesh_app_dead_letters",
        "Scribe's dead letters waiting for an operator now.",
        labels=["project"],
    )
    refreshes = GaugeMetricFamily(
        "ampmesh_app_token_refreshes",
        "Token refreshes in the recent window, by outcome.",
        labels=["project", "outcome"],
    )
    proxy_calls = GaugeMetricFamily(
        "ampmesh_app_proxy_calls",
        "Proxy calls in the recent window, by the status class the caller got.",
        labels=["project", "status_class"],
    )
    for project, figures in snapshot.projects.items():
        for (provider, status), count in figures.connections.items():
            connections.add_metric([project, provider, status], count)
        for (integration,), count in figures.installations.items():
            installations.add_metric([project, integration], count)
        for (action, status), operation in figures.operations.items():
            operations.add_metric([project, action, status], operation.count)
        for action, (p50, p99) in figures.durations.items():
            durations.add_metric([project, action, "0.5"], p50)
            durations.add_metric([project, action, "0.99"], p99)
        for kind, value in zip(
            RECORD_KINDS,
            (
                figures.records_read,
                figures.records_written,
                figures.records_write_failed,
                figures.records_delivered,
            ),
            strict=True,
        ):
            records.add_metric([project, kind], value)
        deliveries.add_metric([project, "succeeded"], figures.deliveries_succeeded)
        deliveries.add_metric([project, "failed"], figures.deliveries_failed)
        deliveries.add_metric([project, "outstanding"], figures.outstanding)
        oldest.add_metric([project], figures.oldest_undelivered_seconds or 0.0)
        disabled.add_metric([project], figures.endpoints_disabled_now)
        dead_letters.add_metric([project], figures.dead_letters_waiting)
        refreshes.add_metric([project, "succeeded"], figures.refreshes_succeeded)
        refreshes.add_metric([project, "failed"], figures.refreshes_failed)
        for status_class in STATUS_CLASSES:
            proxy_calls.add_metric(
                [project, status_class], figures.proxy_calls.get((status_class,), 0)
            )
    yield from (
        connections,
        installations,
        operations,
        durations,
        records,
        deliveries,
        oldest,
        disabled,
        dead_letters,
        refreshes,
        proxy_calls,
    )


class Exporter:
    """Refreshes the collector's snapshot every interval, for the window before now."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        interval: float,
        window: float,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.pool = pool
        self.interval = interval
        self.window = window
        self.collector = AppMetricsCollector()
        if registry is not None:
            registry.register(self.collector)
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> Computed:
        end = datetime.now(UTC)
        computed = await compute(
            self.pool.fetch, Scope(start=end - timedelta(seconds=self.window), end=end)
        )
        self.collector.snapshot = computed
        self.collector.refreshed_at = time.time()
        return computed

    async def refresh_or_keep(self) -> bool:
        """Refresh; on any failure log it, keep the last snapshot and say False."""
        try:
            await self.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the database down, a query refused: figures stay
            _log.warning(
                "application metrics refresh failed; the last figures stay",
                error_type=type(error).__name__,
            )
            return False
        return True

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await self.refresh_or_keep()
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="metrics refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
