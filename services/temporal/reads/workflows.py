"""The read workflows: BackfillRead, TriggeredRead and ScheduledRead (task queue `reads`).

Each is open_read, then read_pages calls (many pages each) until the window is read,
then save_read_watermark (backfill and scheduled) and close_read. The activities live in
activities.py and are called by name: the workflow sandbox re-imports this module on
every run, so it imports only generated messages, temporalio and the shared names.

A read whose pages are all on the bus is not done yet: confirm_read waits until
messenger has recorded every page (publishing again, from the read's pages in
PostgreSQL, those it never recorded) and only then does the read move the watermark and
close as a success; after CONFIRM_PATIENCE it closes as a failure saying what is missing.

A provider refusing the request for good (a non-retryable ApplicationError from
read_pages) ends the operation in FAILURE; unavailability is retried by the activity's
retry policy without limit, so a backfill outlives a provider outage. A read cancelled
while it opens, reads pages or is confirmed (the api cancels an installation's
backfills when it is deleted) closes its operation in FAILURE saying so, then ends
cancelled rather than completed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from ampmesh.events.v1 import envelope_pb2
from ampmesh.events.v1 import operation_events_pb2 as operations_pb2
from ampmesh.workflows.v1 import (
    backfill_read_pb2,
    read_operation_pb2,
    read_page_pb2,
    scheduled_read_pb2,
    triggered_read_pb2,
)
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from ampmesh.workflows.v1.read_plan_pb2 import ReadPlan
from google.protobuf import message as protobuf_message
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from services.domain.read_workflows import (
    BACKFILL_WORKFLOW,
    SCHEDULED_WORKFLOW,
    TRIGGERED_WORKFLOW,
)

OPEN_READ_ACTIVITY = "open_read"
READ_PAGES_ACTIVITY = "read_pages"
SAVE_WATERMARK_ACTIVITY = "save_read_watermark"
CLOSE_READ_ACTIVITY = "close_read"
CONFIRM_READ_ACTIVITY = "confirm_read"
# workflow.patched id of the confirm step (runs started before it replay without it).
CONFIRM_PATCH = "read-confirm-pages"

# The error a cancelled read's operation ends with (the reference has no cancelled status).
CANCELLED_ERROR = "the read was cancelled before it finished (was its installation deleted?)"

# Error types the activities raise non-retryably (ApplicationError.type).
INSTALLATION_GONE = "InstallationGone"
PROVIDER_REQUEST_ERROR = "ProviderRequestError"

# Pages per read_pages call: enough that Temporal's per-activity cost (a few history
# events, two round trips, and draining the call's pages in flight) is small next to the
# pages' own. A retried call resumes after its last page written to read_pages, so size
# costs no rework.
PAGES_PER_CALL = 200
# read_pages calls per run before continuing as new: keeps a million-record backfill's
# history as short to replay as a small one's.
CALLS_PER_RUN = 100

# A call reads PAGES_PER_CALL pages; each page is one provider request with its own
# retries (connectors.http), so minutes are generous. The heartbeat after every page
# lets a killed worker's call be retried elsewhere within seconds.
READ_PAGES_TIMEOUT = timedelta(minutes=10)
READ_PAGES_HEARTBEAT = timedelta(seconds=10)
# No attempt limit: a provider outage is waited out (the backoff is capped); only
# non-retryable errors (the provider refusing the request) end the read.
READ_PAGES_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=0,
)
# How long a read waits for messenger to record every page it published (publishing
# again what goes missing) before it gives up and fails; messenger down for that long
# is an outage to look at, not a wait to hide.
CONFIRM_PATIENCE = timedelta(hours=1)
CONFIRM_HEARTBEAT = timedelta(seconds=60)
# The bookkeeping activities talk to PostgreSQL and Pub/Sub only.
BOOKKEEPING_TIMEOUT = timedelta(minutes=1)
BOOKKEEPING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
)


@dataclass
class _Outcome:
    cursor: target_pb2.ReadCursor
    status: int
    error: str
    estimated_total: int | None
    # The workflow was cancelled: close the operation, then end cancelled.
    cancelled: bool = False


def _now_meta(given: envelope_pb2.EventMeta, message: type[protobuf_message.Message]) -> None:
    """Complete a run's meta in place: its type, source, time and key (a schedule's
    argument is fixed when the schedule is made, so it carries no time or key)."""
    given.type = given.type or message.DESCRIPTOR.full_name
    given.source = given.source or "temporal"
    if not given.HasField("time"):
        given.time.FromDatetime(workflow.now())
    if not given.id:
        given.id = str(workflow.uuid4())
    if not given.idempotency_key:
        given.idempotency_key = workflow.info().workflow_id


def _cancelled(error: BaseException) -> bool:
    """The error is the workflow's cancellation reaching an activity it awaited."""
    cause = error.cause if isinstance(error, ActivityError) else error
    return isinstance(cause, (CancelledError, asyncio.CancelledError))


