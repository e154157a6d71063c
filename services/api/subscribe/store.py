"""Accepting verified events: dedupe by provider event id and stage them for the bus, in
one transaction, so a provider hears 200 only once its new events are durably queued and
a provider's retry of an accepted event is acknowledged without queueing it twice.

The dedupe key is scoped to the URL the events came to (`<integration or installation
id>/<provider event id>`): one Salesforce change reaches every installation's relay with
the same EventUuid, and each of them must get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from ampmesh.events.v1 import provider_events_pb2

from services.runtime.envelopes import new_envelope
from services.runtime.events import EventBus
from services.runtime.request_id import current_request_id


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


async def accept(
    pool: asyncpg.Pool,
    bus: EventBus,
    target: Target,
    events: list[provider_events_pb2.ProviderEvent],
) -> Accepted:
    """Record events' ids, and stage one ProviderEventBatch of those not seen before."""
    # A request naming one event twice queues it once.
    unique = list({e.event_id: e for e in events}.values())
    if not unique:
        return Accepted(0, 0)
    scoped = [f"{target.scope}/{e.event_id}" for e in unique]
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            "INSERT INTO subscribe_inbound_events (provider, event_id) "
            "SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
            target.provider,
            scoped,
        )
        inserted = {row["event_id"] for row in rows}
        new = [e for e, key in zip(unique, scoped, strict=True) if key in inserted]
        if new:
            batch = provider_events_pb2.ProviderEventBatch(
                provider=target.provider,
                project_id=target.project_id,
                integration_id=target.integration_id,
                installation_id=target.installation_id,
                events=new,
            )
            batch.receive_time.FromDatetime(datetime.now(UTC))
            await bus.stage(
                connection,
                new_envelope(
                    project_id=target.project_id,
                    idempotency_key=(
                        f"provider-events/{target.provider}/{target.scope}/{new[0].event_id}"
                    ),
                    source=bus.source,
                    request_id=current_request_id() or "",
                    provider_events=batch,
                ),
            )
    if new:
        bus.kick()
    return Accepted(len(new), len(events) - len(new))
