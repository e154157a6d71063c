"""The fault matrix: each process of the mesh, and each piece of infrastructure, killed
with SIGKILL in the middle of a 20,000-record backfill and a stream of token calls; the
mesh must heal itself (nothing here restarts anything), deliver every record exactly once
to a receiver that verifies signatures with the svix library, answer every token call made
after recovery, and request no more provider pages than one pass plus the pages in flight
at the kill. The first case kills nothing: it measures one pass.

The provider sandbox is not in the matrix: it plays the third party.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2_grpc

from services.launcher.processes import default_services
from tests.e2e.reads_world import ReadsWorld, make_world, one_pass_of, provider_ids, seed
from tests.faults.matrix import (
    RECORDS,
    ROWS,
    DedupingReceiver,
    Row,
    TokenStream,
    healthy_again,
    kill_hard,
    provider_pages,
    recorded_pid,
)
from tests.support.control_plane import database_url
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, serve

pytestmark = pytest.mark.e2e

# Every service `ampmesh up` starts (the sandbox, which plays the provider, is not one).
SERVICES = [spec.name for spec in default_services()]
INFRASTRUCTURE = ["postgres", "redis", "temporal", "pubsub", "envoy"]
# Killed once this share of the records has arrived: mid-backfill.
KILL_AFTER = 2_000
# Generous bounds for a busy 2-core machine, not timing claims.
HEAL_PATIENCE = 180.0
ARRIVAL_PATIENCE = 420.0
OPERATION_PATIENCE = 120.0
TOKEN_CONNECTIONS = 6

# The provider requests a read makes beyond its pages when nothing is killed.
OVERHEAD: dict[str, int] = {}


async def settled_pages(stack: Stack, world: ReadsWorld, installation_id: str) -> int:
    """Pages of the installation's running read that are settled: on the bus and in
    read_pages, the durable point a retried read resumes after."""
    (operation,) = await world.operations(installation_id)
    connection = await asyncpg.connect(database_url(stack))
    try:
        settled = await connection.fetchval(
            "SELECT count(*) FROM read_pages WHERE operation_id = $1", operation["id"]
        )
    finally:
        await connection.close()
    return int(settled)


async def finished(world: ReadsWorld, installation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + OPERATION_PATIENCE
    while True:
        operations = await world.operations(installation_id)
        done = [o for o in operations if o["status"] != "in_progress"]
        if operations and len(done) == len(operations):
            return operations[0]
        assert time.monotonic() < deadline, f"the read never ended: {operations}"
        await asyncio.sleep(1)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("fault", ["nothing", *SERVICES, *INFRASTRUCTURE])
async def test_the_mesh_heals_and_loses_nothing_when_killed(
    stack: Stack, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub, fault: str
) -> None:
    home = stack.home
    await healthy_again(home, HEAL_PATIENCE)  # the previous fault healed
    receiver = DedupingReceiver()
    async with serve(receiver):
        world = await make_world(stack, receiver.url(), f"faults_{uuid.uuid4().hex[:8]}")
        receiver.secrets[HOOK] = world.signing_key
        await seed(sandbox, world.object_name, RECORDS)
        ids = await provider_ids(stack, world.object_name)
        connections = [(await world.connect(f"tokens-{i}"))["id"] for i in range(TOKEN_CONNECTIONS)]
        stream = TokenStream(stack, world.project_id, connections)
        async with stream.running():
            pages_before = await provider_pages(sandbox)
            installation = await world.install("acme")
            deadline = time.monotonic() + ARRIVAL_PATIENCE
            while len(receiver.received.records) < KILL_AFTER:
                assert time.monotonic() < deadline, "the backfill never started delivering"
                await asyncio.sleep(0.02)

            healed, in_flight = 0.0, 0
            if fault != "nothing":
                settled = await settled_pages(stack, world, installation["id"])
                delivered = len(receiver.received.messages)
                pid = recorded_pid(home, fault)
                kill_hard(pid)
                # Fetched from the provider but not yet settled (on the bus and written down
                # as the point a retried read resumes after): what a kill may cost again.
                in_flight = await provider_pages(sandbox) - pages_before - settled
                if fault == "pubsub":
                    # The emulator keeps nothing: pages settled on the bus but not yet
                    # delivered are fetched again too (confirm_read), one page a message.
                    in_flight += max(settled - delivered, 0)
                healed = await healthy_again(home, HEAL_PATIENCE, killed=(fault, pid))
            recovered = time.monotonic()

            missing = await receiver.wait_for_records(ids, ARRIVAL_PATIENCE)
            operation = await finished(world, installation["id"])
            # A few more seconds of token calls, all made after recovery.
            await asyncio.sleep(3)
        pages = await provider_pages(sandbox) - pages_before
        one_pass = await one_pass_of(stack, installation["id"], world.object_name)
        # Requests one pass makes besides its pages (none, unless the read's setup asks
        # the provider something), as the case that kills nothing measured them.
        if fault == "nothing":
            OVERHEAD["pages"] = pages - one_pass
        overhead = OVERHEAD.get("pages", 0)
        row = Row(
            fault=fault,
            seconds_to_healthy=healed,
            records_lost=len(missing),
            duplicates=receiver.received.duplicate_records,
            extra_pages=pages - one_pass - overhead,
            pages_in_flight=in_flight,
            token_failures_after=sum(stream.failures_since(recovered).values()),
            redelivered_messages=receiver.redelivered,
        )
        ROWS.append(row)

    assert not missing, f"{len(missing)} records never arrived"
    assert row.duplicates == 0, f"{row.duplicates} records arrived in two messages"
    assert operation["status"] == "success", operation
    assert stream.calls_since(recovered) > 0
    assert not stream.failures_since(recovered), stream.failures_since(recovered)
    assert row.extra_pages <= max(in_flight, 0), (
        f"{pages} provider pages for a {one_pass}-page read: {row.extra_pages} extra, "
        f"{in_flight} were in flight at the kill"
    )
