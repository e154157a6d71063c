"""The metrics service's SQL: one query per figure family, for every project at once (the
exporter's refresh) or for one project (GetProjectMetrics), over one window.

Each query is written once with a `{scope}` slot, filled with a fixed SQL fragment (never
with input): `TRUE` for every project, or a comparison with the `:project` parameter for
one. Parameters are named (`:start`) and numbered when the text is compiled, since each
query uses a different subset and PostgreSQL refuses a parameter it cannot type.
Every windowed query reads a range of an index (migration 0014_metrics names which), so a
refresh costs what the window holds, not what the tables hold. Figures are rows of
(project id, labels..., numbers); `Figures` gathers them per project.

Where each figure lives:
- operations (scribe's rows): count by action and current status, time from creation to
  the end (`finished_at`, else the last update) of those ended, and the records read,
  written and failed (`counts`, scribe's copy of the last progress or finish event);
- webhook_deliveries (messenger's): settled deliveries, attempts, records delivered,
  latency; the unsettled ones now, and the oldest of them; webhook_endpoints disabled;
- scribe_dead_letters: waiting now, recorded in the window;
- connections (now, by provider and status), installations (now, by integration);
- connection_events: ConnectionRefreshed is a refresh that worked; ConnectionError one
  that failed, except a revocation the builder asked for (REVOKED with no answer from the
  provider), which refreshed nothing;
- proxy_call_counts: the api's per-minute rollup of the proxy's calls.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

# (label values..., count) figures of one project, per family.
Counted = dict[tuple[str, ...], int]


@dataclass
class OperationFigures:
    count: int = 0
    p50_seconds: float | None = None
    p99_seconds: float | None = None


@dataclass
class Figures:
    """One project's figures for one window."""

    operations: dict[tuple[str, str], OperationFigures] = field(default_factory=dict)
    # Per action, (p50, p99) seconds over its ended operations, whatever their outcome.
    durations: dict[str, tuple[float, float]] = field(default_factory=dict)
    records_read: int = 0
    records_written: int = 0
    records_write_failed: int = 0
    records_delivered: int = 0
    deliveries_succeeded: int = 0
    deliveries_failed: int = 0
    delivery_attempts: int = 0
    delivery_p50_seconds: float | None = None
    delivery_p99_seconds: float | None = None
    outstanding: int = 0
    oldest_undelivered_seconds: float | None = None
    endpoints_disabled_in_window: int = 0
    endpoints_disabled_now: int = 0
    connections: Counted = field(default_factory=dict)
    installations: Counted = field(default_factory=dict)
    refreshes_succeeded: int = 0
    refreshes_failed: int = 0
    proxy_calls: Counted = field(default_factory=dict)
    dead_letters_waiting: int = 0
    dead_letters_recorded: int = 0


@dataclass(frozen=True)
class Scope:
    """What to compute: every project (project_id None) or one, over [start, end), of
    every integration or one (operations, records and deliveries only)."""

    start: datetime
    end: datetime
    project_id: str | None = None
    integration_id: str | None = None


# :start and :end bound the window, :integration is an integration id or NULL; {scope}
# becomes TRUE or a comparison with :project.
_OPERATIONS = """
SELECT project_id::text, action_type, status, count(*) AS count,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM
        coalesce(finished_at, updated_at) - created_at)) FILTER (WHERE status <> 'in_progress')
        AS p50,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM
        coalesce(finished_at, updated_at) - created_at)) FILTER (WHERE status <> 'in_progress')
        AS p99,
    coalesce(sum((counts->>'recordsRead')::bigint), 0)::bigint AS read,
    coalesce(sum((counts->>'recordsWritten')::bigint), 0)::bigint AS written,
    coalesce(sum((counts->>'recordsFailed')::bigint), 0)::bigint AS failed
FROM operations
WHERE created_at >= :start AND created_at < :end AND {scope}
    AND (:integration::uuid IS NULL OR integration_id = :integration::uuid)
GROUP BY 1, 2, 3
"""

# The same operations' durations per action, success and failure together (the
# exporter's ampmesh_app_operation_duration_seconds; quantiles cannot be merged later).
_DURATIONS = """
SELECT project_id::text, action_type,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM
        coalesce(finished_at, updated_at) - created_at)) AS p50,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM
        coalesce(finished_at, updated_at) - created_at)) AS p99
FROM operations
WHERE created_at >= :start AND created_at < :end AND {scope} AND status <> 'in_progress'
    AND (:integration::uuid IS NULL OR integration_id = :integration::uuid)
GROUP BY 1, 2
"""

