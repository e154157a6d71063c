"""The Write API's tables.

- write_idempotency: one row per (project, Idempotency-Key), holding what the first
  request asked (a hash of its body) and, once it finished, what it answered, so a
  repeated request within 24 hours answers the same without calling the provider again.
  `answer` is NULL while the first request is still writing; a row left that way by an
  api that died mid-write is taken over after a while (services/api/write/idempotency.py).
- write_queue: auto-batched records waiting for their batch. The api inserts one row per
  accepted record (in the transaction that stages its operation); the batcher workflow
  claims up to 100 of its own (batcher_id) under a batch key, writes them and deletes
  them (services/temporal/writes/queue.py). Kept here rather than in the workflow, whose
  every input and history event would otherwise carry every waiting record.
- write_batchers: per batcher, the count and earliest flush time of its waiting records.

Revision ID: 0009_writes
Revises: 0008_scribe
"""

from __future__ import annotations

from alembic import op

revision = "0009_writes"
down_revision: str | None = "0008_scribe"
branch_labels = None
depends_on = None

UPGRADE: list[str] = [
    """
    CREATE TABLE write_idempotency (
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        idempotency_key text NOT NULL,
        -- sha256 of the request (path and body), deterministic protobuf serialization.
        request_hash bytea NOT NULL,
        operation_id uuid NOT NULL,
        -- The HTTP status and the serialized WriteRecordsResponse of the first answer.
        http_status integer,
        answer bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, idempotency_key)
    )
    """,
    # Expired keys are swept by age.
    "CREATE INDEX write_idempotency_age ON write_idempotency (created_at)",
    """
    CREATE TABLE write_queue (
        operation_id uuid PRIMARY KEY,
        -- The batcher workflow's id: installation, object and type.
        batcher_id text NOT NULL,
        -- The serialized ampmesh.workflows.v1.QueuedWrite.
        queued bytea NOT NULL,
        -- The provider id the record updates ('' for a create): two writes of one record
        -- never go in batches written at once.
        record_id text NOT NULL DEFAULT '',
        flush_at timestamptz NOT NULL,
        accepted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        -- The claim that took it into a batch; NULL while it waits.
        batch_key text
    )
    """,
    """
    CREATE INDEX write_queue_waiting ON write_queue (batcher_id, accepted_at)
        WHERE batch_key IS NULL
    """,
    "CREATE INDEX write_queue_claimed ON write_queue (batch_key) WHERE batch_key IS NOT NULL",
    # Per batcher: how many of its records wait and the earliest flush time among them,
    # kept exact by the row lock both sides take (the api adding, a claim taking), so the
    # api wakes a batcher only when it must (its first waiting record, a full batch, a
    # sooner flush time) instead of once per record.
    """
    CREATE TABLE write_batchers (
        batcher_id text PRIMARY KEY,
        waiting integer NOT NULL,
        earliest_flush timestamptz
    )
    """,
]

DOWNGRADE: list[str] = [
    "DROP TABLE write_batchers",
    "DROP TABLE write_queue",
    "DROP TABLE write_idempotency",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
