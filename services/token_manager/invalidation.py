"""How a shard hears of every credential change, on any shard, the moment it commits.

Every transaction that changes a connection's credentials (store, replace, exchange,
refresh, revoke, delete…) also, in the same transaction, writes the connection's row in
`token_cache_debts` (what Redis is owed) and sends `d <stamp> <connection id>` on the
PostgreSQL channel `ampmesh_token_credentials`; PostgreSQL delivers it on commit, to every
shard listening. Once a shard has brought Redis up to date for it, it deletes that row and
sends `c <stamp> <connection id>`.

Each shard listens on a dedicated connection (not one of its pool's) and:

- on `d`, drops its memory copy older than the stamp (store.MemoryCache.invalidate), so a
  connection the edge moves to another shard is never served from the old shard's memory
  after the change, and remembers that Redis may hold an older copy (`owed`);
- on `c`, forgets that debt, so Redis serves the connection again;
- on connecting, after LISTEN, reads every debt on that same connection: PostgreSQL sends
  a notification only between queries, so the snapshot and the notifications after it
  follow each other with no gap;
- when the connection is lost (PostgreSQL restarted, a network cut: noticed by the
  connection's end or a keep-alive query), it cannot know what it missed, so it empties
  its memory and trusts neither memory nor Redis (PostgreSQL only) until it listens again.

A shard that just started reads the same snapshot before it serves, so a debt left by a
shard killed between its commit and its Redis write, or by a change made while Redis was
down, keeps that connection off Redis everywhere until a shard settles it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import asyncpg

from services.runtime.logs import get_logger
from services.token_manager.memory import MemoryCache
from services.token_manager.telemetry import token_metrics

_log = get_logger("ampmesh.token_manager.invalidation")

CHANNEL = "ampmesh_token_credentials"
CHANGED = "d"
SETTLED = "c"


def message(kind: str, stamp: str, connection_id: str) -> str:
    return f"{kind} {stamp} {connection_id}"


class Listener:
    """This shard's ear on credential changes; see the module's docstring."""

    def __init__(
        self,
        database_url: str,
        memory: MemoryCache,
        *,
        name: str = "token-manager",
        keepalive_seconds: float = 5.0,
        retry_after: float = 0.2,
        max_retry_after: float = 5.0,
    ) -> None:
        self.database_url = database_url
        self.memory = memory
        # Its session's application_name: how an operator (or a test) finds it.
        self.application_name = f"{name} invalidations"
        self.keepalive_seconds = keepalive_seconds
        self.retry_after = retry_after
        self.max_retry_after = max_retry_after
        # Connection id -> the newest stamp Redis may not hold yet.
        self.owed: dict[str, str] = {}
        self._listening = False
        # (connection id, stamp) -> resolved when this shard hears that change; what a
        # writer waits on after its commit (see `expect`).
        self._expected: dict[tuple[str, str], tuple[float, asyncio.Future[None]]] = {}
        self._first = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.memory.enabled = False
        token_metrics().listening.set(0)

    @property
    def listening(self) -> bool:
        return self._listening

    def trusts_redis(self, connection_id: str) -> bool:
        """Whether Redis's copy of the connection (if any) may be served."""
        return self._listening and connection_id not in self.owed

    def expect(self, connection_id: str, stamp: str) -> None:
        """Before a change commits: `heard` will wait for its notification. PostgreSQL
        hands a notification to every listening session at once, so once this shard has
        heard its own change, the other shards' copies are on their way: a writer that
        waits for it answers after the change is out, not merely committed."""
        if not self._listening:
            return
        now = time.monotonic()
        while self._expected:
            # Changes that rolled back are never heard: forget them after a while.
            key, (at, _) = next(iter(self._expected.items()))
            if now - at < 10.0:
                break
            del self._expected[key]
        future = asyncio.get_running_loop().create_future()
        self._expected[(connection_id, stamp)] = (now, future)

    async def heard(self, connection_id: str, stamp: str, within: float = 1.0) -> None:
        """After the commit: until this shard heard the change (at most `within`)."""
        entry = self._expected.get((connection_id, stamp))
        if entry is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await asyncio.shield(entry[1])
        self._expected.pop((connection_id, stamp), None)

    async def start(self, within: float) -> None:
        """Starts listening; raises TimeoutError when the first LISTEN takes longer than
        within (the shard still starts: it listens once PostgreSQL lets it)."""
        self._task = asyncio.create_task(self._run(), name="credential invalidations")
        async with asyncio.timeout(within):
            await self._first.wait()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        wait = self.retry_after
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self.database_url,
                    timeout=5,
                    server_settings={"application_name": self.application_name},
                )
                lost = asyncio.Event()
                connection.add_termination_listener(_setter(lost))
                await connection.add_listener(CHANNEL, self._heard)
                rows = await connection.fetch("SELECT connection_id, stamp FROM token_cache_debts")
                self.owed = {row["connection_id"]: row["stamp"] for row in rows}
                # Whatever memory held was read before this LISTEN: changes may have been
                # missed in between.
                self.memory.clear()
                self.memory.enabled = True
                self._listening = True
                self._first.set()
                token_metrics().listening.set(1)
                _log.info("listening for credential changes", owed=len(self.owed))
                wait = self.retry_after
                await self._watch(connection, lost)
            except asyncio.CancelledError:
                self._deaf()
                if connection is not None:
                    connection.terminate()
                raise
            except Exception as error:
                if self._listening:
                    _log.warning("lost the credential change channel", error=type(error).__name__)
            self._deaf()
            if connection is not None:
                connection.terminate()
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.max_retry_after)

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Returns (or raises) once the connection is gone: its end noticed, or a
        keep-alive query that fails or does not answer (a silent network cut)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.keepalive_seconds):
                    await lost.wait()
            if lost.is_set() or connection.is_closed():
                raise ConnectionError("the listening connection ended")
            await connection.fetchval("SELECT 1", timeout=self.keepalive_seconds)

    def _deaf(self) -> None:
        if self._listening:
            _log.warning("not hearing credential changes: serving from PostgreSQL only")
        self._listening = False
        self.memory.enabled = False
        self.memory.clear()
        self.owed.clear()
        for _, future in self._expected.values():
            if not future.done():
                future.set_result(None)  # nothing more will be heard: do not wait
        self._expected.clear()
        token_metrics().listening.set(0)

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        kind, _, rest = payload.partition(" ")
        stamp, _, connection_id = rest.partition(" ")
        if not connection_id:
            return
        if kind == CHANGED:
            token_metrics().invalidations.inc()
            self.memory.invalidate(connection_id, stamp)
            if self.owed.get(connection_id, "") < stamp:
                self.owed[connection_id] = stamp
            expected = self._expected.get((connection_id, stamp))
            if expected is not None and not expected[1].done():
                expected[1].set_result(None)
        elif kind == SETTLED and self.owed.get(connection_id, stamp) <= stamp:
            self.owed.pop(connection_id, None)


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _connection: event.set()
