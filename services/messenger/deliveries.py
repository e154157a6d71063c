"""The delivery engine: records deliveries durably, sends them, retries them, and holds
those of endpoints that keep failing. One `Deliverer` per process; the consumers
(consumers.py) and MessengerService (service.py) use it.

Life of a delivery (webhook_deliveries, migration 0007):
- `record` inserts it (ON CONFLICT DO NOTHING on its derived id, so a redelivered event
  adds nothing) before the event is acked. A fresh row is leased to this process and
  sent at once, unless too many sends are already queued here: then it is left unleased
  for the poller, so memory stays bounded and nothing waits on poll latency normally.
- Sending (sending.py): the destination's URL, headers and signing key, one signed POST.
- Each attempt's outcome is written in batches, one transaction per batch (outcomes.py):
  the attempt row, the delivery's new status as the retry decision says (retry.py:
  SUCCEEDED, RETRYING at a time, or FAILED), the endpoint's failure run, which may disable
  the endpoint and hold its deliveries. Replay sends failed ones again.
- The poller claims due rows (PENDING/RETRYING whose time came and whose lease ended)
  with FOR UPDATE SKIP LOCKED and a lease: processes cooperate, and rows a killed process
  held are taken over once its lease ends.

Per delivery the hot path costs no query of its own: inserts, claims and outcomes are
batched, and destinations are cached (sending.TARGET_TTL).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
from opentelemetry import context as otel_context

from services.messenger.batcher import Batcher
from services.messenger.outcomes import Completion, Outcomes
from services.messenger.rows import (
    JOB_COLUMNS,
    PENDING,
    Job,
    NewDelivery,
)
from services.messenger.sending import Attempt, Sender, Target
from services.messenger.settings import MessengerSettings
from services.messenger.telemetry import messenger_metrics
from services.runtime import tracing
from services.runtime.events import EventBus
from services.runtime.logs import get_logger
from services.runtime.secretbox import SecretBox

_log = get_logger("ampmesh.messenger")


class Deliverer:
    """Records, claims and sends deliveries (one per process); sending.py makes the
    attempts and outcomes.py records them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        bus: EventBus,
        settings: MessengerSettings,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.metrics = messenger_metrics()
        self.sender = Sender(pool, box, settings, self.metrics)
        self.outcomes = Outcomes(pool, bus, settings, self.metrics)
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._destination_slots: dict[str, asyncio.Semaphore] = {}
        self._sends: set[asyncio.Task[None]] = set()
        self._claimed: set[str] = set()  # delivery ids this process is sending
        # With tracing on: the trace context of each delivery being recorded (its event's
        # consume span), so its first attempt continues the event's trace.
        self._parents: dict[str, Any] = {}
        self._wake = asyncio.Event()
        self._inserts: Batcher[NewDelivery, str] = Batcher(self._insert, 500)
        self._completions: Batcher[Completion, None] = Batcher(self.outcomes.record, 500)
        self._poller: asyncio.Task[None] | None = None

    # --- lifecycle ---

    async def start(self) -> None:
        self._inserts.start()
        self._completions.start()
        self._poller = asyncio.create_task(self._poll(), name="delivery poller")

    async def stop(self) -> None:
        """Stop polling and sending. Unsent deliveries keep their rows: another process
        (or this one restarted) takes them over once their lease ends."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for task in list(self._sends):
            task.cancel()
        await asyncio.gather(*self._sends, return_exceptions=True)
        await self._inserts.stop()
        await self._completions.stop()
        await self.sender.close()

    def kick(self) -> None:
        """Look for due deliveries now."""
        self._wake.set()

    async def idle(self) -> None:
        """Wait until no send of this process is in flight (tests and benchmarks)."""
        while self._sends:
            await asyncio.gather(*list(self._sends), return_exceptions=True)

    # --- recording ---

    async def record(self, delivery: NewDelivery) -> str:
        """Record the delivery (durably, before its event is acked) and send it at once
        when it is new; returns its status after recording (an old row's is unchanged)."""
        if tracing.TRACER is not None:
            self._parents[delivery.id] = otel_context.get_current()
        try:
            status = await self._inserts.submit(delivery)
        finally:
            self._parents.pop(delivery.id, None)
        if status:
            self.metrics.recorded.labels(delivery.kind).inc()
        return status or "existing"

    async def _insert(self, batch: list[NewDelivery]) -> list[str]:
        immediate = len(self._sends) < self.settings.max_queued_sends
        columns: list[list[Any]] = [[] for _ in range(11)]
        for d in batch:
            for column, value in zip(
                columns,
                (
                    d.id,
                    d.project_id,
                    d.destination_id,
                    d.kind,
                    d.event_type,
                    d.event_id,
                    d.operation_id,
                    d.installation_id,
                    d.object_name,
                    d.record_count,
                    d.body,
                ),
                strict=True,
            ):
                column.append(value)
        async with self.pool.acquire() as connection:
            rows = await connection.fetch(
                """
                INSERT INTO webhook_deliveries AS d (id, project_id, destination_id, kind,
                    event_type, event_id, operation_id, installation_id, object_name,
                    record_count, body, status, next_attempt_at, retry_deadline, lease_until)
                SELECT n.id, n.project_id, n.destination_id, n.kind, n.event_type,
                    n.event_id, n.operation_id, n.installation_id, n.object_name,
                    n.record_count, n.body,
                    CASE WHEN e.state = 'disabled' THEN 'held' ELSE 'pending' END,
                    CASE WHEN e.state = 'disabled' THEN NULL ELSE now() END,
                    now() + make_interval(secs => $12),
                    CASE WHEN $14 AND e.state IS DISTINCT FROM 'disabled'
                         THEN now() + make_interval(secs => $13) END
                FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                    $6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::bytea[])
                    AS n (id, project_id, destination_id, kind, event_type, event_id,
                          operation_id, installation_id, object_name, record_count, body)
                LEFT JOIN webhook_endpoints e ON e.destination_id = n.destination_id
                ON CONFLICT (id) DO NOTHING
                RETURNING d.status, """  # noqa: S608 (constant column names)
                + JOB_COLUMNS,
                *columns,
                self.settings.max_age,
                self.settings.lease,
                immediate,
            )
        inserted = {row["id"]: row for row in rows}
        for row in rows:
            if immediate and row["status"] == PENDING:
                self._spawn(Job.of(row), self._parents.get(row["id"]))
        return [inserted[d.id]["status"] if d.id in inserted else "" for d in batch]

    # --- sending ---

    def _spawn(self, job: Job, parent: Any = None) -> None:
        if job.id in self._claimed:
            return
        self._claimed.add(job.id)
        task = asyncio.create_task(self._send(job, parent))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, job: Job, parent: Any = None) -> None:
        try:
            slots = self._destination_slots.get(job.destination_id)
            if slots is None:
                slots = self._destination_slots[job.destination_id] = asyncio.Semaphore(
                    self.settings.max_concurrency_per_destination
                )
            async with slots, self._slots:
                target = await self.sender.target(job.destination_id)
                if target is None:
                    return  # deleted: its deliveries went with it (foreign key)
                attempt = await self.sender.attempt(target, job.id, job.body, parent=parent)
            await self._completions.submit(Completion(job, attempt))
        except asyncio.CancelledError:
            raise
        except Exception:
            # The row keeps its lease; the poller retries it once the lease ends.
            _log.exception("delivery attempt could not be recorded", delivery_id=job.id)
        finally:
            self._claimed.discard(job.id)

    # --- the poller ---

    async def _poll(self) -> None:
        while True:
            try:
                free = self.settings.max_queued_sends - len(self._sends)
                if free > 0:
                    for job, held in await self.claim(free):
                        if held:
                            await self._completions.submit(Completion(job, None))
                        else:
                            self._spawn(job)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning("cannot claim due deliveries", error=type(error).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    async def claim(self, limit: int) -> list[tuple[Job, bool]]:
        """Lease up to limit due deliveries to this process; (job, endpoint disabled)."""
        rows = await self.pool.fetch(
            f"""
            WITH due AS (
                SELECT id FROM webhook_deliveries
                WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
                  AND (lease_until IS NULL OR lease_until < now())
                ORDER BY next_attempt_at LIMIT $1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE webhook_deliveries d SET lease_until = now() + make_interval(secs => $2)
            FROM due WHERE d.id = due.id
            RETURNING {JOB_COLUMNS},
                coalesce((SELECT e.state = 'disabled' FROM webhook_endpoints e
                          WHERE e.destination_id = d.destination_id), false) AS held
            """,  # noqa: S608 (column names are constants)
            limit,
            self.settings.lease,
        )
        return [(Job.of(row), row["held"]) for row in rows if row["id"] not in self._claimed]

    async def send_now(self, job: Job, *, held: bool = False) -> None:
        """Attempt a delivery this process just leased (or hold it) and wait for the
        outcome to be recorded."""
        if held:
            await self._completions.submit(Completion(job, None))
            return
        if job.id in self._claimed:
            return  # already in flight here
        self._claimed.add(job.id)
        await self._send(job)

    # --- what the service asks of sending ---

    async def target(self, destination_id: str) -> Target | None:
        """The destination as it is sent to (cached; see sending.Sender.target)."""
        return await self.sender.target(destination_id)

    async def attempt(
        self, target: Target, message_id: str, body: bytes, wait_for: float | None = None
    ) -> Attempt:
        """One signed POST of body (see sending.Sender.attempt)."""
        return await self.sender.attempt(target, message_id, body, wait_for)

    def forget_target(self, destination_id: str) -> None:
        """Re-read a destination on its next send (after EnableEndpoint or an edit)."""
        self.sender.forget_target(destination_id)
