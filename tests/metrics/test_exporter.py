"""The metrics service's gauges: what a refresh exports for a project (read back with
prometheus_client's text parser), a vanished project losing its series, a failed refresh
keeping the last figures, and the mesh's own metrics process exporting them."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.metrics.exporter import Exporter
from tests.metrics.metrics_world import World
from tests.support.control_plane import database_url
from tests.support.stack import Stack

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str, project: str | None = None) -> Samples:
    """(name, labels without project) -> value, of project's series (or unlabelled ones)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("project") != project:
                continue
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "project"))
            found[(sample.name, labels)] = sample.value
    return found


def _exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


async def test_a_refresh_exports_the_projects_recent_figures(
    pool: asyncpg.Pool, world: World
) -> None:
    registry = CollectorRegistry()
    exporter = Exporter(pool, interval=60, window=3600, registry=registry)
    before = time.time()
    await exporter.refresh()
    samples = _samples(_exposition(registry), world.project_id)

    assert (
        samples[("ampmesh_app_connections", (("provider", "hubspot"), ("status", "working")))] == 2
    )
    assert (
        samples[
            ("ampmesh_app_connections", (("provider", "salesforce"), ("status", "bad_credentials")))
        ]
        == 1
    )
    assert samples[("ampmesh_app_installations", (("integration", world.sync_integration),))] == 1
    assert samples[("ampmesh_app_operations", (("action", "read"), ("status", "success")))] == 2
    assert samples[("ampmesh_app_operations", (("action", "read"), ("status", "in_progress")))] == 1
    assert samples[("ampmesh_app_operations", (("action", "write"), ("status", "failure")))] == 1
    assert (
        samples[
            ("ampmesh_app_operation_duration_seconds", (("action", "read"), ("quantile", "0.5")))
        ]
        == 60
    )
    assert (
        samples[
            ("ampmesh_app_operation_duration_seconds", (("action", "write"), ("quantile", "0.99")))
        ]
        == 10
    )
    records = {
        kind: samples[("ampmesh_app_records", (("kind", kind),))]
        for kind in ("read", "written", "write_failed", "delivered")
    }
    assert records == {"read": 157, "written": 5, "write_failed": 2, "delivered": 100}
    deliveries = {
        status: samples[("ampmesh_app_deliveries", (("status", status),))]
        for status in ("succeeded", "failed", "outstanding")
    }
    assert deliveries == {"succeeded": 2, "failed": 1, "outstanding": 1}
    assert 20 * 60 - 5 < samples[("ampmesh_app_oldest_undelivered_seconds", ())] < 30 * 60
    assert samples[("ampmesh_app_endpoints_disabled", ())] == 1
    assert samples[("ampmesh_app_dead_letters", ())] == 1
    assert samples[("ampmesh_app_token_refreshes", (("outcome", "succeeded"),))] == 2
    assert samples[("ampmesh_app_token_refreshes", (("outcome", "failed"),))] == 1
    assert samples[("ampmesh_app_proxy_calls", (("status_class", "2xx"),))] == 7
    assert samples[("ampmesh_app_proxy_calls", (("status_class", "4xx"),))] == 0
    assert samples[("ampmesh_app_proxy_calls", (("status_class", "5xx"),))] == 1

    unlabelled = _samples(_exposition(registry))
    assert unlabelled[("ampmesh_app_metrics_refresh_timestamp_seconds", ())] >= before
    queries = {labels for name, labels in unlabelled if name == "ampmesh_app_metrics_query_seconds"}
    assert (("query", "operations"),) in queries and (("query", "proxy_calls"),) in queries


async def test_a_project_that_vanishes_loses_its_series(stack: Stack, pool: asyncpg.Pool) -> None:
    registry = CollectorRegistry()
    exporter = Exporter(pool, interval=60, window=3600, registry=registry)
    project = await pool.fetchval(
        "INSERT INTO projects (org_id, name, app_name) VALUES ($1, $2, 'Gone') RETURNING id::text",
        uuid.UUID(stack.org_id),
        f"metrics-gone-{uuid.uuid4().hex[:8]}",
    )
    await exporter.refresh()
    assert _samples(_exposition(registry), project)[("ampmesh_app_dead_letters", ())] == 0
    await pool.execute("DELETE FROM projects WHERE id = $1::uuid", project)
    await exporter.refresh()
    assert _samples(_exposition(registry), project) == {}


async def test_a_failed_refresh_keeps_the_last_figures(stack: Stack, world: World) -> None:
    registry = CollectorRegistry()
    own = await asyncpg.create_pool(database_url(stack), min_size=1, max_size=1)
    exporter = Exporter(own, interval=60, window=3600, registry=registry)
    assert await exporter.refresh_or_keep()
    before = _exposition(registry)
    await own.close()  # what a refresh meets when the database is gone
    assert not await exporter.refresh_or_keep()
    after = _exposition(registry)
    assert after == before
    assert _samples(after, world.project_id)[("ampmesh_app_dead_letters", ())] == 1


async def test_the_mesh_metrics_process_exports_the_project(stack: Stack, world: World) -> None:
    """The running service refreshes on its own (every AMPMESH_METRICS_INTERVAL seconds,
    15 by default): within a few intervals the seeded project appears on its port."""
    url = stack.endpoints["metrics-metrics"]
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(120):
            samples = _samples((await http.get(url)).text, world.project_id)
            if samples.get(("ampmesh_app_dead_letters", ())) == 1:
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"the project never appeared on {url}")
    assert samples[("ampmesh_app_proxy_calls", (("status_class", "2xx"),))] == 7
