"""What scribe does with each message: persist it once, count it, or keep it as a dead
letter.

- A message that is not an Envelope, or whose event breaks its contract (`InvalidEvent`:
  missing ids, unknown project, …), can never be persisted: it is dead-lettered at once
  and acked.
- A message whose persistence fails otherwise (PostgreSQL unavailable, …) is nacked, so
  Pub/Sub redelivers it with backoff, until its delivery attempt reaches MAX_ATTEMPTS:
  then it is dead-lettered and acked (the subscription would forward it to its
  dead-letter topic after the same number of attempts; scribe's own cap keeps it first).
- A message arriving on a dead-letter subscription (`<subscription>.dead-letter`, which
  the launcher creates for each of scribe's subscriptions) is one that escaped that cap
  (for example its handler kept failing before it could write the dead letter): it is
  stored as a dead letter as it is.

Dead letters are one row per (subscription, Pub/Sub message id), keep the data and
attributes as received and an error that names what is wrong (never exception text).
RetryDeadLetters runs the same persistence code again.

Counters per (project, event type) are kept in memory and added to `scribe_ingestion`
in one upsert about every second (and before GetIngestionStatus answers), so the hot
path adds no write of its own; a crash loses at most the last second of counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import orjson
from ampmesh.events.v1.envelope_pb2 import Envelope
from google.protobuf.message import DecodeError

from services.runtime.logs import get_logger
from services.runtime.pubsub_topology import DEAD_LETTER_SUFFIX, MAX_DELIVERY_ATTEMPTS
from services.runtime.subscriber import Delivery
from services.scribe import connections, operations

# Scribe's own cap: the delivery attempt at which a failing event becomes a dead letter,
# the subscriptions' dead-letter policy's number.
MAX_ATTEMPTS = MAX_DELIVERY_ATTEMPTS
# The attribute Pub/Sub sets on messages it forwards to a dead-letter topic.
_FORWARDED_ATTEMPTS = "CloudPubSubDeadLetterSourceDeliveryCount"
_FLUSH_EVERY = 1.0
# An undecodable message has no project: its counters and dead letter use this.
NO_PROJECT = ""
UNDECODABLE = "data is not an ampmesh.events.v1.Envelope"

# Persists one envelope: True when new, False when a duplicate (or stale); raises
# InvalidEvent (a ValueError) when it never can be.
Persister = Callable[[Envelope], Awaitable[bool]]
INVALID = (operations.InvalidEvent, connections.InvalidEvent)

_log = get_logger("ampmesh.scribe.ingest")


def failure_text(error: BaseException) -> str:
    """What a dead letter says went wrong: our own words for invalid events, the error's
    kind for anything else (its text may hold data)."""
    if isinstance(error, INVALID):
        return str(error)
    return f"persisting failed ({type(error).__name__})"


@dataclass
class _Tally:
    persisted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    last_event: datetime | None = None
    last_persist: datetime | None = None


class IngestionCounters:
    """Counts per (project, event type), added to PostgreSQL in batches."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._pending: dict[tuple[str, str], _Tally] = {}
        self._lock = asyncio.Lock()

    def _tally(self, project_id: str, event_type: str) -> _Tally:
        key = (project_id, event_type)
        tally = self._pending.get(key)
        if tally is None:
            tally = self._pending[key] = _Tally()
        return tally

    def persisted(self, project_id: str, event_type: str, event_time: datetime) -> None:
        tally = self._tally(project_id, event_type)
        tally.persisted += 1
        if tally.last_event is None or event_time > tally.last_event:
            tally.last_event = event_time
        tally.last_persist = datetime.now(UTC)

    def duplicate(self, project_id: str, event_type: str) -> None:
        self._tally(project_id, event_type).duplicates += 1

    def dead_lettered(self, project_id: str, event_type: str) -> None:
        self._tally(project_id, event_type).dead_lettered += 1

    async def flush(self) -> None:
        """Add what was counted since the last flush; kept for the next one on failure."""
        async with self._lock:
            pending, self._pending = self._pending, {}
            if not pending:
                return
            # Sorted: concurrent scribes lock the counter rows in the same order.
            keys = sorted(pending)
            tallies = [pending[k] for k in keys]
            try:
                await self.pool.execute(
                    """
                    INSERT INTO scribe_ingestion AS s (project_id, event_type, persisted,
                        duplicates_skipped, dead_lettered, last_event_time, last_persist_time)
                    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                        $5::bigint[], $6::timestamptz[], $7::timestamptz[])
                    ON CONFLICT (project_id, event_type) DO UPDATE SET
                        persisted = s.persisted + EXCLUDED.persisted,
                        duplicates_skipped = s.duplicates_skipped + EXCLUDED.duplicates_skipped,
                        dead_lettered = s.dead_lettered + EXCLUDED.dead_lettered,
                        last_event_time = GREATEST(s.last_event_time, EXCLUDED.last_event_time),
                        last_persist_time = GREATEST(s.last_persist_time,
                                                     EXCLUDED.last_persist_time)
                    """,
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [t.persisted for t in tallies],
                    [t.duplicates for t in tallies],
                    [t.dead_lettered for t in tallies],
                    [t.last_event for t in tallies],
                    [t.last_persist for t in tallies],
                )
            except BaseException:
                for key, tally in pending.items():
                    self._merge(key, tally)
                raise

    def _merge(self, key: tuple[str, str], tally: _Tally) -> None:
        into = self._tally(*key)
        into.persisted += tally.persisted
        into.duplicates += tally.duplicates
        into.dead_lettered += tally.dead_lettered
        for attribute in ("last_event", "last_persist"):
            mine, theirs = getattr(into, attribute), getattr(tally, attribute)
            if mine is None or (theirs is not None and theirs > mine):
                setattr(into, attribute, theirs)

    async def run(self) -> None:
        """Flush about every second until cancelled (then once more)."""
        try:
            while True:
                await asyncio.sleep(_FLUSH_EVERY)
                try:
                    await self.flush()
                except Exception as error:
                    _log.warning("ingestion counters not saved yet", error=type(error).__name__)
        finally:
            with contextlib.suppress(Exception):
                await self.flush()


