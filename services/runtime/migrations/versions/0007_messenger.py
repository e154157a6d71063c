"""Messenger's webhook deliveries, their attempts and endpoint states (written by brief B).

`webhook_deliveries`: one row per message to one destination, keyed by its message id
(derived from the event's project, idempotency key and destination, so a redelivered
event never makes a second row), holding the exact body it signs. PENDING and RETRYING
rows are claimed by messenger processes with `FOR UPDATE SKIP LOCKED` and a lease
(`lease_until`): a process that dies mid-send leaves its rows to the others once the lease
ends. `webhook_delivery_attempts`: every HTTP attempt. `webhook_endpoints`: the failure
run and enabled/failing/disabled state of each webhook destination (a row appears on its
first attempt; no row means enabled).

Revision ID: 0007_messenger
Revises: 0006_reads
"""

from __future__ import annotations

from alembic import op

revision = "0007_messenger"
down_revision: str | None = "0006_reads"
branch_labels = None
depends_on = None

# One statement per execute: asyncpg prepares each, and a prepared statement holds one.
UPGRADE: list[str] = [
    """
    CREATE TABLE webhook_endpoints (
        destination_id uuid PRIMARY KEY REFERENCES destinations (id) ON DELETE CASCADE,
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        state text NOT NULL DEFAULT 'enabled'
            CHECK (state IN ('enabled', 'failing', 'disabled')),
        consecutive_failures integer NOT NULL DEFAULT 0,
        failing_since timestamptz,
        last_success_at timestamptz,
        last_failure_at timestamptz,
        disabled_at timestamptz,
        disable_reason text NOT NULL DEFAULT '',
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE webhook_deliveries (
        id text PRIMARY KEY,
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        destination_id uuid NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('read_result', 'notification')),
        event_type text NOT NULL,
        event_id text NOT NULL,
        operation_id text NOT NULL DEFAULT '',
        installation_id text NOT NULL DEFAULT '',
        object_name text NOT NULL DEFAULT '',
        record_count integer NOT NULL DEFAULT 0,
        body bytea NOT NULL,
        status text NOT NULL
            CHECK (status IN ('pending', 'retrying', 'succeeded', 'failed', 'held')),
        attempt_count integer NOT NULL DEFAULT 0,
        -- What starts the next attempt (messenger.v1.AttemptTrigger).
        next_trigger smallint NOT NULL DEFAULT 1,
        next_attempt_at timestamptz,
        -- Given up (FAILED) when a retry would come after this.
        retry_deadline timestamptz NOT NULL,
        lease_until timestamptz,
        url text NOT NULL DEFAULT '',
        last_attempt_at timestamptz,
        last_status_code integer NOT NULL DEFAULT 0,
        last_error text NOT NULL DEFAULT '',
        completed_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    # Bodies are JSON pages of up to 300 KB, written once and read back only for a retry:
    # stored out of line without PostgreSQL's compression (pglz cost more CPU per page
    # than every other write of a backfill).
    "ALTER TABLE webhook_deliveries ALTER COLUMN body SET STORAGE EXTERNAL",
    # Newest first, ties broken by id: the order of ListDeliveries and its keyset.
    "CREATE INDEX webhook_deliveries_project ON webhook_deliveries "
    "(project_id, created_at DESC, id DESC)",
    # What the pollers claim.
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) "
    "WHERE status IN ('pending', 'retrying')",
    "CREATE INDEX webhook_deliveries_destination ON webhook_deliveries (destination_id, status)",
    "CREATE INDEX webhook_deliveries_operation ON webhook_deliveries "
    "(project_id, operation_id) WHERE operation_id <> ''",
    """
    CREATE TABLE webhook_delivery_attempts (
        delivery_id text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
        number integer NOT NULL,
        trigger smallint NOT NULL,
        started_at timestamptz NOT NULL,
        duration_seconds double precision NOT NULL,
        outcome smallint NOT NULL,
        status_code integer NOT NULL DEFAULT 0,
        response_body text NOT NULL DEFAULT '',
        retry_after_seconds double precision,
        error text NOT NULL DEFAULT '',
        PRIMARY KEY (delivery_id, number)
    )
    """,
]

DOWNGRADE: list[str] = [
    "DROP TABLE webhook_delivery_attempts",
    "DROP TABLE webhook_deliveries",
    "DROP TABLE webhook_endpoints",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
