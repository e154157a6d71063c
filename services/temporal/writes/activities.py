"""The write activities: open_write, write_records and close_write (AsyncWrite), and
claim_writes, open_queued_writes, close_queued_writes and release_writes (WriteBatcher,
whose batches write through write_records too), each a thin step over the modules beside
it:

- writes.context: the installation as it is now (one query per call);
- writes.provider: the provider call of an attempt (token, writer, refresh, heartbeats);
- writes.records: the contract's messages as the writer's batch and back;
- writes.events: the events an operation publishes;
- writes.queue: the auto-batched records waiting in PostgreSQL.

Exactly once where the provider can tell. write_records heartbeats from its start and
every couple of seconds while the provider call runs (the workflow's heartbeat timeout
is 15 s, so a worker killed mid-call is noticed within seconds and the call retried on
another), with a detail saying whether a provider call may be in flight and whether an
earlier attempt may have written. A retried attempt whose previous attempt may have
reached the provider (its last heartbeat says a call was in flight, or it died without
reporting) writes with WriteBatch.may_have_written: the writer then takes a create the
provider refuses as a duplicate of a record it names (HubSpot's "already exists.
Existing ID: N" on an object with a unique property, email for contacts) as that
record's success, written by the earlier attempt. A previous attempt whose provider
call ended in a 429 (or a 401, or never got a token) wrote nothing, and its retry writes
as a first attempt does. Where the provider cannot tell (Salesforce, which has no
idempotency key on its sObject and composite APIs; HubSpot objects without a unique
property), an ambiguous create retried may write its records twice. "Wrote nothing" on a
429 assumes the writer's call is one provider request, as it is for every batch here (at
most 100 records, within both providers' batch limits); a writer that makes further
requests after its first (associations, rollbacks) decides their ambiguity itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import aiohttp
import asyncpg
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2_grpc
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.runtime.logs import get_logger
from services.temporal.reads.publish import Publisher
from services.temporal.writes import events, queue, records
from services.temporal.writes.context import WriteContext, load_context
from services.temporal.writes.provider import (
    WRITER_MAX_WAIT,
    Attempt,
    AuthFor,
    ProviderWrites,
    WriterFor,
    writer_wait,
)
from services.temporal.writes.workflows import (
    CLAIM_WRITES_ACTIVITY,
    CLOSE_QUEUED_ACTIVITY,
    CLOSE_WRITE_ACTIVITY,
    INSTALLATION_GONE,
    OPEN_QUEUED_ACTIVITY,
    OPEN_WRITE_ACTIVITY,
    RELEASE_WRITES_ACTIVITY,
    WRITE_NOT_POSSIBLE,
    WRITE_RECORDS_ACTIVITY,
    retry_deadline,
)

_log = get_logger("ampmesh.temporal.writes")


class WriteActivities:
    """The writes queue's activities, bound to the process's resources."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        http: aiohttp.ClientSession,
        publisher: Publisher,
        writer_for: WriterFor,
        auth_for: AuthFor,
        writer_max_wait: float = WRITER_MAX_WAIT,
    ) -> None:
        """`writer_max_wait`: how long the writer retries 429s, 5xx and network failures
        inside one attempt before Temporal's backoff takes over (0: one request per
        attempt, as tests use to see Temporal's retries)."""
        self._pool = pool
        self._writer_max_wait = writer_max_wait
        self._publisher = publisher
        self._provider = ProviderWrites(
            tokens=tokens, catalog=catalog, http=http, writer_for=writer_for, auth_for=auth_for
        )

    async def _context(self, request: writes_pb2.AsyncWriteInput) -> WriteContext | None:
        found = await load_context(self._pool, request.target)
        return found if isinstance(found, WriteContext) else None

    @activity.defn(name=OPEN_WRITE_ACTIVITY)
    async def open_write(self, request: writes_pb2.AsyncWriteInput) -> None:
        context = await self._context(request)
        info = activity.info()
        await self._publisher.publish_all(
            events.opening(
                events.of_request(request),
                info.workflow_id or "",
                info.workflow_run_id or "",
                context.config_id if context else "",
                datetime.now(UTC),
            )
        )

    @activity.defn(name=WRITE_RECORDS_ACTIVITY)
    async def write_records(
        self, request: writes_pb2.AsyncWriteInput
    ) -> writes_pb2.AsyncWriteOutput:
        found = await load_context(self._pool, request.target)
        if isinstance(found, str):
            raise ApplicationError(found, type=INSTALLATION_GONE, non_retryable=True)
        writer = self._provider.writer(found.provider)
        attempt = Attempt.current()
        try:
            batch = records.write_batch(request, may_have_written=attempt.earlier)
        except ValueError as error:
            raise ApplicationError(
                str(error), type=WRITE_NOT_POSSIBLE, non_retryable=True
            ) from None
        now = datetime.now(UTC)
        async with attempt.running():
            outcome = await self._provider.write(
                found,
                writer,
                batch,
                attempt,
                max_wait=writer_wait(retry_deadline(request, now), now, self._writer_max_wait),
            )
        output = records.write_output(request, outcome)
        _log.info(
            "records written",
            operation_id=request.operation_id,
            object=request.target.object_name,
            attempt=activity.info().attempt,
            may_have_written=attempt.earlier or None,
            written=output.success_count,
            failed=output.failure_count,
            warnings=outcome.warnings or None,
        )
        return output

    @activity.defn(name=CLOSE_WRITE_ACTIVITY)
    async def close_write(
        self, request: writes_pb2.AsyncWriteInput, output: writes_pb2.AsyncWriteOutput
    ) -> None:
        context = await self._context(request)
        operation = events.of_request(request)
        await self._publisher.publish_all(
            events.closing(operation, context, output, datetime.now(UTC))
        )
        _log.info(
            "write closed",
            operation_id=request.operation_id,
            object=request.target.object_name,
            written=output.success_count,
            failed=output.failure_count,
        )

    @activity.defn(name=OPEN_QUEUED_ACTIVITY)
    async def open_queued_writes(self, operations: writes_pb2.WriteBatcherInput) -> None:
        found = await load_context(self._pool, operations.target)
        config_id = found.config_id if isinstance(found, WriteContext) else ""
        info = activity.info()
        now = datetime.now(UTC)
        others = len(operations.pending) - 1
        await self._publisher.publish_all(
            envelope
            for operation in events.of_queue(operations)
            for envelope in events.opening(
                operation,
                info.workflow_id or "",
                info.workflow_run_id or "",
                config_id,
                now,
                others,
            )
        )

    @activity.defn(name=CLOSE_QUEUED_ACTIVITY)
    async def close_queued_writes(
        self, operations: writes_pb2.WriteBatcherInput, output: writes_pb2.AsyncWriteOutput
    ) -> None:
        found = await load_context(self._pool, operations.target)
        context = found if isinstance(found, WriteContext) else None
        now = datetime.now(UTC)
        await self._publisher.publish_all(
            envelope
            for operation, own in zip(
                events.of_queue(operations), records.split_output(operations, output), strict=True
            )
            for envelope in events.closing(operation, context, own, now)
        )
        _log.info(
            "batch closed",
            object=operations.target.object_name,
            operations=len(operations.pending),
            written=output.success_count,
            failed=output.failure_count,
        )

    @activity.defn(name=CLAIM_WRITES_ACTIVITY)
    async def claim_writes(self, request: writes_pb2.ClaimWritesInput) -> writes_pb2.ClaimedWrites:
        return await queue.claim(self._pool, request, datetime.now(UTC))

    @activity.defn(name=RELEASE_WRITES_ACTIVITY)
    async def release_writes(self, batch_key: str) -> None:
        await queue.release(self._pool, batch_key)