# Deliveries name their installation as text; an integration's are found through it.
_DELIVERY_INTEGRATION = """
(:integration::uuid IS NULL OR installation_id IN
    (SELECT id::text FROM installations WHERE integration_id = :integration::uuid))
"""

_DELIVERIES = (
    """
SELECT project_id::text,
    count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    coalesce(sum(attempt_count), 0)::bigint AS attempts,
    coalesce(sum(record_count) FILTER (WHERE status = 'succeeded'), 0)::bigint AS delivered,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at))
        FILTER (WHERE status = 'succeeded') AS p50,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at))
        FILTER (WHERE status = 'succeeded') AS p99
FROM webhook_deliveries
WHERE created_at >= :start AND created_at < :end AND {scope} AND """
    + _DELIVERY_INTEGRATION
    + """
GROUP BY 1
"""
)

# Now, whatever the window: unsettled deliveries are few (a partial index holds them).
_OUTSTANDING = (
    """
SELECT project_id::text, count(*) AS outstanding,
    extract(epoch FROM now() - min(created_at)) AS oldest
FROM webhook_deliveries
WHERE status IN ('pending', 'retrying', 'held') AND {scope} AND """
    + _DELIVERY_INTEGRATION
    + """
GROUP BY 1
"""
)

_ENDPOINTS = """
SELECT project_id::text,
    count(*) FILTER (WHERE state = 'disabled') AS disabled_now,
    count(*) FILTER (WHERE disabled_at >= :start AND disabled_at < :end) AS disabled_in_window
FROM webhook_endpoints
WHERE {scope}
GROUP BY 1
"""

_DEAD_LETTERS = """
SELECT project_id,
    count(*) FILTER (WHERE state = 'pending') AS waiting,
    count(*) FILTER (WHERE created_at >= :start AND created_at < :end) AS recorded
FROM scribe_dead_letters
WHERE (state = 'pending' OR (created_at >= :start AND created_at < :end)) AND {scope}
GROUP BY 1
"""

_CONNECTIONS = """
SELECT project_id::text, provider, status, count(*) AS count
FROM connections
WHERE {scope}
GROUP BY 1, 2, 3
"""

_INSTALLATIONS = """
SELECT project_id::text, integration_id::text, count(*) AS count
FROM installations
WHERE {scope} AND (:integration::uuid IS NULL OR integration_id = :integration::uuid)
GROUP BY 1, 2
"""

_REFRESHES = """
SELECT project_id::text,
    count(*) FILTER (WHERE type = 'ampmesh.events.v1.ConnectionRefreshed') AS succeeded,
    count(*) FILTER (WHERE type = 'ampmesh.events.v1.ConnectionError' AND NOT (
        payload->>'kind' = 'CONNECTION_ERROR_KIND_REVOKED'
        AND payload->>'providerStatusCode' IS NULL
        AND payload->>'providerError' IS NULL)) AS failed
FROM connection_events
WHERE event_time >= :start AND event_time < :end AND {scope}
    AND type IN ('ampmesh.events.v1.ConnectionRefreshed', 'ampmesh.events.v1.ConnectionError')
GROUP BY 1
"""

# Minutes are counted whole: a window starting mid-minute counts that minute's calls.
_PROXY_CALLS = """
SELECT project_id, status_class, sum(calls)::bigint AS count
FROM proxy_call_counts
WHERE minute >= date_trunc('minute', :start::timestamptz) AND minute < :end AND {scope}
GROUP BY 1, 2
"""

_PROJECTS = """
SELECT id::text FROM projects
WHERE {scope}
"""


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _apply_operations(figures: Figures, row: asyncpg.Record) -> None:
    figures.operations[(row["action_type"], row["status"])] = OperationFigures(
        row["count"], _number(row["p50"]), _number(row["p99"])
    )
    figures.records_read += row["read"]
    figures.records_written += row["written"]
    figures.records_write_failed += row["failed"]


def _apply_durations(figures: Figures, row: asyncpg.Record) -> None:
    figures.durations[row["action_type"]] = (float(row["p50"]), float(row["p99"]))


def _apply_deliveries(figures: Figures, row: asyncpg.Record) -> None:
    figures.deliveries_succeeded = row["succeeded"]
    figures.deliveries_failed = row["failed"]
    figures.delivery_attempts = row["attempts"]
    figures.records_delivered = row["delivered"]
    figures.delivery_p50_seconds = _number(row["p50"])
    figures.delivery_p99_seconds = _number(row["p99"])


