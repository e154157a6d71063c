"""The read's bookkeeping in PostgreSQL: each object's watermark (where its next
scheduled run starts) and each schedule's count of failed runs in a row, which pauses
the schedule (Temporal's and its read_schedules row) after FAILURES_BEFORE_PAUSE, with
the builder's read.schedule.paused.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from ampmesh.events.v1 import notifications_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.workflows.v1 import read_operation_pb2, read_page_pb2
from google.protobuf import json_format
from temporalio.client import Client

from services.domain.read_workflows import FAILURES_BEFORE_PAUSE
from services.runtime.logs import get_logger
from services.temporal.reads import events
from services.temporal.reads.context import ReadContext, stored_json

_log = get_logger("ampmesh.temporal.reads")

_SELECT_WATERMARK = (
    "SELECT watermark FROM read_watermarks WHERE installation_id = $1::uuid AND object_name = $2"
)
_UPSERT_WATERMARK = """
    INSERT INTO read_watermarks (installation_id, object_name, project_id, watermark, operation_id)
    VALUES ($1::uuid, $2, $3::uuid, $4, $5::uuid)
    ON CONFLICT (installation_id, object_name) DO UPDATE SET
        watermark = GREATEST(read_watermarks.watermark, EXCLUDED.watermark),
        operation_id = CASE WHEN EXCLUDED.watermark > read_watermarks.watermark
                            THEN EXCLUDED.operation_id ELSE read_watermarks.operation_id END,
        updated_at = now()
"""
_SCHEDULE_SUCCEEDED = """
    UPDATE read_schedules SET consecutive_failures = 0, last_error = '', updated_at = now()
    WHERE installation_id = $1::uuid AND object_name = $2 AND consecutive_failures <> 0
"""
# last_error names the run's operation, so a retried close_read counts its run once.
_SCHEDULE_FAILED = """
    UPDATE read_schedules
    SET consecutive_failures = consecutive_failures + 1, last_error = $3, updated_at = now()
    WHERE installation_id = $1::uuid AND object_name = $2 AND last_error IS DISTINCT FROM $3
    RETURNING consecutive_failures
"""
_SELECT_SCHEDULE = """
    SELECT schedule_id, consecutive_failures, paused FROM read_schedules
    WHERE installation_id = $1::uuid AND object_name = $2
"""
_SCHEDULE_PAUSED = """
    UPDATE read_schedules
    SET paused = true, pause_reason = 'errors', pause_note = $3, updated_at = now()
    WHERE installation_id = $1::uuid AND object_name = $2
"""
_SELECT_CONFIG = "SELECT content FROM configs WHERE id = $1::uuid"


class ReadBookkeeping:
    """Watermarks and schedule failure counts, bound to the process's pool and client."""

    def __init__(self, pool: asyncpg.Pool, client: Client) -> None:
        self._pool = pool
        self._client = client

    async def watermark_since(self, context: ReadContext) -> datetime:
        """Where a scheduled run starts: the object's watermark, else the installation's
        creation."""
        watermark: datetime | None = await self._pool.fetchval(
            _SELECT_WATERMARK, context.installation_id, context.object_name
        )
        return watermark if watermark is not None else context.installation_created_at

    async def save_watermark(self, request: read_page_pb2.SaveReadWatermarkInput) -> None:
        """Move the watermark to the completed window's end (only forward)."""
        if not request.cursor.HasField("until"):
            return
        try:
            await self._pool.execute(
                _UPSERT_WATERMARK,
                request.target.installation_id,
                request.target.object_name,
                request.target.project_id,
                request.cursor.until.ToDatetime(tzinfo=UTC),
                request.operation_id or None,
            )
        except asyncpg.ForeignKeyViolationError:
            # The installation was deleted while it was being read: nothing to keep.
            _log.info("watermark not saved: installation gone", operation_id=request.operation_id)

    async def run_closed(
        self, request: read_operation_pb2.CloseReadInput, context: ReadContext, success: bool
    ) -> tuple[bool, list[Envelope]]:
        """Reset the failure count on success; count a failed run, and pause the schedule
        after FAILURES_BEFORE_PAUSE in a row (with its read.schedule.paused). Whether
        this run paused it, and the events to publish."""
        key = (context.installation_id, context.object_name)
        if success:
            await self._pool.execute(_SCHEDULE_SUCCEEDED, *key)
            return False, []
        await self._pool.fetchval(
            _SCHEDULE_FAILED, *key, f"operation {request.operation_id}: {request.error}"[:1000]
        )
        row = await self._pool.fetchrow(_SELECT_SCHEDULE, *key)
        if row is None or row["consecutive_failures"] < FAILURES_BEFORE_PAUSE:
            return False, []
        schedule_id = request.schedule_id or row["schedule_id"]
        note = (
            f"paused after {row['consecutive_failures']} failed runs in a row; "
            f"last error: {request.error}"
        )[:500]
        if not row["paused"]:
            try:
                await self._client.get_schedule_handle(schedule_id).pause(note=note)
            except Exception as error:
                _log.warning(
                    "schedule not paused", schedule_id=schedule_id, error=type(error).__name__
                )
            await self._pool.execute(_SCHEDULE_PAUSED, *key, note)
        data = notifications_pb2.ReadSchedulePausedData(
            **events.notification_common(context), error=request.error
        )
        # The config the builder sees in the notification: the installation's newest.
        if context.config_id:
            config = stored_json(await self._pool.fetchval(_SELECT_CONFIG, context.config_id))
            if config:
                json_format.ParseDict(config, data.config)
        # Keyed by the run that paused it: a retried close republishes the same one.
        paused = events.envelope(
            request.meta,
            f"{schedule_id}/paused/{request.operation_id}",
            notification=notifications_pb2.Notification(
                read_schedule_paused=notifications_pb2.ReadSchedulePausedNotification(
                    notification_type="read.schedule.paused", data=data
                )
            ),
        )
        return True, [paused]
