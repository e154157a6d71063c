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

Batching. A batch is written when AUTO_BATCH_SIZE records wait or the earliest flush
time of those waiting comes; it takes the oldest records, except that a record whose
provider id is already in this batch or in one in flight waits for the next (two updates
of one record are never in one provider request, and are written in the order they
came). A run writes up to MAX_BATCHES_IN_FLIGHT batches at once as they fall due, then,
once they have all ended, continues as new with whatever still waits, so a run's history
holds a few batches and the signals that arrived meanwhile however many records pass
through. A batch retries until the latest retry deadline of its records (none of them is
given up on while another of its batch is still worth retrying). The batcher ends when
nothing waits; the next record starts a new one (signal-with-start).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterable, Sequence
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

# Batches one run writes at once (and in all) before continuing as new.
MAX_BATCHES_IN_FLIGHT = 4

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


def unique(messages: Iterable[str]) -> list[str]:
    """Messages once each, in order (a deadline fails a hundred records with one message)."""
    return list(dict.fromkeys(message for message in messages if message))


def finish_output(output: writes_pb2.AsyncWriteOutput) -> writes_pb2.AsyncWriteOutput:
    """Fill the output's totals from its per-record results (in place; returned)."""
    written = [result for result in output.results if result.success]
    output.success_count = len(written)
    output.failure_count = len(output.results) - len(written)
    output.success = bool(output.results) and output.failure_count == 0
    del output.successful_record_ids[:]
    output.successful_record_ids.extend(r.record_id for r in written if r.record_id)
    output.errors[:] = unique([*output.errors, *(e for r in output.results for e in r.errors)])
    return output


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


def take_batch(
    pending: Sequence[writes_pb2.QueuedWrite],
    busy: set[str],
    size: int = AUTO_BATCH_SIZE,
) -> tuple[list[writes_pb2.QueuedWrite], list[writes_pb2.QueuedWrite]]:
    """(the next batch, what still waits), oldest first. A record whose provider id is in
    `busy` (batches in flight), in this batch, or held back already waits, so every
    later write of that record waits behind it."""
    taken: list[writes_pb2.QueuedWrite] = []
    left: list[writes_pb2.QueuedWrite] = []
    held = set(busy)
    for queued in pending:
        record_id = queued.record.record_id
        if len(taken) < size and not (record_id and record_id in held):
            taken.append(queued)
        else:
            left.append(queued)
        if record_id:
            held.add(record_id)
    return taken, left


def is_due(pending: Sequence[writes_pb2.QueuedWrite], now: datetime) -> bool:
    """A batch is due: a full one waits, or some record's flush time has come."""
    return len(pending) >= AUTO_BATCH_SIZE or any(_at(q.flush_time) <= now for q in pending)


