"""Reads end to end, through the whole mesh: an installation's creation backfills every
record the sandbox holds to the builder's webhook, each delivery signed so that the svix
library accepts it; a triggered read with sinceTimestamp delivers only what changed
since; a receiver failing for a minute, and a temporal worker or messenger killed (-9)
in the middle of a backfill, lose nothing; deleting an installation mid-backfill ends its
operation; and the operation, its progress and its logs tell through REST what happened.

Each test reads an object of its own name, so the sandbox's records of it are its own.
Duplicates (a page sent again after a crash) are allowed, and counted and printed;
gaps are not.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from temporalio.client import Client

from services.domain.read_workflows import schedule_id
from services.temporal.reads.pages import PAGES_IN_FLIGHT
from tests.e2e.reads_world import (
    Fields,
    ReadsWorld,
    make_world,
    one_pass_of,
    provider_ids,
    seed,
)
from tests.support.control_plane import assert_not_logged, database_url, issue_names
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, serve

pytestmark = pytest.mark.e2e

# Generous bounds for a busy 2-core machine, not timing claims: how long to wait for
# every record of a read to arrive, and for an operation to show its end.
ARRIVAL_PATIENCE = 240.0
OPERATION_PATIENCE = 60.0
BACKFILL_RECORDS = 50_000
KILLED_RECORDS = 20_000
LOST_RECORDS = 10_000
# The kill comes once the provider was asked for this many pages (of about 100).
KILL_AT_PAGE = 60
# Pages a killed read may fetch again beyond those published and awaiting their acks
# (pages.PAGES_IN_FLIGHT): the one being fetched, and the last batch of page rows not
# yet written to PostgreSQL.
SETTLING_SLACK = 8


def object_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve(Receiver()) as running:
        yield running


async def world_for(stack: Stack, receiver: Receiver, prefix: str, **args: Any) -> ReadsWorld:
    world = await make_world(stack, receiver.url(), object_name(prefix), **args)
    receiver.secrets[HOOK] = world.signing_key
    return world


async def finished_operation(world: ReadsWorld, installation_id: str) -> dict[str, Any]:
    """The installation's read operation once it has ended (scribe records it)."""
    deadline = time.monotonic() + OPERATION_PATIENCE
    while True:
        operations = await world.operations(installation_id)
        ended = [o for o in operations if o["status"] in ("success", "failure")]
        if ended:
            return ended[0]
        assert time.monotonic() < deadline, f"no read operation ended: {operations}"
        await asyncio.sleep(0.5)


async def all_arrive(receiver: Receiver, ids: set[str]) -> None:
    missing = await receiver.wait_for_records(ids, ARRIVAL_PATIENCE)
    received = receiver.received
    print(
        f"records={len(ids)} deliveries={sum(received.messages.values())} "
        f"duplicates={received.duplicate_records} refused={received.refused}"
    )
    assert not missing, f"{len(missing)} of {len(ids)} records never arrived"
    assert received.bad_signatures == 0
    # Nothing arrives that the provider does not hold.
    assert set(received.records) <= ids


