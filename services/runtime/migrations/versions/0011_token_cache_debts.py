"""What the token-manager still owes its Redis cache.

`token_cache_debts`: one row per connection whose credentials changed in PostgreSQL while
the copy in Redis may still be the older one. The transaction that changes a connection's
credentials writes (or moves on) its row and notifies every shard on the
`ampmesh_token_credentials` channel; once a shard has written the new credentials (or a
tombstone) to Redis, it deletes the row and notifies again. Shards do not read a
connection's Redis copy while it has a row (services/token_manager/invalidation.py), so a
change Redis missed (Redis down, a shard killed between its commit and its Redis write)
is never served from Redis, even when Redis comes back with its append-only file.

- `stamp` orders a connection's changes: the credentials row's creation time and version
  (services/token_manager/store.py, `Row.stamp`), so it also orders a deletion and a
  re-creation under the same connection id.

Revision ID: 0011_token_cache_debts
Revises: 0010_read_pages
"""

from __future__ import annotations

from alembic import op

revision = "0011_token_cache_debts"
down_revision: str | None = "0010_read_pages"
branch_labels = None
depends_on = None

UPGRADE: list[str] = [
    """
    CREATE TABLE token_cache_debts (
        connection_id text PRIMARY KEY,
        stamp text NOT NULL,
        marked_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]

DOWNGRADE: list[str] = ["DROP TABLE token_cache_debts"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
