"""The events of an asynchronous write operation as the workers publish them: what it
publishes when its write starts (OperationCreated, the started log line) and when it
ends (OperationFinished, the finished log line, the `write.async.done` notification).

Pure builders (no I/O). The operation's own events are services/domain/write_events.py's,
shared with the api (which stages the same OperationCreated, same key, when it accepts
the write: whichever arrives first is the one kept); the notification, which names the
installation as it is now, is built here.
"""

from __future__ import annotations

from datetime import datetime

from ampmesh.events.v1 import notifications_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2

from services.domain.write_events import (
    TYPE_NAMES,
    Operation,
    envelope,
    log_entry,
    operation_created,
    operation_finished,
    result_text,
    started_line,
)
from services.temporal.writes.context import WriteContext

__all__ = [
    "TYPE_NAMES",
    "Operation",
    "closing",
    "notification",
    "of_queue",
    "of_request",
    "opening",
    "operation_created",
    "operation_finished",
    "result_text",
    "started_line",
]


def of_request(request: writes_pb2.AsyncWriteInput) -> Operation:
    """An AsyncWrite's operation."""
    return Operation(
        meta=request.meta,
        target=request.target,
        operation_id=request.operation_id,
        write_type=request.type,
        batch=request.batch,
        shown_object_name=request.shown_object_name,
    )


def of_queue(operations: writes_pb2.WriteBatcherInput) -> list[Operation]:
    """The operations of an auto-batch, one per record (each a single-record request)."""
    return [
        Operation(
            meta=queued.meta,
            target=operations.target,
            operation_id=queued.operation_id,
            write_type=operations.type,
            batch=False,
            shown_object_name=queued.shown_object_name,
        )
        for queued in operations.pending
    ]


def notification(
    operation: Operation, context: WriteContext | None, output: writes_pb2.AsyncWriteOutput
) -> notifications_pb2.Notification:
    """write.async.done. Without a context (the installation was deleted meanwhile) the
    ids come from the write's target and the names are left out."""
    target = operation.target
    data = notifications_pb2.WriteAsyncDoneData(
        project_id=target.project_id,
        provider=target.provider,
        integration_id=target.integration_id,
        installation_id=target.installation_id,
        connection_id=context.connection_id if context else target.connection_id,
        object_name=operation.shown,
        success=output.success,
        successful_record_ids=output.successful_record_ids,
        errors=output.errors,
    )
    if context is not None:
        data.integration_name = context.integration_name
        data.group_ref = context.group_ref
        data.group_name = context.group_name
        data.consumer_ref = context.consumer_ref
        data.consumer_name = context.consumer_name
    return notifications_pb2.Notification(
        write_async_done=notifications_pb2.WriteAsyncDoneNotification(
            notification_type="write.async.done", data=data
        )
    )


def closing(
    operation: Operation,
    context: WriteContext | None,
    output: writes_pb2.AsyncWriteOutput,
    now: datetime,
) -> list[Envelope]:
    """Everything an operation publishes when it ends."""
    result = result_text(operation, output)
    error = "" if output.success else "; ".join(output.errors)
    return [
        operation_finished(operation, output, result, now),
        log_entry(operation, "finished", f"[{operation.shown}] {result}", now, error=error),
        envelope(operation, "notification", notification=notification(operation, context, output)),
    ]


def opening(
    operation: Operation,
    workflow_id: str,
    workflow_run_id: str,
    config_id: str,
    now: datetime,
    batched_with: int = 0,
) -> list[Envelope]:
    """Everything an operation publishes when its write starts."""
    return [
        operation_created(operation, workflow_id, workflow_run_id, config_id),
        log_entry(operation, "started", started_line(operation, batched_with), now),
    ]
