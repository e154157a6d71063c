"""The proxy's calls rolled up per (project, status class, minute) into PostgreSQL, from
the access log entries Envoy streams to the api: what the metrics service's proxy figures
are read from."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from ampmesh.edge.v1.access_log_pb2 import HTTPAccessLogEntry
from prometheus_client import CollectorRegistry

from services.api.proxy.access_metrics import METADATA_NAMESPACE, ProxyCallMetrics
from services.api.proxy.call_rollup import CallRollup
from tests.support.control_plane import database_url
from tests.support.stack import Stack


def entry(code: int, project: str | None = None) -> HTTPAccessLogEntry:
    """An access log entry as the edge streams it: a status (0: none) and proxy.lua's
    tags, when it tagged the call."""
    logged = HTTPAccessLogEntry()
    if code:
        logged.response.response_code.value = code
    if project is not None:
        logged.common_properties.metadata.filter_metadata[METADATA_NAMESPACE].update(
            {"project": project, "provider": "hubspot", "origin": "provider"}
        )
    return logged


async def _stored(pool: asyncpg.Pool, project: str) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT status_class, sum(calls)::bigint AS calls FROM proxy_call_counts "
        "WHERE project_id = $1 GROUP BY 1",
        project,
    )
    return {row["status_class"]: row["calls"] for row in rows}


async def test_calls_are_added_per_project_and_status_class(pool: asyncpg.Pool) -> None:
    project = str(uuid.uuid4())
    metrics = ProxyCallMetrics(CollectorRegistry())
    metrics.rollup = rollup = CallRollup(pool)
    for code in (200, 200, 201, 404, 503):
        metrics.observe(entry(code, project))
    # Not a project's call (a refused call's made-up tag, an untagged preflight) and one
    # the caller left before any answer: none is stored.
    metrics.observe(entry(200, "not-a-project"))
    metrics.observe(entry(204))
    metrics.observe(entry(0, project))
    await rollup.flush()
    assert await _stored(pool, project) == {"2xx": 3, "4xx": 1, "5xx": 1}
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM proxy_call_counts WHERE project_id = 'not-a-project'"
        )
        == 0
    )

    # A second api (or a later flush) adds to the same minute's rows.
    other = CallRollup(pool)
    other.add(project, "2xx")
    await other.flush()
    assert (await _stored(pool, project))["2xx"] == 4


async def test_counts_a_flush_could_not_store_wait_for_the_next(stack: Stack) -> None:
    project = str(uuid.uuid4())
    own = await asyncpg.create_pool(database_url(stack), min_size=1, max_size=1)
    rollup = CallRollup(own)
    rollup.add(project, "2xx")
    await own.close()
    with pytest.raises(asyncpg.InterfaceError):  # the pool is closed
        await rollup.flush()
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=1) as fresh:
        rollup.pool = fresh
        rollup.add(project, "2xx")
        await rollup.flush()
        assert await _stored(fresh, project) == {"2xx": 2}
