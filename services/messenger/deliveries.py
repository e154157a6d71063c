"""The delivery engine: records deliveries durably, signs and POSTs them, retries with
backoff, and disables endpoints that keep failing.

Life of a delivery (webhook_deliveries, migration 0007):
- `record` inserts it (ON CONFLICT DO NOTHING on its derived id, so a redelivered event
  adds nothing) before the event is acked. A fresh row is leased to this process and
  sent at once, unless too many sends are already queued here: then it is left unleased
  for the poller, so memory stays bounded and nothing waits on poll latency normally.
- Each attempt's outcome is written in batches (one transaction per batch): the attempt
  row, the delivery's new status, the endpoint's failure run.
- 2xx: SUCCEEDED. Network errors, timeouts, 5xx and 429: RETRYING at an exponential
  backoff with full jitter (or the receiver's Retry-After on 429/503, capped), until the
  next attempt would fall after the delivery's retry deadline (max age): FAILED. Other
  statuses (3xx, 4xx): FAILED at once; the receiver answered, and the same request would
  get the same answer (a 410 Gone is the classic "stop"). Replay sends them again.
- The poller claims due rows (PENDING/RETRYING whose time came and whose lease ended)
  with FOR UPDATE SKIP LOCKED and a lease: processes cooperate, and rows a killed process
  held are taken over once its lease ends.
- An endpoint failing continuously for `disable_after` with at least
  `disable_min_failures` failures in a row is disabled: its waiting deliveries become
  HELD, and `destination.webhook.disabled` is staged in the event outbox in the same
  transaction. `enable_endpoint` resumes (or discards) what was held.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

import aiohttp
import asyncpg
from ampmesh.events.v1 import notifications_pb2
from ampmesh.messenger.v1 import messenger_pb2 as pb

from services.domain.destination_secrets import SIGNING_KEY, open_secrets
from services.domain.webhook_urls import WebhookUrlPolicy, webhook_url_problem
from services.messenger.settings import MessengerSettings
from services.messenger.signing import signature_headers, signing_key
from services.messenger.telemetry import messenger_metrics
from services.runtime.events import EventBus, new_envelope
from services.runtime.logs import get_logger
from services.runtime.secretbox import SecretBox, SecretBoxError

_log = get_logger("ampmesh.messenger")

READ_RESULT, NOTIFICATION = "read_result", "notification"
PENDING, RETRYING, SUCCEEDED, FAILED, HELD = "pending", "retrying", "succeeded", "failed", "held"
DISABLED = "disabled"
RESPONSE_HEAD = 1024  # bytes of a receiver's answer kept per attempt
USER_AGENT = "ampmesh-webhooks/1"
# How long a destination's URL, headers and opened key are reused before re-reading them
# (and re-checking the URL's addresses): edits apply within this, without a query and an
# AES-GCM open per delivery.
TARGET_TTL = 5.0
_RETRYABLE = frozenset(
    {
        pb.ATTEMPT_OUTCOME_RATE_LIMITED,
        pb.ATTEMPT_OUTCOME_SERVER_ERROR,
        pb.ATTEMPT_OUTCOME_TIMEOUT,
        pb.ATTEMPT_OUTCOME_NETWORK_ERROR,
    }
)
_OUTCOME_NAMES = {
    value.number: value.name.removeprefix("ATTEMPT_OUTCOME_").lower()
    for value in pb.AttemptOutcome.DESCRIPTOR.values
}

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Gathers items submitted concurrently and hands them to `flush` together: while one
    batch is written, the next accumulates, so a busy process writes big batches and an
    idle one writes at once."""

    def __init__(self, flush: Callable[[list[T]], Awaitable[list[R]]], max_batch: int) -> None:
        self._flush = flush
        self._max = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future in self._queue:
            future.cancel()
        self._queue.clear()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                try:
                    results = await self._flush([item for item, _ in batch])
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to record (from an event)."""

    id: str
    project_id: str
    destination_id: str
    kind: str
    event_type: str
    event_id: str
    body: bytes
    operation_id: str = ""
    installation_id: str = ""
    object_name: str = ""
    record_count: int = 0


@dataclass(frozen=True)
class Job:
    """A delivery claimed by this process for one attempt."""

    id: str
    project_id: str
    destination_id: str
    kind: str
    body: bytes
    attempt_count: int
    trigger: int
    retry_deadline: datetime
    record_count: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> Job:
        return cls(
            id=row["id"],
            project_id=str(row["project_id"]),
            destination_id=str(row["destination_id"]),
            kind=row["kind"],
            body=row["body"],
            attempt_count=row["attempt_count"],
            trigger=row["next_trigger"],
            retry_deadline=row["retry_deadline"],
            record_count=row["record_count"],
        )


# A Job's columns, of webhook_deliveries AS d.
_JOB_COLUMNS = (
    "d.id, d.project_id, d.destination_id, d.kind, d.body, d.attempt_count, d.next_trigger, "
    "d.retry_deadline, d.record_count"
)


@dataclass(frozen=True)
class Target:
    """A destination as messenger sends to it."""

    id: str
    project_id: str
    name: str
    url: str
    headers: dict[str, str]
    key: bytes | None
    # Why it cannot be called now (URL refused, no signing key); None when it can.
    problem: str | None
    expires: float


@dataclass
class Attempt:
    """How one HTTP attempt went."""

    outcome: int
    started: datetime
    duration: float
    status_code: int = 0
    response_body: str = ""
    retry_after: float | None = None
    error: str = ""
    url: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Completion:
    job: Job
    attempt: Attempt | None  # None: held, not attempted


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (delay-seconds or an HTTP date) in seconds; None when absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def outcome_of(status: int) -> int:
    if 200 <= status < 300:
        return pb.ATTEMPT_OUTCOME_SUCCESS
    if status == 429:
        return pb.ATTEMPT_OUTCOME_RATE_LIMITED
    if status >= 500:
        return pb.ATTEMPT_OUTCOME_SERVER_ERROR
    return pb.ATTEMPT_OUTCOME_CLIENT_ERROR


class Deliverer:
    """Records, sends and retries deliveries (one per process)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        bus: EventBus,
        settings: MessengerSettings,
    ) -> None:
        self.pool = pool
        self.box = box
        self.bus = bus
        self.settings = settings
        # The settings carry the deployment's two URL rules.
        self.policy: WebhookUrlPolicy = settings
        # Made on first use, inside the running loop (aiohttp binds a session to it).
        self._http: aiohttp.ClientSession | None = None
        self.metrics = messenger_metrics()
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._destination_slots: dict[str, asyncio.Semaphore] = {}
        self._targets: dict[str, Target] = {}
        self._sends: set[asyncio.Task[None]] = set()
        self._claimed: set[str] = set()  # delivery ids this process is sending
        self._wake = asyncio.Event()
        self._inserts: Batcher[NewDelivery, str] = Batcher(self._insert, 500)
        self._completions: Batcher[_Completion, None] = Batcher(self._complete, 500)
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
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        """The webhook client. aiohttp rather than httpx: per POST of a 100 KB body it
        costs a tenth of httpx's CPU at our concurrency (httpcore scans every pooled
        connection on each request), and sending is most of what messenger does."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.settings.max_concurrency),
                headers={"user-agent": USER_AGENT},
                # A receiver's answer is kept as it came (its first bytes), not inflated.
                auto_decompress=False,
                # Receivers' cookies are not carried from one delivery to the next.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._http

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
        status = await self._inserts.submit(delivery)
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
                + _JOB_COLUMNS,
                *columns,
                self.settings.max_age,
                self.settings.lease,
                immediate,
            )
        inserted = {row["id"]: row for row in rows}
        for row in rows:
            if immediate and row["status"] == PENDING:
                self._spawn(Job.of(row))
        return [inserted[d.id]["status"] if d.id in inserted else "" for d in batch]

    # --- sending ---

    def _spawn(self, job: Job) -> None:
        if job.id in self._claimed:
            return
        self._claimed.add(job.id)
        task = asyncio.create_task(self._send(job))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, job: Job) -> None:
        try:
            slots = self._destination_slots.get(job.destination_id)
            if slots is None:
                slots = self._destination_slots[job.destination_id] = asyncio.Semaphore(
                    self.settings.max_concurrency_per_destination
                )
            async with slots, self._slots:
                target = await self.target(job.destination_id)
                if target is None:
                    return  # deleted: its deliveries went with it (foreign key)
                attempt = await self.attempt(target, job.id, job.body)
            await self._completions.submit(_Completion(job, attempt))
        except asyncio.CancelledError:
            raise
        except Exception:
            # The row keeps its lease; the poller retries it once the lease ends.
            _log.exception("delivery attempt could not be recorded", delivery_id=job.id)
        finally:
            self._claimed.discard(job.id)

    async def target(self, destination_id: str) -> Target | None:
        """The destination's URL, headers and key (cached for TARGET_TTL seconds)."""
        cached = self._targets.get(destination_id)
        now = time.monotonic()
        if cached is not None and cached.expires > now:
            return cached
        row = await self.pool.fetchrow(
            "SELECT id, project_id, name, type, metadata, secrets_sealed, secrets_key_id "
            "FROM destinations WHERE id = $1::uuid",
            destination_id,
        )
        if row is None:
            self._targets.pop(destination_id, None)
            return None
        metadata = json.loads(row["metadata"]) if row["metadata"] else {}
        url = str(metadata.get("url", ""))
        headers = {str(k): str(v) for k, v in (metadata.get("headers") or {}).items()}
        problem: str | None = None
        key: bytes | None = None
        if row["type"] != "webhook":
            problem = f"destination type {row['type']!r} is not delivered to"
        elif not row["secrets_sealed"]:
            problem = "the destination has no signing key"
        else:
            try:
                secret = open_secrets(
                    self.box, destination_id, row["secrets_key_id"], row["secrets_sealed"]
                )[SIGNING_KEY]
                key = signing_key(secret)
            except (SecretBoxError, KeyError, ValueError):
                problem = "the destination's signing key cannot be opened with this keyring"
        if problem is None:
            why = await webhook_url_problem(url, self.policy)
            if why:
                problem = f"url {why}"
        target = Target(
            id=destination_id,
            project_id=str(row["project_id"]),
            name=row["name"],
            url=url,
            headers=headers,
            key=key,
            problem=problem,
            expires=now + TARGET_TTL,
        )
        self._targets[destination_id] = target
        return target

    async def attempt(
        self, target: Target, message_id: str, body: bytes, wait_for: float | None = None
    ) -> Attempt:
        """One signed POST of body; never raises for the receiver's failures."""
        started = datetime.now(UTC)
        clock = time.perf_counter()
        if target.problem is not None or target.key is None:
            return Attempt(
                outcome=pb.ATTEMPT_OUTCOME_NETWORK_ERROR,
                started=started,
                duration=0.0,
                error=target.problem or "no signing key",
                url=target.url,
            )
        headers = {
            **target.headers,
            "content-type": "application/json",
            **signature_headers(target.key, message_id, int(started.timestamp()), body),
        }
        attempt = Attempt(
            outcome=pb.ATTEMPT_OUTCOME_UNSPECIFIED,
            started=started,
            duration=0.0,
            url=target.url,
            request_headers=headers,
        )
        wait = wait_for if wait_for is not None else self.settings.delivery_timeout
        try:
            async with self._session().post(
                target.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=wait),
                allow_redirects=False,  # a redirect is an answer (CLIENT_ERROR), not a hop
            ) as response:
                head = b""
                while len(head) < RESPONSE_HEAD:
                    chunk = await response.content.read(RESPONSE_HEAD - len(head))
                    if not chunk:
                        break
                    head += chunk
            attempt.status_code = response.status
            attempt.outcome = outcome_of(response.status)
            attempt.response_body = head.decode("utf-8", "replace")
            if response.status in (429, 503):
                attempt.retry_after = retry_after_seconds(
                    response.headers.get("retry-after"), datetime.now(UTC)
                )
        except TimeoutError:
            attempt.outcome = pb.ATTEMPT_OUTCOME_TIMEOUT
            attempt.error = f"no answer within {wait:g} s"
        except aiohttp.ClientError as error:
            attempt.outcome = pb.ATTEMPT_OUTCOME_NETWORK_ERROR
            # The class names the failure; aiohttp's message can carry the URL (and any
            # credentials in it), so it is left out.
            attempt.error = f"cannot reach the receiver ({type(error).__name__})"
        attempt.duration = time.perf_counter() - clock
        self.metrics.attempt_seconds.observe(attempt.duration)
        return attempt

    def backoff(self, attempt_number: int) -> float:
        """Full jitter over first * 2^(n-1), capped: retries of many deliveries spread out
        instead of hitting a recovering receiver together."""
        ceiling = min(
            self.settings.backoff_cap, self.settings.backoff_first * 2 ** (attempt_number - 1)
        )
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not a secret)

    # --- outcomes ---

    async def _complete(self, batch: list[_Completion]) -> list[None]:
        now = datetime.now(UTC)
        updates: list[tuple[Any, ...]] = []
        attempts: list[tuple[Any, ...]] = []
        # destination -> (project, failures after its last success in the batch, success?)
        endpoints: dict[str, tuple[str, int, bool]] = {}
        for done in batch:
            job, attempt = done.job, done.attempt
            if attempt is None:
                updates.append((job.id, HELD, job.attempt_count, None, None, None, 0, "", None))
                continue
            number = job.attempt_count + 1
            kind_outcome = _OUTCOME_NAMES.get(attempt.outcome, "unknown")
            self.metrics.deliveries.labels(job.kind, kind_outcome).inc()
            attempts.append(
                (
                    job.id,
                    number,
                    job.trigger,
                    attempt.started,
                    attempt.duration,
                    attempt.outcome,
                    attempt.status_code,
                    attempt.response_body,
                    attempt.retry_after,
                    attempt.error,
                )
            )
            next_at: datetime | None = None
            completed: datetime | None = None
            if attempt.outcome == pb.ATTEMPT_OUTCOME_SUCCESS:
                status, completed = SUCCEEDED, now
                if job.kind == READ_RESULT:
                    self.metrics.records.inc(job.record_count)
            elif attempt.outcome in _RETRYABLE:
                if attempt.retry_after is not None:
                    delay = min(attempt.retry_after, self.settings.retry_after_cap)
                else:
                    delay = self.backoff(number)
                next_at = now + timedelta(seconds=delay)
                status = RETRYING
                if next_at > job.retry_deadline:
                    status, next_at, completed = FAILED, None, now
            else:
                status, completed = FAILED, now
            updates.append(
                (
                    job.id,
                    status,
                    number,
                    next_at,
                    attempt.url,
                    attempt.started,
                    attempt.status_code,
                    attempt.error or ("" if status == SUCCEEDED else f"HTTP {attempt.status_code}"),
                    completed,
                )
            )
            project, failures, _ = endpoints.get(job.destination_id, (job.project_id, 0, False))
            if attempt.outcome == pb.ATTEMPT_OUTCOME_SUCCESS:
                endpoints[job.destination_id] = (project, 0, True)
            else:
                succeeded = endpoints.get(job.destination_id, (project, 0, False))[2]
                endpoints[job.destination_id] = (project, failures + 1, succeeded)
        async with self.pool.acquire() as connection, connection.transaction():
            if attempts:
                await connection.executemany(
                    """
                    INSERT INTO webhook_delivery_attempts (delivery_id, number, trigger,
                        started_at, duration_seconds, outcome, status_code, response_body,
                        retry_after_seconds, error)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    ON CONFLICT (delivery_id, number) DO NOTHING
                    """,
                    attempts,
                )
            await connection.executemany(
                """
                UPDATE webhook_deliveries SET status = $2, attempt_count = $3,
                    next_attempt_at = $4, url = coalesce($5, url),
                    last_attempt_at = coalesce($6, last_attempt_at),
                    last_status_code = CASE WHEN $6::timestamptz IS NULL
                        THEN last_status_code ELSE $7 END,
                    last_error = CASE WHEN $6::timestamptz IS NULL THEN last_error ELSE $8 END,
                    completed_at = $9, lease_until = NULL, next_trigger = 1
                WHERE id = $1
                """,
                updates,
            )
            for destination_id, (project, failures, succeeded) in endpoints.items():
                await self._endpoint_outcome(
                    connection, destination_id, project, failures, succeeded
                )
        return [None] * len(batch)

    async def _endpoint_outcome(
        self,
        connection: asyncpg.Connection,
        destination_id: str,
        project_id: str,
        failures: int,
        succeeded: bool,
    ) -> None:
        """Apply a batch's attempts to the endpoint: `failures` failed attempts after its
        last success in the batch (if any)."""
        if succeeded:
            # Most batches of a healthy endpoint change nothing: write only when they do,
            # or when last_success_at is a second stale.
            await connection.execute(
                """
                INSERT INTO webhook_endpoints (destination_id, project_id, last_success_at)
                VALUES ($1::uuid, $2::uuid, now())
                ON CONFLICT (destination_id) DO UPDATE SET last_success_at = now(),
                    consecutive_failures = 0, failing_since = NULL, updated_at = now(),
                    state = CASE WHEN webhook_endpoints.state = 'failing' THEN 'enabled'
                        ELSE webhook_endpoints.state END
                WHERE webhook_endpoints.consecutive_failures > 0
                   OR webhook_endpoints.state = 'failing'
                   OR webhook_endpoints.last_success_at IS NULL
                   OR webhook_endpoints.last_success_at < now() - interval '1 second'
                """,
                destination_id,
                project_id,
            )
        if not failures:
            return
        row = await connection.fetchrow(
            """
            INSERT INTO webhook_endpoints AS e (destination_id, project_id, state,
                consecutive_failures, failing_since, last_failure_at)
            VALUES ($1::uuid, $2::uuid, 'failing', $3, now(), now())
            ON CONFLICT (destination_id) DO UPDATE SET
                consecutive_failures = e.consecutive_failures + $3,
                failing_since = coalesce(e.failing_since, now()),
                last_failure_at = now(), updated_at = now(),
                state = CASE WHEN e.state = 'disabled' THEN 'disabled' ELSE 'failing' END
            RETURNING state, consecutive_failures, failing_since
            """,
            destination_id,
            project_id,
            failures,
        )
        assert row is not None
        failing_for = (datetime.now(UTC) - row["failing_since"]).total_seconds()
        if (
            row["state"] != DISABLED
            and row["consecutive_failures"] >= self.settings.disable_min_failures
            and failing_for >= self.settings.disable_after
        ):
            await self._disable(
                connection,
                destination_id,
                f"failing for {_human(failing_for)} "
                f"({row['consecutive_failures']} failed attempts in a row)",
            )

    async def _disable(
        self, connection: asyncpg.Connection, destination_id: str, reason: str
    ) -> None:
        disabled = await connection.fetchrow(
            """
            UPDATE webhook_endpoints SET state = 'disabled', disabled_at = now(),
                disable_reason = $2, updated_at = now()
            WHERE destination_id = $1::uuid AND state <> 'disabled'
            RETURNING project_id, disabled_at
            """,
            destination_id,
            reason,
        )
        if disabled is None:
            return
        await connection.execute(
            "UPDATE webhook_deliveries SET status = 'held', next_attempt_at = NULL "
            "WHERE destination_id = $1::uuid AND status IN ('pending', 'retrying')",
            destination_id,
        )
        destination = await connection.fetchrow(
            "SELECT name, metadata FROM destinations WHERE id = $1::uuid", destination_id
        )
        name = destination["name"] if destination else ""
        url = json.loads(destination["metadata"]).get("url", "") if destination else ""
        project_id = str(disabled["project_id"])
        notification = notifications_pb2.Notification(
            destination_webhook_disabled=notifications_pb2.DestinationWebhookDisabledNotification(
                notification_type="destination.webhook.disabled",
                data=notifications_pb2.DestinationWebhookDisabledData(
                    project_id=project_id,
                    destination_id=destination_id,
                    destination_name=name,
                    url=url,
                ),
            )
        )
        await self.bus.stage(
            connection,
            new_envelope(
                project_id=project_id,
                idempotency_key=(
                    f"destination.webhook.disabled/{destination_id}/"
                    f"{disabled['disabled_at'].isoformat()}"
                ),
                source="messenger",
                notification=notification,
            ),
        )
        # Published once this transaction commits (the relay also polls).
        asyncio.get_running_loop().call_soon(self.bus.kick)
        _log.warning("webhook endpoint disabled", destination_id=destination_id, reason=reason)

    # --- the poller ---

    async def _poll(self) -> None:
        while True:
            try:
                free = self.settings.max_queued_sends - len(self._sends)
                if free > 0:
                    for job, held in await self.claim(free):
                        if held:
                            await self._completions.submit(_Completion(job, None))
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
            RETURNING {_JOB_COLUMNS},
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
            await self._completions.submit(_Completion(job, None))
            return
        if job.id in self._claimed:
            return  # already in flight here
        self._claimed.add(job.id)
        await self._send(job)

    def forget_target(self, destination_id: str) -> None:
        """Re-read a destination on its next send (after EnableEndpoint or an edit)."""
        self._targets.pop(destination_id, None)


def _human(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.0f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"
