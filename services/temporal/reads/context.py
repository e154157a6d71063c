"""What a read needs about its installation and object: the plan it reads with and what
the installation is now, re-checked with one cheap query per activity call.

The plan (ampmesh.workflows.v1.ReadPlan, services/domain/read_plan.py) comes in the
workflow's input, resolved by the api from the manifest and the config. The re-check
reads the installation's row, its connection's and the id of its newest config (primary
key and index lookups, no revision or config content): a deleted installation, or one
without a connection, stops its reads at the next call, as it did when every call loaded
everything. Only when the newest config is not the plan's (a config saved since the read
started, a deploy's new config, an input from before plans) is the plan resolved again
here, from the stored revision and config, through the same function the api uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from ampmesh.workflows.v1.read_plan_pb2 import ReadPlan
from google.protobuf import json_format

from services.domain import read_plan

_RECHECK = """
    SELECT i.project_id::text AS project_id, i.integration_id::text AS integration_id,
           i.group_ref, i.group_name, i.created_at, i.updated_at,
           i.connection_id::text AS connection_id,
           cn.consumer_ref, cn.consumer_name, cn.provider_workspace_ref,
           c.id::text AS config_id
    FROM installations i
    LEFT JOIN LATERAL (
        SELECT id FROM configs
        WHERE installation_id = i.id ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN connections cn ON cn.id = i.connection_id
    WHERE i.id = $1::uuid AND i.project_id = $2::uuid
"""
# The plan's sources: the config the re-check found (none: the integration's latest
# revision with no config) and the revision it was saved against.
_SELECT_SOURCES = """
    SELECT g.name AS integration_name, c.content AS config_content,
           r.content AS revision_content
    FROM integrations g
    LEFT JOIN configs c ON c.id = $2::uuid
    LEFT JOIN revisions r ON r.id = coalesce(c.revision_id, g.latest_revision_id)
    WHERE g.id = $1::uuid
"""
_SELECT_DESTINATION = "SELECT id::text FROM destinations WHERE project_id = $1::uuid AND name = $2"


@dataclass(frozen=True)
class ReadContext:
    """One read's installation and object: the plan, and the installation as re-checked."""

    target: target_pb2.ObjectTarget
    plan: ReadPlan
    project_id: str
    integration_id: str
    group_ref: str
    group_name: str
    installation_created_at: datetime
    installation_updated_at: datetime | None
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
    def integration_name(self) -> str:
        return self.plan.integration_name

    @property
    def object_name(self) -> str:
        """The provider's object name (the manifest's objectName)."""
        return self.plan.object_name

    @property
    def shown_object_name(self) -> str:
        """The name builders see: the mapped name when the object is mapped."""
        return self.plan.mapped_name or self.plan.object_name

    @property
    def destination_id(self) -> str:
        return self.plan.destination_id

    @property
    def destination_name(self) -> str:
        return self.plan.destination_name

    def page_size(self, asked: int) -> int:
        """Records per page: the caller's, else the plan's (the manifest's pageSize)."""
        return asked if asked > 0 else self.plan.page_size


async def load_context(
    pool: asyncpg.Pool, target: target_pb2.ObjectTarget, plan: ReadPlan | None
) -> ReadContext | str:
    """The read's context, or why there is none (installation, connection or object gone
    or disabled). `plan` is the input's (None: resolve it)."""
    try:
        row = await pool.fetchrow(_RECHECK, target.installation_id, target.project_id)
    except asyncpg.DataError:
        row = None
    if row is None:
        return f"installation {target.installation_id} is gone"
    if not row["connection_id"] or row["consumer_ref"] is None:
        return f"installation {target.installation_id} has no connection"
    config_id = row["config_id"] or ""
    if plan is None or plan.config_id != config_id or plan.object_name != target.object_name:
        resolved = await _resolve(pool, row, target.object_name, config_id)
        if isinstance(resolved, str):
            return resolved
        plan = resolved
    if not plan.declared:
        return f"the integration reads no object {target.object_name!r}"
    if plan.disabled:
        return f"object {target.object_name!r} is disabled in the installation's config"
    return ReadContext(
        target=target,
        plan=plan,
        project_id=row["project_id"],
        integration_id=row["integration_id"],
        group_ref=row["group_ref"],
        group_name=row["group_name"],
        installation_created_at=row["created_at"],
        installation_updated_at=row["updated_at"],
        connection_id=row["connection_id"],
        consumer_ref=row["consumer_ref"],
        consumer_name=row["consumer_name"],
        workspace=row["provider_workspace_ref"] or "",
        config_id=config_id,
    )


async def _resolve(
    pool: asyncpg.Pool, row: asyncpg.Record, object_name: str, config_id: str
) -> ReadPlan | str:
    """The plan from the stored revision and config (only the object's entries are
    parsed, as the api stored them: the contract's JSON)."""
    sources = await pool.fetchrow(_SELECT_SOURCES, row["integration_id"], config_id or None)
    if sources is None:
        return f"installation {row['integration_id']} has no integration"
    revision_json = stored_json(sources["revision_content"])
    declared = next(
        (
            entry
            for entry in (revision_json.get("read") or {}).get("objects") or []
            if isinstance(entry, dict) and entry.get("objectName") == object_name
        ),
        None,
    )
    if declared is None:
        return f"the integration reads no object {object_name!r}"
    revision = manifest_pb2.Integration(name=sources["integration_name"])
    json_format.ParseDict(declared, revision.read.objects.add(), ignore_unknown_fields=True)
    content = config_pb2.ConfigContent()
    configured = (
        (stored_json(sources["config_content"]).get("read") or {}).get("objects") or {}
    ).get(object_name)
    if configured:
        entry = content.read.objects[object_name]
        json_format.ParseDict(configured, entry, ignore_unknown_fields=True)
        # Found by its key, as the config keys it (read_plan finds it by its name).
        entry.object_name = object_name
    plan = read_plan.read_plan(revision, content, object_name, config_id=config_id)
    if plan.destination_name:
        plan.destination_id = (
            await pool.fetchval(_SELECT_DESTINATION, row["project_id"], plan.destination_name) or ""
        )
    return plan


def stored_json(value: Any) -> dict[str, Any]:
    """A jsonb column as asyncpg returns it (text), as a dict ({} when absent)."""
    if value is None:
        return {}
    loaded = orjson.loads(value) if isinstance(value, (str, bytes)) else value
    return loaded if isinstance(loaded, dict) else {}
