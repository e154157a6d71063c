"""The read activities: open_read, read_pages, save_read_watermark and close_read, each
a thin step over the modules beside it:

- reads.context: the read's plan (from the workflow's input) and its installation,
  re-checked with one cheap query per call (a deleted installation stops its reads);
- reads.pages: the page pipeline (fetch, shape, publish, heartbeat the cursor);
- reads.events: the events a read publishes;
- reads.schedules: watermarks and schedule failure counts in PostgreSQL.

open_read returns the plan the read goes on with (the input's, or resolved again when
the installation's config moved on), and the workflow hands it to every later call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
from ampmesh.events.v1 import log_entry_pb2
from ampmesh.events.v1 import operation_events_pb2 as operations_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
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
from services.temporal.reads.publish import Publisher
from services.temporal.reads.schedules import ReadBookkeeping
from services.temporal.reads.workflows import (
    CLOSE_READ_ACTIVITY,
    INSTALLATION_GONE,
    OPEN_READ_ACTIVITY,
    READ_PAGES_ACTIVITY,
    SAVE_WATERMARK_ACTIVITY,
)

_log = get_logger("ampmesh.temporal.reads")


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
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._pages = Pages(
            tokens=tokens,
            catalog=catalog,
            http=http,
            publisher=publisher,
            connector_for=connector_for,
            auth_for=auth_for,
            shaping=shaping,
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
        _log.info(
            "read closed",
            operation_id=operation,
            object=request.target.object_name,
            status=operations_pb2.OperationStatus.Name(request.status),
            records=request.cursor.records_done,
            schedule_paused=paused or None,
        )
        return read_operation_pb2.CloseReadOutput(result=result, schedule_paused=paused)
