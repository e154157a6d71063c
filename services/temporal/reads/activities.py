"""The read activities: open_read, read_pages, confirm_read, save_read_watermark and
close_read, each a thin step over the modules beside it:

- reads.context: the read's plan (from the workflow's input) and its installation,
  re-checked with one cheap query per call (a deleted installation stops its reads);
- reads.pages: the page pipeline (fetch, shape, publish, heartbeat the cursor);
- reads.events: the events a read publishes;
- reads.progress: the read's pages on the bus (read_pages), which a retried call resumes
  after and confirm_read checks against messenger's records;
- reads.schedules: watermarks and schedule failure counts in PostgreSQL.

open_read returns the plan the read goes on with (the input's, or resolved again when
the installation's config moved on), and the workflow hands it to every later call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import grpc
from ampmesh.events.v1 import log_entry_pb2
from ampmesh.events.v1 import operation_events_pb2 as operations_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.messenger.v1 import messenger_pb2, messenger_pb2_grpc
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2_grpc
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from ampmesh.workflows.v1 import read_operation_pb2, read_page_pb2
from ampmesh.workflows.v1.read_plan_pb2 import ReadPlan
from google.protobuf.message import Message
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from services.runtime.logs import get_logger
from services.temporal.reads import events
from services.temporal.reads.context import ReadContext, load_context
from services.temporal.reads.pages import AuthFor, ConnectorFor, Pages, Shaping
from services.temporal.reads.progress import ReadPages
from services.temporal.reads.publish import Publisher
from services.temporal.reads.schedules import ReadBookkeeping
from services.temporal.reads.workflows import (
    CLOSE_READ_ACTIVITY,
    CONFIRM_READ_ACTIVITY,
    INSTALLATION_GONE,
    OPEN_READ_ACTIVITY,
    READ_PAGES_ACTIVITY,
    SAVE_WATERMARK_ACTIVITY,
)

_log = get_logger("ampmesh.temporal.reads")

# confirm_read: messenger's count of a read's pages is asked again after FIRST_POLL,
# doubling to LAST_POLL; pages are published again once the count has not moved for
# STALLED_AFTER (messenger answering, but no page of the read arriving any more). It
# outlasts the subscriptions' 30 s ack deadline, after which Pub/Sub hands a message a
# killed messenger had pulled but not recorded to another: at 20 s, a killed messenger
# made the read fetch again the 13 pages that were about to come back by themselves.
FIRST_POLL = 0.25
LAST_POLL = 5.0
STALLED_AFTER = 45.0
LONGEST_STALL = 600.0
# A messenger call that takes longer is retried at the next poll.
MESSENGER_TIMEOUT = 10.0
# Keys per FindUnrecordedPages call (messenger's limit).
KEYS_PER_CALL = 1000


def _plan(request: Message) -> ReadPlan | None:
    """The plan a request carries; None in requests from before plans."""
    return request.plan if request.HasField("plan") else None  # type: ignore[attr-defined]


class ReadActivities:
    """The reads queue's activities, bound to the process's resources."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        http: aiohttp.ClientSession,
        publisher: Publisher,
        client: Client,
        connector_for: ConnectorFor,
        auth_for: AuthFor,
        shaping: Shaping,
        messenger: messenger_pb2_grpc.RecordedPagesServiceStub | None = None,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        # None: nobody to ask, a read is done once its pages are on the bus.
        self._messenger = messenger
        self._store = ReadPages(pool)
        self._pages = Pages(
            tokens=tokens,
            catalog=catalog,
            http=http,
            publisher=publisher,
            connector_for=connector_for,
            auth_for=auth_for,
            shaping=shaping,
            store=self._store,
        )
        self._books = ReadBookkeeping(pool, client)

    @activity.defn(name=OPEN_READ_ACTIVITY)
    async def open_read(
        self, request: read_operation_pb2.OpenReadInput
    ) -> read_operation_pb2.OpenReadOutput:
        context = await load_context(self._pool, request.target, _plan(request))
        if isinstance(context, str):
            _log.info("read skipped", operation_id=request.operation_id, reason=context)
            return read_operation_pb2.OpenReadOutput(skip=True, skip_reason=context)
        until = request.until.ToDatetime(tzinfo=UTC)
        since = await self._since(request, context, until)
        window = target_pb2.ReadCursor()
        window.until.FromDatetime(until)
        if since is not None:
            window.since.FromDatetime(since)
        read_type = events.READ_TYPE_NAMES.get(request.read_type, "read")
        await self._publisher.publish_all(
            [
                events.operation_created(request, context, since, until),
                events.log_entry(
                    request.meta,
                    context,
                    request.operation_id,
                    "started",
                    f"[{context.shown_object_name}] {read_type} read started",
                    log_entry_pb2.LOG_SEVERITY_INFO,
                ),
            ]
        )
        return read_operation_pb2.OpenReadOutput(
            cursor=window, page_size=context.page_size(request.page_size), plan=context.plan
        )

    async def _since(
        self, request: read_operation_pb2.OpenReadInput, context: ReadContext, until: datetime
    ) -> datetime | None:
        """The window's lower bound: the caller's; else for a scheduled run the object's
        watermark (the installation's creation when it has none); else for a backfill the
        plan's period: full history is no bound, N days is until - N days, and no
        backfill reads nothing old."""
        if request.HasField("since"):
            return request.since.ToDatetime(tzinfo=UTC)
        if request.read_type == operations_pb2.READ_TYPE_SCHEDULED:
            return await self._books.watermark_since(context)
        if request.full_history or request.read_type != operations_pb2.READ_TYPE_BACKFILL:
            return None
        if not context.plan.HasField("backfill"):
            return until
        if context.plan.backfill.full_history:
            return None
        return until - timedelta(days=context.plan.backfill.days)

    @activity.defn(name=READ_PAGES_ACTIVITY)
    async def read_pages(
        self, request: read_page_pb2.ReadPageInput
    ) -> read_page_pb2.ReadPageOutput:
        context = await load_context(self._pool, request.target, _plan(request))
        if isinstance(context, str):
            raise ApplicationError(context, type=INSTALLATION_GONE, non_retryable=True)
        return await self._pages.read(request, context)

    @activity.defn(name=CONFIRM_READ_ACTIVITY)
    async def confirm_read(
        self, request: read_operation_pb2.ConfirmReadInput
    ) -> read_operation_pb2.ConfirmReadOutput:
        """Wait until messenger has recorded every message the read published; publish
        again the pages it has not once its count stops moving; give up at the input's
        give_up_time."""
        operation = request.operation_id
        _, parts = await self._store.totals(operation)
        output = read_operation_pb2.ConfirmReadOutput(published=parts)
        if parts == 0 or self._messenger is None:
            output.complete = True
            return output
        context = await load_context(self._pool, request.target, _plan(request))
        if isinstance(context, str):
            raise ApplicationError(context, type=INSTALLATION_GONE, non_retryable=True)
        if not context.destination_id:
            # Messenger drops pages that name no destination: there is nothing to wait for.
            output.complete = True
            return output
        give_up = request.give_up_time.ToDatetime(tzinfo=UTC)
        delay, moved_at, last_count = FIRST_POLL, time.monotonic(), -1
        stalled_after = STALLED_AFTER
        while True:
            answer = await self._count(context, operation)
            if answer is None:
                # Messenger is away: its backlog may still hold the pages; the stall is
                # timed again from when it answers.
                last_count = -1
            else:
                if not answer.destination_found:
                    output.error = (
                        f"destination {context.destination_name or context.destination_id} "
                        "is gone: messenger cannot deliver the read's pages"
                    )
                    return output
                output.recorded = answer.recorded
                if answer.recorded >= parts:
                    output.complete = True
                    break
                if answer.recorded != last_count:
                    last_count, moved_at = answer.recorded, time.monotonic()
                elif time.monotonic() - moved_at >= stalled_after:
                    missing = await self._republish_missing(request, context)
                    if missing is None:
                        break
                    output.republished_pages += missing
                    _, parts = await self._store.totals(operation)
                    output.published = parts
                    delay, moved_at = FIRST_POLL, time.monotonic()
                    # Pages only queued behind other reads' in messenger's backlog would
                    # be fetched again at every stall: each waits twice as long.
                    stalled_after = min(stalled_after * 2, LONGEST_STALL)
            if datetime.now(UTC) >= give_up:
                output.error = (
                    f"messenger recorded {output.recorded} of the {parts} messages the read "
                    f"published (pages published again: {output.republished_pages}); gave up "
                    "waiting for the rest"
                )
                return output
            activity.heartbeat(output.recorded)
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAST_POLL)
        output.complete = True
        if output.republished_pages:
            _log.warning(
                "read pages published again: messenger never recorded them",
                operation_id=operation,
                pages=output.republished_pages,
            )
        return output

    async def _count(
        self, context: ReadContext, operation: str
    ) -> messenger_pb2.CountRecordedPagesResponse | None:
        """Messenger's count of the read's pages; None when messenger does not answer."""
        assert self._messenger is not None
        try:
            answer: messenger_pb2.CountRecordedPagesResponse = (
                await self._messenger.CountRecordedPages(
                    messenger_pb2.CountRecordedPagesRequest(
                        project_id=context.project_id,
                        operation_id=operation,
                        destination_id=context.destination_id,
                    ),
                    timeout=MESSENGER_TIMEOUT,
                )
            )
        except grpc.aio.AioRpcError as error:
            _log.warning(
                "messenger did not answer how many pages it recorded",
                operation_id=operation,
                code=error.code().name,
            )
            return None
        return answer

    async def _republish_missing(
        self, request: read_operation_pb2.ConfirmReadInput, context: ReadContext
    ) -> int | None:
        """Publish again every page with a part messenger has not recorded; how many
        pages, or None when nothing is missing (every key is recorded). Raises when
        messenger does not answer (the activity is retried)."""
        assert self._messenger is not None
        operation = request.operation_id
        pages = await self._store.published(operation)
        keys = {
            f"{operation}/page/{page.number}/part/{part}": page
            for page in pages
            for part in range(1, page.parts + 1)
        }
        ordered = list(keys)
        missing: set[int] = set()
        for start in range(0, len(ordered), KEYS_PER_CALL):
            answer = await self._messenger.FindUnrecordedPages(
                messenger_pb2.FindUnrecordedPagesRequest(
                    project_id=context.project_id,
                    destination_id=context.destination_id,
                    keys=ordered[start : start + KEYS_PER_CALL],
                ),
                timeout=MESSENGER_TIMEOUT,
            )
            for key in answer.missing_keys:
                missing.add(keys[key].number)
            activity.heartbeat()
        if not missing:
            return None
        page_input = read_page_pb2.ReadPageInput(
            meta=request.meta,
            target=request.target,
            operation_id=operation,
            read_type=request.read_type,
        )
        _log.info(
            "publishing pages messenger never recorded", operation_id=operation, pages=len(missing)
        )
        for page in pages:
            if page.number not in missing:
                continue
            parts = await self._pages.republish(page_input, context, page)
            if parts != page.parts:
                await self._store.set_parts(operation, page.number, parts)
            activity.heartbeat()
        return len(missing)

    @activity.defn(name=SAVE_WATERMARK_ACTIVITY)
    async def save_read_watermark(self, request: read_page_pb2.SaveReadWatermarkInput) -> None:
        await self._books.save_watermark(request)

    @activity.defn(name=CLOSE_READ_ACTIVITY)
    async def close_read(
        self, request: read_operation_pb2.CloseReadInput
    ) -> read_operation_pb2.CloseReadOutput:
        found = await load_context(self._pool, request.target, _plan(request))
        context = found if isinstance(found, ReadContext) else None
        operation = request.operation_id
        success = request.status == operations_pb2.OPERATION_STATUS_SUCCESS
        result = events.close_result(
            request, context.shown_object_name if context else request.target.object_name
        )
        estimated = (
            request.records_estimated_total if request.HasField("records_estimated_total") else None
        )
        published: list[Envelope] = [events.operation_finished(request, result, estimated)]
        if request.read_type == operations_pb2.READ_TYPE_BACKFILL:
            published.append(
                events.envelope(
                    request.meta,
                    f"{operation}/backfill-progress/final",
                    backfill_progress=events.backfill_progress(
                        request.meta,
                        request.target.installation_id,
                        request.target.object_name,
                        operation,
                        request.cursor.pages_done + events.FINAL_SEQUENCE_OFFSET,
                        request.cursor.records_done,
                        estimated,
                        done=True,
                    ),
                )
            )
        paused = False
        if context is not None:
            published.append(
                events.log_entry(
                    request.meta,
                    context,
                    operation,
                    "finished",
                    result,
                    log_entry_pb2.LOG_SEVERITY_INFO
                    if success
                    else log_entry_pb2.LOG_SEVERITY_ERROR,
                    error=request.error,
                )
            )
            notification = events.notification(request, context, success)
            if notification is not None:
                published.append(
                    events.envelope(
                        request.meta, f"{operation}/notification", notification=notification
                    )
                )
            if request.read_type == operations_pb2.READ_TYPE_SCHEDULED:
                paused, more = await self._books.run_closed(request, context, success)
                published.extend(more)
        await self._publisher.publish_all(published)
        # The read's pages are confirmed (or it failed): nothing resumes or checks them now.
        await self._store.forget(operation)
        _log.info(
            "read closed",
            operation_id=operation,
            object=request.target.object_name,
            status=operations_pb2.OperationStatus.Name(request.status),
            records=request.cursor.records_done,
            schedule_paused=paused or None,
        )
        return read_operation_pb2.CloseReadOutput(result=result, schedule_paused=paused)
