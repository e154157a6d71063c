"""The event bus against the stack's Pub/Sub emulator and PostgreSQL: an event reaches its
topic with its attributes, an event a crashed process committed but never published is
published by the next relay, two relays of one source publish each row once, and a
consumer acks what it handled, gets back what failed and drops what is not an Envelope.

The events travel on ampmesh-logs, which nothing in the mesh consumes yet, on a
subscription each test makes for itself before publishing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import pytest
from ampmesh.events.v1 import log_entry_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
from google.api_core.exceptions import DeadlineExceeded
from google.pubsub_v1 import SubscriberClient
from google.pubsub_v1.types import ReceivedMessage

from services.launcher.infra.pubsub_emulator import PROJECT
from services.runtime.envelopes import new_envelope, topic_id_of
from services.runtime.events import EventBus, publisher_client
from services.runtime.pubsub_topology import emulator_subscriber
from services.runtime.subscriber import consume
from tests.support.control_plane import database_url
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

TOPIC = "ampmesh-logs"
# Bounds of waiting for the emulator or a relay: generous, and never an assertion.
PATIENCE = 20.0


@pytest.fixture(scope="module")
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=6) as pool:
        yield pool


@dataclass
class Subscription:
    client: SubscriberClient
    name: str

    @property
    def path(self) -> str:
        return f"projects/{PROJECT}/subscriptions/{self.name}"

    def pull(self, until: int) -> list[ReceivedMessage]:
        """Pull (and ack) until `until` distinct events arrived or PATIENCE ran out."""
        received: list[ReceivedMessage] = []
        seen: set[str] = set()
        deadline = time.monotonic() + PATIENCE
        while len(seen) < until and time.monotonic() < deadline:
            try:
                response = self.client.pull(subscription=self.path, max_messages=100, timeout=5)
            except DeadlineExceeded:
                continue
            if not response.received_messages:
                continue
            received.extend(response.received_messages)
            seen.update(m.message.attributes["event_id"] for m in response.received_messages)
            self.client.acknowledge(
                subscription=self.path, ack_ids=[m.ack_id for m in response.received_messages]
            )
        return received

    def pull_once(self) -> list[ReceivedMessage]:
        """One pull (acked): what the subscription holds now, if anything."""
        try:
            response = self.client.pull(subscription=self.path, max_messages=100, timeout=3)
        except DeadlineExceeded:
            return []
        messages = list(response.received_messages)
        if messages:
            self.client.acknowledge(subscription=self.path, ack_ids=[m.ack_id for m in messages])
        return messages


@pytest.fixture
def subscription(stack: Stack) -> Iterator[Subscription]:
    """A subscription of this test's own on TOPIC, made before anything is published."""
    client = emulator_subscriber(stack.endpoints["pubsub"])
    made = Subscription(client, f"test-event-bus-{uuid.uuid4().hex[:10]}")
    client.create_subscription(
        name=made.path, topic=f"projects/{PROJECT}/topics/{TOPIC}", ack_deadline_seconds=30
    )
    try:
        yield made
    finally:
        client.delete_subscription(subscription=made.path)
        client.transport.close()


def log_event(n: int = 0) -> Envelope:
    return new_envelope(
        project_id=str(uuid.uuid4()),
        idempotency_key=f"test/{uuid.uuid4()}/{n}",
        source="test-bus",
        request_id="req-test",
        log_entry=log_entry_pb2.LogEntry(
            operation_id="op-1", severity=log_entry_pb2.LOG_SEVERITY_INFO, msg=f"line {n}"
        ),
    )


def source() -> str:
    # A source per test: each relay sees only the rows its test staged.
    return f"test-bus-{uuid.uuid4().hex[:8]}"


async def pending(pool: asyncpg.Pool, source: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM event_outbox WHERE source = $1 AND published_at IS NULL", source
    )
    return count


async def test_an_event_reaches_its_topic_with_its_attributes(
    stack: Stack, pool: asyncpg.Pool, subscription: Subscription
) -> None:
    envelope = log_event()
    assert topic_id_of(envelope) == TOPIC
    bus_source = source()
    async with EventBus.open(
        source=bus_source, pool=pool, emulator_host=stack.endpoints["pubsub"], project=PROJECT
    ) as bus:
        await bus.publish(envelope)
        assert await pending(pool, bus_source) == 0

    (received,) = await asyncio.to_thread(subscription.pull, 1)
    assert Envelope.FromString(received.message.data) == envelope
    assert dict(received.message.attributes) == {
        "event_id": envelope.meta.id,
        "event_type": "ampmesh.events.v1.LogEntry",
        "project_id": envelope.meta.project_id,
    }
    row = await pool.fetchrow(
        "SELECT topic, envelope, attempts, published_at FROM event_outbox WHERE source = $1",
        bus_source,
    )
    assert row is not None
    assert (row["topic"], bytes(row["envelope"]), row["attempts"]) == (
        TOPIC,
        envelope.SerializeToString(),
        0,
    )
    assert row["published_at"] is not None


