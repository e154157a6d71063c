"""The events a read publishes, built from its context: envelopes, log lines, the
operation's created/progress/finished events, backfill progress, the builder's
notifications, and the WebhookMessage header every page of a read shares.

Pure builders (no I/O): every event's idempotency key derives from the operation id (and
page and part numbers), so a retried activity republishes the same keys and consumers
keep one of each.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ampmesh.events.v1 import backfill_progress_pb2, log_entry_pb2, notifications_pb2
from ampmesh.events.v1 import operation_events_pb2 as operations_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope, EventMeta
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from ampmesh.workflows.v1 import read_operation_pb2, read_page_pb2

from services.runtime.envelopes import new_envelope
from services.temporal.reads.context import ReadContext

SOURCE = "temporal"
# OperationFinished and the final BackfillProgress must outrank every progress event
# (whose sequence is the pages done).
FINAL_SEQUENCE_OFFSET = 1_000_000

READ_TYPE_NAMES = {
    operations_pb2.READ_TYPE_BACKFILL: "backfill",
    operations_pb2.READ_TYPE_SCHEDULED: "scheduled",
    operations_pb2.READ_TYPE_TRIGGERED: "triggered",
}


def stamp(moment: datetime | None) -> str:
    """RFC 3339 in UTC, as protobuf's JSON mapping prints timestamps."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(meta: EventMeta, key: str, **payload: Any) -> Envelope:
    """An event of the read's, under its meta's project and trace."""
    made = new_envelope(
        project_id=meta.project_id,
        idempotency_key=key,
        source=SOURCE,
        request_id=meta.request_id,
        **payload,
    )
    if not made.meta.traceparent:
        # No span here (tracing off, or outside an activity): the meta's trace, if any.
        made.meta.traceparent = meta.traceparent
        made.meta.tracestate = meta.tracestate
    return made


def log_entry(
    meta: EventMeta,
    context: ReadContext,
    operation: str,
    what: str,
    message: str,
    severity: int,
    *,
    error: str = "",
) -> Envelope:
    """The operation's log line `what` (started, finished)."""
    entry = log_entry_pb2.LogEntry(
        operation_id=operation,
        installation_id=context.installation_id,
        integration_id=context.integration_id,
        severity=severity,  # type: ignore[arg-type]
        msg=message,
        error=error,
        details={"object": context.object_name},
    )
    entry.timestamp.FromDatetime(datetime.now(UTC))
    return envelope(meta, f"{operation}/log/{what}", log_entry=entry)


def operation_created(
    request: read_operation_pb2.OpenReadInput,
    context: ReadContext,
    since: datetime | None,
    until: datetime,
) -> Envelope:
    created = operations_pb2.OperationCreated(
        operation_id=request.operation_id,
        integration_id=context.integration_id,
        installation_id=context.installation_id,
        config_id=context.config_id,
        connection_id=context.connection_id,
        action_type=operations_pb2.ACTION_TYPE_READ,
        read_type=request.read_type,
        objects=[context.object_name],
        workflow_id=request.workflow_id,
        workflow_run_id=request.workflow_run_id,
    )
    if since is not None:
        created.since_time.FromDatetime(since)
    created.until_time.FromDatetime(until)
    created.create_time.CopyFrom(request.meta.time)
    return envelope(request.meta, f"{request.operation_id}/created", operation_created=created)


def close_result(request: read_operation_pb2.CloseReadInput, shown: str) -> str:
    """The operation's result line."""
    if request.status != operations_pb2.OPERATION_STATUS_SUCCESS:
        return f"[{shown}] Read failed: {request.error}"
    if request.cursor.records_done == 0:
        return f"[{shown}] No new data found"
    return f"[{shown}] Read {request.cursor.records_done} records"


def operation_finished(
    request: read_operation_pb2.CloseReadInput, result: str, estimated: int | None
) -> Envelope:
    cursor = request.cursor
    counts = operations_pb2.OperationCounts(
        records_read=cursor.records_done,
        records_published=cursor.records_done,
        pages=cursor.pages_done,
        records_estimated_total=estimated,
    )
    finished = operations_pb2.OperationFinished(
        operation_id=request.operation_id,
        sequence=cursor.pages_done + FINAL_SEQUENCE_OFFSET,
        installation_id=request.target.installation_id,
        action_type=operations_pb2.ACTION_TYPE_READ,
        status=request.status,
        result=result,
        counts=counts,
        errors=[request.error] if request.error else [],
    )
    finished.finish_time.CopyFrom(request.finish_time)
    if request.HasField("start_time"):
        finished.duration.FromTimedelta(
            request.finish_time.ToDatetime() - request.start_time.ToDatetime()
        )
    return envelope(request.meta, f"{request.operation_id}/finished", operation_finished=finished)


