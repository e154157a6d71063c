"""A synchronous write: the api calls the provider itself, through the connection (a
refused token refreshed once, unavailability answered 503 with the provider's
Retry-After: services/api/provider_calls.py), and answers what the provider did, in the
reference's shapes. The operation's whole lifecycle goes out through the api's outbox
once the provider has answered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ampmesh.write.v1 import write_pb2
from google.protobuf import struct_pb2

from services.api.context import ApiContext
from services.api.provider_calls import call_provider
from services.api.write.request import RecordIn, WriteAsk
from services.api.write.target import WriteTarget
from services.domain import write_events
from services.domain.connectors.registry import writer_for
from services.domain.connectors.writes import WriteBatch, WriteItem, WriteOutcome
from services.domain.write_outputs import output_of
from services.domain.write_plan import PreparedRecord
from services.runtime.events import EventBus
from services.runtime.logs import get_logger

# Response metadata the edge turns into the HTTP status (envoy/problem.lua).
HTTP_STATUS_HEADER = "x-ampmesh-http-status"
UNPROCESSABLE = 422
# Seconds the connector's own retries of a provider that limits or fails may take: the
# caller waits (provider_calls.CALL_BUDGET bounds the whole call).
SYNC_MAX_WAIT = 10.0

_log = get_logger("ampmesh.api.write")


@dataclass(frozen=True)
class Prepared:
    """The records to write, in provider names, in request order."""

    items: list[WriteItem]
    # Per record: defaults to write only where the provider's value is empty.
    if_empty: list[dict[str, Any]]

    @classmethod
    def of(cls, records: Sequence[tuple[RecordIn, PreparedRecord]]) -> Prepared:
        return cls(
            items=[
                dataclasses.replace(prepared.item, associations=tuple(record.associations))
                for record, prepared in records
            ],
            if_empty=[dict(prepared.if_empty) for _, prepared in records],
        )


async def write_now(
    ctx: ApiContext,
    context: Any,
    events: EventBus,
    operation: write_events.Operation,
    target: WriteTarget,
    prepared: Prepared,
    ask: WriteAsk,
) -> tuple[write_pb2.WriteRecordsResponse, int]:
    writer = writer_for(target.provider)
    batch = WriteBatch(
        object_name=operation.target.object_name,
        type=ask.type,
        items=prepared.items,
        all_or_none=ask.all_or_none,
        headers=ask.headers,
        single=ask.single,
    )

    async def call(http: Any, auth: Any) -> WriteOutcome:
        return await writer.write(http, auth, batch, max_wait=SYNC_MAX_WAIT)

    outcome = await call_provider(
        ctx,
        context,
        project_id=operation.target.project_id,
        connection=target.connection(),
        call=call,
        doing=f"write {operation.target.object_name} records",
    )
    response, status = answer(operation.operation_id, outcome, single=ask.single)
    await _record(events, operation, target.config_id, outcome, len(prepared.items))
    return response, status


def answer(
    operation_id: str, outcome: WriteOutcome, *, single: bool
) -> tuple[write_pb2.WriteRecordsResponse, int]:
    """The reference's answer and HTTP status for what the provider did."""
    results = [_result(item) for item in outcome.items]
    warnings = [write_pb2.WriteIssue(message=text) for text in outcome.warnings]
    if single:
        (only,) = outcome.items
        response = write_pb2.WriteRecordsResponse(
            operation_id=operation_id, result=results[0], warnings=warnings
        )
        if only.success:
            return response, 200
        response.errors.extend(write_pb2.WriteIssue(message=text) for text in only.errors)
        if outcome.raw_response is not None:
            response.raw_response = outcome.raw_response
        return response, UNPROCESSABLE
    written = sum(1 for item in outcome.items if item.success)
    response = write_pb2.WriteRecordsResponse(
        operation_id=operation_id,
        results=results,
        success_count=written,
        failure_count=len(outcome.items) - written,
        warnings=warnings,
    )
    return response, 200 if written else UNPROCESSABLE


def _result(item: Any) -> write_pb2.WriteResult:
    result = write_pb2.WriteResult(success=item.success, record_id=item.record_id)
    if item.data:
        data = struct_pb2.Struct()
        data.update(item.data)
        result.data.CopyFrom(data)
    return result


async def _record(
    events: EventBus,
    operation: write_events.Operation,
    config_id: str,
    outcome: WriteOutcome,
    records: int,
) -> None:
    """The operation's created, finished log line and finished events, in one outbox
    transaction, worded as an asynchronous write's are. The provider has written by now:
    a failure here loses the operation's history, not the write, so it is logged and the
    caller still gets the provider's answer."""
    now = datetime.now(UTC)
    output = output_of(operation.operation_id, outcome, records)
    result = write_events.result_text(operation, output)
    error = "" if output.success else "; ".join(output.errors)
    envelopes = [
        write_events.operation_created(operation, "", "", config_id),
        write_events.log_entry(
            operation, "finished", f"[{operation.shown}] {result}", now, error=error
        ),
        write_events.operation_finished(operation, output, result, now),
    ]
    try:
        async with events.pool.acquire() as conn, conn.transaction():
            # The write is done and answered from the provider's outcome: its history need
            # not wait for the WAL to reach the disk (a database crash in that moment
            # loses these events, never the write).
            await conn.execute("SET LOCAL synchronous_commit TO off")
            for envelope in envelopes:
                await events.stage(conn, envelope)
    except Exception as error:
        _log.error(
            "write operation not recorded",
            operation_id=operation.operation_id,
            error=type(error).__name__,
        )
        return
    events.kick()
