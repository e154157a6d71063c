"""The event bus's publishing side: Envelopes built one way, sent through a transactional
outbox so a committed change never loses its event.

A publisher writes its event into `event_outbox` in the same transaction as the change the
event reports (`EventBus.stage`), commits, and wakes the relay (`kick`). The relay of each
process claims pending rows of its own source with `FOR UPDATE SKIP LOCKED` (the shards of
one service relay side by side without publishing a row twice in the normal case),
publishes them, marks them published and commits. A process that dies after its commit
leaves a pending row: whichever process of that source relays next publishes it. Pub/Sub
failures are counted in `attempts` and retried with bounded exponential backoff; the relay
never stops the service. Delivery is at least once (a crash between publish and mark
republishes), so consumers deduplicate on `meta.idempotency_key`.

A Pub/Sub emulator keeps nothing across a restart: what was published but not yet
consumed is gone with it. Against an emulator, the relay keeps a marker on the bus (the
subscription `ampmesh-bus-epoch.<source>`) and looks for it every few seconds; when it is
missing, the bus is a new one (restarted, or first seen): the relay makes sure the
topology exists, publishes again the rows it published within the replay window
(`AMPMESH_PUBSUB_REPLAY_WINDOW`, an hour: a consumer down for less than that loses
nothing; published rows are kept longer than that), and marks the new bus, one process
of the source at a time (an advisory lock). Consumers drop the repeats (idempotency keys).

    async with EventBus.open(source="token-manager", pool=pool, emulator_host=h,
                             project=p) as bus:
        async with pool.acquire() as connection, connection.transaction():
            ...  # the change
            await bus.stage(connection, new_envelope(project_id=..., idempotency_key=...,
                                                     source="token-manager",
                                                     connection_error=ConnectionError(...)))
        bus.kick()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg
import grpc
from ampmesh.events.v1.envelope_pb2 import Envelope
from google.api_core import exceptions as google_exceptions
from google.api_core import retry as google_retry
from google.cloud import pubsub_v1
from google.pubsub_v1 import SubscriberClient as AdminSubscriber
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from pydantic import Field

from services.runtime.config import ServiceSettings
from services.runtime.entrypoint import StartupError
from services.runtime.envelopes import attributes_of, topic_id_of
from services.runtime.logs import get_logger
from services.runtime.pubsub_topology import (
    apply_topology,
    emulator_publisher,
    emulator_subscriber,
    topology,
)
from services.runtime.tracing import publish_span

if TYPE_CHECKING:
    pass

__all__ = [
    "EventBus",
    "PubSubSettings",
    "PublishError",
    "open_event_bus",
    "publisher_client",
]

_log = get_logger("ampmesh.events")


# Relay backoff after a failed publish: attempts 1, 2, 3… wait 1, 2, 4… seconds, at most
# a minute, so an outage is retried without hammering Pub/Sub or PostgreSQL.
_BACKOFF_BASE = 1.0
_BACKOFF_CAP = 60.0
# How long one publish may take, Pub/Sub client retries included.
_PUBLISH_TIMEOUT = 30.0
# How long leaving (EventBus.open's exit) may spend publishing what is still pending.
_DRAIN_TIMEOUT = 5.0
# Published rows are kept this long (for inspection after an incident), swept this often.
_RETENTION = timedelta(days=7)
_SWEEP_EVERY = 600.0
# publish(): attempts of its own before it leaves the row to the relay.
_PUBLISH_ATTEMPTS = 3
# Against an emulator: how often the relay looks for its marker on the bus (one cheap
# admin call), so that a restart is noticed within seconds.
_EPOCH_CHECK_EVERY = 2.0
_EPOCH_TOPIC = "ampmesh-bus-epoch"
_EPOCH_CALL_TIMEOUT = 5.0


# --- settings --------------------------------------------------------------------------


class PubSubSettings(ServiceSettings):
    """Settings of a service that publishes or consumes events: subclass it."""

    pubsub_emulator_host: str = Field(
        "", description="host:port of a Pub/Sub emulator; unset = Cloud Pub/Sub"
    )
    pubsub_project: str = Field("", description="the Pub/Sub (Google Cloud) project id")
    pubsub_replay_window: float = Field(
        3600.0,
        ge=0,
        description="seconds back the event relay publishes its events again when the Pub/Sub "
        "emulator was restarted (it forgets what was not consumed yet)",
    )


def open_event_bus(
    settings: PubSubSettings, pool: asyncpg.Pool, *, source: str = ""
) -> contextlib.AbstractAsyncContextManager[EventBus]:
    """EventBus.open from a service's settings (source defaults to its service name)."""
    if not settings.pubsub_project:
        raise StartupError(
            f"{settings.env_var('pubsub_project')} is required to publish events "
            "(the Pub/Sub project id)"
        )
    return EventBus.open(
        source=source or settings.service_name,
        pool=pool,
        emulator_host=settings.pubsub_emulator_host,
        project=settings.pubsub_project,
        replay_window=timedelta(seconds=settings.pubsub_replay_window),
    )