async def test_creating_an_installation_backfills_every_record_signed(
    stack: Stack, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub, receiver: Receiver
) -> None:
    world = await world_for(stack, receiver, "backfill")
    await seed(sandbox, world.object_name, BACKFILL_RECORDS)
    ids = await provider_ids(stack, world.object_name)
    assert len(ids) == BACKFILL_RECORDS
    receiver.both_libraries = True
    receiver.keep_bodies = True
    installation = await world.install("acme")
    await all_arrive(receiver, ids)

    # Every body is the reference's webhook payload.
    body = receiver.received.bodies[0]
    assert body["projectId"] == world.project_id
    assert body["provider"] == "hubspot"
    assert body["groupRef"] == "acme"
    assert body["installationId"] == installation["id"]
    assert body["objectName"] == world.object_name
    assert body["action"] == "read"
    assert body["readType"] == "backfill"
    assert body["resultInfo"] == {"type": "inline", "numRecords": len(body["result"])}
    entry = body["result"][0]
    assert set(entry["mappedFields"]) == {"title"}
    assert set(entry["fields"]) == {"amount"}
    assert entry["raw"]["id"] == entry["id"]
    assert entry["mappedFields"]["title"] == entry["raw"]["properties"]["name"]

    # The operation, its progress and its logs tell what happened.
    operation = await finished_operation(world, installation["id"])
    assert operation["status"] == "success", operation
    assert operation["actionType"] == "read"
    got = await world.http.get(
        f"/integrations/{world.integration['id']}/installations/{installation['id']}"
        f"/objects/{world.object_name}/backfill-progress"
    )
    assert got.status_code == 200, got.text
    progress = got.json()
    assert progress["operationId"] == operation["id"]
    assert progress["recordsProcessed"] == BACKFILL_RECORDS
    logs = await world.http.get(f"/operations/{operation['id']}/logs")
    assert logs.status_code == 200, logs.text
    messages = [log["message"]["msg"] for log in logs.json()]
    assert messages, "the backfill logged nothing"
    assert_not_logged(stack, world.signing_key, *world.secrets)
    # Deleting the installation after its backfill ended (nothing left to cancel) works.
    deleted = await world.http.delete(
        f"/integrations/{world.integration['id']}/installations/{installation['id']}"
    )
    assert deleted.status_code == 204, deleted.text


async def test_a_salesforce_backfill_reads_through_soql_pages(
    stack: Stack, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub, receiver: Receiver
) -> None:
    # The sandbox gives Salesforce objects other than Account and Contact a `Name`.
    fields = Fields(("accountName", "Name"), ())
    world = await world_for(stack, receiver, "Ledger", provider="salesforce", fields=fields)
    await seed(sandbox, world.object_name, 3_000, provider="salesforce")
    receiver.keep_bodies = True
    installation = await world.install("acme")
    deadline = time.monotonic() + ARRIVAL_PATIENCE
    while sum(len(b.get("result") or ()) for b in receiver.received.bodies) < 3_000:
        assert time.monotonic() < deadline, "the Salesforce backfill never finished"
        await asyncio.sleep(0.2)
    assert receiver.received.bad_signatures == 0
    assert len(receiver.received.records) == 3_000
    body = receiver.received.bodies[0]
    assert body["provider"] == "salesforce"
    assert body["installationId"] == installation["id"]
    entry = body["result"][0]
    assert entry["raw"]["Id"] == entry["id"]
    assert entry["mappedFields"]["accountName"] == entry["raw"]["Name"]
    operation = await finished_operation(world, installation["id"])
    assert operation["status"] == "success", operation


async def test_a_triggered_read_since_a_time_delivers_only_what_changed_since(
    stack: Stack, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub, receiver: Receiver
) -> None:
    world = await world_for(stack, receiver, "triggered", backfill=False)
    now = datetime.now(UTC)
    await seed(
        sandbox,
        world.object_name,
        2_000,
        modified_from=now - timedelta(days=30),
        modified_until=now - timedelta(days=20),
    )
    touched = await sandbox.TouchRecords(
        sandbox_pb2.TouchRecordsRequest(
            provider=sandbox_pb2.PROVIDER_HUBSPOT, object_name=world.object_name, count=37
        )
    )
    changed = set(touched.ids)
    assert len(changed) == 37
    await world.install("acme", backfill=False)
    # The builder routes read.triggered.done to a topic that goes to the same webhook.
    topic = await world.http.post("/topics", json={"name": "reads-done"})
    assert topic.status_code == 201, topic.text
    for path, body in (
        (
            "/notification-event-topic-routes",
            {"eventType": "read.triggered.done", "topicId": topic.json()["id"]},
        ),
        (
            "/topic-destination-routes",
            {"topicId": topic.json()["id"], "destinationId": world.destination["id"]},
        ),
    ):
        routed = await world.http.post(path, json=body)
        assert routed.status_code == 201, routed.text
    receiver.keep_bodies = True
    since = now - timedelta(days=1)
    started = await world.read_http.post(
        f"/integrations/{world.integration['id']}/objects/{world.object_name}",
        json={
            "groupRef": "acme",
            "mode": "async",
            "sinceTimestamp": since.isoformat().replace("+00:00", "Z"),
        },
    )
    assert started.status_code == 201, started.text
    operation_id = started.json()["operationId"]
    await all_arrive(receiver, changed)
    assert set(receiver.received.records) == changed
    deadline = time.monotonic() + OPERATION_PATIENCE
    while True:
        got = await world.http.get(f"/operations/{operation_id}")
        if got.status_code == 200 and got.json()["status"] == "success":
            break
        assert time.monotonic() < deadline, got.text
        await asyncio.sleep(0.5)
    # The notification reaches the webhook too, signed like the records.
    while not (done := [b for b in receiver.received.bodies if b.get("notificationType")]):
        assert time.monotonic() < deadline, "read.triggered.done never arrived"
        await asyncio.sleep(0.2)
    (notification,) = done
    assert notification["notificationType"] == "read.triggered.done"
    assert notification["data"]["objectName"] == world.object_name


