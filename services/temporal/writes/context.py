"""What a write needs about its installation: where its connection's tokens come from, and
the facts its events and its `write.async.done` notification name (integration name,
group, consumer), re-read from PostgreSQL with one primary-key query per activity call.

Unlike a read, a write carries no plan: the api applied the installation's mappings and
field settings when it accepted the records, so only the installation's existence and
its connection are checked again here (a deleted installation stops a write that is
still retrying).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2

_SELECT = """
    SELECT i.project_id::text AS project_id, i.integration_id::text AS integration_id,
           g.name AS integration_name, i.group_ref, i.group_name,
           i.connection_id::text AS connection_id,
           cn.consumer_ref, cn.consumer_name, cn.provider_workspace_ref,
           c.id::text AS config_id
    FROM installations i
    JOIN integrations g ON g.id = i.integration_id
    LEFT JOIN LATERAL (
        SELECT id FROM configs
        WHERE installation_id = i.id ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN connections cn ON cn.id = i.connection_id
    WHERE i.id = $1::uuid AND i.project_id = $2::uuid
"""


@dataclass(frozen=True)
class WriteContext:
    """One write's installation, as it is now."""

    target: target_pb2.ObjectTarget
    project_id: str
    integration_id: str
    integration_name: str
    group_ref: str
    group_name: str
    connection_id: str
    consumer_ref: str
    consumer_name: str
    workspace: str
    config_id: str

    @property
    def installation_id(self) -> str:
        return self.target.installation_id

    @property
    def provider(self) -> str:
        return self.target.provider

    @property
    def object_name(self) -> str:
        """The provider's object name."""
        return self.target.object_name


async def load_context(pool: asyncpg.Pool, target: target_pb2.ObjectTarget) -> WriteContext | str:
    """The write's context, or why there is none (installation or connection gone)."""
    try:
        row = await pool.fetchrow(_SELECT, target.installation_id, target.project_id)
    except asyncpg.DataError:
        row = None
    if row is None:
        return f"installation {target.installation_id} is gone"
    if not row["connection_id"] or row["consumer_ref"] is None:
        return f"installation {target.installation_id} has no connection"
    return WriteContext(
        target=target,
        project_id=row["project_id"],
        integration_id=row["integration_id"],
        integration_name=row["integration_name"],
        group_ref=row["group_ref"],
        group_name=row["group_name"],
        connection_id=row["connection_id"],
        consumer_ref=row["consumer_ref"],
        consumer_name=row["consumer_name"],
        workspace=row["provider_workspace_ref"] or "",
        config_id=row["config_id"] or "",
    )
