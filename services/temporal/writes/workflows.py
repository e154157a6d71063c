"""The write workflows: AsyncWrite and WriteBatcher (task queue `writes`).

AsyncWrite is one asynchronous write the api accepted: open_write (OperationCreated and
the started log line), write_records (the provider call), close_write (OperationFinished,
the finished log line and `write.async.done`). WriteBatcher collects the asynchronous
single-record writes of one installation, object and type (each record its own
operation) and writes them a batch at a time through the same write_records, opening and
closing the batch's operations with open_queued_writes and close_queued_writes. The
activities live in activities.py and are called by name: the workflow sandbox re-imports
this module on every run, so it imports only generated messages, temporalio and the
shared names.

Retrying. write_records is one activity call that Temporal retries: backoff from 1 s,
doubling, at most 60 s apart, or after the provider's Retry-After when it gave one (the
error's next_retry_delay), until the write's retry deadline, which is the call's
schedule-to-close timeout. A write that starts after its deadline still gets one
attempt. Records the provider refused come back as that call's per-record outcomes and
end the operation at once; a call that never got an answer before the deadline fails
every record with "gave up at the retry deadline: <the last provider error>". Whether a
retried attempt may find its records already written, and what it does then, is in
activities.py.

Batching. The records of a batcher wait in PostgreSQL (table write_queue, written by the
api when it accepts them; services/temporal/writes/queue.py), and a signal only says one
more waits and until when, so neither the workflow's state nor its continue-as-new input
grows with the queue: ten thousand records piled up behind an hour of 429s cost the
workflow nothing. The batcher claims a batch (claim_writes) when AUTO_BATCH_SIZE records
may wait or the earliest flush time comes; the claim takes the oldest records, except that
a record whose provider id is already in a claimed batch waits for a later one (two
updates of one record are never in one provider request, and are written in the order
they came), and takes none when no batch is due yet. A claim is keyed by the run and its
number, so a retried claim returns what it took. Up to MAX_BATCHES_IN_FLIGHT batches are
written at once; each is released from the queue (release_writes) once its operations
are closed. A run continues as new after RUN_BATCHES batches; it ends when a claim finds
nothing waiting and no wake came since (a wake arriving while it ends makes Temporal
refuse the ending, and the run goes on). The api sends a wake only when the batcher must
act (services/api/writes.py), and a claim waits for the api's uncommitted records (a row
lock both take), so a record is never left waiting with no batcher. A batch retries
until the latest retry deadline of its records (none of them is given up on while
another of its batch is still worth retrying).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ampmesh.events.v1 import envelope_pb2
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from google.protobuf import message as protobuf_message
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutType,
)
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

from services.domain.write_outputs import finish_output
from services.domain.write_workflows import (
    ASYNC_WRITE_WORKFLOW,
    AUTO_BATCH_SIZE,
    ENQUEUE_SIGNAL,
    WRITE_BATCHER_WORKFLOW,
)

OPEN_WRITE_ACTIVITY = "open_write"
WRITE_RECORDS_ACTIVITY = "write_records"
CLOSE_WRITE_ACTIVITY = "close_write"
OPEN_QUEUED_ACTIVITY = "open_queued_writes"
CLOSE_QUEUED_ACTIVITY = "close_queued_writes"
CLAIM_WRITES_ACTIVITY = "claim_writes"
RELEASE_WRITES_ACTIVITY = "release_writes"

# Error types the activities raise (ApplicationError.type); the first three never retry.
INSTALLATION_GONE = "InstallationGone"
WRITE_NOT_POSSIBLE = "WriteNotPossible"
CREDENTIALS_REFUSED = "CredentialsRefused"
PROVIDER_UNAVAILABLE = "ProviderUnavailable"

DEADLINE_ERROR = "gave up at the retry deadline: {last}"
# The deadline came while the only attempt was still waiting for the provider.
NO_ANSWER = "the provider had not answered"
CANCELLED_ERROR = "the write was cancelled before it finished (was its installation deleted?)"
# The reference's default `retryPolicy.deadlineHours` / `autoBatchPolicy.retryDeadlineHours`.
DEFAULT_RETRY_WINDOW = timedelta(hours=1)

# Batches a batcher writes at once.
MAX_BATCHES_IN_FLIGHT = 4
# Batches a run writes before it continues as new, so its history stays small.
RUN_BATCHES = 20
# Shortest sleep between claims that found nothing to take.
MIN_NAP = timedelta(seconds=1)

# One attempt: the writer's own retries (at most WRITER_MAX_WAIT in activities.py) and
# one request of up to 60 s (connectors.http), with room to spare.
WRITE_ATTEMPT_TIMEOUT = timedelta(minutes=3)
# The attempt heartbeats every few seconds, also while the provider call runs: a worker
# killed mid-call is noticed within this and the call retried elsewhere.
WRITE_HEARTBEAT = timedelta(seconds=15)
WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    # Unlimited: the schedule-to-close timeout (the retry deadline) ends the retries.
    maximum_attempts=0,
)
# A write whose deadline has passed before it starts: one attempt, no retry.
WRITE_ONCE = RetryPolicy(maximum_attempts=1)
# The bookkeeping activities talk to PostgreSQL and Pub/Sub only.
BOOKKEEPING_TIMEOUT = timedelta(minutes=1)
BOOKKEEPING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
)


# --- outputs (pure) ----------------------------------------------------------------------


def failed_output(request: writes_pb2.AsyncWriteInput, message: str) -> writes_pb2.AsyncWriteOutput:
    """Every record of the request failed, for one reason."""
    output = writes_pb2.AsyncWriteOutput(operation_id=request.operation_id)
    for index in range(len(request.records)):
        output.results.add(index=index, success=False, errors=[message])
    output.errors.append(message)
    return finish_output(output)


def failure_message(error: BaseException, *, past_deadline: bool = False) -> tuple[str, bool]:
    """Why a write_records call failed for good, and whether it was the workflow's
    cancellation (then the operation still closes, and the workflow ends cancelled).
    `past_deadline`: the call had its one attempt only, its deadline having passed."""
    if isinstance(error, asyncio.CancelledError):
        return CANCELLED_ERROR, True
    if not isinstance(error, ActivityError):
        return str(error), False
    if isinstance(error.cause, CancelledError):
        return CANCELLED_ERROR, True
    # The last attempt's own error, under the timeout that ended the retries if any.
    last: ApplicationError | None = None
    timed_out = error.retry_state == RetryState.TIMEOUT or (
        past_deadline and error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    )
    cause: BaseException | None = error.cause
    while cause is not None:
        if isinstance(cause, ActivityTimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_CLOSE:
            timed_out = True
        if isinstance(cause, ApplicationError) and last is None:
            last = cause
        cause = cause.__cause__
    if timed_out:
        return DEADLINE_ERROR.format(last=last.message if last else NO_ANSWER), False
    return (last.message if last else str(error)), False


# --- batching (pure) ---------------------------------------------------------------------


def _at(moment: object) -> datetime:
    return moment.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined]


def batch_deadline(batch: Sequence[writes_pb2.QueuedWrite], now: datetime) -> datetime:
    """The latest retry deadline of the batch's records (a record without one: an hour
    after it was asked for)."""
    deadlines = []
    for queued in batch:
        if queued.HasField("retry_deadline"):
            deadlines.append(_at(queued.retry_deadline))
        else:
            asked = _at(queued.meta.time) if queued.meta.HasField("time") else now
            deadlines.append(asked + DEFAULT_RETRY_WINDOW)
    return max(deadlines, default=now + DEFAULT_RETRY_WINDOW)


def batch_request(
    target: target_pb2.ObjectTarget,
    write_type: writes_pb2.WriteType,
    batch: Sequence[writes_pb2.QueuedWrite],
    deadline: datetime,
) -> writes_pb2.AsyncWriteInput:
    """write_records' input for a batch: its records in batch form (the batch endpoints),
    not all-or-none (each record is its own operation), under its first record's meta."""
    request = writes_pb2.AsyncWriteInput(
        target=target,
        type=write_type,
        operation_id=batch[0].operation_id,
        records=[queued.record for queued in batch],
        batch=True,
        shown_object_name=batch[0].shown_object_name,
    )
    request.meta.CopyFrom(batch[0].meta)
    request.retry_deadline.FromDatetime(deadline)
    return request