async def test_a_receiver_failing_for_a_minute_loses_nothing(
    stack: Stack, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub, receiver: Receiver
) -> None:
    world = await world_for(stack, receiver, "failing")
    await seed(sandbox, world.object_name, 3_000)
    ids = await provider_ids(stack, world.object_name)
    # Half a minute of 500s, then half a minute of 429s asking for 5 s of patience.
    receiver.fail(500, 30)

    async def then_rate_limit() -> None:
        await asyncio.sleep(30)
        receiver.fail(429, 30, retry_after=5)

    switch = asyncio.create_task(then_rate_limit())
    await world.install("acme")
    try:
        await all_arrive(receiver, ids)
    finally:
        switch.cancel()
    assert receiver.received.refused > 0


async def page_requests(sandbox: sandbox_pb2_grpc.SandboxControlServiceStub) -> int:
    """Record API requests the sandbox answered 200 since its counters were reset."""
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    return counters.api_requests_by_status.get(200, 0)


@pytest.mark.parametrize("victim", ["temporal-worker", "messenger"])
async def test_killing_a_service_mid_backfill_loses_nothing(
    stack: Stack,
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
    receiver: Receiver,
    victim: str,
) -> None:
    """A killed worker's read resumes after its last page on the bus: the provider is
    asked for at most the pages that were in flight at the kill again, and no record
    arrives twice."""
    world = await world_for(stack, receiver, "killed")
    await seed(sandbox, world.object_name, KILLED_RECORDS)
    ids = await provider_ids(stack, world.object_name)
    await sandbox.GetCounters(sandbox_pb2.GetCountersRequest(reset=True))
    installation = await world.install("acme")
    # Mid-backfill: some records arrived, and more pages were read than can be in flight
    # (a read that started over would read those again).
    deadline = time.monotonic() + ARRIVAL_PATIENCE
    while len(receiver.received.records) < 1_000 or await page_requests(sandbox) < KILL_AT_PAGE:
        assert time.monotonic() < deadline, "the backfill never got far enough"
        await asyncio.sleep(0.05)
    running = stack.mesh.service(victim)
    running.process.kill()
    at_kill = await page_requests(sandbox)
    await running.process.wait()
    await stack.mesh.restart(victim)
    await all_arrive(receiver, ids)
    operation = await finished_operation(world, installation["id"])
    assert operation["status"] == "success", operation
    requests = await page_requests(sandbox)
    one_pass = await one_pass_of(stack, installation["id"], world.object_name)
    assert one_pass > PAGES_IN_FLIGHT
    print(f"victim={victim} page requests={requests} at kill={at_kill} one pass={one_pass}")
    assert requests - one_pass <= PAGES_IN_FLIGHT + SETTLING_SLACK, (
        f"{requests} page requests for {one_pass} pages: the read started over"
    )
    if victim == "temporal-worker":
        # Pages read again keep their keys: messenger sends each once.
        assert receiver.received.duplicate_records == 0


