"""Connection credentials, held by the token-manager.

One row per connection. The credentials (a serialized ampmesh.token.v1.Credentials) are
AES-GCM ciphertext sealed by services.runtime.secretbox, bound to the connection id as
associated data, with the id of the key that sealed them beside it so keys rotate
without downtime (`python -m services.token_manager.reseal` moves rows to the current
key). Only non-secret facts are plaintext: the access token's expiry, for scheduling
refreshes, and the connection's context (provider app, workspace, group and consumer).

No foreign key to projects: the api checks the project before it calls the
token-manager, and the token-manager never reads the control plane's tables.

Revision ID: 0003_credentials
Revises: 0002_control_plane
"""

from __future__ import annotations

from alembic import op

revision = "0003_credentials"
down_revision: str | None = "0002_control_plane"
branch_labels = None
depends_on = None

# One statement per execute: asyncpg prepares each, and a prepared statement holds one.
UPGRADE = [
    """
    CREATE TABLE connection_credentials (
        connection_id text PRIMARY KEY,
        project_id uuid NOT NULL,
        provider text NOT NULL,
        -- ampmesh.events.v1.AuthScheme and ConnectionStatus numbers.
        auth_scheme smallint NOT NULL,
        status smallint NOT NULL DEFAULT 1,
        -- ampmesh.token.v1.ConnectionContext as JSON: nothing secret.
        connection jsonb NOT NULL DEFAULT '{}',
        credentials_sealed bytea NOT NULL,
        credentials_key_id text NOT NULL,
        access_token_expires_at timestamptz,
        version bigint NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX connection_credentials_project ON connection_credentials (project_id)",
    # The refresh scheduler's question: which tokens expire soonest.
    """
    CREATE INDEX connection_credentials_expiry ON connection_credentials
        (access_token_expires_at) WHERE access_token_expires_at IS NOT NULL
    """,
    # The reseal pass's question: which rows are not under the current key.
    "CREATE INDEX connection_credentials_key ON connection_credentials (credentials_key_id)",
]

DOWNGRADE = [
    "DROP TABLE connection_credentials",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