# --- the workflows -----------------------------------------------------------------------


def _now_meta(given: envelope_pb2.EventMeta, message: type[protobuf_message.Message]) -> None:
    """Complete a start's meta in place (the api sets all of it; a start by hand may not)."""
    given.type = given.type or message.DESCRIPTOR.full_name
    given.source = given.source or "temporal"
    if not given.HasField("time"):
        given.time.FromDatetime(workflow.now())
    if not given.id:
        given.id = str(workflow.uuid4())
    if not given.idempotency_key:
        given.idempotency_key = workflow.info().workflow_id


def retry_deadline(request: writes_pb2.AsyncWriteInput, now: datetime) -> datetime:
    """When the write stops retrying: the request's deadline, else an hour after it was
    asked for (now, when its meta has no time)."""
    if request.HasField("retry_deadline"):
        return _at(request.retry_deadline)
    asked = _at(request.meta.time) if request.meta.HasField("time") else now
    return asked + DEFAULT_RETRY_WINDOW


def _bare(request: writes_pb2.AsyncWriteInput) -> writes_pb2.AsyncWriteInput:
    """The request without its records: what the bookkeeping activities need (the
    records, up to a megabyte, stay out of their history events)."""
    bare = writes_pb2.AsyncWriteInput()
    bare.CopyFrom(request)
    bare.ClearField("records")
    return bare


