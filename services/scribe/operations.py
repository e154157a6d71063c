"""Operations, their logs and backfill progress, persisted from the operations and logs
topics idempotently and in any order.

What is written (and what services/api/platform/operations.py reads back):

- `operations.metadata`: the reference's operation `metadata` JSON: `objects`,
  `progress` {`installationId`, `objectName`, `operationId`, `recordsProcessed`,
  `recordsEstimatedTotal`} (reads; `recordsProcessed` is the records read), `retry`
  {`attempts`, `lastAttempt`, `lastNotified`} once the producer reports one, and
  `successfulRecordIds` (writes). Our own totals (pages, published, written, failed)
  are kept beside it in `operations.counts`, the errors of a failure in `errors`.
- `operation_logs.message`: `msg`, `error` (when set), `operation_id`, `details`.
- `backfill_progress`: one row per (operation, object), the highest sequence's counts.

Order: OperationCreated inserts (a duplicate changes nothing, but fills in a healed row);
OperationProgress, OperationFinished and BackfillProgress apply only when their sequence
is higher than the stored one, under the row's lock, so two progress events of one
operation handled at once serialize instead of racing; a finished operation never goes
back to in_progress. Any event about an operation scribe has not seen creates its row
("healed", in_progress, integration looked up from the installation) so nothing is lost;
OperationCreated completes it when it comes. Locks are always taken operation first,
installation second, so concurrent handlers cannot deadlock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import orjson
from ampmesh.events.v1 import backfill_progress_pb2 as bp
from ampmesh.events.v1 import log_entry_pb2 as le
from ampmesh.events.v1 import operation_events_pb2 as oe
from ampmesh.events.v1.envelope_pb2 import Envelope
from google.protobuf.timestamp_pb2 import Timestamp

from services.runtime.database import is_uuid
from services.runtime.envelopes import payload_names, payload_of
from services.runtime.tracing import trace_id_of

OPERATION_PAYLOADS = payload_names(
    "operation_created", "operation_progress", "operation_finished", "backfill_progress"
)
LOG_PAYLOADS = payload_names("log_entry")

ACTION_TYPES = {
    oe.ACTION_TYPE_READ: "read",
    oe.ACTION_TYPE_WRITE: "write",
    oe.ACTION_TYPE_SUBSCRIBE: "subscribe",
}
READ_TYPES = {
    oe.READ_TYPE_BACKFILL: "backfill",
    oe.READ_TYPE_SCHEDULED: "scheduled",
    oe.READ_TYPE_TRIGGERED: "triggered",
}
FINAL_STATUSES = {oe.OPERATION_STATUS_SUCCESS: "success", oe.OPERATION_STATUS_FAILURE: "failure"}
IN_PROGRESS = "in_progress"
SEVERITIES = {
    le.LOG_SEVERITY_DEBUG: "DEBUG",
    le.LOG_SEVERITY_INFO: "INFO",
    le.LOG_SEVERITY_WARNING: "WARNING",
    le.LOG_SEVERITY_ERROR: "ERROR",
}


class InvalidEvent(ValueError):
    """The event lacks what its contract promises: it can never be persisted, so it is
    dead-lettered at once. The message names the event and the field, never data."""


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _rfc3339(stamp: Timestamp) -> str:
    return stamp.ToJsonString()


def _uuid_or_none(value: str, field: str, event: str) -> str | None:
    """An optional id: empty is None, anything else must be a UUID."""
    if not value:
        return None
    if not is_uuid(value):
        raise InvalidEvent(f"event {event}: {field} is not a UUID")
    return value


def _require_uuid(value: str, field: str, event: str) -> str:
    if not is_uuid(value):
        raise InvalidEvent(f"event {event}: {field} is required and must be a UUID")
    return value


def _require_sequence(sequence: int, event: str) -> int:
    if sequence <= 0:
        raise InvalidEvent(f"event {event}: sequence must be positive")
    return sequence


def _retry_json(retry: oe.OperationRetry) -> dict[str, Any]:
    result: dict[str, Any] = {"attempts": retry.attempts}
    if retry.HasField("last_attempt_time"):
        result["lastAttempt"] = _rfc3339(retry.last_attempt_time)
    if retry.HasField("last_notify_time"):
        result["lastNotified"] = _rfc3339(retry.last_notify_time)
    return result


def _counts_json(counts: oe.OperationCounts) -> dict[str, Any]:
    result: dict[str, Any] = {
        "recordsRead": counts.records_read,
        "recordsPublished": counts.records_published,
        "recordsWritten": counts.records_written,
        "recordsFailed": counts.records_failed,
        "pages": counts.pages,
    }
    if counts.HasField("records_estimated_total"):
        result["recordsEstimatedTotal"] = counts.records_estimated_total
    return result


def _progress_json(
    previous: Any,
    *,
    operation_id: str,
    installation_id: str,
    object_name: str,
    counts: oe.OperationCounts,
) -> dict[str, Any]:
    """The reference's metadata.progress, keeping what earlier events said (the object
    name, which OperationFinished does not repeat)."""
    progress: dict[str, Any] = dict(previous) if isinstance(previous, dict) else {}
    progress["operationId"] = operation_id
    if installation_id:
        progress["installationId"] = installation_id
    if object_name:
        progress["objectName"] = object_name
    progress["recordsProcessed"] = counts.records_read
    if counts.HasField("records_estimated_total"):
        progress["recordsEstimatedTotal"] = counts.records_estimated_total
    return progress


def _metadata(value: Any) -> dict[str, Any]:
    # asyncpg hands jsonb over as text (no codec on the pool).
    if isinstance(value, str | bytes):
        value = orjson.loads(value)
    return value if isinstance(value, dict) else {}


class OperationStore:
    """Persists operation lifecycle, backfill progress and log events. Each `persist_*`
    returns True when the event changed something, False when it was a duplicate or
    stale (a later event of the operation was already applied)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def persist(self, envelope: Envelope) -> bool:
        name, message = payload_of(envelope)
        meta = envelope.meta
        if not is_uuid(meta.project_id):
            raise InvalidEvent(f"event {meta.id}: project_id is not a project id")
        if not meta.idempotency_key or not meta.HasField("time"):
            raise InvalidEvent(f"event {meta.id}: idempotency_key and time are required")
        try:
            if name == "operation_created":
                return await self._created(envelope, cast(oe.OperationCreated, message))
            if name == "operation_progress":
                return await self._progress(envelope, cast(oe.OperationProgress, message))
            if name == "operation_finished":
                return await self._finished(envelope, cast(oe.OperationFinished, message))
            if name == "backfill_progress":
                return await self._backfill(envelope, cast(bp.BackfillProgress, message))
            if name == "log_entry":
                return await self._log(envelope, cast(le.LogEntry, message))
        except asyncpg.ForeignKeyViolationError:
            # The only foreign key an event can miss is its project's: it never will exist.
            raise InvalidEvent(
                f"event {meta.id}: project {meta.project_id} does not exist"
            ) from None
        raise InvalidEvent(f"event {meta.id}: {name} is not an operation or log event")

    # --- the operation row ---------------------------------------------------------

    async def _heal(
        self,
        connection: asyncpg.Connection,
        envelope: Envelope,
        operation_id: str,
        installation_id: str | None,
        integration_id: str | None = None,
        action_type: str = "",
    ) -> None:
        """Create the operation's row if scribe has not seen it yet (in_progress, its
        integration from the installation when the event does not say)."""
        await connection.execute(
            """
            INSERT INTO operations (id, project_id, integration_id, installation_id,
                action_type, status, created_at, updated_at, healed, trace_id)
            SELECT $1::uuid, $2::uuid, COALESCE($4::uuid, i.integration_id), $3::uuid,
                $5, 'in_progress', $6, now(), true, $7
            FROM (SELECT 1) AS one
            LEFT JOIN installations i ON i.id = $3::uuid AND i.project_id = $2::uuid
            ON CONFLICT (id) DO NOTHING
            """,
            operation_id,
            envelope.meta.project_id,
            installation_id,
            integration_id,
            action_type,
            _time(envelope.meta.time),
            # Any of the operation's events names its trace (they all continue it).
            trace_id_of(envelope.meta.traceparent) or None,
        )

    async def _locked(
        self, connection: asyncpg.Connection, operation_id: str, project_id: str, event: str
    ) -> asyncpg.Record:
        row = await connection.fetchrow(
            "SELECT sequence, status, action_type, installation_id, metadata FROM operations "
            "WHERE id = $1::uuid AND project_id = $2::uuid FOR UPDATE",
            operation_id,
            project_id,
        )
        if row is None:
            raise InvalidEvent(f"event {event}: operation_id belongs to another project")
        return row

    async def _note_installation(self, connection: asyncpg.Connection, operation_id: str) -> None:
        """installations.last_operation_status follows the installation's newest operation
        (whatever order its events came in), and so does its health_status once that
        operation has ended: unhealthy after a failure, healthy again after a success; an
        operation still running leaves it as the one before left it. (The api shows an
        installation whose connection has bad credentials, or is gone, as unhealthy too.)"""
        await connection.execute(
            """
            UPDATE installations i SET last_operation_status = o.status,
                health_status = CASE o.status WHEN 'success' THEN 'healthy'
                    WHEN 'failure' THEN 'unhealthy' ELSE i.health_status END
            FROM operations o
            WHERE o.id = $1::uuid AND i.id = o.installation_id AND i.project_id = o.project_id
              AND (i.last_operation_status IS DISTINCT FROM o.status
                OR (o.status = 'success' AND i.health_status <> 'healthy')
                OR (o.status = 'failure' AND i.health_status <> 'unhealthy'))
              AND NOT EXISTS (
                SELECT 1 FROM operations n WHERE n.installation_id = o.installation_id
                  AND (n.created_at, n.id) > (o.created_at, o.id))
            """,
            operation_id,
        )

    async def _created(self, envelope: Envelope, created: oe.OperationCreated) -> bool:
        event = envelope.meta.id
        operation_id = _require_uuid(created.operation_id, "operation_id", event)
        installation_id = _uuid_or_none(created.installation_id, "installation_id", event)
        action_type = ACTION_TYPES.get(created.action_type)
        if action_type is None:
            raise InvalidEvent(f"event {event}: action_type is required")
        metadata: dict[str, Any] = {"objects": list(created.objects)}
        if action_type == "read":
            metadata["progress"] = {
                "installationId": created.installation_id,
                "objectName": created.objects[0] if created.objects else "",
                "operationId": operation_id,
                "recordsProcessed": 0,
            }
        start = created.create_time if created.HasField("create_time") else envelope.meta.time
        async with self.pool.acquire() as connection, connection.transaction():
            # A healed row keeps what later events already said (its metadata wins in
            # `||`, its status and counts stay); Created adds what only it knows.
            row = await connection.fetchrow(
                """
                INSERT INTO operations (id, project_id, integration_id, installation_id,
                    config_id, connection_id, action_type, status, metadata, created_at,
                    updated_at, read_type, workflow_id, workflow_run_id, trace_id)
                SELECT $1::uuid, $2::uuid, COALESCE($3::uuid, i.integration_id), $4::uuid,
                    $5::uuid, $6::uuid, $7, 'in_progress', $8::jsonb, $9, now(), $10, $11, $12,
                    $13
                FROM (SELECT 1) AS one
                LEFT JOIN installations i ON i.id = $4::uuid AND i.project_id = $2::uuid
                ON CONFLICT (id) DO UPDATE SET
                    integration_id = COALESCE(operations.integration_id,
                                              EXCLUDED.integration_id),
                    installation_id = COALESCE(operations.installation_id,
                                               EXCLUDED.installation_id),
                    config_id = EXCLUDED.config_id,
                    connection_id = EXCLUDED.connection_id,
                    action_type = EXCLUDED.action_type,
                    metadata = EXCLUDED.metadata || operations.metadata || CASE
                        WHEN EXCLUDED.metadata ? 'progress' AND operations.metadata ? 'progress'
                        THEN jsonb_build_object('progress', (EXCLUDED.metadata -> 'progress')
                                                || (operations.metadata -> 'progress'))
                        ELSE '{}'::jsonb END,
                    created_at = EXCLUDED.created_at,
                    read_type = EXCLUDED.read_type,
                    workflow_id = EXCLUDED.workflow_id,
                    workflow_run_id = EXCLUDED.workflow_run_id,
                    trace_id = COALESCE(operations.trace_id, EXCLUDED.trace_id),
                    healed = false
                WHERE operations.healed AND operations.project_id = EXCLUDED.project_id
                RETURNING id
                """,
                operation_id,
                envelope.meta.project_id,
                _uuid_or_none(created.integration_id, "integration_id", event),
                installation_id,
                _uuid_or_none(created.config_id, "config_id", event),
                _uuid_or_none(created.connection_id, "connection_id", event),
                action_type,
                orjson.dumps(metadata).decode(),
                _time(start),
                READ_TYPES.get(created.read_type, ""),
                created.workflow_id,
                created.workflow_run_id,
                trace_id_of(envelope.meta.traceparent) or None,
            )
            if row is None:
                return False
            await self._note_installation(connection, operation_id)
        return True

    async def _progress(self, envelope: Envelope, progress: oe.OperationProgress) -> bool:
        event = envelope.meta.id
        operation_id = _require_uuid(progress.operation_id, "operation_id", event)
        installation_id = _uuid_or_none(progress.installation_id, "installation_id", event)
        sequence = _require_sequence(progress.sequence, event)
        async with self.pool.acquire() as connection, connection.transaction():
            await self._heal(connection, envelope, operation_id, installation_id)
            row = await self._locked(connection, operation_id, envelope.meta.project_id, event)
            # Stale, or the operation already finished: nothing moves backwards.
            if row["sequence"] >= sequence or row["status"] != IN_PROGRESS:
                return False
            metadata = _metadata(row["metadata"])
            if row["action_type"] in ("read", ""):
                metadata["progress"] = _progress_json(
                    metadata.get("progress"),
                    operation_id=operation_id,
                    installation_id=progress.installation_id,
                    object_name=progress.object_name,
                    counts=progress.counts,
                )
            if progress.HasField("retry"):
                metadata["retry"] = _retry_json(progress.retry)
            await connection.execute(
                "UPDATE operations SET sequence = $2, metadata = $3::jsonb, "
                "counts = $4::jsonb, updated_at = now() WHERE id = $1::uuid",
                operation_id,
                sequence,
                orjson.dumps(metadata).decode(),
                orjson.dumps(_counts_json(progress.counts)).decode(),
            )
        return True

    async def _finished(self, envelope: Envelope, finished: oe.OperationFinished) -> bool:
        event = envelope.meta.id
        operation_id = _require_uuid(finished.operation_id, "operation_id", event)
        installation_id = _uuid_or_none(finished.installation_id, "installation_id", event)
        sequence = _require_sequence(finished.sequence, event)
        status = FINAL_STATUSES.get(finished.status)
        if status is None:
            raise InvalidEvent(f"event {event}: status must be SUCCESS or FAILURE")
        action_type = ACTION_TYPES.get(finished.action_type, "")
        finish_time = (
            finished.finish_time if finished.HasField("finish_time") else envelope.meta.time
        )
        async with self.pool.acquire() as connection, connection.transaction():
            await self._heal(
                connection, envelope, operation_id, installation_id, action_type=action_type
            )
            row = await self._locked(connection, operation_id, envelope.meta.project_id, event)
            if row["sequence"] >= sequence:
                return False
            kind = row["action_type"] or action_type
            metadata = _metadata(row["metadata"])
            if kind == "read":
                metadata["progress"] = _progress_json(
                    metadata.get("progress"),
                    operation_id=operation_id,
                    installation_id=finished.installation_id,
                    object_name="",
                    counts=finished.counts,
                )
            if finished.successful_record_ids:
                metadata["successfulRecordIds"] = list(finished.successful_record_ids)
            if finished.HasField("retry"):
                metadata["retry"] = _retry_json(finished.retry)
            await connection.execute(
                """
                UPDATE operations SET sequence = $2, status = $3, result = $4,
                    action_type = $5, metadata = $6::jsonb, counts = $7::jsonb,
                    errors = $8::jsonb, finished_at = $9, updated_at = now()
                WHERE id = $1::uuid
                """,
                operation_id,
                sequence,
                status,
                finished.result,
                kind,
                orjson.dumps(metadata).decode(),
                orjson.dumps(_counts_json(finished.counts)).decode(),
                orjson.dumps(list(finished.errors)).decode(),
                _time(finish_time),
            )
            await self._note_installation(connection, operation_id)
        return True

    async def _backfill(self, envelope: Envelope, progress: bp.BackfillProgress) -> bool:
        event = envelope.meta.id
        operation_id = _require_uuid(progress.operation_id, "operation_id", event)
        installation_id = _require_uuid(progress.installation_id, "installation_id", event)
        sequence = _require_sequence(progress.sequence, event)
        if not progress.object_name:
            raise InvalidEvent(f"event {event}: object_name is required")
        start = progress.start_time if progress.HasField("start_time") else envelope.meta.time
        update = progress.update_time if progress.HasField("update_time") else envelope.meta.time
        async with self.pool.acquire() as connection, connection.transaction():
            # A backfill is a read.
            await self._heal(connection, envelope, operation_id, installation_id, None, "read")
            # ON CONFLICT locks the row and checks the sequence against its latest version,
            # so concurrent progress events of one backfill serialize.
            applied = await connection.fetchval(
                """
                INSERT INTO backfill_progress (operation_id, object_name, project_id,
                    installation_id, sequence, records_processed, records_estimated_total,
                    done, created_at, updated_at)
                VALUES ($1::uuid, $2, $3::uuid, $4::uuid, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (operation_id, object_name) DO UPDATE SET
                    sequence = EXCLUDED.sequence,
                    records_processed = EXCLUDED.records_processed,
                    records_estimated_total = COALESCE(EXCLUDED.records_estimated_total,
                                                       backfill_progress.records_estimated_total),
                    done = backfill_progress.done OR EXCLUDED.done,
                    created_at = LEAST(backfill_progress.created_at, EXCLUDED.created_at),
                    updated_at = EXCLUDED.updated_at
                WHERE backfill_progress.sequence < EXCLUDED.sequence
                  AND backfill_progress.project_id = EXCLUDED.project_id
                RETURNING true
                """,
                operation_id,
                progress.object_name,
                envelope.meta.project_id,
                installation_id,
                sequence,
                progress.records_processed,
                (
                    progress.records_estimated_total
                    if progress.HasField("records_estimated_total")
                    else None
                ),
                progress.done,
                _time(start),
                _time(update),
            )
        return bool(applied)

    async def _log(self, envelope: Envelope, entry: le.LogEntry) -> bool:
        event = envelope.meta.id
        operation_id = _require_uuid(entry.operation_id, "operation_id", event)
        installation_id = _uuid_or_none(entry.installation_id, "installation_id", event)
        integration_id = _uuid_or_none(entry.integration_id, "integration_id", event)
        message: dict[str, Any] = {"msg": entry.msg, "operation_id": operation_id}
        if entry.error:
            message["error"] = entry.error
        message["details"] = dict(entry.details)
        logged = entry.timestamp if entry.HasField("timestamp") else envelope.meta.time
        async with self.pool.acquire() as connection, connection.transaction():
            await self._heal(connection, envelope, operation_id, installation_id, integration_id)
            applied = await connection.fetchval(
                """
                INSERT INTO operation_logs (project_id, operation_id, logged_at, severity,
                    message, idempotency_key)
                SELECT $1::uuid, $2::uuid, $3, $4, $5::jsonb, $6
                WHERE EXISTS (SELECT 1 FROM operations WHERE id = $2::uuid
                              AND project_id = $1::uuid)
                ON CONFLICT (project_id, idempotency_key) DO NOTHING
                RETURNING true
                """,
                envelope.meta.project_id,
                operation_id,
                _time(logged),
                SEVERITIES.get(entry.severity, "INFO"),
                orjson.dumps(message).decode(),
                envelope.meta.idempotency_key,
            )
            if not applied:
                exists = await connection.fetchval(
                    "SELECT true FROM operations WHERE id = $1::uuid AND project_id = $2::uuid",
                    operation_id,
                    envelope.meta.project_id,
                )
                if not exists:
                    raise InvalidEvent(f"event {event}: operation_id belongs to another project")
        return bool(applied)
