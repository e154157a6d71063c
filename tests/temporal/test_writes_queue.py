"""The auto-batching queue on the stack's PostgreSQL and Temporal: what the api adds and
when it wakes the batcher (services/api/writes.py; the batcher is started on a task queue
no worker polls, so its history shows every wake), and what a batcher's claim takes
(services/temporal/writes/queue.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from temporalio.client import Client

from services.api.writes import Writes
from services.temporal.writes import queue

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)


@pytest.fixture
def installation() -> target_pb2.ObjectTarget:
    return target_pb2.ObjectTarget(
        installation_id=str(uuid.uuid4()), object_name="contacts", provider="hubspot"
    )


@pytest.fixture
def writes(temporal: Client, task_queue: str) -> Writes:
    """The api's side, starting batchers on a queue no worker polls."""
    return Writes(temporal, task_queue=task_queue)


def queued(flush_in: float, record_id: str = "") -> writes_pb2.QueuedWrite:
    made = writes_pb2.QueuedWrite(operation_id=str(uuid.uuid4()))
    made.record.record_id = record_id
    made.record.record.update({"email": f"{made.operation_id}@example.com"})
    made.flush_time.FromDatetime(NOW + timedelta(seconds=flush_in))
    return made


async def add(
    pool: asyncpg.Pool, writes: Writes, target: target_pb2.ObjectTarget, *records: Any
) -> str:
    batcher = ""
    for record in records:
        async with pool.acquire() as conn, conn.transaction():
            batcher = await writes.enqueue(
                conn, target, writes_pb2.WRITE_TYPE_CREATE, record, "create"
            )
    return batcher


async def claim(
    pool: asyncpg.Pool, batcher: str, key: str, *, at: datetime = NOW
) -> writes_pb2.ClaimedWrites:
    request = writes_pb2.ClaimWritesInput(batcher_id=batcher, batch_key=key, size=100)
    return await queue.claim(pool, request, at)


async def wakes(temporal: Client, batcher: str) -> list[str]:
    """The operation ids the batcher's signals carried, in order."""
    history = await temporal.get_workflow_handle(batcher).fetch_history()
    found = []
    for event in history.events:
        if event.HasField("workflow_execution_signaled_event_attributes"):
            payloads = event.workflow_execution_signaled_event_attributes.input.payloads
            (wake,) = await temporal.data_converter.decode(payloads, [writes_pb2.QueuedWrite])
            found.append(wake.operation_id)
    return found


async def test_the_api_wakes_a_batcher_only_when_it_must_act(
    pool: asyncpg.Pool, installation: target_pb2.ObjectTarget, writes: Writes, temporal: Client
) -> None:
    records = [queued(600 + n) for n in range(250)]
    sooner = queued(60)
    batcher = await add(pool, writes, installation, *records[:150], sooner, *records[150:])
    # The first record, the 100th and the 200th waiting, and the sooner flush time.
    assert await wakes(temporal, batcher) == [
        records[0].operation_id,
        records[99].operation_id,
        sooner.operation_id,
        records[198].operation_id,
    ]


async def test_a_claim_takes_a_full_batch_or_waits_for_the_flush_time(
    pool: asyncpg.Pool, installation: target_pb2.ObjectTarget, writes: Writes
) -> None:
    batcher = await add(pool, writes, installation, *(queued(60) for _ in range(130)))
    first = await claim(pool, batcher, "run/0")
    assert len(first.writes) == 100 and first.waiting == 30
    # A retried claim returns what it took, and takes nothing more.
    again = await claim(pool, batcher, "run/0")
    assert [w.operation_id for w in again.writes] == [w.operation_id for w in first.writes]
    # Thirty wait for their flush time, a minute away.
    early = await claim(pool, batcher, "run/1")
    assert not early.writes and early.waiting == 30
    assert early.next_flush_time.ToDatetime(tzinfo=UTC) > NOW
    late = await claim(pool, batcher, "run/2", at=NOW + timedelta(minutes=2))
    assert len(late.writes) == 30 and late.waiting == 0
    await queue.release(pool, "run/0")
    await queue.release(pool, "run/2")
    left = await pool.fetchval("SELECT count(*) FROM write_queue WHERE batcher_id = $1", batcher)
    assert left == 0


async def test_two_writes_of_one_record_are_never_in_flight_at_once(
    pool: asyncpg.Pool, installation: target_pb2.ObjectTarget, writes: Writes
) -> None:
    batcher = await add(
        pool, writes, installation, queued(0, "7"), queued(0, "8"), queued(0, "7"), queued(0)
    )
    first = await claim(pool, batcher, "k/0")
    assert [w.record.record_id for w in first.writes] == ["7", "8", ""]
    # The second update of 7 waits while the first is in flight, then goes.
    held = await claim(pool, batcher, "k/1")
    assert not held.writes and held.waiting == 1
    await queue.release(pool, "k/0")
    after = await claim(pool, batcher, "k/2")
    assert [w.record.record_id for w in after.writes] == ["7"]


async def test_a_claim_waits_for_the_api_transaction_adding_a_batchers_first_record(
    pool: asyncpg.Pool, installation: target_pb2.ObjectTarget, writes: Writes
) -> None:
    record = queued(0)
    async with pool.acquire() as conn, conn.transaction():
        batcher = await writes.enqueue(
            conn, installation, writes_pb2.WRITE_TYPE_CREATE, record, "create"
        )
        # The wake went out before the commit; a claim now must not find "nothing".
        claiming = asyncio.create_task(claim(pool, batcher, "w/0"))
        await asyncio.sleep(0.5)
        assert not claiming.done()
    claimed = await claiming
    assert [w.operation_id for w in claimed.writes] == [record.operation_id]
