"""Scribe's operation, log and progress persistence, ingestion counters and dead letters.

Operations keep the highest lifecycle `sequence` applied, so redelivered and reordered
progress and finish events change nothing once a later one is in. Scribe creates an
operation row on the fly ("healed") when a progress, finish, backfill or log event
arrives before the operation's OperationCreated: the foreign keys to operations stay,
and no log or progress is lost. `healed` marks such rows until OperationCreated fills in
what only it knows (config, connection, objects, workflow, the real start time).

Log lines are stored once per (project, idempotency key). Ingestion counters are one row
per (project, event type); '' stands for events whose project is unknown (undecodable).
Dead letters keep the Pub/Sub message as received, once per (subscription, message id).

Revision ID: 0008_scribe
Revises: 0007_messenger
"""

from __future__ import annotations

from alembic import op

revision = "0008_scribe"
down_revision: str | None = "0007_messenger"
branch_labels = None
depends_on = None

# One statement per execute: asyncpg prepares each, and a prepared statement holds one.
UPGRADE: list[str] = [
    """
    ALTER TABLE operations
        ADD COLUMN sequence bigint NOT NULL DEFAULT 0,
        ADD COLUMN healed boolean NOT NULL DEFAULT false,
        ADD COLUMN connection_id uuid,
        ADD COLUMN read_type text NOT NULL DEFAULT '',
        ADD COLUMN workflow_id text NOT NULL DEFAULT '',
        ADD COLUMN workflow_run_id text NOT NULL DEFAULT '',
        -- The latest absolute counts (OperationCounts' JSON) and the errors of a failure.
        ADD COLUMN counts jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN errors jsonb NOT NULL DEFAULT '[]',
        ADD COLUMN finished_at timestamptz
    """,
    "ALTER TABLE operation_logs ADD COLUMN idempotency_key text",
    # NULL keys (rows written before scribe keyed them) never conflict.
    "CREATE UNIQUE INDEX operation_logs_idempotency ON operation_logs "
    "(project_id, idempotency_key)",
    """
    CREATE TABLE scribe_ingestion (
        project_id text NOT NULL,
        event_type text NOT NULL,
        persisted bigint NOT NULL DEFAULT 0,
        duplicates_skipped bigint NOT NULL DEFAULT 0,
        dead_lettered bigint NOT NULL DEFAULT 0,
        last_event_time timestamptz,
        last_persist_time timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, event_type)
    )
    """,
    """
    CREATE TABLE scribe_dead_letters (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id text NOT NULL DEFAULT '',
        event_id text NOT NULL DEFAULT '',
        event_type text NOT NULL DEFAULT '',
        idempotency_key text NOT NULL DEFAULT '',
        subscription text NOT NULL,
        message_id text NOT NULL,
        data bytea NOT NULL,
        attributes jsonb NOT NULL DEFAULT '{}',
        error text NOT NULL,
        delivery_attempts integer NOT NULL DEFAULT 0,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'resolved')),
        retry_count integer NOT NULL DEFAULT 0,
        last_retry_at timestamptz,
        resolved_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (subscription, message_id)
    )
    """,
    # Newest first, ties broken by id: the list's order and its keyset.
    "CREATE INDEX scribe_dead_letters_newest ON scribe_dead_letters (created_at DESC, id DESC)",
    "CREATE INDEX scribe_dead_letters_pending ON scribe_dead_letters (project_id, event_type) "
    "WHERE state = 'pending'",
]

DOWNGRADE: list[str] = [
    "DROP TABLE scribe_dead_letters",
    "DROP TABLE scribe_ingestion",
    "DROP INDEX operation_logs_idempotency",
    "ALTER TABLE operation_logs DROP COLUMN idempotency_key",
    """
    ALTER TABLE operations
        DROP COLUMN sequence,
        DROP COLUMN healed,
        DROP COLUMN connection_id,
        DROP COLUMN read_type,
        DROP COLUMN workflow_id,
        DROP COLUMN workflow_run_id,
        DROP COLUMN counts,
        DROP COLUMN errors,
        DROP COLUMN finished_at
    """,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
