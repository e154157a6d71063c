"""Tenancy: orgs and the projects they own, where the control plane starts from.

Shaped after the reference's Org (id, label, createTime, updateTime) and Project (id,
orgId, name, appName, createTime, updateTime) schemas; its update times are optional,
so ours stay NULL until the first update.

Revision ID: 0001_tenancy
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001_tenancy"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each, and a prepared statement holds one.
    op.execute(
        """
        CREATE TABLE orgs (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            label text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE projects (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            org_id uuid NOT NULL REFERENCES orgs (id),
            name text NOT NULL,
            app_name text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz,
            CONSTRAINT projects_org_id_name_key UNIQUE (org_id, name)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE projects")
    op.execute("DROP TABLE orgs")
