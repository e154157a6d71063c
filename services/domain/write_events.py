"""The events of a write operation, as both their publishers build them: the api (a
synchronous write's whole lifecycle, and an asynchronous write's creation when it is
accepted) and the temporal workers (an asynchronous write's start and end).

Pure builders (no I/O). Every event's idempotency key derives from the operation id, so
the api and a workflow publishing the same OperationCreated publish one event, and a
retried activity republishes what consumers already have. The notification, which
needs the installation's names, is built in services/temporal/writes/events.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ampmesh.events.v1 import log_entry_pb2
from ampmesh.events.v1 import operation_events_pb2 as operations_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope, EventMeta
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2

from services.runtime.envelopes import new_envelope

# OperationFinished outranks every progress event of the operation.
FINAL_SEQUENCE = 1_000_000

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

    # Who publishes: the api (synchronous writes, accepting asynchronous ones) or the
    # temporal workers.
    source: str = "temporal"

    @property
    def shown(self) -> str:
        return self.shown_object_name or self.target.object_name


def envelope(operation: Operation, what: str, **payload: Any) -> Envelope:
    """An event of the operation's, keyed `<operation id>/<what>`, under its request's
    id and trace, in its meta's project (its target's when the meta names none)."""
    meta = operation.meta
    made = new_envelope(
        project_id=meta.project_id or operation.target.project_id,
        idempotency_key=f"{operation.operation_id}/{what}",
        source=operation.source,
        request_id=meta.request_id,
        **payload,
    )
    if not made.meta.traceparent:
        # No span here (tracing off, or outside an activity): the meta's trace, if any.
        made.meta.traceparent = meta.traceparent
        made.meta.tracestate = meta.tracestate
    return made


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
    return envelope(operation, "created", operation_created=created)


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
    return envelope(operation, f"log/{what}", log_entry=entry)


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
        sequence=FINAL_SEQUENCE,
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
    return envelope(operation, "finished", operation_finished=finished)