def publisher_client(
    emulator_host: str, batch_settings: pubsub_v1.types.BatchSettings | None = None
) -> pubsub_v1.PublisherClient:
    """The one way a service makes its batching publisher: bound to the emulator over an
    insecure channel when a host is given (PUBSUB_EMULATOR_HOST would redirect every client
    of the process), else Cloud Pub/Sub with the deployment's default credentials.
    batch_settings: how it batches (the client's defaults when None)."""
    batching = {} if batch_settings is None else {"batch_settings": batch_settings}
    if emulator_host:
        channel = grpc.insecure_channel(emulator_host)
        return pubsub_v1.PublisherClient(
            transport=PublisherGrpcTransport(channel=channel), **batching
        )
    try:
        return pubsub_v1.PublisherClient(**batching)
    except google_exceptions.GoogleAPIError as error:
        raise StartupError(
            f"cannot make a Cloud Pub/Sub publisher ({type(error).__name__}); "
            "provide Google credentials or set AMPMESH_PUBSUB_EMULATOR_HOST"
        ) from None


# --- the bus ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    id: int
    topic: str
    envelope: bytes
    attempts: int


@dataclass(frozen=True)
class _Batch:
    published: int
    failed: int
    full: bool  # as many rows as a batch holds: more may be waiting


class PublishError(RuntimeError):
    """An event could not be published now; it stays in the outbox for the relay."""


class _BusEpoch:
    """The relay's marker on an emulator: a subscription that exists as long as the
    emulator's state does. Blocking admin calls (run on a thread)."""

    def __init__(self, host: str, project: str, source: str) -> None:
        self.host = host
        self.project = project
        self.topic = f"projects/{project}/topics/{_EPOCH_TOPIC}"
        self.subscription = f"projects/{project}/subscriptions/{_EPOCH_TOPIC}.{source}"
        self._subscriber: AdminSubscriber | None = None

    def current(self) -> bool:
        """Whether the marker is there (False: the bus forgot everything since)."""
        if self._subscriber is None:
            self._subscriber = emulator_subscriber(self.host)
        try:
            self._subscriber.get_subscription(
                subscription=self.subscription, retry=None, timeout=_EPOCH_CALL_TIMEOUT
            )
        except google_exceptions.NotFound:
            return False
        return True

    def prepare(self) -> None:
        """Make sure the contract's topics and subscriptions exist before anything is
        published again: a message published to a topic whose subscriptions are not
        there yet reaches no one (the launcher re-creates them too, racing us)."""
        apply_topology(self.host, topology(self.project))

    def mark(self) -> None:
        with (
            emulator_publisher(self.host) as publisher,
            contextlib.suppress(google_exceptions.AlreadyExists),
        ):
            publisher.create_topic(name=self.topic, retry=None, timeout=_EPOCH_CALL_TIMEOUT)
        with (
            emulator_subscriber(self.host) as subscriber,
            contextlib.suppress(google_exceptions.AlreadyExists),
        ):
            subscriber.create_subscription(
                name=self.subscription,
                topic=self.topic,
                retry=None,
                timeout=_EPOCH_CALL_TIMEOUT,
            )

    def close(self) -> None:
        if self._subscriber is not None:
            self._subscriber.transport.close()


