"""Accepting verified events: dedupe by provider event id and stage them for the bus, in
one transaction, so a provider hears 200 only once its new events are durably queued and
a provider's retry of an accepted event is acknowledged without queueing it twice.

The dedupe key is scoped to the URL the events came to (`<integration or installation
id>/<provider event id>`): one Salesforce change reaches every installation's relay with
the same EventUuid, and each of them must get it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from ampmesh.events.v1 import provider_events_pb2

from services.runtime.envelopes import new_envelope
from services.runtime.events import EventBus
from services.runtime.logs import get_logger
from services.runtime.request_id import current_request_id

_log = get_logger("ampmesh.api.subscribe")


@dataclass(frozen=True)
class Target:
    """The URL's target: where the events came, and which dedupe scope they belong to."""

    provider: str
    project_id: str
    integration_id: str
    installation_id: str = ""

    @property
    def scope(self) -> str:
        return self.installation_id or self.integration_id


@dataclass(frozen=True)
class Accepted:
    accepted: int
    duplicates: int


# How long accepted event ids are kept: providers retry for a day at most (HubSpot over
# 24 hours, EventBridge for 24 hours), so a week leaves room; older ids are pruned in
# batches, at most once a PRUNE_EVERY per process, after a flush.
KEEP_IDS_FOR = timedelta(days=7)
PRUNE_EVERY = 60.0
PRUNE_BATCH = 5000


async def prune_expired(pool: asyncpg.Pool, keep_for: timedelta = KEEP_IDS_FOR) -> int:
    """Delete up to PRUNE_BATCH event ids accepted longer than keep_for ago; how many."""
    deleted = await pool.fetchval(
        "WITH gone AS (DELETE FROM subscribe_inbound_events WHERE ctid IN ("
        "SELECT ctid FROM subscribe_inbound_events WHERE received_at < now() - $1::interval "
        "LIMIT $2) RETURNING 1) SELECT count(*) FROM gone",
        keep_for,
        PRUNE_BATCH,
    )
    return int(deleted or 0)


@dataclass
class _Request:
    events: list[provider_events_pb2.ProviderEvent]
    request_id: str
    answer: asyncio.Future[Accepted] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Acceptor:
    """Accepts the requests of one target together (a group commit): while one
    transaction of a target's events is committing, the requests that arrive wait and go
    in the next one. At rest each request is its own transaction; under load (a
    Salesforce relay posts one event per request, hundreds a second) one transaction,
    one staged batch and one Pub/Sub message carry many requests, where one each left the
    api, PostgreSQL and the emulator far behind. Every request is still answered only
    once its own events are committed."""

    def __init__(self, pool: asyncpg.Pool, bus: EventBus) -> None:
        self._pool, self._bus = pool, bus
        self._waiting: dict[Target, list[_Request]] = {}
        self._flushes: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs
        self._prune_at = 0.0

    async def accept(
        self, target: Target, events: list[provider_events_pb2.ProviderEvent]
    ) -> Accepted:
        """Record events' ids, and stage the ones not seen before for the bus."""
        if not events:
            return Accepted(0, 0)
        request = _Request(events, current_request_id() or "")
        waiting = self._waiting.get(target)
        if waiting is not None:
            waiting.append(request)  # the running flush takes it next
        else:
            self._waiting[target] = [request]
            flush = asyncio.get_running_loop().create_task(self._flush(target))
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        return await asyncio.shield(request.answer)

    async def _flush(self, target: Target) -> None:
        while requests := self._waiting.get(target):
            self._waiting[target] = []
            try:
                answers = await _commit(self._pool, self._bus, target, requests)
            except Exception as error:  # each request answers for itself (503 or raise)
                for request in requests:
                    if not request.answer.done():
                        request.answer.set_exception(error)
            else:
                for request, answer in zip(requests, answers, strict=True):
                    if not request.answer.done():
                        request.answer.set_result(answer)
        self._waiting.pop(target, None)
        await self._prune_if_due()

    async def _prune_if_due(self) -> None:
        now = time.monotonic()
        if now < self._prune_at:
            return
        self._prune_at = now + PRUNE_EVERY
        try:
            pruned = await prune_expired(self._pool)
        except Exception as error:  # the next flush past PRUNE_EVERY tries again
            _log.warning("pruning accepted event ids failed", error=type(error).__name__)
            return
        if pruned:
            _log.info("accepted event ids pruned", count=pruned)


async def _commit(
    pool: asyncpg.Pool, bus: EventBus, target: Target, requests: list[_Request]
) -> list[Accepted]:
    """One transaction for requests' events: each event id scoped and inserted once,
    one ProviderEventBatch of the new ones staged; what became of each request's."""
    # An event named twice (in one request, or in two requests of the group) is queued
    # once, for the first to name it.
    first_of: dict[str, tuple[int, provider_events_pb2.ProviderEvent]] = {}
    for index, request in enumerate(requests):
        for event in request.events:
            first_of.setdefault(event.event_id, (index, event))
    scoped = {event_id: f"{target.scope}/{event_id}" for event_id in first_of}
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            "INSERT INTO subscribe_inbound_events (provider, event_id) "
            "SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
            target.provider,
            list(scoped.values()),
        )
        inserted = {row["event_id"] for row in rows}
        new = [
            (index, event)
            for event_id, (index, event) in first_of.items()
            if scoped[event_id] in inserted
        ]
        if new:
            batch = provider_events_pb2.ProviderEventBatch(
                provider=target.provider,
                project_id=target.project_id,
                integration_id=target.integration_id,
                installation_id=target.installation_id,
                events=[event for _, event in new],
            )
            batch.receive_time.FromDatetime(datetime.now(UTC))
            await bus.stage(
                connection,
                new_envelope(
                    project_id=target.project_id,
                    idempotency_key=(
                        f"provider-events/{target.provider}/{target.scope}/{new[0][1].event_id}"
                    ),
                    source=bus.source,
                    request_id=requests[0].request_id,
                    provider_events=batch,
                ),
            )
    if new:
        bus.kick()
    accepted = Counter(index for index, _ in new)
    return [
        Accepted(accepted[index], len(request.events) - accepted[index])
        for index, request in enumerate(requests)
    ]
