"""The metrics service's queries stay cheap; proxy calls are counted in PostgreSQL.

- `proxy_call_counts`: proxy calls per (project, status class, minute), added by the api
  (services/api/proxy/call_rollup.py) every few seconds from what Envoy's access log
  stream told it. The proxy's calls never reach PostgreSQL otherwise; a per-call insert
  would cost the proxy's data path, a per-minute upsert costs nothing there. Counts held
  in an api's memory when it dies are lost (a few seconds' worth). `project_id` is text
  and not a foreign key: a refused call's tag may name no project, and the metrics
  queries only ever ask for projects that exist. Rows older than 35 days are pruned by
  the api (the metrics window is at most 31 days).
- Indexes the metrics service's queries need (services/metrics/queries.py). Each
  refresh reads one window (AMPMESH_METRICS_WINDOW, an hour by default) for every
  project; each GetProjectMetrics one window of one project:
  - `operations (created_at)` and `operations (project_id, created_at)`: operations had
    only a per-installation index, so both would scan the whole table;
  - `webhook_deliveries (created_at)`: the per-project index serves one project, not
    the all-projects window;
  - `webhook_deliveries_outstanding`, partial on the statuses not yet settled: the
    outstanding count and the oldest undelivered age read only the (few) unsettled
    rows, whatever their age; `held` rows are not in the pollers' partial index;
  - `connection_events (event_time)`: refresh outcomes in a window (the table grows by
    one row per refresh of every connection);
  - `proxy_call_counts (minute)`: the all-projects window (the primary key leads with
    the project, for one project's window and the upsert).

Revision ID: 0014_metrics
Revises: 0013_trace_ids
"""

from __future__ import annotations

from alembic import op

revision = "0014_metrics"
down_revision: str | None = "0013_trace_ids"
branch_labels = None
depends_on = None

# One statement per execute: asyncpg prepares each, and a prepared statement holds one.
UPGRADE: list[str] = [
    """
    CREATE TABLE proxy_call_counts (
        project_id text NOT NULL,
        status_class text NOT NULL,
        -- The start of the minute the calls were logged in.
        minute timestamptz NOT NULL,
        calls bigint NOT NULL,
        PRIMARY KEY (project_id, minute, status_class)
    )
    """,
    "CREATE INDEX proxy_call_counts_minute ON proxy_call_counts (minute)",
    "CREATE INDEX operations_created ON operations (created_at)",
    "CREATE INDEX operations_project_created ON operations (project_id, created_at)",
    "CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at)",
    "CREATE INDEX webhook_deliveries_outstanding ON webhook_deliveries "
    "(project_id, created_at) WHERE status IN ('pending', 'retrying', 'held')",
    "CREATE INDEX connection_events_time ON connection_events (event_time)",
]

DOWNGRADE: list[str] = [
    "DROP INDEX connection_events_time",
    "DROP INDEX webhook_deliveries_outstanding",
    "DROP INDEX webhook_deliveries_created",
    "DROP INDEX operations_project_created",
    "DROP INDEX operations_created",
    "DROP TABLE proxy_call_counts",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
