"""Connections: who a stored credential belongs to, and how it authenticates.

No secret lives here: the credentials themselves are sealed in connection_credentials,
which only the token-manager reads and writes. A connection's row and its credentials
share the connection's id.

Revision ID: 0004_connections
Revises: 0003_credentials
"""

from __future__ import annotations

from alembic import op

revision = "0004_connections"
down_revision: str | None = "0003_credentials"
branch_labels = None
depends_on = None

# One statement per execute: asyncpg prepares each, and a prepared statement holds one.
UPGRADE = [
    """
    CREATE TABLE connections (
        id uuid PRIMARY KEY,
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        provider text NOT NULL,
        provider_app_id uuid REFERENCES provider_apps (id) ON DELETE SET NULL,
        group_ref text NOT NULL,
        group_name text NOT NULL,
        consumer_ref text NOT NULL,
        consumer_name text NOT NULL,
        provider_workspace_ref text,
        -- name -> ProviderMetadataInfo in its JSON mapping (value, source, displayName).
        provider_metadata jsonb NOT NULL DEFAULT '{}',
        -- The reference's values: apiKey, basic, oauth2/authorizationCode, ...
        auth_scheme text NOT NULL,
        status text NOT NULL DEFAULT 'created'
            CHECK (status IN ('created', 'working', 'bad_credentials')),
        created_at timestamptz NOT NULL DEFAULT now(),
        -- NULL until the connection first changes (the reference omits updateTime).
        updated_at timestamptz
    )
    """,
    "CREATE INDEX connections_project ON connections (project_id, created_at, id)",
    "CREATE INDEX connections_group ON connections (project_id, group_ref)",
]

DOWNGRADE = [
    "DROP TABLE connections",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