async def test_pages_the_bus_lost_are_published_again_before_the_read_is_done(
    stack: Stack, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub, receiver: Receiver
) -> None:
    """Messenger is down while the backfill publishes, and the Pub/Sub emulator restarts
    (it keeps nothing): the pages it held are fetched from the provider again and
    published under their keys, every record arrives once, and the operation says
    success only once messenger has recorded every page."""
    world = await world_for(stack, receiver, "lost")
    await seed(sandbox, world.object_name, LOST_RECORDS)
    ids = await provider_ids(stack, world.object_name)
    await sandbox.GetCounters(sandbox_pb2.GetCountersRequest(reset=True))
    installation = await world.install("acme")
    deadline = time.monotonic() + ARRIVAL_PATIENCE
    while len(receiver.received.records) < 1_000:
        assert time.monotonic() < deadline, "the backfill never started delivering"
        await asyncio.sleep(0.05)
    # Messenger stops (and stays stopped); the rest of the pages wait in the emulator.
    stack.mesh.hold("messenger")
    messenger = stack.mesh.service("messenger")
    messenger.process.terminate()
    await messenger.process.wait()
    # The read has fetched every page once its request count stops moving.
    seen, still_since = -1, time.monotonic()
    while time.monotonic() - still_since < 3:
        now = await page_requests(sandbox)
        if now != seen:
            seen, still_since = now, time.monotonic()
        assert time.monotonic() < deadline, "the backfill never finished reading"
        await asyncio.sleep(0.2)
    await stack.mesh.restart_process("pubsub")
    operations = await world.operations(installation["id"])
    assert [o["status"] for o in operations] == ["in_progress"], operations
    await stack.mesh.restart("messenger")

    async def recorded() -> int:
        pool = await asyncpg.connect(database_url(stack))
        try:
            total: int = await pool.fetchval(
                "SELECT coalesce(sum(record_count), 0) FROM webhook_deliveries "
                "WHERE operation_id = $1",
                operations[0]["id"],
            )
            return total
        finally:
            await pool.close()

    # The operation ends only once messenger has recorded every page.
    deadline = time.monotonic() + ARRIVAL_PATIENCE
    while True:
        got = await world.http.get(f"/operations/{operations[0]['id']}")
        assert got.status_code == 200, got.text
        if got.json()["status"] != "in_progress":
            assert got.json()["status"] == "success", got.json()
            assert await recorded() == LOST_RECORDS
            break
        assert time.monotonic() < deadline, f"the operation never ended: {got.json()}"
        await asyncio.sleep(0.2)
    await all_arrive(receiver, ids)
    assert receiver.received.duplicate_records == 0
    one_pass = await one_pass_of(stack, installation["id"], world.object_name)
    requests = await page_requests(sandbox)
    print(f"lost pages fetched again: {requests - one_pass} (one pass: {one_pass})")
    assert requests > one_pass, "no page was lost: the test proved nothing"


async def test_deleting_an_installation_mid_backfill_ends_its_operation(
    stack: Stack, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub, receiver: Receiver
) -> None:
    """The backfill is cancelled with the installation; its operation, still readable by
    id, ends in failure and says the read was cancelled."""
    world = await world_for(stack, receiver, "deleted")
    await seed(sandbox, world.object_name, 5_000)
    # After its first pages the provider slows to a page every 2 s: mid-backfill for long.
    slow = sandbox_pb2.Fault(
        kind=sandbox_pb2.FAULT_KIND_SLOW_RESPONSE,
        endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
        object_name=world.object_name,
        skip=3,
    )
    slow.delay.FromSeconds(2)
    fault = await sandbox.InjectFault(sandbox_pb2.InjectFaultRequest(fault=slow))
    try:
        installation = await world.install("acme")
        deadline = time.monotonic() + ARRIVAL_PATIENCE
        while not receiver.received.records:
            assert time.monotonic() < deadline, "the backfill never started delivering"
            await asyncio.sleep(0.05)
        [running] = await world.operations(installation["id"])
        assert running["status"] == "in_progress"
        base = f"/integrations/{world.integration['id']}/installations/{installation['id']}"
        deleted = await world.http.delete(base)
        assert deleted.status_code == 204, deleted.text

        deadline = time.monotonic() + OPERATION_PATIENCE
        while True:
            got = await world.http.get(f"/operations/{running['id']}")
            assert got.status_code == 200, got.text
            if got.json()["status"] != "in_progress":
                break
            assert time.monotonic() < deadline, f"the operation never ended: {got.json()}"
            await asyncio.sleep(0.5)
        assert got.json()["status"] == "failure"
        assert "the read was cancelled before it finished" in got.json()["result"]
        assert len(receiver.received.records) < 5_000
    finally:
        await sandbox.ClearFaults(sandbox_pb2.ClearFaultsRequest(ids=[fault.id]))


