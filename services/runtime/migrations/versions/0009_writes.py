"""The Write API's idempotency keys: one row per (project, Idempotency-Key), holding what
the first request asked (a hash of its body) and, once it finished, what it answered, so
a repeated request within 24 hours answers the same without calling the provider again.

`answer` is NULL while the first request is still writing; a row left that way by an api
that died mid-write is taken over after a while (services/api/write/idempotency.py).

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
]

DOWNGRADE: list[str] = ["DROP TABLE write_idempotency"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