@dataclass
class RetryOutcome:
    retried: int = 0
    persisted: int = 0
    duplicates: int = 0
    still_failing: list[asyncpg.Record] = field(default_factory=list)


class Ingestion:
    """Routes each message to the persister of its payload, counts the outcome, and keeps
    what cannot be persisted as a dead letter."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        persisters: Mapping[str, Persister],
        counters: IngestionCounters | None = None,
    ) -> None:
        self.pool = pool
        self.persisters = dict(persisters)
        self.counters = counters or IngestionCounters(pool)

    @classmethod
    def standard(cls, pool: asyncpg.Pool) -> Ingestion:
        """Scribe's persisters: connection history, operations, progress and logs."""
        history = connections.ConnectionHistory(pool)
        store = operations.OperationStore(pool)
        persisters: dict[str, Persister] = {
            name: history.record for name in connections.CONNECTION_PAYLOADS
        }
        persisters.update({name: store.persist for name in operations.OPERATION_PAYLOADS})
        persisters.update({name: store.persist for name in operations.LOG_PAYLOADS})
        return cls(pool, persisters)

    async def persist(self, envelope: Envelope) -> bool:
        """Persist one envelope (True: new, False: duplicate) and count it; raises
        InvalidEvent when it can never be persisted."""
        name = envelope.WhichOneof("payload")
        persister = self.persisters.get(name) if name else None
        if persister is None:
            raise operations.InvalidEvent(
                f"event {envelope.meta.id}: scribe does not persist {name or 'an empty payload'}"
            )
        new = await persister(envelope)
        meta = envelope.meta
        if new:
            self.counters.persisted(meta.project_id, meta.type, meta.time.ToDatetime(tzinfo=UTC))
        else:
            self.counters.duplicate(meta.project_id, meta.type)
        return new

    async def handle(self, delivery: Delivery) -> None:
        """The subscriptions' handler: returns to ack, raises to nack."""
        try:
            envelope = Envelope.FromString(delivery.data)
        except DecodeError:
            await self.dead_letter(delivery, None, UNDECODABLE)
            return
        if delivery.subscription.endswith(DEAD_LETTER_SUFFIX):
            forwarded = delivery.attributes.get(_FORWARDED_ATTEMPTS, "")
            attempts = int(forwarded) if forwarded.isdigit() else MAX_ATTEMPTS
            await self.dead_letter(
                delivery,
                envelope,
                f"forwarded to the dead-letter topic after {attempts} delivery attempts",
                attempts=attempts,
            )
            return
        try:
            await self.persist(envelope)
        except INVALID as error:
            await self.dead_letter(delivery, envelope, failure_text(error))
        except Exception as error:
            if (delivery.delivery_attempt or 0) < MAX_ATTEMPTS:
                raise
            await self.dead_letter(delivery, envelope, failure_text(error))

    async def dead_letter(
        self,
        delivery: Delivery,
        envelope: Envelope | None,
        error: str,
        *,
        attempts: int | None = None,
    ) -> None:
        attributes = delivery.attributes
        if envelope is not None:
            meta = envelope.meta
            project_id, event_id, event_type = meta.project_id, meta.id, meta.type
            idempotency_key = meta.idempotency_key
        else:
            project_id = NO_PROJECT
            event_id = attributes.get("event_id", "")
            event_type = attributes.get("event_type", "")
            idempotency_key = ""
        inserted = await self.pool.fetchval(
            """
            INSERT INTO scribe_dead_letters (project_id, event_id, event_type, idempotency_key,
                subscription, message_id, data, attributes, error, delivery_attempts)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)
            ON CONFLICT (subscription, message_id) DO NOTHING
            RETURNING true
            """,
            project_id,
            event_id,
            event_type,
            idempotency_key,
            delivery.subscription,
            delivery.message_id,
            delivery.data,
            orjson.dumps(dict(attributes)).decode(),
            error,
            attempts if attempts is not None else (delivery.delivery_attempt or 1),
        )
        if inserted:
            self.counters.dead_lettered(project_id, event_type)
        _log.warning(
            "event dead-lettered",
            subscription=delivery.subscription,
            message_id=delivery.message_id,
            event_id=event_id,
            event_type=event_type,
            error=error,
        )

    async def retry(self, ids: Sequence[str], project_id: str, event_type: str) -> RetryOutcome:
        """Persist pending dead letters again: by ids, or every pending one matching the
        filters; each that persists or proves a duplicate is resolved."""
        if ids:
            rows = await self.pool.fetch(
                "SELECT * FROM scribe_dead_letters WHERE id = ANY($1::uuid[]) "
                "AND state = 'pending' ORDER BY created_at, id",
                [uuid.UUID(i) for i in ids],
            )
        else:
            rows = await self.pool.fetch(
                "SELECT * FROM scribe_dead_letters WHERE state = 'pending' "
                "AND ($1 = '' OR project_id = $1) AND ($2 = '' OR event_type = $2) "
                "ORDER BY created_at, id",
                project_id,
                event_type,
            )
        outcome = RetryOutcome()
        for row in rows:
            outcome.retried += 1
            error: str | None = None
            new = False
            try:
                envelope = Envelope.FromString(row["data"])
            except DecodeError:
                error = UNDECODABLE
            else:
                try:
                    new = await self.persist(envelope)
                except Exception as failure:
                    error = failure_text(failure)
            if error is None:
                if new:
                    outcome.persisted += 1
                else:
                    outcome.duplicates += 1
                await self.pool.execute(
                    "UPDATE scribe_dead_letters SET state = 'resolved', resolved_at = now(), "
                    "retry_count = retry_count + 1, last_retry_at = now() WHERE id = $1",
                    row["id"],
                )
            else:
                updated = await self.pool.fetchrow(
                    "UPDATE scribe_dead_letters SET error = $2, retry_count = retry_count + 1, "
                    "last_retry_at = now() WHERE id = $1 RETURNING *",
                    row["id"],
                    error,
                )
                outcome.still_failing.append(updated)
        return outcome