async def _open(
    meta: envelope_pb2.EventMeta,
    target: target_pb2.ObjectTarget,
    operation_id: str,
    read_type: int,
    *,
    since: datetime | None,
    until: datetime,
    full_history: bool = False,
    page_size: int = 0,
    plan: ReadPlan | None = None,
) -> read_operation_pb2.OpenReadOutput | None:
    """What open_read settled; None when the workflow was cancelled while it ran."""
    request = read_operation_pb2.OpenReadInput(
        meta=meta,
        target=target,
        operation_id=operation_id,
        read_type=read_type,  # type: ignore[arg-type]
        full_history=full_history,
        page_size=page_size,
        workflow_id=workflow.info().workflow_id,
        workflow_run_id=workflow.info().run_id,
    )
    if since is not None:
        request.since.FromDatetime(since)
    request.until.FromDatetime(until)
    if plan is not None:
        request.plan.CopyFrom(plan)
    try:
        result: read_operation_pb2.OpenReadOutput = await workflow.execute_activity(
            OPEN_READ_ACTIVITY,
            request,
            result_type=read_operation_pb2.OpenReadOutput,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
    except (ActivityError, asyncio.CancelledError) as error:
        if _cancelled(error):
            return None
        raise
    return result


def _cancelled_while_opening(since: datetime | None, until: datetime) -> _Outcome:
    """The outcome of a read cancelled before it read anything: its window, no counts."""
    window = target_pb2.ReadCursor()
    if since is not None:
        window.since.FromDatetime(since)
    window.until.FromDatetime(until)
    return _Outcome(
        window,
        operations_pb2.OPERATION_STATUS_FAILURE,
        CANCELLED_ERROR,
        None,
        cancelled=True,
    )


async def _confirm(
    meta: envelope_pb2.EventMeta,
    target: target_pb2.ObjectTarget,
    operation_id: str,
    read_type: int,
    plan: ReadPlan | None,
    outcome: _Outcome,
) -> _Outcome:
    """A read that got every page onto the bus is done once messenger has recorded them
    all; else it fails saying what is missing (or ends cancelled)."""
    if outcome.status != operations_pb2.OPERATION_STATUS_SUCCESS or not workflow.patched(
        CONFIRM_PATCH
    ):
        return outcome
    request = read_operation_pb2.ConfirmReadInput(
        meta=meta,
        target=target,
        operation_id=operation_id,
        read_type=read_type,  # type: ignore[arg-type]
    )
    if plan is not None:
        request.plan.CopyFrom(plan)
    request.give_up_time.FromDatetime(workflow.now() + CONFIRM_PATIENCE)
    failed = operations_pb2.OPERATION_STATUS_FAILURE
    try:
        result: read_operation_pb2.ConfirmReadOutput = await workflow.execute_activity(
            CONFIRM_READ_ACTIVITY,
            request,
            result_type=read_operation_pb2.ConfirmReadOutput,
            start_to_close_timeout=CONFIRM_PATIENCE + BOOKKEEPING_TIMEOUT,
            heartbeat_timeout=CONFIRM_HEARTBEAT,
            retry_policy=BOOKKEEPING_RETRY,
        )
    except (ActivityError, asyncio.CancelledError) as error:
        if _cancelled(error):
            return _Outcome(
                outcome.cursor, failed, CANCELLED_ERROR, outcome.estimated_total, cancelled=True
            )
        cause = error.cause if isinstance(error, ActivityError) else error
        message = cause.message if isinstance(cause, ApplicationError) else str(error)
        return _Outcome(outcome.cursor, failed, message, outcome.estimated_total)
    if result.complete:
        return outcome
    return _Outcome(outcome.cursor, failed, result.error, outcome.estimated_total)


async def _read_window(
    meta: envelope_pb2.EventMeta,
    target: target_pb2.ObjectTarget,
    operation_id: str,
    read_type: int,
    cursor: target_pb2.ReadCursor,
    page_size: int,
    plan: ReadPlan | None,
) -> tuple[_Outcome, bool]:
    """Read from cursor until the window is done or this run has made CALLS_PER_RUN
    calls; the outcome, and whether the window is finished (else: continue as new)."""
    estimated: int | None = None
    for _ in range(CALLS_PER_RUN):
        request = read_page_pb2.ReadPageInput(
            meta=meta,
            target=target,
            operation_id=operation_id,
            read_type=read_type,  # type: ignore[arg-type]
            cursor=cursor,
            page_size=page_size,
            max_pages=PAGES_PER_CALL,
        )
        if plan is not None:
            request.plan.CopyFrom(plan)
        try:
            result: read_page_pb2.ReadPageOutput = await workflow.execute_activity(
                READ_PAGES_ACTIVITY,
                request,
                result_type=read_page_pb2.ReadPageOutput,
                start_to_close_timeout=READ_PAGES_TIMEOUT,
                heartbeat_timeout=READ_PAGES_HEARTBEAT,
                retry_policy=READ_PAGES_RETRY,
            )
        except (ActivityError, asyncio.CancelledError) as error:
            failed = operations_pb2.OPERATION_STATUS_FAILURE
            cause = error.cause if isinstance(error, ActivityError) else error
            if _cancelled(error):
                # The workflow was cancelled, and its call with it. The counts stop at
                # the last finished call: a call's heartbeats never reach the workflow.
                return _Outcome(cursor, failed, CANCELLED_ERROR, estimated, cancelled=True), True
            message = cause.message if isinstance(cause, ApplicationError) else str(error)
            return _Outcome(cursor, failed, message, estimated), True
        cursor = result.cursor
        if result.HasField("records_estimated_total"):
            estimated = result.records_estimated_total
        if result.done:
            return _Outcome(cursor, operations_pb2.OPERATION_STATUS_SUCCESS, "", estimated), True
        if workflow.info().is_continue_as_new_suggested():
            break
    return _Outcome(cursor, operations_pb2.OPERATION_STATUS_IN_PROGRESS, "", estimated), False


async def _save_watermark(
    meta: envelope_pb2.EventMeta,
    target: target_pb2.ObjectTarget,
    operation_id: str,
    cursor: target_pb2.ReadCursor,
) -> None:
    await workflow.execute_activity(
        SAVE_WATERMARK_ACTIVITY,
        read_page_pb2.SaveReadWatermarkInput(
            meta=meta, target=target, operation_id=operation_id, cursor=cursor
        ),
        start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        retry_policy=BOOKKEEPING_RETRY,
    )


async def _close(
    meta: envelope_pb2.EventMeta,
    target: target_pb2.ObjectTarget,
    operation_id: str,
    read_type: int,
    outcome: _Outcome,
    plan: ReadPlan | None,
    *,
    schedule_id: str = "",
) -> read_operation_pb2.CloseReadOutput:
    request = read_operation_pb2.CloseReadInput(
        meta=meta,
        target=target,
        operation_id=operation_id,
        read_type=read_type,  # type: ignore[arg-type]
        status=outcome.status,  # type: ignore[arg-type]
        cursor=outcome.cursor,
        error=outcome.error,
        schedule_id=schedule_id,
    )
    request.start_time.CopyFrom(meta.time)
    request.finish_time.FromDatetime(workflow.now())
    if outcome.estimated_total is not None:
        request.records_estimated_total = outcome.estimated_total
    if plan is not None:
        request.plan.CopyFrom(plan)
    result: read_operation_pb2.CloseReadOutput = await workflow.execute_activity(
        CLOSE_READ_ACTIVITY,
        request,
        result_type=read_operation_pb2.CloseReadOutput,
        start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        retry_policy=BOOKKEEPING_RETRY,
    )
    return result


def _scheduled_time() -> datetime:
    """The end of a scheduled run's window: when the run started. Windows abut whatever
    it is (the next run starts at the watermark this one leaves); not the slot it was due
    for, which Temporal gives in whole seconds: a run triggered within the second an
    installation was created would end its window before the window's start."""
    return workflow.now()


def _given_plan(
    request: backfill_read_pb2.BackfillReadInput
    | triggered_read_pb2.TriggeredReadInput
    | scheduled_read_pb2.ScheduledReadInput,
) -> ReadPlan | None:
    """The plan the api resolved when it started the read (None in inputs from before
    plans: open_read resolves it)."""
    return request.plan if request.HasField("plan") else None


def _opened_plan(opened: read_operation_pb2.OpenReadOutput) -> ReadPlan | None:
    """The plan open_read settled on, handed to every later call of the run."""
    return opened.plan if opened.HasField("plan") else None


def _resumed(resume: target_pb2.ReadCursor, opened: target_pb2.ReadCursor) -> target_pb2.ReadCursor:
    """The cursor an earlier run of the same operation left, else the opened window."""
    chosen = target_pb2.ReadCursor()
    chosen.CopyFrom(resume if resume.ByteSize() else opened)
    return chosen


_Windowed = TypeVar(
    "_Windowed", backfill_read_pb2.BackfillReadInput, triggered_read_pb2.TriggeredReadInput
)


def _following(
    request: _Windowed,
    meta: envelope_pb2.EventMeta,
    operation_id: str,
    until: datetime,
    outcome: _Outcome,
) -> _Windowed:
    """The input of the next run of a read continuing as new: the same read (operation,
    window, meta), resumed at the cursor this run reached."""
    following = type(request)()
    following.CopyFrom(request)
    following.meta.CopyFrom(meta)
    following.operation_id = operation_id
    following.until.FromDatetime(until)
    following.resume.CopyFrom(outcome.cursor)
    return following


async def _windowed_read(
    request: _Windowed,
    read_type: int,
    *,
    full_history: bool,
    save_watermark: bool,
) -> tuple[str, _Outcome | None]:
    """One read of a fixed window (a backfill or a triggered read): open the operation,
    read every page (continuing as new when the history grows), move the watermark when
    asked and the read succeeded, close the operation. The operation id, and the outcome
    (None when opening found nothing to read: the installation or object is gone)."""
    meta = envelope_pb2.EventMeta()
    meta.CopyFrom(request.meta)
    _now_meta(meta, type(request))
    operation_id = request.operation_id or str(workflow.uuid4())
    until = request.until.ToDatetime() if request.HasField("until") else workflow.now()
    since = request.since.ToDatetime() if request.HasField("since") else None
    opened = await _open(
        meta,
        request.target,
        operation_id,
        read_type,
        since=since,
        until=until,
        full_history=full_history,
        page_size=request.page_size,
        plan=_given_plan(request),
    )
    if opened is None:
        cancelled = _cancelled_while_opening(since, until)
        await _close(meta, request.target, operation_id, read_type, cancelled, _given_plan(request))
        raise CancelledError(CANCELLED_ERROR)
    if opened.skip:
        workflow.logger.info(
            "read skipped",
            extra={
                "read_type": operations_pb2.ReadType.Name(read_type),
                "reason": opened.skip_reason,
            },
        )
        return operation_id, None
    cursor = _resumed(request.resume, opened.cursor)
    plan = _opened_plan(opened)
    outcome, finished = await _read_window(
        meta, request.target, operation_id, read_type, cursor, opened.page_size, plan
    )
    if not finished:
        workflow.continue_as_new(_following(request, meta, operation_id, until, outcome))
    outcome = await _confirm(meta, request.target, operation_id, read_type, plan, outcome)
    if save_watermark and outcome.status == operations_pb2.OPERATION_STATUS_SUCCESS:
        await _save_watermark(meta, request.target, operation_id, outcome.cursor)
    await _close(meta, request.target, operation_id, read_type, outcome, plan)
    if outcome.cancelled:
        raise CancelledError(CANCELLED_ERROR)
    return operation_id, outcome


_WindowedOutput = TypeVar(
    "_WindowedOutput", backfill_read_pb2.BackfillReadOutput, triggered_read_pb2.TriggeredReadOutput
)


def _output(
    output_type: type[_WindowedOutput], operation_id: str, outcome: _Outcome | None
) -> _WindowedOutput:
    """A windowed read's result: only its operation id when it read nothing (skipped)."""
    output = output_type(operation_id=operation_id)
    if outcome is not None:
        output.status = outcome.status  # type: ignore[assignment]
        output.cursor.CopyFrom(outcome.cursor)
        output.error = outcome.error
    return output


@workflow.defn(name=BACKFILL_WORKFLOW)
class BackfillRead:
    """The initial read of one object of a new installation; sets its watermark."""

    @workflow.run
    async def run(
        self, request: backfill_read_pb2.BackfillReadInput
    ) -> backfill_read_pb2.BackfillReadOutput:
        operation_id, outcome = await _windowed_read(
            request,
            operations_pb2.READ_TYPE_BACKFILL,
            full_history=request.full_history,
            save_watermark=True,
        )
        return _output(backfill_read_pb2.BackfillReadOutput, operation_id, outcome)


@workflow.defn(name=TRIGGERED_WORKFLOW)
class TriggeredRead:
    """An on-demand read of [since, until); leaves the watermark where it is."""

    @workflow.run
    async def run(
        self, request: triggered_read_pb2.TriggeredReadInput
    ) -> triggered_read_pb2.TriggeredReadOutput:
        operation_id, outcome = await _windowed_read(
            request,
            operations_pb2.READ_TYPE_TRIGGERED,
            full_history=not request.HasField("since"),
            save_watermark=False,
        )
        return _output(triggered_read_pb2.TriggeredReadOutput, operation_id, outcome)


@workflow.defn(name=SCHEDULED_WORKFLOW)
class ScheduledRead:
    """One run of an object's schedule: from its watermark to the run's start."""

    @workflow.run
    async def run(
        self, request: scheduled_read_pb2.ScheduledReadInput
    ) -> scheduled_read_pb2.ScheduledReadOutput:
        meta = envelope_pb2.EventMeta()
        meta.CopyFrom(request.meta)
        # The schedule's meta is the same for every run: each run is its own event.
        if not request.operation_id:
            meta.ClearField("time")
            meta.id = ""
            meta.idempotency_key = ""
        _now_meta(meta, scheduled_read_pb2.ScheduledReadInput)
        operation_id = request.operation_id or str(workflow.uuid4())
        read_type = operations_pb2.READ_TYPE_SCHEDULED
        resuming = request.resume.ByteSize() > 0
        until = request.resume.until.ToDatetime() if resuming else _scheduled_time()
        since = (
            request.resume.since.ToDatetime()
            if resuming and request.resume.HasField("since")
            else None
        )
        opened = await _open(
            meta,
            request.target,
            operation_id,
            read_type,
            since=since,
            until=until,
            page_size=request.page_size,
            plan=_given_plan(request),
        )
        if opened is None:
            await _close(
                meta,
                request.target,
                operation_id,
                read_type,
                _cancelled_while_opening(since, until),
                _given_plan(request),
                schedule_id=request.schedule_id,
            )
            raise CancelledError(CANCELLED_ERROR)
        if opened.skip:
            workflow.logger.info("scheduled read skipped", extra={"reason": opened.skip_reason})
            return scheduled_read_pb2.ScheduledReadOutput(operation_id=operation_id)
        cursor = _resumed(request.resume, opened.cursor)
        plan = _opened_plan(opened)
        outcome, finished = await _read_window(
            meta, request.target, operation_id, read_type, cursor, opened.page_size, plan
        )
        if not finished:
            following = scheduled_read_pb2.ScheduledReadInput()
            following.CopyFrom(request)
            following.meta.CopyFrom(meta)
            following.operation_id = operation_id
            following.resume.CopyFrom(outcome.cursor)
            workflow.continue_as_new(following)
        outcome = await _confirm(meta, request.target, operation_id, read_type, plan, outcome)
        if outcome.status == operations_pb2.OPERATION_STATUS_SUCCESS:
            await _save_watermark(meta, request.target, operation_id, outcome.cursor)
        closed = await _close(
            meta,
            request.target,
            operation_id,
            read_type,
            outcome,
            plan,
            schedule_id=request.schedule_id,
        )
        if outcome.cancelled:
            raise CancelledError(CANCELLED_ERROR)
        return scheduled_read_pb2.ScheduledReadOutput(
            operation_id=operation_id,
            status=outcome.status,  # type: ignore[arg-type]
            cursor=outcome.cursor,
            no_new_data=outcome.status == operations_pb2.OPERATION_STATUS_SUCCESS
            and outcome.cursor.records_done == 0,
            schedule_paused=closed.schedule_paused,
            error=outcome.error,
        )
