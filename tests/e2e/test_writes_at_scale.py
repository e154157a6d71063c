"""Ten thousand asynchronous single-record writes with auto-batching, through the real
stack, while the provider answers 429 for a minute and the temporal worker is killed once
(kill -9, then started again): every record reaches the sandbox exactly once, in batches,
every operation ends in success, and each write.async.done reaches the builder's webhook,
verified with the svix library."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from google.protobuf import duration_pb2

from tests.e2e.writes_world import MAPPED, route_notifications, writes_world
from tests.support.control_plane import eventually
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, serve

# Sending takes a minute or two, the batches wait out the 429s and the restart.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

WRITES = 10_000
CONCURRENCY = 32
# Accepted writes after which the worker is killed.
KILL_AFTER = 3_000
PATIENCE = 600.0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve(Receiver(keep_bodies=True, keep_requests=False)) as running:
        yield running


async def test_ten_thousand_auto_batched_writes_through_429s_and_a_killed_worker(
    stack: Stack, receiver: Receiver, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub
) -> None:
    world = await writes_world(stack, receiver.url())
    receiver.secrets[HOOK] = world.destination["secrets"]["webhookSigningKey"]
    await route_notifications(world, "write.async.done")
    builder_field, _ = MAPPED["hubspot"]
    tag = uuid.uuid4().hex[:8]
    emails = [f"s{tag}{n}@example.com" for n in range(WRITES)]
    before = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_WRITES,
                provider=sandbox_pb2.PROVIDER_HUBSPOT,
                duration=duration_pb2.Duration(seconds=60),
                retry_after=duration_pb2.Duration(seconds=5),
            )
        )
    )
    operations: list[str] = []
    pending = list(reversed(emails))
    killed, enough = asyncio.Event(), asyncio.Event()

    async def kill_worker_once() -> None:
        await enough.wait()
        stack.mesh.service("temporal-worker").process.kill()
        await stack.mesh.restart("temporal-worker")
        killed.set()

    async def send(http: httpx.AsyncClient) -> None:
        while pending:
            address = pending.pop()
            answer = await http.post(
                world.path(),
                json={
                    "groupRef": world.group,
                    "type": "create",
                    "mode": "asynchronous",
                    "record": {builder_field: address},
                    "autoBatchPolicy": {"maxDelayMinutes": 1},
                },
            )
            assert answer.status_code == 200, answer.text
            operations.append(answer.json()["operationId"])
            if len(operations) >= KILL_AFTER:
                enough.set()

    killer = asyncio.create_task(kill_worker_once())
    async with httpx.AsyncClient(
        base_url=str(world.write_http.base_url),
        headers={"x-api-key": stack.admin_api_key},
        timeout=60,
    ) as http:
        started = time.monotonic()
        await asyncio.gather(*(send(http) for _ in range(CONCURRENCY)))
        print(f"{WRITES} writes accepted in {time.monotonic() - started:.0f}s")
    await asyncio.wait_for(killer, 120)
    assert killed.is_set() and len(set(operations)) == WRITES

    # Every write.async.done arrives, verified, each naming one record written.
    deadline = time.monotonic() + PATIENCE
    while True:
        done = [b for b in receiver.received.bodies if b.get("notificationType")]
        if len(done) >= WRITES:
            took = time.monotonic() - started
            print(f"every notification arrived {took:.0f}s after the first write")
            break
        assert time.monotonic() < deadline, f"{len(done)} of {WRITES} notifications arrived"
        await asyncio.sleep(1)
    assert receiver.received.bad_signatures == 0
    assert {b["notificationType"] for b in done} == {"write.async.done"}
    assert all(b["data"]["success"] is True for b in done), [
        b for b in done if not b["data"]["success"]
    ][:3]
    record_ids = Counter(i for b in done for i in b["data"]["successfulRecordIds"])
    assert len(record_ids) == WRITES and set(record_ids.values()) == {1}

    # At the sandbox: each record written exactly once, in batches.
    after = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    assert after.records_written - before.records_written == WRITES
    batches = Counter(after.write_batch_sizes) - Counter(before.write_batch_sizes)
    assert sum(size * count for size, count in batches.items()) >= WRITES
    assert batches[100] >= WRITES // 100 // 2, batches

    # Every operation ended in success (a sample read back through the API). Scribe records
    # an operation's end from the bus while messenger sends its notification: the status
    # may follow the notification by a moment, and must then say success.
    for operation_id in random.sample(operations, 50):
        shown: dict[str, object] = {}

        async def ended(operation_id: str = operation_id, shown: dict[str, object] = shown) -> bool:
            got = await world.http.get(f"/operations/{operation_id}")
            assert got.status_code == 200, got.text
            shown.update(got.json())
            return shown["status"] in ("success", "failure")

        await eventually(ended, f"end operation {operation_id}")
        assert shown["status"] == "success", shown
