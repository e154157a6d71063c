"""The events of an asynchronous write operation: OperationCreated, its started and
finished log lines, OperationFinished and the `write.async.done` notification.

Pure builders (no I/O). Every event's idempotency key derives from the operation id, so
a retried activity republishes the same keys and consumers keep one of each; the api
stages the same OperationCreated (same key, same content) when it accepts the write, so
whichever arrives first is the one kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ampmesh.events.v1 import log_entry_pb2, notifications_pb2
from ampmesh.events.v1 import operation_events_pb2 as operations_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope, EventMeta
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2

from services.temporal.reads import events as read_events
from services.temporal.writes.context import WriteContext

TYPE_NAMES: dict[int, str] = {
    writes_pb2.WRITE_TYPE_CREATE: "create",
    writes_pb2.WRITE_TYPE_UPDATE: "update",
    writes_pb2.WRITE_TYPE_DELETE: "delete",
}
# A log line's error field holds this much of the operation's errors at most.
MAX_LOG_ERROR = 1_000


@dataclass(frozen=True)
class Operation:
    """One write operation as its events see it."""

    meta: EventMeta
    target: target_pb2.ObjectTarget
    operation_id: str
    write_type: int
    # The request's form: a batch (`batch`) or one record (`record`): decides the result line.
    batch: bool
    # The object as the builder named it (its mapped name when it has one).
    shown_object_name: str

    @property
    def shown(self) -> str:
        return self.shown_object_name or self.target.object_name


def _envelope(operation: Operation, what: str, **payload: Any) -> Envelope:
    """An event of the operation's, keyed `<operation id>/<what>`, in its target's project
    when its meta names none."""
    meta = operation.meta
    if not meta.project_id:
        meta = EventMeta()
        meta.CopyFrom(operation.meta)
        meta.project_id = operation.target.project_id
    return read_events.envelope(meta, f"{operation.operation_id}/{what}", **payload)


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


def operation_created(
    operation: Operation, workflow_id: str, workflow_run_id: str, config_id: str = ""
) -> Envelope:
    target = operation.target
    created = operations_pb2.OperationCreated(
        operation_id=operation.operation_id,
        integration_id=target.integration_id,
        installation_id=target.installation_id,
        config_id=config_id,
        connection_id=target.connection_id,
        action_type=operations_pb2.ACTION_TYPE_WRITE,
        objects=[target.object_name],
        workflow_id=workflow_id,
        workflow_run_id=workflow_run_id,
    )
    if operation.meta.HasField("time"):
        created.create_time.CopyFrom(operation.meta.time)
    return _envelope(operation, "created", operation_created=created)


def log_entry(
    operation: Operation, what: str, message: str, now: datetime, *, error: str = ""
) -> Envelope:
    """The operation's log line `what` (started, finished); an error makes it ERROR."""
    entry = log_entry_pb2.LogEntry(
        operation_id=operation.operation_id,
        installation_id=operation.target.installation_id,
        integration_id=operation.target.integration_id,
        severity=log_entry_pb2.LOG_SEVERITY_ERROR if error else log_entry_pb2.LOG_SEVERITY_INFO,
        msg=message,
        error=error[:MAX_LOG_ERROR],
        details={"object": operation.target.object_name},
    )
    entry.timestamp.FromDatetime(now)
    return _envelope(operation, f"log/{what}", log_entry=entry)


def started_line(operation: Operation, batched_with: int = 0) -> str:
    kind = TYPE_NAMES.get(operation.write_type, "write")
    line = f"[{operation.shown}] Asynchronous {kind} started"
    if batched_with:
        others = "record" if batched_with == 1 else "records"
        line += f" (in a batch with {batched_with} other {others})"
    return line


def result_text(operation: Operation, output: writes_pb2.AsyncWriteOutput) -> str:
    """The operation's result line, as the reference words it."""
    if operation.batch:
        return (
            f"Batch write completed ({output.success_count} succeeded, "
            f"{output.failure_count} failed)"
        )
    if output.success:
        return "Wrote 1 record"
    reason = output.errors[0] if output.errors else "no reason given"
    return f"Write failed: {reason}"


def operation_finished(
    operation: Operation, output: writes_pb2.AsyncWriteOutput, result: str, now: datetime
) -> Envelope:
    """OperationFinished: SUCCESS only when every record of the operation was written."""
    finished = operations_pb2.OperationFinished(
        operation_id=operation.operation_id,
        sequence=read_events.FINAL_SEQUENCE_OFFSET,
        installation_id=operation.target.installation_id,
        action_type=operations_pb2.ACTION_TYPE_WRITE,
        status=operations_pb2.OPERATION_STATUS_SUCCESS
        if output.success
        else operations_pb2.OPERATION_STATUS_FAILURE,
        result=result,
        counts=operations_pb2.OperationCounts(
            records_written=output.success_count, records_failed=output.failure_count
        ),
        successful_record_ids=output.successful_record_ids,
        errors=output.errors,
    )
    finished.finish_time.FromDatetime(now)
    if operation.meta.HasField("time"):
        begun = operation.meta.time.ToDatetime(tzinfo=now.tzinfo)
        finished.duration.FromTimedelta(max(now - begun, now - now))
    return _envelope(operation, "finished", operation_finished=finished)


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
        _envelope(operation, "notification", notification=notification(operation, context, output)),
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
