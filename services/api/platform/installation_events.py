"""The `installation.created|updated|deleted` notifications (events/v1/notifications.proto),
built from an installation's row as INSTALLATION_SELECT reads it.

They are staged in the api's outbox (services/runtime/events.py) by the transaction that
makes the change, so a committed change is always announced and a rolled-back one never
is; messenger routes them like every notification (event type -> topics -> destinations).

The data is the reference's (openapi/notifications InstallationFields): the project,
provider, integration (id and name), installation, connection, group (ref and name) and
the connection's consumer (ref and name), with `config`, the installation's config
content as the API shows it (`{provider, read, write, subscribe, proxy}`), and for an
update `lastConfig`, the content before it. Configs are always inlined: the reference's
`configURL` is for configs too large to inline, and one here is bounded by the request
size the edge accepts (well under the bus's message limit), so none needs a URL.

Idempotency keys name the change, so a redelivered event stays one notification and two
changes are two: the config row a change saved (`installation/<id>/config/<config id>/
created|updated`), or for a switch of connection alone the connection and the time of the
switch; a deletion happens once (`installation/<id>/deleted`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from ampmesh.events.v1 import envelope_pb2, notifications_pb2
from google.protobuf import json_format, struct_pb2

from services.api.stored import config_content
from services.runtime.envelopes import new_envelope
from services.runtime.request_id import current_request_id

SOURCE = "api"

__all__ = ["SOURCE", "created", "deleted", "updated"]


def _common(row: asyncpg.Record, integration: asyncpg.Record) -> dict[str, Any]:
    """What every installation notification says about the installation."""
    connection = row["cn_id"] or row["connection_id"]
    return {
        "project_id": str(row["project_id"]),
        "provider": integration["provider"],
        "integration_id": str(integration["id"]),
        "integration_name": integration["name"],
        "installation_id": str(row["id"]),
        "connection_id": str(connection) if connection else "",
        "group_ref": row["group_ref"],
        # As the installation's response shows the group (installation_rows.to_message).
        "group_name": row["cn_group_name"] or row["group_name"] or row["group_ref"],
        "consumer_ref": row["cn_consumer_ref"] or "",
        # The consumer's ref when it has no name, as the group's name falls back to its ref.
        "consumer_name": row["cn_consumer_name"] or row["cn_consumer_ref"] or "",
    }


def _fill(target: struct_pb2.Struct, stored: Any) -> None:
    """target := the stored config content in its JSON form; set (`{}`) even when the
    installation had none, since the reference requires the field."""
    target.SetInParent()
    if stored:
        # Fields left at their defaults are left out, as read.schedule.paused shows a
        # config (the API's responses print them: the edge's choice, not the config's).
        target.update(json_format.MessageToDict(config_content(stored)))


def _envelope(
    row: asyncpg.Record, key: str, note: notifications_pb2.Notification
) -> envelope_pb2.Envelope:
    return new_envelope(
        project_id=str(row["project_id"]),
        idempotency_key=key,
        source=SOURCE,
        request_id=current_request_id() or "",
        notification=note,
    )


def created(row: asyncpg.Record, integration: asyncpg.Record) -> envelope_pb2.Envelope:
    """installation.created for a new installation's row (with its first config)."""
    data = notifications_pb2.InstallationCreatedData(**_common(row, integration))
    _fill(data.config, row["content"])
    note = notifications_pb2.Notification(
        installation_created=notifications_pb2.InstallationCreatedNotification(
            notification_type="installation.created", data=data
        )
    )
    key = f"installation/{row['id']}/config/{row['config_id']}/created"
    return _envelope(row, key, note)


def updated(
    before: asyncpg.Record,
    after: asyncpg.Record,
    integration: asyncpg.Record,
    *,
    config_saved: bool,
) -> envelope_pb2.Envelope:
    """installation.updated from the row before and after the change. config_saved: the
    change saved a config row (else it switched the connection alone)."""
    data = notifications_pb2.InstallationUpdatedData(**_common(after, integration))
    _fill(data.config, after["content"])
    _fill(data.last_config, before["content"])
    note = notifications_pb2.Notification(
        installation_updated=notifications_pb2.InstallationUpdatedNotification(
            notification_type="installation.updated", data=data
        )
    )
    if config_saved:
        key = f"installation/{after['id']}/config/{after['config_id']}/updated"
    else:
        at: datetime = after["updated_at"]
        key = (
            f"installation/{after['id']}/connection/{after['connection_id']}/"
            f"{at.isoformat()}/updated"
        )
    return _envelope(after, key, note)


def deleted(row: asyncpg.Record, integration: asyncpg.Record) -> envelope_pb2.Envelope:
    """installation.deleted for the row of the installation being deleted (read in the
    deleting transaction, before its row goes)."""
    data = notifications_pb2.InstallationDeletedData(**_common(row, integration))
    _fill(data.config, row["content"])
    note = notifications_pb2.Notification(
        installation_deleted=notifications_pb2.InstallationDeletedNotification(
            notification_type="installation.deleted", data=data
        )
    )
    return _envelope(row, f"installation/{row['id']}/deleted", note)
