"""Subscribe actions: the provider-side subscriptions of each installation, and the
provider event ids the webhook ingress has accepted.

- `subscriptions`: one row per installation with subscribe objects (or that had some).
  The api writes it in the transaction that changes the installation (status `pending`,
  `change` moved on) and starts SyncSubscriptions, which registers at the provider and
  records what it registered (`registered`: provider object -> what the provider holds
  for it) and the provider account (`account_id`: HubSpot portal id, Salesforce org id)
  by which inbound events are mapped back to installations. No foreign key to
  `installations`: a deleted installation's row stays (`removing`) until its
  subscriptions are gone at the provider. `relay_token_sha256` is the SHA-256 of the
  token a Salesforce event relay presents on the installation's own URL.
- `subscribe_inbound_events`: the (provider, event id) of every accepted event, written
  in the transaction that stages the events for the bus, so a provider's retry of an
  accepted event is acknowledged and dropped. The api prunes rows older than a week
  by `received_at` (services/api/subscribe/store.py), past the providers' retries.

Revision ID: 0012_subscribe
Revises: 0011_token_cache_debts
"""

from __future__ import annotations

from alembic import op

revision = "0012_subscribe"
down_revision: str | None = "0011_token_cache_debts"
branch_labels = None
depends_on = None

UPGRADE: list[str] = [
    """
    CREATE TABLE subscriptions (
        installation_id uuid PRIMARY KEY,
        project_id uuid NOT NULL,
        integration_id uuid NOT NULL,
        provider text NOT NULL,
        connection_id uuid,
        account_id text NOT NULL DEFAULT '',
        registered jsonb NOT NULL DEFAULT '{}',
        relay_token_sha256 bytea,
        status text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'active', 'failed', 'removing')),
        error text NOT NULL DEFAULT '',
        change integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX subscriptions_account ON subscriptions (provider, account_id)",
    "CREATE INDEX subscriptions_pending ON subscriptions (updated_at) WHERE status = 'pending'",
    """
    CREATE TABLE subscribe_inbound_events (
        provider text NOT NULL,
        event_id text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, event_id)
    )
    """,
    "CREATE INDEX subscribe_inbound_events_received ON subscribe_inbound_events (received_at)",
]

DOWNGRADE = [
    "DROP TABLE subscribe_inbound_events",
    "DROP TABLE subscriptions",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
