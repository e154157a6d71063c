"""Connecting and refreshing: OAuth states, refresh bookkeeping, the event outbox and the
connection history scribe keeps.

- oauth_states (api): one row per authorization URL handed out by oauth-connect or
  oauth-update. The state itself is never stored, only its SHA-256 (a database reader
  cannot complete someone's flow); the PKCE verifier is sealed, bound to the row. A row
  is used at most once (used_at) and only before expires_at.
- connection_credentials (token-manager) learns when it was last refreshed (the
  keep-alive skips recently refreshed connections) and how many refreshes in a row
  failed for reasons that are retried (5xx, timeouts, 429).
- event_outbox (any publisher): an event is written here in the same transaction as the
  change it reports, then published; a relay republishes what a crash left behind, so a
  committed change never loses its event. Consumers deduplicate on the idempotency key.
- connection_events (scribe): the connection history, one row per idempotency key, and
  connections.status_time, so an event older than the status already recorded (Pub/Sub
  does not keep order) never overwrites it.

Revision ID: 0005_connect_refresh_events
Revises: 0004_connections
"""

from __future__ import annotations

from alembic import op

revision = "0005_connect_refresh_events"
down_revision: str | None = "0004_connections"
branch_labels = None
depends_on = None

# One statement per execute: asyncpg prepares each, and a prepared statement holds one.
UPGRADE = [
    """
    CREATE TABLE oauth_states (
        state_sha256 bytea PRIMARY KEY,
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        provider text NOT NULL,
        provider_app_id uuid NOT NULL REFERENCES provider_apps (id) ON DELETE CASCADE,
        group_ref text NOT NULL,
        group_name text NOT NULL,
        consumer_ref text NOT NULL,
        consumer_name text NOT NULL,
        provider_workspace_ref text,
        provider_metadata jsonb NOT NULL DEFAULT '{}',
        -- oauth-update: the connection whose credentials the flow replaces.
        connection_id uuid REFERENCES connections (id) ON DELETE CASCADE,
        redirect_uri text NOT NULL,
        scopes text[] NOT NULL DEFAULT '{}',
        -- NULL when the provider does not use PKCE.
        code_verifier_sealed bytea,
        code_verifier_key_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz
    )
    """,
    "CREATE INDEX oauth_states_expiry ON oauth_states (expires_at)",
    "ALTER TABLE connection_credentials ADD COLUMN last_refreshed_at timestamptz",
    """
    ALTER TABLE connection_credentials
        ADD COLUMN retried_refresh_failures integer NOT NULL DEFAULT 0
    """,
    """
    CREATE TABLE event_outbox (
        id bigserial PRIMARY KEY,
        -- The publishing service (api, token-manager, temporal, ...): each relays its own.
        source text NOT NULL,
        -- The Pub/Sub topic id and the serialized ampmesh.events.v1.Envelope.
        topic text NOT NULL,
        envelope bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz,
        attempts integer NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE INDEX event_outbox_pending ON event_outbox (source, id)
        WHERE published_at IS NULL
    """,
    """
    CREATE TABLE connection_events (
        project_id uuid NOT NULL,
        idempotency_key text NOT NULL,
        connection_id text NOT NULL,
        -- The payload's message name, e.g. ampmesh.events.v1.ConnectionRefreshed.
        type text NOT NULL,
        -- The connection's status after the event (reference value), when it says.
        status text,
        event_time timestamptz NOT NULL,
        event_id text NOT NULL,
        -- The payload in its JSON mapping; events never carry secrets.
        payload jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, idempotency_key)
    )
    """,
    """
    CREATE INDEX connection_events_connection
        ON connection_events (connection_id, event_time)
    """,
    "ALTER TABLE connections ADD COLUMN status_time timestamptz",
]

DOWNGRADE = [
    "ALTER TABLE connections DROP COLUMN status_time",
    "DROP TABLE connection_events",
    "DROP TABLE event_outbox",
    "ALTER TABLE connection_credentials DROP COLUMN retried_refresh_failures",
    "ALTER TABLE connection_credentials DROP COLUMN last_refreshed_at",
    "DROP TABLE oauth_states",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
