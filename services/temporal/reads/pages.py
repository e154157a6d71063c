"""The page pipeline of read_pages, the hot path: fetch pages through the provider's
connector, render each record once (reads.shape, orjson), pack them into WebhookMessage
bodies of at most 300 KB, publish one ReadResultPage per body, and move the cursor past
a page only when Pub/Sub has acknowledged every message of it. Fetching page n+1
overlaps waiting for page n's acknowledgements, so the provider and Pub/Sub work side by
side.

Everything a page needs is in the read's context (its plan and installation, loaded once
per call by reads.context); connection credentials come from the token-manager, one
token per call (a forced refresh and a second try when the provider rejects it).

Each acknowledged page is written to read_pages (reads.progress) with the cursor it was
fetched from and the one after it: a call starts after the operation's newest page there
(a killed worker's retry resumes from its last page on the bus), and confirm_read fetches
and publishes again, under the same keys, a page messenger never recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
from ampmesh.events.v1 import read_result_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from ampmesh.workflows.v1 import read_page_pb2
from ampmesh.workflows.v1.read_plan_pb2 import ReadSelection
from google.protobuf import json_format
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.domain.connectors.base import (
    Connector,
    Page,
    PageTokenExpired,
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    ReadRequest,
    TokenRejected,
)
from services.domain.read_bodies import set_body
from services.runtime.logs import get_logger
from services.temporal.connection_auth import CREDENTIALS_REFUSED, connection_auth
from services.temporal.reads import events
from services.temporal.reads.context import ReadContext
from services.temporal.reads.progress import PageRecorder, PageRow, ReadPages, StoredPage
from services.temporal.reads.publish import Publisher, wait_all
from services.temporal.reads.workflows import PROVIDER_REQUEST_ERROR

_log = get_logger("ampmesh.temporal.reads")

# Bodies above this are split into parts (the reference's inline limit).
BODY_LIMIT = 300_000
# How often the activity heartbeats while a page is slow (the provider retrying): well
# inside the workflow's 10 s heartbeat timeout.
HEARTBEAT_EVERY = 2.0
# Pages published but not yet acknowledged at most (each up to 300 KB per part).
PAGES_IN_FLIGHT = 32
# Seconds between progress events of a read (and one after its last page).
PROGRESS_EVERY = 0.5


class Shaping(Protocol):
    """What reads.shape offers (a protocol, so tests may stand in for it)."""

    def plan_selection(self, planned: ReadSelection) -> Any: ...

    def render_record(self, connector: Connector, raw: dict[str, Any], selection: Any) -> bytes: ...

    def pack_bodies(
        self, header: dict[str, Any], records: list[bytes], limit: int = BODY_LIMIT
    ) -> list[tuple[bytes, int]]: ...


ConnectorFor = Callable[[str], Connector]
AuthFor = Callable[
    [providers_pb2.ProviderInfo, str, token_manager_pb2.GetTokenResponse], ProviderAuth
]


class _Beat:
    """Heartbeats the last acknowledged cursor now, and again every HEARTBEAT_EVERY
    while a page is slow, so a living call is never timed out. The details show where
    the call is; a retried call resumes from read_pages, not from them (the SDK sends
    them at most every 8 s, and a killed process loses the rest)."""

    def __init__(self) -> None:
        self.details = b""

    def set(self, cursor: target_pb2.ReadCursor) -> None:
        self.details = cursor.SerializeToString()
        activity.heartbeat(self.details)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async def tick() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_EVERY)
                activity.heartbeat(self.details)

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class _Published:
    """A page handed to the publisher, and what the cursor becomes once it is acked."""

    number: int
    # The page token the page was fetched with ("" when its query started again).
    fetched_with: str
    next_page_token: str
    records: int
    newest: datetime | None
    estimated_total: int | None
    payload_bytes: int
    acks: list[asyncio.Future[str]]
    # The lower bound the page's query ran with (moved up when a forgotten query was
    # read again): the next page token belongs to that query.
    since: datetime | None = None

    def fetched_from(self, cursor: target_pb2.ReadCursor) -> target_pb2.ReadCursor:
        """The cursor the page was fetched from, given the one after the page before: the
        page can be fetched again from it."""
        before = target_pb2.ReadCursor()
        before.CopyFrom(cursor)
        if self.since is not None:
            before.since.FromDatetime(self.since)
        before.page_token = self.fetched_with
        return before

    def advance(self, cursor: target_pb2.ReadCursor) -> None:
        if self.since is not None:
            cursor.since.FromDatetime(self.since)
        cursor.page_token = self.next_page_token
        cursor.pages_done = self.number
        cursor.records_done += self.records
        if self.newest is not None and (
            not cursor.HasField("max_modified_time")
            or self.newest > cursor.max_modified_time.ToDatetime(tzinfo=UTC)
        ):
            cursor.max_modified_time.FromDatetime(self.newest)


class Pages:
    """The page pipeline, bound to the process's resources."""

    def __init__(
        self,
        *,
        tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        http: aiohttp.ClientSession,
        publisher: Publisher,
        connector_for: ConnectorFor,
        auth_for: AuthFor,
        shaping: Shaping,
        store: ReadPages,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._catalog = catalog
        self.http = http
        self._publisher = publisher
        self._connector_for = connector_for
        self._auth_for = auth_for
        self._shape = shaping

    async def auth(self, context: ReadContext, *, force: bool = False) -> ProviderAuth:
        """The provider auth of the connection, from a token-manager token."""
        return await connection_auth(
            self._tokens,
            self._catalog,
            self._auth_for,
            connection_id=context.connection_id,
            project_id=context.project_id,
            provider=context.provider,
            workspace=context.workspace,
            unusable=PROVIDER_REQUEST_ERROR,
            force=force,
        )

    async def read(
        self, request: read_page_pb2.ReadPageInput, context: ReadContext
    ) -> read_page_pb2.ReadPageOutput:
        """Read up to request.max_pages pages from the cursor (or after the operation's
        newest page on the bus), publishing each; the cursor after the last acknowledged
        page."""
        started = time.perf_counter()
        cursor = target_pb2.ReadCursor()
        cursor.CopyFrom(request.cursor)
        stored = await self._store.newest(request.operation_id)
        if stored is not None and stored.pages_done > cursor.pages_done:
            # An earlier attempt of this call (its worker killed) got this far.
            _log.info(
                "read resumed after its last page on the bus",
                operation_id=request.operation_id,
                pages_done=stored.pages_done,
                given=cursor.pages_done,
            )
            cursor.CopyFrom(stored)
        connector = self._connector(context)
        selection = self._shape.plan_selection(context.plan.selection)
        page_size = context.page_size(request.page_size)
        reader = self._reader(context, connector, cursor, selection, page_size)
        header = events.page_header(request, context)
        message = read_result_pb2.WebhookMessage()
        json_format.ParseDict(header, message, ignore_unknown_fields=True)
        output = read_page_pb2.ReadPageOutput()
        beat = _Beat()
        beat.set(cursor)
        recorder = PageRecorder(self._store, request.operation_id, context.project_id, page_size)
        max_pages = max(request.max_pages, 1)
        progress: list[asyncio.Future[str]] = []
        # Pages published and not yet acknowledged, oldest first: the settler moves the
        # cursor past each once it and every page before it are acknowledged (so a
        # resumed call never skips one), while the loop below fetches and publishes the
        # next ones; up to PAGES_IN_FLIGHT outstanding hide Pub/Sub's ack latency.
        in_flight: asyncio.Queue[_Published | None] = asyncio.Queue(maxsize=PAGES_IN_FLIGHT)

        async def settler() -> None:
            progress_due = 0.0
            while (published := await in_flight.get()) is not None:
                await wait_all(published.acks)
                before = published.fetched_from(cursor)
                published.advance(cursor)
                await recorder.add(
                    PageRow(
                        number=published.number,
                        cursor=before.SerializeToString(),
                        next_cursor=cursor.SerializeToString(),
                        parts=len(published.acks),
                        records=published.records,
                        last=not published.next_page_token,
                    )
                )
                if published.estimated_total is not None:
                    output.records_estimated_total = published.estimated_total
                output.page_count += 1
                output.record_count += published.records
                output.message_count += len(published.acks)
                output.payload_bytes += published.payload_bytes
                now = time.monotonic()
                if now >= progress_due or not published.next_page_token:
                    # Counts are absolute: one progress event per interval tells as much
                    # as one per page, for a fraction of the events scribe stores.
                    progress_due = now + PROGRESS_EVERY
                    progress.extend(
                        self._publisher.start(
                            events.progress(request, context, cursor, published.estimated_total)
                        )
                    )
                beat.set(cursor)

        try:
            async with beat.running(), recorder.running(), asyncio.TaskGroup() as group:
                settling = group.create_task(settler())
                try:
                    token = cursor.page_token
                    number = cursor.pages_done
                    for _ in range(max_pages):
                        page = await reader.fetch(token)
                        number += 1
                        records = [
                            self._shape.render_record(connector, raw, selection)
                            for raw in page.records
                        ]
                        fetched_with = reader.fetched_with
                        token = page.next_page_token
                        envelopes = self._page_envelopes(
                            request, context, message, header, records, number, not token
                        )
                        await in_flight.put(
                            _Published(
                                number=number,
                                fetched_with=fetched_with,
                                next_page_token=token,
                                records=len(records),
                                newest=reader.page_newest,
                                since=reader.since,
                                estimated_total=page.estimated_total,
                                payload_bytes=sum(len(e.read_result_page.body) for e in envelopes),
                                acks=self._publisher.start(envelopes),
                            )
                        )
                        if not token:
                            output.done = True
                            break
                finally:
                    # A settler that died (a publish failed) drains nothing: do not wait on it.
                    if not settling.done():
                        await in_flight.put(None)
        except BaseExceptionGroup as failed:
            # Temporal must see the error itself (an ApplicationError says whether to retry).
            first = failed.exceptions[0]
            for candidate in failed.exceptions:
                if isinstance(candidate, ApplicationError):
                    first = candidate
                    break
            raise first from None
        await wait_all(progress)
        output.cursor.CopyFrom(cursor)
        if cursor.HasField("max_modified_time"):
            output.max_modified_time.CopyFrom(cursor.max_modified_time)
        elapsed = time.perf_counter() - started
        _log.info(
            "read pages",
            operation_id=request.operation_id,
            object=context.object_name,
            pages=output.page_count,
            records=output.record_count,
            messages=output.message_count,
            done=output.done,
            records_per_second=round(output.record_count / elapsed) if elapsed > 0 else None,
        )
        return output

    def _connector(self, context: ReadContext) -> Connector:
        try:
            return self._connector_for(context.provider)
        except KeyError as error:
            raise ApplicationError(
                str(error), type=PROVIDER_REQUEST_ERROR, non_retryable=True
            ) from None

    def _reader(
        self,
        context: ReadContext,
        connector: Connector,
        cursor: target_pb2.ReadCursor,
        selection: Any,
        page_size: int,
    ) -> _PageReader:
        """A reader of the cursor's window, from its newest record read so far."""
        reader = _PageReader(
            self,
            context,
            connector,
            since=cursor.since.ToDatetime(tzinfo=UTC) if cursor.HasField("since") else None,
            until=cursor.until.ToDatetime(tzinfo=UTC) if cursor.HasField("until") else None,
            fields=list(selection.provider_fields()),
            page_size=page_size,
        )
        if cursor.HasField("max_modified_time"):
            reader.newest = cursor.max_modified_time.ToDatetime(tzinfo=UTC)
        return reader

    async def republish(
        self, request: read_page_pb2.ReadPageInput, context: ReadContext, page: StoredPage
    ) -> int:
        """Fetch one published page again from the cursor it was fetched from, and
        publish it under the same keys (messenger records a key once); how many parts
        it made this time."""
        connector = self._connector(context)
        selection = self._shape.plan_selection(context.plan.selection)
        reader = self._reader(context, connector, page.cursor, selection, page.page_size)
        try:
            fetched = await reader.fetch(page.cursor.page_token, requery=False)
        except PageTokenExpired as error:
            raise ApplicationError(
                f"page {page.number} of the read never reached messenger, and "
                f"{context.provider} no longer has the query it came from: {error}",
                type=PROVIDER_REQUEST_ERROR,
                non_retryable=True,
            ) from None
        records = [self._shape.render_record(connector, raw, selection) for raw in fetched.records]
        header = events.page_header(request, context)
        message = read_result_pb2.WebhookMessage()
        json_format.ParseDict(header, message, ignore_unknown_fields=True)
        envelopes = self._page_envelopes(
            request, context, message, header, records, page.number, page.last
        )
        await self._publisher.publish_all(envelopes)
        return len(envelopes)

    def _page_envelopes(
        self,
        request: read_page_pb2.ReadPageInput,
        context: ReadContext,
        message: read_result_pb2.WebhookMessage,
        header: dict[str, Any],
        records: list[bytes],
        number: int,
        last: bool,
    ) -> list[Envelope]:
        if not records:
            # Nothing to deliver (an empty window, or a provider's empty last page): the
            # builder hears "No new data found" from the operation, not an empty webhook.
            return []
        parts = self._shape.pack_bodies(header, records, BODY_LIMIT)
        envelopes = []
        for index, (body, count) in enumerate(parts, start=1):
            page = read_result_pb2.ReadResultPage(
                message=message,
                destination_id=context.destination_id,
                destination_name=context.destination_name,
                integration_id=context.integration_id,
                connection_id=context.connection_id,
                page_number=number,
                part_number=index,
                part_count=len(parts),
                last_page=last and index == len(parts),
            )
            set_body(page, body)
            page.message.result_info.num_records = count
            envelopes.append(
                events.envelope(
                    request.meta,
                    f"{request.operation_id}/page/{number}/part/{index}",
                    read_result_page=page,
                )
            )
        return envelopes


class _PageReader:
    """Fetches pages of one window through a connector, with one token per call (a
    forced refresh and a second try when the provider rejects it)."""

    def __init__(
        self,
        pages: Pages,
        context: ReadContext,
        connector: Connector,
        *,
        since: datetime | None,
        until: datetime | None,
        fields: list[str],
        page_size: int,
    ) -> None:
        self._pages = pages
        self._context = context
        self._connector = connector
        self._since = since
        self._until = until
        self._fields = fields
        self._page_size = page_size
        self._auth: ProviderAuth | None = None
        # The newest modification time among the records fetched so far: where the
        # window starts again if the provider drops its query (PageTokenExpired).
        self.newest: datetime | None = None
        # The newest modification time in the page fetch returned last.
        self.page_newest: datetime | None = None
        # The page token fetch used last ("" when the provider forgot the query).
        self.fetched_with = ""

    @property
    def since(self) -> datetime | None:
        """The lower bound of the query the pages now come from."""
        return self._since

    async def fetch(self, page_token: str, *, requery: bool = True) -> Page:
        """The page at page_token; when the provider forgot the query (and requery),
        the first page of a query from the newest record read."""
        self.fetched_with = page_token
        try:
            page = await self._fetch(page_token, self._since)
        except PageTokenExpired:
            if not requery:
                raise
            # Records come oldest first: everything before `newest` has been read, so a
            # fresh query from there leaves no gap (the records at `newest` come twice).
            _log.info(
                "provider dropped the query; reading the window again from the newest record",
                object=self._context.object_name,
            )
            # Later pages belong to the new query: it is the window's lower bound now
            # (the cursor takes it too, so a retried call resumes the same query).
            self._since = self.newest or self._since
            self.fetched_with = ""
            page = await self._fetch("", self._since)
        self.page_newest = _newest(self._connector, page.records)
        if self.page_newest is not None and (self.newest is None or self.page_newest > self.newest):
            self.newest = self.page_newest
        return page

    async def _fetch(self, page_token: str, since: datetime | None) -> Page:
        request = ReadRequest(
            object_name=self._context.object_name,
            fields=self._fields,
            since=since,
            until=self._until,
            page_token=page_token,
            page_size=self._page_size,
        )
        http = self._pages.http
        try:
            if self._auth is None:
                self._auth = await self._pages.auth(self._context)
            try:
                return await self._connector.read_page(http, self._auth, request)
            except TokenRejected:
                self._auth = await self._pages.auth(self._context, force=True)
                return await self._connector.read_page(http, self._auth, request)
        except TokenRejected:
            raise ApplicationError(
                f"{self._context.provider} rejected the refreshed token of connection "
                f"{self._context.connection_id}: reconnect it",
                type=CREDENTIALS_REFUSED,
                non_retryable=True,
            ) from None
        except ProviderUnavailable as error:
            raise ApplicationError(
                str(error),
                type="ProviderUnavailable",
                next_retry_delay=timedelta(seconds=error.retry_after)
                if error.retry_after
                else None,
            ) from None
        except PageTokenExpired:
            raise
        except ProviderRequestError as error:
            raise ApplicationError(
                str(error), type=PROVIDER_REQUEST_ERROR, non_retryable=True
            ) from None


def _newest(connector: Connector, records: list[dict[str, Any]]) -> datetime | None:
    newest: datetime | None = None
    for raw in records:
        moment = connector.modified_time(raw)
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    return newest