async def test_an_event_staged_in_a_rolled_back_transaction_is_never_published(
    stack: Stack, pool: asyncpg.Pool, subscription: Subscription
) -> None:
    bus_source = source()
    kept, dropped = log_event(1), log_event(2)
    async with EventBus.open(
        source=bus_source, pool=pool, emulator_host=stack.endpoints["pubsub"], project=PROJECT
    ) as bus:
        async with pool.acquire() as connection:
            with pytest.raises(ZeroDivisionError):
                async with connection.transaction():
                    await bus.stage(connection, dropped)
                    raise ZeroDivisionError  # the change failed
            async with connection.transaction():
                await bus.stage(connection, kept)
            with pytest.raises(RuntimeError, match="transaction"):
                await bus.stage(connection, dropped)
        bus.kick()
        # The kept one arriving means the relay ran past everything staged before it.
        received = await asyncio.to_thread(subscription.pull, 1)
    assert {m.message.attributes["event_id"] for m in received} == {kept.meta.id}
    assert (
        await pool.fetchval("SELECT count(*) FROM event_outbox WHERE source = $1", bus_source) == 1
    )


async def test_a_crashed_process_s_committed_event_is_published_by_the_next_relay(
    stack: Stack, pool: asyncpg.Pool, subscription: Subscription
) -> None:
    bus_source = source()
    envelope = log_event()
    # The crashed process: it committed its change with the event, and died before any
    # relay of it ran (this bus never started one).
    publisher = publisher_client(stack.endpoints["pubsub"])
    crashed = EventBus(source=bus_source, pool=pool, publisher=publisher, project=PROJECT)
    async with pool.acquire() as connection, connection.transaction():
        await crashed.stage(connection, envelope)
    await asyncio.to_thread(publisher.stop)
    assert await pending(pool, bus_source) == 1

    async with EventBus.open(
        source=bus_source, pool=pool, emulator_host=stack.endpoints["pubsub"], project=PROJECT
    ):
        received = await asyncio.to_thread(subscription.pull, 1)
    assert [Envelope.FromString(m.message.data) for m in received] == [envelope]
    assert await pending(pool, bus_source) == 0


async def test_two_relays_of_one_source_publish_each_event_once(
    stack: Stack, pool: asyncpg.Pool, subscription: Subscription
) -> None:
    bus_source = source()
    envelopes = [log_event(n) for n in range(50)]
    host = stack.endpoints["pubsub"]
    # Small batches, so both relays claim rows while the other holds some.
    async with (
        EventBus.open(
            source=bus_source, pool=pool, emulator_host=host, project=PROJECT, batch_size=5
        ) as first,
        EventBus.open(
            source=bus_source, pool=pool, emulator_host=host, project=PROJECT, batch_size=5
        ) as second,
    ):
        async with pool.acquire() as connection, connection.transaction():
            for envelope in envelopes:
                await first.stage(connection, envelope)
        first.kick()
        second.kick()
        received = await asyncio.to_thread(subscription.pull, len(envelopes))
    # A second copy would have been published beside the first (a row is locked until it
    # is marked published): take whatever else is on the subscription now.
    received += await asyncio.to_thread(subscription.pull_once)

    events = {m.message.attributes["event_id"] for m in received}
    assert events == {e.meta.id for e in envelopes}
    # The emulator may redeliver a message (same message id); a second publish of a row
    # would be a second message id for the same event.
    assert len({m.message.message_id for m in received}) == len(envelopes)
    assert await pending(pool, bus_source) == 0


async def test_a_consumer_acks_handled_events_retries_failed_ones_and_drops_garbage(
    stack: Stack, pool: asyncpg.Pool, subscription: Subscription
) -> None:
    host = stack.endpoints["pubsub"]
    envelope = log_event()
    calls: list[tuple[str, str]] = []
    handled = asyncio.Event()

    async def handler(
        event: Envelope, attributes: Mapping[str, str], delivery_attempt: int | None
    ) -> None:
        calls.append((event.meta.id, attributes["event_id"]))
        if len(calls) == 1:
            raise RuntimeError("the first delivery fails")  # nacked: delivered again
        handled.set()

    consumer = asyncio.create_task(
        consume(subscription.name, handler, emulator_host=host, project=PROJECT)
    )
    publisher = publisher_client(host)
    garbage = publisher.publish(f"projects/{PROJECT}/topics/{TOPIC}", b"\xff not an envelope")
    await asyncio.wrap_future(garbage)
    await asyncio.to_thread(publisher.stop)
    async with EventBus.open(
        source=source(), pool=pool, emulator_host=host, project=PROJECT
    ) as bus:
        await bus.publish(envelope)
    await asyncio.wait_for(handled.wait(), PATIENCE)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    assert calls == [(envelope.meta.id, envelope.meta.id)] * 2
    # Both were acked: the garbage as undecodable, the event once handled.
    assert await asyncio.to_thread(subscription.pull_once) == []


async def test_published_events_are_swept_after_the_retention_and_pending_ones_never(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    bus_source = source()
    rows = {}
    old, recent = timedelta(days=8), timedelta(days=1)
    for age, published in ((old, True), (recent, True), (old, False)):
        rows[(age, published)] = await pool.fetchval(
            "INSERT INTO event_outbox (source, topic, envelope, created_at, published_at)"
            " VALUES ($1, 'ampmesh-logs', $2, now() - $3::interval,"
            " CASE WHEN $4 THEN now() - $3::interval END) RETURNING id",
            bus_source,
            log_event().SerializeToString(),
            age,
            published,
        )
    # A relay sweeps when it starts (and every few minutes after); the old pending row is
    # published, not swept.
    async with EventBus.open(
        source=bus_source, pool=pool, emulator_host=stack.endpoints["pubsub"], project=PROJECT
    ):
        await asyncio.sleep(1.0)
    left = {
        r["id"]
        for r in await pool.fetch("SELECT id FROM event_outbox WHERE source = $1", bus_source)
    }
    assert left == {rows[(recent, True)], rows[(old, False)]}
    assert await pending(pool, bus_source) == 0