async def test_a_schedule_reads_what_changed_and_pauses_and_resumes_through_the_api(
    stack: Stack, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub, receiver: Receiver
) -> None:
    world = await world_for(stack, receiver, "scheduled", schedule="*/30 * * * *", backfill=False)
    now = datetime.now(UTC)
    await seed(
        sandbox,
        world.object_name,
        500,
        modified_from=now - timedelta(days=9),
        modified_until=now - timedelta(days=8),
    )
    installation = await world.install("acme", schedule="*/30 * * * *", backfill=False)
    temporal = await Client.connect(stack.endpoints["temporal"], namespace="ampmesh")
    handle = temporal.get_schedule_handle(schedule_id(installation["id"], world.object_name))
    assert not (await handle.describe()).schedule.state.paused
    # A run of the schedule reads from the object's watermark (the installation's
    # creation: nothing older was asked for) to its own start: only what changed since.
    touched = await sandbox.TouchRecords(
        sandbox_pb2.TouchRecordsRequest(
            provider=sandbox_pb2.PROVIDER_HUBSPOT, object_name=world.object_name, count=11
        )
    )
    await handle.trigger()
    await all_arrive(receiver, set(touched.ids))
    assert set(receiver.received.records) == set(touched.ids)
    base = f"/integrations/{world.integration['id']}/installations/{installation['id']}"
    paused = await world.read_http.post(f"{base}:pause", json={"note": "maintenance"})
    assert paused.status_code == 204, paused.text
    state = (await handle.describe()).schedule.state
    assert state.paused and state.note == "maintenance"
    unknown = await world.read_http.post(f"{base}:unpause", json={"objects": ["nope"]})
    assert unknown.status_code == 400, unknown.text
    assert (await handle.describe()).schedule.state.paused
    resumed = await world.read_http.post(f"{base}:unpause", json={})
    assert resumed.status_code == 204, resumed.text
    assert not (await handle.describe()).schedule.state.paused
    # Deleting the installation deletes its schedule.
    deleted = await world.http.delete(base)
    assert deleted.status_code == 204, deleted.text
    schedules = [s.id async for s in await temporal.list_schedules()]
    assert handle.id not in schedules


async def test_bad_triggered_reads_are_refused_naming_the_field(
    stack: Stack, receiver: Receiver
) -> None:
    world = await world_for(stack, receiver, "refused", backfill=False)
    await world.install("acme", backfill=False)
    path = f"/integrations/{world.integration['id']}/objects/{world.object_name}"
    now = datetime.now(UTC)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"groupRef": "acme", "mode": "sync"}, 400, "body.mode"),
        ({"mode": "async"}, 400, "body.groupRef"),
        (
            {
                "groupRef": "acme",
                "mode": "async",
                "sinceTimestamp": now.isoformat().replace("+00:00", "Z"),
                "untilTimestamp": (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
            },
            400,
            "body.untilTimestamp",
        ),
        ({"groupRef": "globex", "mode": "async"}, 404, ""),
    ]
    for body, status, field in cases:
        response = await world.read_http.post(path, json=body)
        assert response.status_code == status, (body, response.text)
        problem = response.json()
        if field:
            assert field in issue_names(problem), problem
    other = await world.read_http.post(
        f"/integrations/{world.integration['id']}/objects/nothing_here",
        json={"groupRef": "acme", "mode": "async"},
    )
    assert other.status_code == 404, other.text
