"""The connection history: every connection event once, and the status it leaves.

Each connection_* Envelope becomes one `connection_events` row per (project, idempotency
key), whatever Pub/Sub redelivers. When the row is new and the event states the
connection's status, `connections.status` takes it unless a later event already set it
(`status_time`): Pub/Sub keeps no order, so an old event arriving late changes nothing.
Both happen in one transaction, so a crash between them cannot leave a recorded event
whose status was never applied (a redelivery would find the row and skip the update).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from typing import cast

import asyncpg
from ampmesh.events.v1 import connection_events_pb2 as ce
from ampmesh.events.v1.envelope_pb2 import Envelope
from google.protobuf import json_format

from services.runtime.database import is_uuid
from services.runtime.envelopes import payload_names, payload_of

CONNECTION_PAYLOADS = payload_names(
    "connection_created",
    "connection_refreshed",
    "connection_updated",
    "connection_deleted",
    "connection_error",
)
# The reference's connection status values (connections.status accepts only these).
STATUS_VALUES: Mapping[int, str] = {
    ce.CONNECTION_STATUS_CREATED: "created",
    ce.CONNECTION_STATUS_WORKING: "working",
    ce.CONNECTION_STATUS_BAD_CREDENTIALS: "bad_credentials",
}

_ConnectionPayload = (
    ce.ConnectionCreated
    | ce.ConnectionRefreshed
    | ce.ConnectionUpdated
    | ce.ConnectionDeleted
    | ce.ConnectionError
)


class InvalidEvent(ValueError):
    """The event lacks what its contract promises: scribe dead-letters it at once
    (services/scribe/ingest.py) rather than record it wrongly."""


class ConnectionHistory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, envelope: Envelope) -> bool:
        """Record one connection event; False when its idempotency key was seen before."""
        name, message = payload_of(envelope)
        if name not in CONNECTION_PAYLOADS:
            raise InvalidEvent(f"event {envelope.meta.id}: not a connection event")
        payload = cast(_ConnectionPayload, message)
        info = payload.connection
        meta = envelope.meta
        if not is_uuid(meta.project_id):
            raise InvalidEvent(f"event {meta.id}: project_id is not a project id")
        if not meta.idempotency_key or not info.connection_id or not meta.HasField("time"):
            raise InvalidEvent(
                f"event {meta.id}: idempotency_key, time and connection_id are required"
            )
        event_time = meta.time.ToDatetime(tzinfo=UTC)
        # A deleted connection has no status left to record.
        status = None if name == "connection_deleted" else STATUS_VALUES.get(info.status)
        async with self.pool.acquire() as connection, connection.transaction():
            inserted = await connection.fetchval(
                """
                INSERT INTO connection_events (project_id, idempotency_key, connection_id,
                    type, status, event_time, event_id, payload)
                VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8::jsonb)
                ON CONFLICT (project_id, idempotency_key) DO NOTHING
                RETURNING true
                """,
                meta.project_id,
                meta.idempotency_key,
                info.connection_id,
                payload.DESCRIPTOR.full_name,
                status,
                event_time,
                meta.id,
                json.dumps(json_format.MessageToDict(payload)),
            )
            if not inserted:
                return False
            # Ids that are not UUIDs name no row of connections: history only.
            if status is not None and is_uuid(info.connection_id):
                await connection.execute(
                    """
                    UPDATE connections
                    SET status = $1, status_time = $2, updated_at = now()
                    WHERE id = $3::uuid AND project_id = $4::uuid
                      AND (status_time IS NULL OR status_time < $2)
                    """,
                    status,
                    event_time,
                    info.connection_id,
                    meta.project_id,
                )
        return True
