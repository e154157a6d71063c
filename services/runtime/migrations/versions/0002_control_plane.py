"""The control plane: keys, provider apps, integrations and revisions, installations and
their configs, destinations, topics and routes, operations and their logs.

Every row of a project's resource carries project_id, and every query of the api filters
on it: that is how one project's key never sees another's data. Secrets (provider apps'
client secrets, destinations' secrets) are stored as AES-GCM ciphertext with the id of
the key that sealed them (services.runtime.secretbox); API keys are stored as a SHA-256
of the secret (they are 256-bit random tokens, so a slow hash would add nothing).

Revision ID: 0002_control_plane
Revises: 0001_tenancy
"""

from __future__ import annotations

from alembic import op

revision = "0002_control_plane"
down_revision: str | None = "0001_tenancy"
branch_labels = None
depends_on = None

# One statement per execute: asyncpg prepares each, and a prepared statement holds one.
UPGRADE = [
    # Project names are unique across the deployment, case-insensitively (reference).
    "ALTER TABLE projects DROP CONSTRAINT projects_org_id_name_key",
    "CREATE UNIQUE INDEX projects_name_key ON projects (lower(name))",
    """
    CREATE TABLE api_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
        -- NULL: an org admin key (may create projects and their keys).
        project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
        -- The key's public part, shown in lists and accepted as its id in paths.
        prefix text NOT NULL UNIQUE,
        secret_sha256 bytea NOT NULL UNIQUE,
        label text NOT NULL DEFAULT '',
        scopes text[] NOT NULL DEFAULT '{}',
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz
    )
    """,
    """
    CREATE TABLE jwt_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        label text NOT NULL DEFAULT '',
        algorithm text NOT NULL,
        public_key_pem text NOT NULL,
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz
    )
    """,
    """
    CREATE TABLE provider_apps (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        provider text NOT NULL,
        client_id text NOT NULL,
        client_secret_sealed bytea NOT NULL,
        client_secret_key_id text NOT NULL,
        scopes text[] NOT NULL DEFAULT '{}',
        external_ref text NOT NULL DEFAULT '',
        metadata jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz
    )
    """,
    "CREATE INDEX provider_apps_project ON provider_apps (project_id, provider)",
    """
    CREATE TABLE destinations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        name text NOT NULL,
        type text NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        -- JSON object of secrets (webhookSigningKey, …), sealed.
        secrets_sealed bytea,
        secrets_key_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz,
        UNIQUE (project_id, name)
    )
    """,
    """
    CREATE TABLE integrations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        name text NOT NULL,
        provider text NOT NULL,
        latest_revision_id uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz,
        UNIQUE (project_id, name)
    )
    """,
    """
    CREATE TABLE revisions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
        spec_version text NOT NULL,
        -- One manifest integration object, in the reference's JSON shape.
        content jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    ALTER TABLE integrations ADD CONSTRAINT integrations_latest_revision_fkey
        FOREIGN KEY (latest_revision_id) REFERENCES revisions (id) DEFERRABLE INITIALLY DEFERRED
    """,
    """
    CREATE TABLE installations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
        group_ref text NOT NULL,
        group_name text NOT NULL DEFAULT '',
        connection_id uuid,
        health_status text NOT NULL DEFAULT 'healthy',
        last_operation_status text NOT NULL DEFAULT '',
        created_by text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz,
        UNIQUE (integration_id, group_ref)
    )
    """,
    "CREATE INDEX installations_project ON installations (project_id, group_ref)",
    """
    CREATE TABLE configs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        installation_id uuid NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
        -- CASCADE: revisions go only with their integration, whose installations (and
        -- so these configs) go too; NO ACTION would be checked before that cascade ran.
        revision_id uuid NOT NULL REFERENCES revisions (id) ON DELETE CASCADE,
        created_by text NOT NULL DEFAULT '',
        -- ConfigContent, in the reference's JSON shape.
        content jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX configs_installation ON configs (installation_id, created_at DESC)",
    """
    CREATE TABLE topics (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz,
        UNIQUE (project_id, name)
    )
    """,
    """
    CREATE TABLE notification_event_topic_routes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        event_type text NOT NULL,
        topic_id uuid NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (project_id, event_type, topic_id)
    )
    """,
    """
    CREATE TABLE topic_destination_routes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        topic_id uuid NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
        destination_id uuid NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (project_id, topic_id, destination_id)
    )
    """,
    """
    CREATE TABLE operations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        integration_id uuid,
        installation_id uuid,
        config_id uuid,
        action_type text NOT NULL,
        status text NOT NULL,
        result text NOT NULL DEFAULT '',
        metadata jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz
    )
    """,
    # Newest first, ties broken by id: the order of the paginated list and its keyset.
    "CREATE INDEX operations_installation ON operations "
    "(installation_id, created_at DESC, id DESC)",
    """
    CREATE TABLE operation_logs (
        id bigserial PRIMARY KEY,
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        operation_id uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
        logged_at timestamptz NOT NULL DEFAULT now(),
        severity text NOT NULL,
        message jsonb NOT NULL
    )
    """,
    "CREATE INDEX operation_logs_operation ON operation_logs (operation_id, logged_at, id)",
    # Where each backfill (one object of one installation, one operation) stands, as scribe
    # last recorded it; GetBackfillProgress answers the newest backfill of the object.
    """
    CREATE TABLE backfill_progress (
        operation_id uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
        object_name text NOT NULL,
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        installation_id uuid NOT NULL,
        -- The highest progress sequence applied: older, redelivered events change nothing.
        sequence bigint NOT NULL DEFAULT 0,
        records_processed bigint NOT NULL DEFAULT 0,
        -- Only some providers (Salesforce, HubSpot) estimate the total.
        records_estimated_total bigint,
        done boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz,
        PRIMARY KEY (operation_id, object_name)
    )
    """,
    "CREATE INDEX backfill_progress_object ON backfill_progress "
    "(installation_id, object_name, created_at DESC)",
]

DOWNGRADE = [
    "DROP TABLE backfill_progress",
    "DROP TABLE operation_logs",
    "DROP TABLE operations",
    "DROP TABLE topic_destination_routes",
    "DROP TABLE notification_event_topic_routes",
    "DROP TABLE topics",
    "DROP TABLE configs",
    "DROP TABLE installations",
    "ALTER TABLE integrations DROP CONSTRAINT integrations_latest_revision_fkey",
    "DROP TABLE revisions",
    "DROP TABLE integrations",
    "DROP TABLE destinations",
    "DROP TABLE provider_apps",
    "DROP TABLE jwt_keys",
    "DROP TABLE api_keys",
    "DROP INDEX projects_name_key",
    "ALTER TABLE projects ADD CONSTRAINT projects_org_id_name_key UNIQUE (org_id, name)",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
