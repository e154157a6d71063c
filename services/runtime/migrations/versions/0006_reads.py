"""Reads: where each object of each installation has read up to, and its schedule.

- read_watermarks (temporal): the modification time up to which an object of an
  installation has been read completely (the `until` of its last complete window). A
  scheduled read reads from here to its own start time; a backfill sets it when it ends.
  It only moves once every page of the window is on the event bus.
- read_schedules (api, temporal): the Temporal schedule of each object with a cron, and
  why it is paused when it is (`api`: the Read API's pause; `deploy`: a destructive
  deploy; `errors`: runs kept failing). The schedule's own state in Temporal is what
  runs; this row says who paused it, counts failed runs in a row (three pause it), and
  lets the api list and pause an installation's schedules without asking Temporal.

Revision ID: 0006_reads
Revises: 0005_connect_refresh_events
"""

from __future__ import annotations

from alembic import op

revision = "0006_reads"
down_revision: str | None = "0005_connect_refresh_events"
branch_labels = None
depends_on = None

# One statement per execute: asyncpg prepares each, and a prepared statement holds one.
UPGRADE = [
    """
    CREATE TABLE read_watermarks (
        installation_id uuid NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
        object_name text NOT NULL,
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        watermark timestamptz NOT NULL,
        -- The operation whose complete window set it.
        operation_id uuid,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (installation_id, object_name)
    )
    """,
    """
    CREATE TABLE read_schedules (
        installation_id uuid NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
        object_name text NOT NULL,
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        schedule_id text NOT NULL UNIQUE,
        cron text NOT NULL,
        paused boolean NOT NULL DEFAULT false,
        -- '' when running; api, deploy or errors when paused.
        pause_reason text NOT NULL DEFAULT '',
        pause_note text NOT NULL DEFAULT '',
        consecutive_failures integer NOT NULL DEFAULT 0,
        last_error text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz,
        PRIMARY KEY (installation_id, object_name)
    )
    """,
]

DOWNGRADE = [
    "DROP TABLE read_schedules",
    "DROP TABLE read_watermarks",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
