"""A connection's row in the `connections` table: finding it for a caller, and the
Connection message it reads as (also the connection an installation shows)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
from ampmesh.platform.v1 import connections_pb2
from google.protobuf import json_format

from services.api.auth import Principal, ProjectRow
from services.api.common import abort_missing, timestamp, with_times
from services.api.context import ApiContext

KIND = "connection"


def to_message(row: Mapping[str, Any]) -> connections_pb2.Connection:
    """The Connection a connections row reads as (row: the table's columns by name)."""
    project_id = str(row["project_id"])
    created = timestamp(row["created_at"])
    connection = with_times(
        connections_pb2.Connection(
            id=str(row["id"]),
            project_id=project_id,
            provider=row["provider"],
            group=connections_pb2.Group(
                group_ref=row["group_ref"],
                group_name=row["group_name"],
                project_id=project_id,
                create_time=created,
            ),
            consumer=connections_pb2.Consumer(
                consumer_ref=row["consumer_ref"],
                consumer_name=row["consumer_name"],
                project_id=project_id,
                create_time=created,
            ),
            auth_scheme=row["auth_scheme"],
            status=row["status"],
        ),
        row["created_at"],
        row["updated_at"],
    )
    if row["provider_workspace_ref"]:
        connection.provider_workspace_ref = row["provider_workspace_ref"]
    for name, info in json.loads(row["provider_metadata"]).items():
        json_format.ParseDict(info, connection.provider_metadata[name], ignore_unknown_fields=True)
    return connection


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def find_connection(
    ctx: ApiContext, context: Any, principal: Principal, project: ProjectRow, connection_id: str
) -> asyncpg.Record:
    """The connection of project with that id, if the principal may see its group;
    NOT_FOUND otherwise (the same answer whether or not it exists)."""
    parsed = _as_uuid(connection_id)
    row = None
    if parsed is not None:
        row = await ctx.pool.fetchrow(
            "SELECT * FROM connections WHERE project_id = $1 AND id = $2",
            uuid.UUID(project.id),
            parsed,
        )
    if row is None or not ctx.auth.sees_group(principal, row["group_ref"]):
        await abort_missing(context, KIND, connection_id)
    return row
