"""The pages each read has put on the bus (written by the temporal worker's reads).

`read_pages`: one row per page of a read operation once Pub/Sub acknowledged every part
of it, written in batches by read_pages (services/temporal/reads/progress.py):

- `cursor` is the ReadCursor the page was fetched from, so the page can be fetched and
  published again, under the same keys, when messenger never recorded it (the Pub/Sub
  emulator keeps nothing across a restart; a message can be lost);
- `next_cursor` is the cursor after it: a read_pages call retried after its worker was
  killed resumes from the newest row, not from Temporal's heartbeat details, which the
  SDK sends at most every 8 s and a killed process loses;
- `parts` is how many messages (`<operation>/page/<n>/part/<m>`) it was published as.

The rows of an operation are deleted when it closes.

Revision ID: 0010_read_pages
Revises: 0009_writes
"""

from __future__ import annotations

from alembic import op

revision = "0010_read_pages"
down_revision: str | None = "0009_writes"
branch_labels = None
depends_on = None

UPGRADE: list[str] = [
    """
    CREATE TABLE read_pages (
        operation_id text NOT NULL,
        page_number integer NOT NULL,
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        cursor bytea NOT NULL,
        next_cursor bytea NOT NULL,
        page_size integer NOT NULL,
        parts integer NOT NULL,
        records integer NOT NULL,
        last_page boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (operation_id, page_number)
    )
    """,
    "CREATE INDEX read_pages_project ON read_pages (project_id)",
]

DOWNGRADE: list[str] = ["DROP TABLE read_pages"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