async def _write(request: writes_pb2.AsyncWriteInput) -> tuple[writes_pb2.AsyncWriteOutput, bool]:
    """Write the request's records, retrying until its deadline; the per-record outcome
    (every record failed when the call did), and whether the workflow was cancelled."""
    now = workflow.now()
    window = retry_deadline(request, now) - now
    retry, give_up_after = (WRITE_RETRY, window) if window > timedelta(0) else (WRITE_ONCE, None)
    try:
        output: writes_pb2.AsyncWriteOutput = await workflow.execute_activity(
            WRITE_RECORDS_ACTIVITY,
            request,
            result_type=writes_pb2.AsyncWriteOutput,
            start_to_close_timeout=WRITE_ATTEMPT_TIMEOUT,
            schedule_to_close_timeout=give_up_after,
            heartbeat_timeout=WRITE_HEARTBEAT,
            retry_policy=retry,
        )
    except (ActivityError, asyncio.CancelledError) as error:
        message, cancelled = failure_message(error, past_deadline=retry is WRITE_ONCE)
        return failed_output(request, message), cancelled
    output.operation_id = request.operation_id
    return output, False


@workflow.defn(name=ASYNC_WRITE_WORKFLOW)
class AsyncWrite:
    """One asynchronous write: its records, one operation."""

    @workflow.run
    async def run(self, request: writes_pb2.AsyncWriteInput) -> writes_pb2.AsyncWriteOutput:
        _now_meta(request.meta, writes_pb2.AsyncWriteInput)
        bare = _bare(request)
        await workflow.execute_activity(
            OPEN_WRITE_ACTIVITY,
            bare,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        output, cancelled = await _write(request)
        await workflow.execute_activity(
            CLOSE_WRITE_ACTIVITY,
            args=[bare, output],
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        if cancelled:
            raise CancelledError(CANCELLED_ERROR)
        return output


@workflow.defn(name=WRITE_BATCHER_WORKFLOW)
class WriteBatcher:
    """The auto-batching of one installation's single-record writes to one object. The
    records wait in PostgreSQL (services/temporal/writes/queue.py); a signal only says
    that one more waits, and until when."""

    def __init__(self) -> None:
        # A wake came since the last claim (the api sends one only when the batcher must
        # act: its first waiting record, a full batch, a sooner flush time).
        self._woken = False
        self._target = target_pb2.ObjectTarget()
        self._type: writes_pb2.WriteType = writes_pb2.WRITE_TYPE_UNSPECIFIED

    @workflow.signal(name=ENQUEUE_SIGNAL)
    def enqueue(self, queued: writes_pb2.QueuedWrite) -> None:
        self._woken = True

    @workflow.run
    async def run(self, request: writes_pb2.WriteBatcherInput) -> None:
        self._target, self._type = request.target, request.type
        in_flight: dict[asyncio.Task[None], str] = {}
        claims = started = 0
        waiting, flush = 0, None
        try:
            while True:
                if len(in_flight) < MAX_BATCHES_IN_FLIGHT and started < RUN_BATCHES:
                    self._woken = False
                    claimed = await self._claim(claims)
                    claims += 1
                    waiting = claimed.waiting
                    flush = (
                        _at(claimed.next_flush_time)
                        if claimed.HasField("next_flush_time")
                        else None
                    )
                    if claimed.writes:
                        key = self._key(claims - 1)
                        task = asyncio.create_task(self._flush(list(claimed.writes), key))
                        in_flight[task] = key
                        started += 1
                        continue
                if not in_flight:
                    if started >= RUN_BATCHES:
                        break  # continues as new
                    if waiting == 0:
                        if not self._woken:
                            break
                        continue  # a wake came during the claim: claim again
                room = len(in_flight) < MAX_BATCHES_IN_FLIGHT and started < RUN_BATCHES
                await self._wait(in_flight, flush if room else None, room=room)
                for task in [task for task in in_flight if task.done()]:
                    del in_flight[task]
                    task.result()
        except asyncio.CancelledError:
            await self._cancel(in_flight, claims)
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        if started >= RUN_BATCHES or self._woken:
            # More may wait: a new run (a few bytes of input) goes on from PostgreSQL.
            workflow.continue_as_new(
                writes_pb2.WriteBatcherInput(target=request.target, type=request.type)
            )

    def _key(self, claim_number: int) -> str:
        return f"{workflow.info().run_id}/{claim_number}"

    async def _claim(
        self, claim_number: int, *, regardless: bool = False
    ) -> writes_pb2.ClaimedWrites:
        claimed: writes_pb2.ClaimedWrites = await workflow.execute_activity(
            CLAIM_WRITES_ACTIVITY,
            writes_pb2.ClaimWritesInput(
                batcher_id=workflow.info().workflow_id,
                batch_key=self._key(claim_number),
                size=AUTO_BATCH_SIZE,
                regardless=regardless,
            ),
            result_type=writes_pb2.ClaimedWrites,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        return claimed

    async def _wait(
        self, in_flight: dict[asyncio.Task[None], str], flush: datetime | None, *, room: bool
    ) -> None:
        """Until a batch in flight ends, or, when another may start (`room`), a wake comes
        or the earliest flush time of what waits (at least MIN_NAP away: a due record held
        back behind a batch in flight waits for that batch, not in a loop of claims)."""
        now = workflow.now()
        nap = max(flush - now, MIN_NAP) if flush is not None else None
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (room and self._woken) or any(task.done() for task in in_flight),
                timeout=nap,
            )

    async def _flush(self, batch: list[writes_pb2.QueuedWrite], key: str) -> None:
        """Open the batch's operations, write its records, close each operation with its
        record's outcome (cancelled: every record failed, saying so), then release the
        records from the queue."""
        operations = writes_pb2.WriteBatcherInput(
            target=self._target,
            type=self._type,
            pending=batch,
        )
        request = batch_request(
            self._target, self._type, batch, batch_deadline(batch, workflow.now())
        )
        try:
            await workflow.execute_activity(
                OPEN_QUEUED_ACTIVITY,
                operations,
                start_to_close_timeout=BOOKKEEPING_TIMEOUT,
                retry_policy=BOOKKEEPING_RETRY,
            )
            output, _ = await _write(request)
        except asyncio.CancelledError:
            output = failed_output(request, CANCELLED_ERROR)
        for result in output.results:
            # What the provider said about each record is nobody's here: keep it out of
            # the history.
            result.ClearField("data")
        try:
            await self._close(operations, output, key)
        except asyncio.CancelledError:
            # Cancelled while closing: close again (the same events, the same keys).
            await self._close(operations, output, key)

    async def _close(
        self,
        operations: writes_pb2.WriteBatcherInput,
        output: writes_pb2.AsyncWriteOutput,
        key: str,
    ) -> None:
        await workflow.execute_activity(
            CLOSE_QUEUED_ACTIVITY,
            args=[operations, output],
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        await workflow.execute_activity(
            RELEASE_WRITES_ACTIVITY,
            key,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )

    async def _cancel(self, in_flight: dict[asyncio.Task[None], str], claims: int) -> None:
        """The batcher was cancelled: batches in flight end cancelled (closing their
        operations), and every record still waiting fails."""
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        while True:
            claimed = await self._claim(claims, regardless=True)
            if not claimed.writes:
                return
            operations = writes_pb2.WriteBatcherInput(
                target=self._target, type=self._type, pending=claimed.writes
            )
            request = writes_pb2.AsyncWriteInput(records=[q.record for q in claimed.writes])
            await self._close(
                operations, failed_output(request, CANCELLED_ERROR), self._key(claims)
            )
            claims += 1
