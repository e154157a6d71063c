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
from services.domain.write_plan import PreparedRecord, WritePlan
from services.runtime.events import EventBus
from services.runtime.logs import get_logger
from services.runtime.request_id import current_request_id

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
    facts: write_events.WriteFacts,
    target: WriteTarget,
    plan: WritePlan,
    prepared: Prepared,
    ask: WriteAsk,
    operation_id: str,
) -> tuple[write_pb2.WriteRecordsResponse, int]:
    writer = writer_for(target.provider)
    batch = WriteBatch(
        object_name=plan.object_name,
        type=ask.type,
        items=prepared.items,
        all_or_none=ask.all_or_none,
        headers=ask.headers,
        single=ask.single,
    )
    started = datetime.now(UTC)

    async def call(http: Any, auth: Any) -> WriteOutcome:
        return await writer.write(http, auth, batch, max_wait=SYNC_MAX_WAIT)

    outcome = await call_provider(
        ctx,
        context,
        project_id=facts.project_id,
        connection=target.connection(),
        call=call,
        doing=f"write {plan.object_name} records",
    )
    response, status = answer(operation_id, outcome, single=ask.single)
    await _record(events, facts, operation_id, outcome, single=ask.single, started=started)
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
    facts: write_events.WriteFacts,
    operation_id: str,
    outcome: WriteOutcome,
    *,
    single: bool,
    started: datetime,
) -> None:
    """The operation's created, log and finished events, in one outbox transaction. The
    provider has written by now: a failure here loses the operation's history, not the
    write, so it is logged and the caller still gets the provider's answer."""
    request_id = current_request_id() or ""
    records = [
        write_events.RecordResult(item.success, item.record_id, tuple(item.errors))
        for item in outcome.items
    ]
    text = write_events.result_text(records, single=single)
    failed = any(not record.success for record in records)
    envelopes = [
        write_events.operation_created(
            facts, operation_id, started, source="api", request_id=request_id
        ),
        write_events.log_entry(
            facts,
            operation_id,
            "finished",
            text,
            source="api",
            request_id=request_id,
            error="; ".join(e for r in records for e in r.errors)[:1000] if failed else "",
        ),
        write_events.operation_finished(
            facts,
            operation_id,
            records,
            single=single,
            started=started,
            source="api",
            request_id=request_id,
        ),
    ]
    try:
        async with events.pool.acquire() as conn, conn.transaction():
            for envelope in envelopes:
                await events.stage(conn, envelope)
    except Exception as error:
        _log.error(
            "write operation not recorded",
            operation_id=operation_id,
            error=type(error).__name__,
        )
        return
    events.kick()