def next_flush(pending: Sequence[writes_pb2.QueuedWrite], now: datetime) -> datetime | None:
    """The earliest flush time still ahead (None: none is)."""
    ahead = [moment for q in pending if (moment := _at(q.flush_time)) > now]
    return min(ahead) if ahead else None


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
    """The auto-batching of one installation's single-record writes to one object."""

    def __init__(self) -> None:
        # Records signalled and not yet taken into a batch, oldest first.
        self._pending: list[writes_pb2.QueuedWrite] = []
        self._known: set[str] = set()
        self._target = target_pb2.ObjectTarget()
        self._type: writes_pb2.WriteType = writes_pb2.WRITE_TYPE_UNSPECIFIED

    @workflow.signal(name=ENQUEUE_SIGNAL)
    def enqueue(self, queued: writes_pb2.QueuedWrite) -> None:
        # A signal sent twice for one operation (the api retrying) queues it once.
        if queued.operation_id in self._known:
            return
        self._known.add(queued.operation_id)
        self._pending.append(queued)

    @workflow.run
    async def run(self, request: writes_pb2.WriteBatcherInput) -> None:
        self._target, self._type = request.target, request.type
        # Signals may have been handled before the run began (signal-with-start): the
        # records carried over are older.
        carried = [q for q in request.pending if q.operation_id not in self._known]
        self._known.update(q.operation_id for q in carried)
        self._pending = [*carried, *self._pending]
        in_flight: dict[asyncio.Task[None], list[writes_pb2.QueuedWrite]] = {}
        started = 0
        try:
            while True:
                now = workflow.now()
                if started < MAX_BATCHES_IN_FLIGHT and is_due(self._pending, now):
                    batch, left = take_batch(self._pending, self._busy(in_flight))
                    if batch:
                        self._pending = left
                        in_flight[asyncio.create_task(self._flush(batch))] = batch
                        started += 1
                        continue
                if not in_flight:
                    if started or not self._pending:
                        break
                    await self._until(lambda: is_due(self._pending, workflow.now()), now)
                    continue
                more = started < MAX_BATCHES_IN_FLIGHT
                await self._until(
                    functools.partial(self._woken, in_flight, more), now if more else None
                )
                for task in [task for task in in_flight if task.done()]:
                    del in_flight[task]
                    task.result()
        except asyncio.CancelledError:
            await self._cancel(in_flight)
            raise
        # Signal handlers are synchronous, but wait for any in progress all the same
        # before the run hands its records on.
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._pending:
            workflow.continue_as_new(
                writes_pb2.WriteBatcherInput(
                    target=request.target, type=request.type, pending=self._pending
                )
            )

    @staticmethod
    def _busy(in_flight: dict[asyncio.Task[None], list[writes_pb2.QueuedWrite]]) -> set[str]:
        return {
            q.record.record_id for batch in in_flight.values() for q in batch if q.record.record_id
        }

    def _woken(
        self, in_flight: dict[asyncio.Task[None], list[writes_pb2.QueuedWrite]], more: bool
    ) -> bool:
        """A batch in flight ended, or (`more`: the run may start another) one is ready."""
        return any(task.done() for task in in_flight) or (more and self._ready(in_flight))

    def _ready(self, in_flight: dict[asyncio.Task[None], list[writes_pb2.QueuedWrite]]) -> bool:
        """A batch is due and could be taken now (not every due record is held back)."""
        if not is_due(self._pending, workflow.now()):
            return False
        batch, _ = take_batch(self._pending, self._busy(in_flight))
        return bool(batch)

    async def _until(self, condition: Callable[[], bool], now: datetime | None) -> None:
        """Wait for the condition, or until the next flush time when `now` is given."""
        flush = next_flush(self._pending, now) if now is not None else None
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                condition,
                timeout=flush - now if flush is not None and now is not None else None,
            )

    async def _flush(self, batch: list[writes_pb2.QueuedWrite]) -> None:
        """Open the batch's operations, write its records, close each operation with its
        record's outcome (cancelled: every record failed, saying so)."""
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
            await self._close(operations, output)
        except asyncio.CancelledError:
            # Cancelled while closing: close again (the same events, the same keys).
            await self._close(operations, output)

    async def _close(
        self, operations: writes_pb2.WriteBatcherInput, output: writes_pb2.AsyncWriteOutput
    ) -> None:
        await workflow.execute_activity(
            CLOSE_QUEUED_ACTIVITY,
            args=[operations, output],
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )

    async def _cancel(
        self, in_flight: dict[asyncio.Task[None], list[writes_pb2.QueuedWrite]]
    ) -> None:
        """The batcher was cancelled: batches in flight end cancelled (closing their
        operations), and every record still waiting fails."""
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        while self._pending:
            batch, self._pending = (
                self._pending[:AUTO_BATCH_SIZE],
                self._pending[AUTO_BATCH_SIZE:],
            )
            operations = writes_pb2.WriteBatcherInput(
                target=self._target,
                type=self._type,
                pending=batch,
            )
            request = writes_pb2.AsyncWriteInput(records=[q.record for q in batch])
            await self._close(operations, failed_output(request, CANCELLED_ERROR))