def _apply_outstanding(figures: Figures, row: asyncpg.Record) -> None:
    figures.outstanding = row["outstanding"]
    figures.oldest_undelivered_seconds = max(0.0, float(row["oldest"]))


def _apply_endpoints(figures: Figures, row: asyncpg.Record) -> None:
    figures.endpoints_disabled_now = row["disabled_now"]
    figures.endpoints_disabled_in_window = row["disabled_in_window"]


def _apply_dead_letters(figures: Figures, row: asyncpg.Record) -> None:
    figures.dead_letters_waiting = row["waiting"]
    figures.dead_letters_recorded = row["recorded"]


def _apply_connections(figures: Figures, row: asyncpg.Record) -> None:
    figures.connections[(row["provider"], row["status"])] = row["count"]


def _apply_installations(figures: Figures, row: asyncpg.Record) -> None:
    figures.installations[(row["integration_id"],)] = row["count"]


def _apply_refreshes(figures: Figures, row: asyncpg.Record) -> None:
    figures.refreshes_succeeded = row["succeeded"]
    figures.refreshes_failed = row["failed"]


def _apply_proxy_calls(figures: Figures, row: asyncpg.Record) -> None:
    figures.proxy_calls[(row["status_class"],)] = row["count"]


_PARAMETER = re.compile(r"(?<!:):([a-z_]+)")


def compile_sql(text: str, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """text with its :names as $1, $2... (in order of first use), and their values."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _PARAMETER.sub(number, text), [values[name] for name in order]


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    # The project column's type: scribe's dead letters and the proxy rollup keep it as
    # text (a message's or a tag's claim, not always a project).
    project_type: str
    apply: Callable[[Figures, asyncpg.Record], None]
    # Only the exporter reports it (GetProjectMetrics has per-status quantiles).
    exported_only: bool = False

    def text(self, one_project: bool) -> str:
        scope = f"project_id = :project::{self.project_type}" if one_project else "TRUE"
        return self.sql.format(scope=scope)


QUERIES: tuple[Query, ...] = (
    Query("operations", _OPERATIONS, "uuid", _apply_operations),
    Query("durations", _DURATIONS, "uuid", _apply_durations, exported_only=True),
    Query("deliveries", _DELIVERIES, "uuid", _apply_deliveries),
    Query("outstanding", _OUTSTANDING, "uuid", _apply_outstanding),
    Query("endpoints", _ENDPOINTS, "uuid", _apply_endpoints),
    Query("dead_letters", _DEAD_LETTERS, "text", _apply_dead_letters),
    Query("connections", _CONNECTIONS, "uuid", _apply_connections),
    Query("installations", _INSTALLATIONS, "uuid", _apply_installations),
    Query("token_refreshes", _REFRESHES, "uuid", _apply_refreshes),
    Query("proxy_calls", _PROXY_CALLS, "text", _apply_proxy_calls),
)


@dataclass
class Computed:
    """Every project's figures (projects with nothing to count have empty Figures), and
    how long each query took, in seconds."""

    projects: dict[str, Figures]
    query_seconds: dict[str, float]


Fetch = Callable[..., Awaitable[list[asyncpg.Record]]]


async def compute(fetch: Fetch, scope: Scope) -> Computed:
    """Run every query for scope; fetch is a pool's (or connection's) fetch."""
    one = scope.project_id is not None
    values = {
        "start": scope.start,
        "end": scope.end,
        "project": scope.project_id,
        "integration": scope.integration_id,
    }
    timings: dict[str, float] = {}
    started = time.perf_counter()
    text, args = compile_sql(
        _PROJECTS.format(scope="id = :project::uuid" if one else "TRUE"), values
    )
    projects = {row[0]: Figures() for row in await fetch(text, *args)}
    timings["projects"] = time.perf_counter() - started
    for query in QUERIES:
        if one and query.exported_only:
            continue
        text, args = compile_sql(query.text(one), values)
        started = time.perf_counter()
        rows = await fetch(text, *args)
        timings[query.name] = time.perf_counter() - started
        for row in rows:
            # Rows of vanished projects (or a dead letter's or proxy tag's unknown
            # project) are dropped: only projects that exist have series.
            figures = projects.get(row[0])
            if figures is not None:
                query.apply(figures, row)
    return Computed(projects, timings)


def totals_by(counted: Counted, index: int) -> dict[str, int]:
    """counted summed by the label at index."""
    result: dict[str, int] = defaultdict(int)
    for labels, count in counted.items():
        result[labels[index]] += count
    return dict(result)
