"""Operations remember the trace their work belongs to.

`operations.trace_id`: the W3C trace id (32 lowercase hex digits) of the span that
started the operation (the api's handling of a read or write start), so an operator can
go from an operation to its spans in a tracing backend. NULL when tracing was off, and
for operations created before this revision.

Revision ID: 0013_trace_ids
Revises: 0012_subscribe
"""

from __future__ import annotations

from alembic import op

revision = "0013_trace_ids"
down_revision: str | None = "0012_subscribe"
branch_labels = None
depends_on = None

UPGRADE: list[str] = ["ALTER TABLE operations ADD COLUMN trace_id text"]

DOWNGRADE: list[str] = ["ALTER TABLE operations DROP COLUMN trace_id"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
