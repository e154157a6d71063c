"""A read's pages in PostgreSQL (read_pages, migration 0010): the durable state a read
resumes from and is confirmed against.

read_pages writes a row for each page once Pub/Sub has acknowledged every part of it
and every page before it: the cursor the page was fetched from, the cursor after it and
how many messages it made. A retried call (its worker killed) starts after the newest
row: Temporal's heartbeat details cannot be trusted for that, as the SDK sends them at
most every 80% of the heartbeat timeout (8 s) and a process killed in between loses the
rest. Rows are written in batches by one writer per call, never more than one write at
a time, so the page path does not wait on PostgreSQL and a batch costs one statement.

confirm_read compares the rows' parts with what messenger recorded, and fetches again
the pages messenger never recorded from their rows' cursors. close_read deletes them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from services.runtime.db_errors import unavailable

_INSERT = """
    INSERT INTO read_pages
        (operation_id, page_number, project_id, cursor, next_cursor, page_size, parts, records,
         last_page)
    SELECT $1, p.number, $2::uuid, p.cursor, p.next_cursor, $3, p.parts, p.records, p.last_page
    FROM unnest($4::integer[], $5::bytea[], $6::bytea[], $7::integer[], $8::integer[],
                $9::boolean[]) AS p(number, cursor, next_cursor, parts, records, last_page)
    ON CONFLICT (operation_id, page_number) DO UPDATE SET
        cursor = EXCLUDED.cursor, next_cursor = EXCLUDED.next_cursor,
        parts = EXCLUDED.parts, records = EXCLUDED.records, last_page = EXCLUDED.last_page
"""
_NEWEST = """
    SELECT page_number, next_cursor FROM read_pages
    WHERE operation_id = $1 ORDER BY page_number DESC LIMIT 1
"""
_TOTALS = """
    SELECT count(*) AS pages, coalesce(sum(parts), 0) AS parts FROM read_pages
    WHERE operation_id = $1
"""
_PAGES = """
    SELECT page_number, cursor, page_size, parts, last_page FROM read_pages
    WHERE operation_id = $1 AND parts > 0 ORDER BY page_number
"""
_PARTS = "UPDATE read_pages SET parts = $3 WHERE operation_id = $1 AND page_number = $2"
_FORGET = "DELETE FROM read_pages WHERE operation_id = $1"


@dataclass(frozen=True)
class PageRow:
    """A page on the bus: where it was fetched from, where the read goes on from."""

    number: int
    cursor: bytes
    next_cursor: bytes
    parts: int
    records: int
    last: bool


@dataclass(frozen=True)
class StoredPage:
    """A published page as confirm_read reads it back."""

    number: int
    cursor: target_pb2.ReadCursor
    page_size: int
    parts: int
    last: bool


class ReadPages:
    """The read_pages table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def newest(self, operation_id: str) -> target_pb2.ReadCursor | None:
        """The cursor after the operation's newest page on the bus; None before its first."""
        row = await self._pool.fetchrow(_NEWEST, operation_id)
        if row is None:
            return None
        cursor = target_pb2.ReadCursor()
        cursor.ParseFromString(row["next_cursor"])
        return cursor

    async def record(
        self, operation_id: str, project_id: str, page_size: int, rows: list[PageRow]
    ) -> None:
        await self._pool.execute(
            _INSERT,
            operation_id,
            project_id,
            page_size,
            [r.number for r in rows],
            [r.cursor for r in rows],
            [r.next_cursor for r in rows],
            [r.parts for r in rows],
            [r.records for r in rows],
            [r.last for r in rows],
        )

    async def totals(self, operation_id: str) -> tuple[int, int]:
        """Pages, and messages (parts), the operation has on the bus."""
        row = await self._pool.fetchrow(_TOTALS, operation_id)
        return int(row["pages"]), int(row["parts"])

    async def published(self, operation_id: str) -> list[StoredPage]:
        """The operation's pages that carried records, in order."""
        pages = []
        for row in await self._pool.fetch(_PAGES, operation_id):
            cursor = target_pb2.ReadCursor()
            cursor.ParseFromString(row["cursor"])
            pages.append(
                StoredPage(
                    row["page_number"], cursor, row["page_size"], row["parts"], row["last_page"]
                )
            )
        return pages

    async def set_parts(self, operation_id: str, number: int, parts: int) -> None:
        """A page published again split differently (its records changed since)."""
        await self._pool.execute(_PARTS, operation_id, number, parts)

    async def forget(self, operation_id: str) -> None:
        await self._pool.execute(_FORGET, operation_id)


# Settled pages whose rows may wait to be written before the read stops fetching.
MAX_UNWRITTEN = 8
# How long a write of settled pages waits for PostgreSQL to come back before the call fails.
WRITE_PATIENCE = 30.0


class PageRecorder:
    """Writes one call's settled pages, in batches, one write at a time, in order."""

    def __init__(
        self, pages: ReadPages, operation_id: str, project_id: str, page_size: int
    ) -> None:
        self._pages = pages
        self._operation_id = operation_id
        self._project_id = project_id
        self._page_size = page_size
        self._waiting: list[PageRow] = []
        self._wake = asyncio.Event()
        self._written = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def add(self, row: PageRow) -> None:
        """Queue a settled page's row. Waits while more than MAX_UNWRITTEN rows wait, and
        fails as soon as a write has failed: a read must never run far ahead of what a
        retried call can resume from (PostgreSQL down for ten seconds once let a read fetch
        eighty pages it then read again)."""
        self._raise_if_failed()
        self._waiting.append(row)
        self._wake.set()
        while len(self._waiting) > MAX_UNWRITTEN and self._task is not None:
            self._written.clear()
            written = asyncio.ensure_future(self._written.wait())
            await asyncio.wait({written, self._task}, return_when=asyncio.FIRST_COMPLETED)
            written.cancel()
            self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._task is not None and self._task.done() and not self._task.cancelled():
            failure = self._task.exception()
            if failure is not None:
                raise failure

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._waiting = self._waiting, []
            if batch:
                # The upsert is idempotent, so a PostgreSQL restart (the supervisor brings
                # it back within seconds) is waited out here, the read held meanwhile by
                # add(), rather than failing the call: a retried call would fetch again
                # every page settled since the last row written.
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(unavailable),
                    wait=wait_exponential(multiplier=0.2, max=2.0),
                    stop=stop_after_delay(WRITE_PATIENCE),
                    reraise=True,
                ):
                    with attempt:
                        await self._pages.record(
                            self._operation_id, self._project_id, self._page_size, batch
                        )
            self._written.set()
            if self._closing and not self._waiting:
                return

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Writes while the block runs; when it ends normally, everything added is
        written before this returns (a write that fails fails the call)."""
        task = self._task = asyncio.create_task(self._write())
        try:
            yield
        except BaseException:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise
        self._closing = True
        self._wake.set()
        await task