class EventBus:
    """Stages events in the outbox and relays them to Pub/Sub (one per process)."""

    def __init__(
        self,
        *,
        source: str,
        pool: asyncpg.Pool,
        publisher: pubsub_v1.PublisherClient,
        project: str,
        relay_interval: float = 1.0,
        batch_size: int = 100,
        emulator_host: str = "",
        replay_window: timedelta = timedelta(hours=1),
    ) -> None:
        if not source:
            raise ValueError("an event bus needs its source (the publishing service)")
        self.source = source
        self.pool = pool
        self.publisher = publisher
        self.project = project
        self.relay_interval = relay_interval
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        # Row id -> monotonic time before which this process does not retry it, so a row
        # that keeps failing neither blocks the rows behind it nor is retried in a loop.
        self._not_before: dict[int, float] = {}
        self._last_sweep = float("-inf")
        # Only an emulator forgets on a restart; Cloud Pub/Sub keeps what it acked.
        self.replay_window = replay_window
        self._epoch = _BusEpoch(emulator_host, project, source) if emulator_host else None
        self._epoch_checked = float("-inf")

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        *,
        source: str,
        pool: asyncpg.Pool,
        emulator_host: str,
        project: str,
        relay_interval: float = 1.0,
        batch_size: int = 100,
        replay_window: timedelta = timedelta(hours=1),
    ) -> AsyncIterator[EventBus]:
        """A bus with its relay running; on exit the relay publishes what it can (for a
        few seconds at most) and stops; what is left waits for the next relay."""
        bus = cls(
            source=source,
            pool=pool,
            publisher=publisher_client(emulator_host),
            project=project,
            relay_interval=relay_interval,
            batch_size=batch_size,
            emulator_host=emulator_host,
            replay_window=replay_window,
        )
        # Before anything of this process is published: a replay decided later would send
        # what it publishes meanwhile a second time.
        try:
            await bus._follow_epoch()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # PostgreSQL not there yet: the relay looks again on its first round.
            bus._epoch_checked = float("-inf")
            _log.warning("event bus epoch not checked yet", error=type(error).__name__)
        relay = asyncio.create_task(bus.run_relay(), name=f"event relay ({source})")
        try:
            yield bus
        finally:
            await bus._stop_relay(relay)
            # stop() flushes the client's batches and joins its threads: blocking.
            await asyncio.to_thread(bus.publisher.stop)
            if bus._epoch is not None:
                bus._epoch.close()

    async def stage(self, connection: asyncpg.Connection, envelope: Envelope) -> int:
        """Write the event into the outbox within the caller's open transaction; returns
        its row id. Nothing is published before that transaction commits."""
        if not connection.is_in_transaction():
            # Outside a transaction the event could be published for a change that is then
            # rolled back (or the change committed without it): refuse the mistake.
            raise RuntimeError("stage() needs the transaction that makes the change")
        topic = topic_id_of(envelope)
        row_id: int = await connection.fetchval(
            "INSERT INTO event_outbox (source, topic, envelope) VALUES ($1, $2, $3) RETURNING id",
            self.source,
            topic,
            envelope.SerializeToString(),
        )
        return row_id

    def kick(self) -> None:
        """Wake the relay now (call after the staging transaction committed)."""
        self._wake.set()

    async def publish(self, envelope: Envelope) -> None:
        """Stage the event in a transaction of its own and publish it before returning;
        PublishError after a few attempts (the row stays for the relay)."""
        async with self.pool.acquire() as connection:
            async with connection.transaction():
                row_id = await self.stage(connection, envelope)
            for attempt in range(1, _PUBLISH_ATTEMPTS + 1):
                # Wait for the row's lock rather than skip it: if the relay holds it, it is
                # being published, and published_at says so once the relay commits.
                async with connection.transaction():
                    row = await connection.fetchrow(
                        "SELECT id, topic, envelope, attempts, published_at FROM event_outbox"
                        " WHERE id = $1 FOR UPDATE",
                        row_id,
                    )
                    if row is None or row["published_at"] is not None:
                        return
                    failed = await self._publish_rows(connection, [_row(row)])
                if not failed:
                    return
                if attempt < _PUBLISH_ATTEMPTS:
                    await asyncio.sleep(_backoff(attempt))
        self.kick()
        raise PublishError(
            f"event {envelope.meta.id} ({envelope.meta.type}) is not published yet; "
            "it stays in the outbox and the relay retries it"
        )

    # --- the relay ---

    async def _stop_relay(self, relay: asyncio.Task[None]) -> None:
        """Let the relay finish its batch (cancelling it mid-batch would roll back the
        marks of rows already published, and they would go out twice), then publish what
        is pending; a few seconds at most, then whatever is left waits for a relay."""
        deadline = asyncio.get_running_loop().time() + _DRAIN_TIMEOUT
        self._stop.set()
        self._wake.set()
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.shield(relay)
                await self.relay_pending()
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            _log.warning("events left for the next relay", error=type(error).__name__)
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay

    async def run_relay(self) -> None:
        """Relay pending rows until the bus closes: at once when kicked, else every
        relay_interval seconds; backs off while publishing fails."""
        failures = 0
        while not self._stop.is_set():
            try:
                await self._follow_epoch()
                outcome = await self._relay_batch()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                # PostgreSQL unreachable or restarting: the rows wait, the service lives.
                _log.warning("event relay cannot read the outbox", error=type(error).__name__)
                failed, full = 1, False
            except Exception:
                _log.exception("event relay failed; retrying")
                failed, full = 1, False
            else:
                failed, full = outcome.failed, outcome.full
            if failed:
                failures += 1
                # Kicks do not shorten a backoff; closing the bus does.
                await _wait(self._stop, _backoff(failures))
                continue
            failures = 0
            if full:  # more may be waiting: relay again without sleeping
                continue
            await self._sweep_published()
            await _wait(self._wake, self.relay_interval)
            self._wake.clear()

    async def _follow_epoch(self) -> None:
        """Against an emulator, every few seconds: if the bus lost its state since the
        last look, publish again what this source published within the replay window
        (its consumers may not have taken it before the restart)."""
        if self._epoch is None:
            return
        now = time.monotonic()
        if now - self._epoch_checked < _EPOCH_CHECK_EVERY:
            return
        self._epoch_checked = now
        try:
            if await asyncio.to_thread(self._epoch.current):
                return
            # One process of the source replays: the others wait on the lock, then find
            # the marker (and publish nothing of this source's meanwhile, which a late
            # replay would send a second time).
            async with self.pool.acquire() as connection, connection.transaction():
                await connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))", f"{_EPOCH_TOPIC}:{self.source}"
                )
                if await asyncio.to_thread(self._epoch.current):
                    return
                await asyncio.to_thread(self._epoch.prepare)
                replayed = await connection.execute(
                    "UPDATE event_outbox SET published_at = NULL"
                    " WHERE source = $1 AND published_at >= now() - $2::interval",
                    self.source,
                    self.replay_window,
                )
                # Last: if it fails, the replay is rolled back and tried on the next look.
                await asyncio.to_thread(self._epoch.mark)
        except google_exceptions.GoogleAPICallError as error:
            # The bus is down or starting: looked at again on the next round.
            _log.warning("event bus not reachable", error=type(error).__name__)
            return
        _log.info(
            "a new event bus (the emulator restarted or is fresh): events published "
            "within the replay window are published again",
            replayed=int(replayed.split()[-1]),
            window_seconds=self.replay_window.total_seconds(),
        )

    async def _sweep_published(self) -> None:
        """Now and then, forget this source's rows published longer ago than the
        retention: the outbox guards against loss, it is not an archive (scribe keeps
        the history that matters)."""
        now = time.monotonic()
        if now - self._last_sweep < _SWEEP_EVERY:
            return
        self._last_sweep = now
        try:
            await self.pool.execute(
                "DELETE FROM event_outbox"
                " WHERE source = $1 AND published_at < now() - $2::interval",
                self.source,
                # Never the rows a new bus would need again.
                max(_RETENTION, self.replay_window),
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            _log.warning("event outbox sweep failed", error=type(error).__name__)

    async def relay_pending(self) -> int:
        """Publish pending rows until none is left that may be tried now; returns how many
        were published."""
        published = 0
        while True:
            outcome = await self._relay_batch()
            published += outcome.published
            if outcome.failed or not outcome.full:
                return published

    async def _relay_batch(self) -> _Batch:
        """Claim, publish and mark one batch of rows that may be tried now."""
        now = time.monotonic()
        waiting = [row_id for row_id, when in self._not_before.items() if when > now]
        async with self.pool.acquire() as connection, connection.transaction():
            records = await connection.fetch(
                "SELECT id, topic, envelope, attempts FROM event_outbox"
                " WHERE source = $1 AND published_at IS NULL AND NOT (id = ANY($2::bigint[]))"
                " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
                self.source,
                waiting,
                self.batch_size,
            )
            rows = [_row(record) for record in records]
            failed = await self._publish_rows(connection, rows) if rows else set()
        return _Batch(len(rows) - len(failed), len(failed), len(rows) == self.batch_size)

    async def _publish_rows(self, connection: asyncpg.Connection, rows: list[_Row]) -> set[int]:
        """Publish rows (locked by the caller's transaction) concurrently, mark those that
        went out and count an attempt on the others; returns the failed ids."""
        outcomes = await asyncio.gather(*(self._send(row) for row in rows))
        failed = {row.id for row, sent in zip(rows, outcomes, strict=True) if not sent}
        sent = [row.id for row in rows if row.id not in failed]
        if sent:
            await connection.execute(
                "UPDATE event_outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                sent,
            )
            for row_id in sent:
                self._not_before.pop(row_id, None)
        if failed:
            await connection.execute(
                "UPDATE event_outbox SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])",
                list(failed),
            )
            now = time.monotonic()
            for row in rows:
                if row.id in failed:
                    self._not_before[row.id] = now + _backoff(row.attempts + 1)
        return failed

    async def _send(self, row: _Row) -> bool:
        """Publish one row; False (and a log line) when it did not go out."""
        try:
            envelope = Envelope.FromString(row.envelope)
            attributes = attributes_of(envelope)
            with publish_span(row.topic, envelope, attributes):
                future = self.publisher.publish(
                    f"projects/{self.project}/topics/{row.topic}",
                    row.envelope,
                    retry=google_retry.Retry(
                        predicate=google_retry.if_transient_error,
                        initial=0.1,
                        maximum=5.0,
                        timeout=_PUBLISH_TIMEOUT,
                    ),
                    timeout=_PUBLISH_TIMEOUT,
                    **attributes,
                )
                await asyncio.wrap_future(future)
        except Exception as error:
            # Never the envelope or the error text: either may quote event contents.
            _log.warning(
                "event not published",
                outbox_id=row.id,
                topic=row.topic,
                attempts=row.attempts + 1,
                error=type(error).__name__,
            )
            return False
        return True


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until event is set, or seconds passed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _row(record: asyncpg.Record) -> _Row:
    return _Row(record["id"], record["topic"], bytes(record["envelope"]), record["attempts"])


def _backoff(attempts: int) -> float:
    return float(min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** max(0, attempts - 1)))