def backfill_progress(
    meta: EventMeta,
    installation_id: str,
    object_name: str,
    operation_id: str,
    sequence: int,
    records: int,
    estimated: int | None,
    *,
    done: bool,
) -> backfill_progress_pb2.BackfillProgress:
    progress = backfill_progress_pb2.BackfillProgress(
        installation_id=installation_id,
        object_name=object_name,
        operation_id=operation_id,
        sequence=sequence,
        records_processed=records,
        records_estimated_total=estimated,
        done=done,
    )
    if meta.HasField("time"):
        progress.start_time.CopyFrom(meta.time)
    progress.update_time.FromDatetime(datetime.now(UTC))
    return progress


def progress(
    request: read_page_pb2.ReadPageInput,
    context: ReadContext,
    cursor: target_pb2.ReadCursor,
    estimated: int | None,
) -> list[Envelope]:
    """OperationProgress (and a backfill's BackfillProgress) with absolute counts."""
    operation = request.operation_id
    counts = operations_pb2.OperationCounts(
        records_read=cursor.records_done,
        records_published=cursor.records_done,
        pages=cursor.pages_done,
        records_estimated_total=estimated,
    )
    events = [
        envelope(
            request.meta,
            f"{operation}/progress/{cursor.pages_done}",
            operation_progress=operations_pb2.OperationProgress(
                operation_id=operation,
                sequence=cursor.pages_done,
                installation_id=context.installation_id,
                object_name=context.object_name,
                counts=counts,
            ),
        )
    ]
    if request.read_type == operations_pb2.READ_TYPE_BACKFILL:
        events.append(
            envelope(
                request.meta,
                f"{operation}/backfill-progress/{cursor.pages_done}",
                backfill_progress=backfill_progress(
                    request.meta,
                    context.installation_id,
                    context.object_name,
                    operation,
                    cursor.pages_done,
                    cursor.records_done,
                    estimated,
                    done=False,
                ),
            )
        )
    return events


def notification_common(context: ReadContext) -> dict[str, Any]:
    """What every read notification says about the installation."""
    return {
        "project_id": context.project_id,
        "provider": context.provider,
        "integration_id": context.integration_id,
        "integration_name": context.integration_name,
        "installation_id": context.installation_id,
        "connection_id": context.connection_id,
        "group_ref": context.group_ref,
        "group_name": context.group_name,
        "consumer_ref": context.consumer_ref,
        "consumer_name": context.consumer_name,
    }


def notification(
    request: read_operation_pb2.CloseReadInput, context: ReadContext, success: bool
) -> notifications_pb2.Notification | None:
    """read.backfill.done, read.triggered.done or read.triggered.error; None for the
    rest (a failed backfill, a scheduled run)."""
    common = notification_common(context) | {"object_name": context.shown_object_name}
    window = request.cursor
    if request.read_type == operations_pb2.READ_TYPE_BACKFILL:
        if not success:
            return None
        return notifications_pb2.Notification(
            read_backfill_done=notifications_pb2.ReadBackfillDoneNotification(
                notification_type="read.backfill.done",
                data=notifications_pb2.ReadBackfillDoneData(**common),
            )
        )
    if request.read_type != operations_pb2.READ_TYPE_TRIGGERED:
        return None
    if success:
        done = notifications_pb2.ReadTriggeredDoneData(**common)
        if window.HasField("since"):
            done.from_timestamp.CopyFrom(window.since)
        done.until_timestamp.CopyFrom(window.until)
        return notifications_pb2.Notification(
            read_triggered_done=notifications_pb2.ReadTriggeredDoneNotification(
                notification_type="read.triggered.done", data=done
            )
        )
    failed = notifications_pb2.ReadTriggeredErrorData(**common, error=request.error)
    if window.HasField("since"):
        failed.from_timestamp.CopyFrom(window.since)
    failed.until_timestamp.CopyFrom(window.until)
    return notifications_pb2.Notification(
        read_triggered_error=notifications_pb2.ReadTriggeredErrorNotification(
            notification_type="read.triggered.error", data=failed
        )
    )


def page_header(request: read_page_pb2.ReadPageInput, context: ReadContext) -> dict[str, Any]:
    """WebhookMessage's JSON mapping without result (pack_bodies adds resultInfo's
    count and the records); unset fields left out as protobuf's JSON would."""
    header: dict[str, Any] = {
        "projectId": context.project_id,
        "provider": context.provider,
        "workspace": context.workspace,
        "groupRef": context.group_ref,
        "groupName": context.group_name,
        "installationId": context.installation_id,
        "installationUpdateTime": stamp(
            context.installation_updated_at or context.installation_created_at
        ),
        "objectName": context.shown_object_name,
        "operationId": request.operation_id,
        "rawObjectName": context.object_name
        if context.shown_object_name != context.object_name
        else "",
        "action": "read",
        "resultInfo": {"type": "inline"},
        "consumerRef": context.consumer_ref,
        "consumerName": context.consumer_name,
        "operationTime": stamp(request.meta.time.ToDatetime(tzinfo=UTC))
        if request.meta.HasField("time")
        else "",
        "readType": READ_TYPE_NAMES.get(request.read_type, ""),
    }
    return {key: value for key, value in header.items() if value}
