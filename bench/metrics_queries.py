"""What the metrics service's queries cost, against counting the same table.

A real PostgreSQL (the launcher's component, in a temporary home, migrated, stopped at
the end) is seeded with --operations operations (default 100,000) spread over
--projects projects (default 20) and the last 7 days, one webhook delivery per
operation (one in a hundred still outstanding), connections, installations, connection
events, dead letters and proxy call minutes in proportion. Then, --rounds times:

  baseline   SELECT count(*) FROM operations (a sequential scan of the table)
  refresh    the exporter's query set for every project over the last hour (the default
             AMPMESH_METRICS_WINDOW), each query timed
  rpc        GetProjectMetrics' query set for one project over the last 24 hours

Figures: each query's median time and its ratio to the baseline's median. A ratio well
under 1 means the query reads an index range, not the table.

    .venv/bin/python -m bench.metrics_queries [--operations 100000] [--projects 20]
        [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench._load import make_home
from services.launcher.infra.postgres import Postgres
from services.launcher.ports import PortBook
from services.metrics.queries import Scope, compute

SEED = [
    "INSERT INTO orgs (label) VALUES ('bench')",
    """
    INSERT INTO projects (org_id, name, app_name)
    SELECT (SELECT id FROM orgs LIMIT 1), 'p' || n, 'bench' FROM generate_series(1, $1) n
    """,
    """
    INSERT INTO integrations (project_id, name, provider)
    SELECT id, 'sync', 'hubspot' FROM projects
    """,
    """
    INSERT INTO installations (project_id, integration_id, group_ref)
    SELECT i.project_id, i.id, 'g' || n FROM integrations i, generate_series(1, 50) n
    """,
    """
    INSERT INTO connections (id, project_id, provider, group_ref, group_name, consumer_ref,
        consumer_name, auth_scheme, status)
    SELECT gen_random_uuid(), project_id, 'hubspot', group_ref, group_ref, 'c', 'c',
        'oauth2/authorizationCode', (ARRAY['created', 'working', 'bad_credentials'])[1 + n % 3]
    FROM installations, generate_series(0, 1) n
    """,
    """
    INSERT INTO destinations (project_id, name, type)
    SELECT id, 'hook', 'webhook' FROM projects
    """,
    """
    INSERT INTO webhook_endpoints (destination_id, project_id, state)
    SELECT id, project_id, 'enabled' FROM destinations
    """,
    # Operations over the last 7 days, round-robin over the projects' installations.
    """
    WITH inst AS (
        SELECT row_number() OVER () - 1 AS k, project_id, integration_id, id FROM installations
    ), total AS (SELECT count(*) AS c FROM inst)
    INSERT INTO operations (project_id, integration_id, installation_id, action_type,
        status, counts, created_at, updated_at, finished_at)
    SELECT inst.project_id, inst.integration_id, inst.id,
        (ARRAY['read', 'write', 'subscribe'])[1 + n % 3],
        (ARRAY['success', 'success', 'failure', 'in_progress'])[1 + n % 4],
        jsonb_build_object('recordsRead', n % 500, 'recordsWritten', n % 7,
            'recordsFailed', n % 2),
        now() - (n * interval '7 days' / $1),
        now() - (n * interval '7 days' / $1) + interval '30 seconds',
        CASE WHEN n % 4 = 3 THEN NULL
            ELSE now() - (n * interval '7 days' / $1) + interval '30 seconds' END
    FROM generate_series(0, $1 - 1) n, total
    JOIN inst ON true
    WHERE inst.k = n % total.c
    """,
    """
    INSERT INTO webhook_deliveries (id, project_id, destination_id, kind, event_type,
        event_id, operation_id, installation_id, record_count, body, status, attempt_count,
        retry_deadline, created_at, completed_at)
    SELECT o.id::text, o.project_id, d.id, 'read_result', 'read.page', o.id::text,
        o.id::text, o.installation_id::text, 100, '\\x00',
        CASE WHEN o.n % 100 = 0 THEN 'retrying'
            WHEN o.n % 50 = 1 THEN 'failed' ELSE 'succeeded' END,
        1 + o.n % 3, o.created_at + interval '1 day', o.created_at,
        CASE WHEN o.n % 100 = 0 THEN NULL ELSE o.created_at + interval '2 seconds' END
    FROM (SELECT row_number() OVER () AS n, * FROM operations) o
    JOIN destinations d ON d.project_id = o.project_id
    """,
    """
    INSERT INTO connection_events (project_id, idempotency_key, connection_id, type,
        event_time, event_id, payload)
    SELECT c.project_id, c.id::text || h, c.id::text,
        CASE WHEN h % 10 = 0 THEN 'ampmesh.events.v1.ConnectionError'
            ELSE 'ampmesh.events.v1.ConnectionRefreshed' END,
        now() - h * interval '1 hour', gen_random_uuid()::text,
        '{"kind": "CONNECTION_ERROR_KIND_PROVIDER_UNAVAILABLE"}'
    FROM connections c, generate_series(0, 47) h
    """,
    """
    INSERT INTO scribe_dead_letters (project_id, subscription, message_id, data, error)
    SELECT project_id::text, 's', gen_random_uuid()::text, '\\x00', 'bench'
    FROM operations WHERE random() < 0.001
    """,
    """
    INSERT INTO proxy_call_counts (project_id, status_class, minute, calls)
    SELECT p.id::text, c, date_trunc('minute', now()) - m * interval '1 minute', 10
    FROM projects p, unnest(ARRAY['2xx', '4xx', '5xx']) c, generate_series(0, 7 * 1440) m
    """,
    "ANALYZE",
]


async def seed(connection: asyncpg.Connection, operations: int, projects: int) -> None:
    for statement in SEED:
        if "$1" in statement:
            # $1 is the project count only in the projects' statement.
            value = projects if "generate_series(1, $1)" in statement else operations
            await connection.execute(statement, value)
        else:
            await connection.execute(statement)


async def timed(call: object) -> float:
    started = time.perf_counter()
    await call  # type: ignore[misc]
    return time.perf_counter() - started


async def measure(url: str, operations: int, projects: int, rounds: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        await seed(connection, operations, projects)
        print(
            f"seeded {operations} operations over {projects} projects in "
            f"{time.perf_counter() - started:.1f} s"
        )
        counts = {
            table: await connection.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
            for table in (
                "operations",
                "webhook_deliveries",
                "connection_events",
                "proxy_call_counts",
                "installations",
                "connections",
            )
        }
        print("rows: " + ", ".join(f"{table} {count}" for table, count in counts.items()))
        one = await connection.fetchval("SELECT id::text FROM projects LIMIT 1")
        baseline: list[float] = []
        refresh: dict[str, list[float]] = {}
        rpc: dict[str, list[float]] = {}
        for _ in range(rounds):
            baseline.append(await timed(connection.fetchval("SELECT count(*) FROM operations")))
            now = datetime.now(UTC)
            computed = await compute(connection.fetch, Scope(now - timedelta(hours=1), now))
            for name, seconds in computed.query_seconds.items():
                refresh.setdefault(name, []).append(seconds)
            computed = await compute(
                connection.fetch, Scope(now - timedelta(hours=24), now, project_id=one)
            )
            for name, seconds in computed.query_seconds.items():
                rpc.setdefault(name, []).append(seconds)
        base = statistics.median(baseline)
        print(f"baseline  count of operations: {base * 1000:.2f} ms (median)")
        for label, figures in (
            ("refresh, every project, 1 h", refresh),
            ("GetProjectMetrics, one project, 24 h", rpc),
        ):
            print(label)
            total = 0.0
            for name, samples in figures.items():
                median = statistics.median(samples)
                total += median
                print(f"  {name:16} {median * 1000:8.2f} ms  {median / base:5.2f} x baseline")
            print(f"  {'all':16} {total * 1000:8.2f} ms  {total / base:5.2f} x baseline")
    finally:
        await connection.close()


async def main_async(args: argparse.Namespace) -> None:
    home = make_home()
    postgres = Postgres(home, PortBook(home))
    try:
        await postgres.start()
        await measure(postgres.database_url, args.operations, args.projects, args.rounds)
    finally:
        await postgres.stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
