"""The control plane's stored integrations and installation configs, as both route groups
read them: the platform group writes them, the read group (and, later, write and
subscribe) looks them up. Here, rather than in the platform group, so that no route
group imports another.

Stored JSON is the reference's JSON of the message; unknown fields are ignored so that a
row written by a newer api still reads.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from google.protobuf import json_format

from services.runtime.database import is_uuid

# What a NOT_FOUND names (google.rpc.ResourceInfo.resource_type).
INSTALLATION_KIND = "installation"
INTEGRATION_KIND = "integration"

INTEGRATION_SELECT = """
    SELECT g.*, r.id AS revision_id, r.spec_version, r.content,
           r.created_at AS revision_created_at
    FROM integrations g LEFT JOIN revisions r ON r.id = g.latest_revision_id
"""


def config_content(stored: str | dict[str, Any]) -> config_pb2.ConfigContent:
    """An installation config's content as stored (configs.content)."""
    data = json.loads(stored) if isinstance(stored, str) else stored
    return json_format.ParseDict(data, config_pb2.ConfigContent(), ignore_unknown_fields=True)


def integration_content(stored: str | dict[str, Any]) -> manifest_pb2.Integration:
    """An integration revision's content as stored (revisions.content)."""
    data = json.loads(stored) if isinstance(stored, str) else stored
    return json_format.ParseDict(data, manifest_pb2.Integration(), ignore_unknown_fields=True)


async def find_integration(
    conn: asyncpg.Connection | asyncpg.Pool,
    project_id: str,
    id_or_name: str,
    *,
    for_update: bool = False,
) -> asyncpg.Record | None:
    """An integration of the project by id or name (with its latest revision)."""
    column = "g.id" if is_uuid(id_or_name) else "g.name"
    value: Any = uuid.UUID(id_or_name) if is_uuid(id_or_name) else id_or_name
    lock = " FOR UPDATE OF g" if for_update else ""
    return await conn.fetchrow(
        f"{INTEGRATION_SELECT} WHERE g.project_id = $1 AND {column} = $2{lock}",
        uuid.UUID(project_id),
        value,
    )
