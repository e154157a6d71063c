"""Proxy calls per (project, status class, minute), kept in PostgreSQL for the metrics
service (`proxy_call_counts`, migration 0014_metrics).

The access log stream (access_metrics.py) adds each call here: one dict increment, no
I/O, on the per-call path. A task flushes what was added every FLUSH_SECONDS in one
statement that adds to the stored counts (an upsert), so several apis add to the same
rows. What a flush could not store (the database down) is kept and added to the next;
what an api holds when it dies (at most a few seconds of calls) is lost: these are
metrics, not billing. Only calls tagged with a project id (a UUID) are kept; past
MAX_PENDING distinct keys between flushes, further new keys are dropped.
Rows older than RETENTION are pruned, at most once an hour, by whichever api flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from services.runtime.database import is_uuid
from services.runtime.logs import get_logger

_log = get_logger("ampmesh.proxy.rollup")

FLUSH_SECONDS = 5.0
MAX_PENDING = 10_000
# Longer than the longest window GetProjectMetrics answers (31 days).
RETENTION = timedelta(days=35)
PRUNE_SECONDS = 3600.0

_UPSERT = """
INSERT INTO proxy_call_counts (project_id, status_class, minute, calls)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[])
ON CONFLICT (project_id, minute, status_class)
DO UPDATE SET calls = proxy_call_counts.calls + EXCLUDED.calls
"""

_PRUNE = "DELETE FROM proxy_call_counts WHERE minute < $1"


class CallRollup:
    def __init__(self, pool: asyncpg.Pool, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.pool = pool
        self.flush_seconds = flush_seconds
        # (project, status class, minute as unix seconds) -> calls not yet stored.
        self.pending: dict[tuple[str, str, int], int] = {}
        self._known: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._pruned_at = 0.0

    def add(self, project: str, status_class: str) -> None:
        """Count one call (the per-call path: no I/O)."""
        if project not in self._known:
            if not is_uuid(project):
                return
            if len(self._known) < MAX_PENDING:
                self._known.add(project)
        key = (project, status_class, int(time.time()) // 60 * 60)
        pending = self.pending
        if key in pending:
            pending[key] += 1
        elif len(pending) < MAX_PENDING:
            pending[key] = 1

    def ensure_running(self) -> None:
        """Start the flushing task (from the event loop the stream is served on)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="proxy call rollup")

    async def flush(self) -> None:
        if not self.pending:
            return
        taken, self.pending = self.pending, {}
        try:
            await self.pool.execute(
                _UPSERT,
                [key[0] for key in taken],
                [key[1] for key in taken],
                [datetime.fromtimestamp(key[2], UTC) for key in taken],
                list(taken.values()),
            )
        except BaseException:
            # Put them back for the next flush, added to what came meanwhile.
            for key, calls in taken.items():
                self.pending[key] = self.pending.get(key, 0) + calls
            raise
        if time.monotonic() - self._pruned_at > PRUNE_SECONDS:
            self._pruned_at = time.monotonic()
            await self.pool.execute(_PRUNE, datetime.now(UTC) - RETENTION)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # kept for the next flush
                _log.warning("proxy call rollup flush failed", error_type=type(error).__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()
