"""How an installation is read from the database and shown.

One query (`INSTALLATION_SELECT`) gives an installation with its newest config and the
connection it uses; `to_message` turns its row into the contract's Installation, showing
the connection as GET .../connections/{id} does (without credentials). `save_config` is
the one writer of a new config row, so that every change keeps the history the same way.
"""

from __future__ import annotations

import json
import uuid

import asyncpg
from ampmesh.manifest.v1 import config_pb2
from ampmesh.platform.v1 import connections_pb2, installations_pb2
from google.protobuf import json_format

from services.api.common import timestamp, with_times
from services.api.platform.connection_rows import to_message as connection_message
from services.api.stored import config_content

# The connections columns an installation's response shows, selected as cn_<name>
# by INSTALLATION_SELECT.
_CONNECTION_COLUMNS = (
    "id",
    "project_id",
    "provider",
    "provider_app_id",
    "group_ref",
    "group_name",
    "consumer_ref",
    "consumer_name",
    "provider_workspace_ref",
    "provider_metadata",
    "auth_scheme",
    "status",
    "created_at",
    "updated_at",
)
INSTALLATION_SELECT = """
    SELECT i.*, c.id AS config_id, c.revision_id, c.created_by AS config_created_by,
           c.content, c.created_at AS config_created_at,
           cn.id AS cn_id, cn.project_id AS cn_project_id, cn.provider AS cn_provider,
           cn.provider_app_id AS cn_provider_app_id, cn.group_ref AS cn_group_ref,
           cn.group_name AS cn_group_name, cn.consumer_ref AS cn_consumer_ref,
           cn.consumer_name AS cn_consumer_name,
           cn.provider_workspace_ref AS cn_provider_workspace_ref,
           cn.provider_metadata AS cn_provider_metadata, cn.auth_scheme AS cn_auth_scheme,
           cn.status AS cn_status, cn.created_at AS cn_created_at,
           cn.updated_at AS cn_updated_at
    FROM installations i
    LEFT JOIN LATERAL (
        SELECT id, revision_id, created_by, content, created_at FROM configs
        WHERE installation_id = i.id ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN connections cn ON cn.id = i.connection_id
"""


def content_json(content: config_pb2.ConfigContent) -> str:
    return json.dumps(json_format.MessageToDict(content), sort_keys=True)


def health_status(row: asyncpg.Record) -> str:
    """healthy, or unhealthy: when its connection is gone or has bad credentials (the
    provider refused them; nothing works until the customer reconnects), or when its
    newest operation failed (scribe keeps that in health_status, healthy again after a
    success)."""
    if row["cn_id"] is None or row["cn_status"] == "bad_credentials":
        return "unhealthy"
    return "unhealthy" if row["health_status"] == "unhealthy" else "healthy"


def to_message(row: asyncpg.Record) -> installations_pb2.Installation:
    installation = installations_pb2.Installation(
        id=str(row["id"]),
        project_id=str(row["project_id"]),
        integration_id=str(row["integration_id"]),
        group=connections_pb2.Group(
            group_ref=row["group_ref"],
            # The group's name as its connection shows it now (a connection's update may
            # rename the group), else as it was when the installation was made.
            group_name=row["cn_group_name"] or row["group_name"] or row["group_ref"],
            project_id=str(row["project_id"]),
            create_time=timestamp(row["created_at"]),
        ),
        health_status=health_status(row),
        created_by=row["created_by"],
    )
    with_times(installation, row["created_at"], row["updated_at"])
    # Left out until an operation has run (the reference allows only its three values).
    if row["last_operation_status"]:
        installation.last_operation_status = row["last_operation_status"]
    if row["cn_id"] is not None:  # None too when the connection was deleted since
        installation.connection.CopyFrom(
            connection_message({name: row[f"cn_{name}"] for name in _CONNECTION_COLUMNS})
        )
    if row["config_id"] is not None:
        installation.config.CopyFrom(
            config_pb2.Config(
                id=str(row["config_id"]),
                revision_id=str(row["revision_id"]),
                create_time=timestamp(row["config_created_at"]),
                created_by=row["config_created_by"],
                content=config_content(row["content"]),
            )
        )
    return installation


async def save_config(
    conn: asyncpg.Connection,
    installation_id: uuid.UUID,
    revision_id: uuid.UUID,
    created_by: str,
    content: config_pb2.ConfigContent,
) -> None:
    """Save content as the installation's newest config, tied to revision_id."""
    # clock_timestamp, not now(): the newest config is the one with the latest time,
    # even when one transaction saves two.
    await conn.execute(
        "INSERT INTO configs (installation_id, revision_id, created_by, content, created_at) "
        "VALUES ($1, $2, $3, $4::jsonb, clock_timestamp())",
        installation_id,
        revision_id,
        created_by,
        content_json(content),
    )
    await conn.execute(
        "UPDATE installations SET updated_at = clock_timestamp() WHERE id = $1",
        installation_id,
    )
