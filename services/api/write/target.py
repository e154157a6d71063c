"""What a write is aimed at, found in one query: the integration (by id or name), the
group's installation of it, the installation's newest config and the revision that config
was saved against (the integration's latest when it has none), and the connection.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from ampmesh.manifest.v1 import config_pb2, manifest_pb2

from services.api.stored import config_content, integration_content
from services.runtime.database import is_uuid

_TARGET = """
    SELECT g.id::text AS integration_id, g.name AS integration_name, g.provider,
           i.id::text AS installation_id, c.id::text AS config_id, c.content AS config,
           r.content AS revision, n.id::text AS connection_id,
           n.provider_workspace_ref, n.status AS connection_status
    FROM integrations g
    LEFT JOIN installations i ON i.integration_id = g.id AND i.group_ref = $3
    LEFT JOIN LATERAL (
        SELECT id, revision_id, content FROM configs WHERE installation_id = i.id
        ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN revisions r ON r.id = coalesce(c.revision_id, g.latest_revision_id)
    LEFT JOIN connections n ON n.id = i.connection_id
    WHERE g.project_id = $1 AND {column} = $2
"""


@dataclass(frozen=True)
class WriteTarget:
    integration_id: str
    integration_name: str
    provider: str
    # Empty when the group has no installation of the integration.
    installation_id: str
    config_id: str
    config: config_pb2.ConfigContent | None
    revision: manifest_pb2.Integration
    # Empty when the installation has no connection.
    connection_id: str
    workspace: str
    connection_status: str

    def connection(self) -> dict[str, Any]:
        """The connection as services/api/provider_calls.py takes it."""
        return {
            "id": self.connection_id,
            "provider": self.provider,
            "provider_workspace_ref": self.workspace,
        }


async def find_target(
    pool: asyncpg.Pool, project_id: str, integration: str, group_ref: str
) -> WriteTarget | None:
    """None when the project has no such integration."""
    column, value = (
        ("g.id", uuid.UUID(integration)) if is_uuid(integration) else ("g.name", integration)
    )
    row = await pool.fetchrow(
        _TARGET.format(column=column), uuid.UUID(project_id), value, group_ref
    )
    if row is None:
        return None
    return WriteTarget(
        integration_id=row["integration_id"],
        integration_name=row["integration_name"],
        provider=row["provider"],
        installation_id=row["installation_id"] or "",
        config_id=row["config_id"] or "",
        config=config_content(row["config"]) if row["config"] else None,
        revision=integration_content(row["revision"] or "{}"),
        connection_id=row["connection_id"] or "",
        workspace=row["provider_workspace_ref"] or "",
        connection_status=row["connection_status"] or "",
    )
