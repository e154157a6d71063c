"""The events of a write operation, as both writers of them build them: the api (a
synchronous write's whole lifecycle, an asynchronous write's creation at accept time)
and the temporal workers (how an asynchronous write ended).

Pure builders. Every idempotency key derives from the operation id, so the api and a
workflow publishing the same event (OperationCreated) publish one event, and a retried
activity republishes what consumers already have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ampmesh.events.v1 import log_entry_pb2
from ampmesh.events.v1 import operation_events_pb2 as operations_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope

from services.runtime.envelopes import new_envelope

# OperationFinished outranks every progress event of the operation.
FINAL_SEQUENCE = 1_000_000


@dataclass(frozen=True)
class WriteFacts:
    """Who an operation writes for and what."""

    project_id: str
    integration_id: str
    installation_id: str
    connection_id: str
    config_id: str
    object_name: str


@dataclass(frozen=True)
class RecordResult:
    """How one record of the operation ended."""

    success: bool
    record_id: str = ""
    errors: Sequence[str] = ()


def _envelope(
    facts: WriteFacts, key: str, source: str, request_id: str, **payload: object
) -> Envelope:
    return new_envelope(
        project_id=facts.project_id,
        idempotency_key=key,
        source=source,
        request_id=request_id,
        **payload,  # type: ignore[arg-type]
    )


def operation_created(
    facts: WriteFacts,
    operation_id: str,
    created: datetime,
    *,
    source: str,
    request_id: str = "",
    workflow_id: str = "",
) -> Envelope:
    message = operations_pb2.OperationCreated(
        operation_id=operation_id,
        integration_id=facts.integration_id,
        installation_id=facts.installation_id,
        config_id=facts.config_id,
        connection_id=facts.connection_id,
        action_type=operations_pb2.ACTION_TYPE_WRITE,
        objects=[facts.object_name],
        workflow_id=workflow_id,
    )
    message.create_time.FromDatetime(created)
    return _envelope(
        facts, f"{operation_id}/created", source, request_id, operation_created=message
    )


def log_entry(
    facts: WriteFacts,
    operation_id: str,
    what: str,
    message: str,
    *,
    source: str,
    request_id: str = "",
    error: str = "",
) -> Envelope:
    """The operation's log line `what` (started, finished)."""
    entry = log_entry_pb2.LogEntry(
        operation_id=operation_id,
        installation_id=facts.installation_id,
        integration_id=facts.integration_id,
        severity=log_entry_pb2.LOG_SEVERITY_ERROR if error else log_entry_pb2.LOG_SEVERITY_INFO,
        msg=message,
        error=error,
        details={"object": facts.object_name},
    )
    entry.timestamp.FromDatetime(datetime.now(UTC))
    return _envelope(facts, f"{operation_id}/log/{what}", source, request_id, log_entry=entry)


def result_text(records: Sequence[RecordResult], *, single: bool) -> str:
    """The operation's `result`, as the reference words it."""
    written = sum(1 for record in records if record.success)
    if single:
        return "Record written" if written else "Record write failed"
    return f"Batch write completed ({written} succeeded, {len(records) - written} failed)"


def operation_finished(
    facts: WriteFacts,
    operation_id: str,
    records: Sequence[RecordResult],
    *,
    single: bool,
    started: datetime,
    source: str,
    request_id: str = "",
    errors: Sequence[str] = (),
) -> Envelope:
    """OperationFinished: SUCCESS only when every record was written."""
    written = [record for record in records if record.success]
    failed = len(records) - len(written)
    finished = operations_pb2.OperationFinished(
        operation_id=operation_id,
        sequence=FINAL_SEQUENCE,
        installation_id=facts.installation_id,
        action_type=operations_pb2.ACTION_TYPE_WRITE,
        status=operations_pb2.OPERATION_STATUS_FAILURE
        if failed or not records
        else operations_pb2.OPERATION_STATUS_SUCCESS,
        result=result_text(records, single=single),
        counts=operations_pb2.OperationCounts(records_written=len(written), records_failed=failed),
        successful_record_ids=[record.record_id for record in written if record.record_id],
        errors=[*errors, *(error for record in records for error in record.errors)],
    )
    now = datetime.now(UTC)
    finished.finish_time.FromDatetime(now)
    finished.duration.FromTimedelta(max(now - started, now - now))
    return _envelope(
        facts, f"{operation_id}/finished", source, request_id, operation_finished=finished
    )
