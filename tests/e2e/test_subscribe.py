"""Subscribe actions through the whole mesh, as a builder relies on them: installing
registers the provider-side subscriptions at the sandbox; records touched, created and
deleted there arrive at the builder's webhook as signed `action: "subscribe"` messages
(verified with the svix and standardwebhooks libraries), each change once even when the
provider sends it twice, and none lost when messenger or the subscribe worker is killed
or the receiver is down for a minute; a registration the provider refuses emits
subscribe.create.error; uninstalling removes the subscriptions."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from tests.e2e.reads_world import sandbox_token
from tests.e2e.subscribe_world import MAPPED, UNMAPPED, SubscribeReceiver, make_world
from tests.support.sandbox import controlling
from tests.support.stack import Stack
from tests.support.webhooks import serve

pytestmark = pytest.mark.e2e

TOUCHED = 500
ARRIVE_WITHIN = 180.0


@pytest.fixture
async def control(stack: Stack) -> AsyncIterator[sandbox_pb2_grpc.SandboxControlServiceStub]:
    """The sandbox's control API, its subscriptions forgotten first (HubSpot's are app-level:
    an earlier test's integration must not receive this test's events)."""
    async with controlling(stack) as control:
        await control.Reset(
            sandbox_pb2.ResetRequest(scopes=[sandbox_pb2.RESET_SCOPE_SUBSCRIPTIONS])
        )
        yield control


@pytest.fixture
async def receiver() -> AsyncIterator[SubscribeReceiver]:
    serving = SubscribeReceiver()
    async with serve(serving):
        yield serving


async def provider_values(
    stack: Stack, provider: str, object_name: str, ids: list[str]
) -> dict[str, str]:
    """Record id -> the mapped field's value as the sandbox holds it now."""
    token = (await sandbox_token(stack, provider))["access_token"]
    field = MAPPED[provider][1]
    values: dict[str, str] = {}
    async with httpx.AsyncClient(
        base_url=stack.endpoints["sandbox-http"],
        headers={"authorization": f"Bearer {token}"},
    ) as http:
        for record_id in ids:
            if provider == "hubspot":
                got = await http.get(
                    f"/hubspot/crm/v3/objects/{object_name}/{record_id}",
                    params={"properties": field},
                )
                assert got.status_code == 200, got.text
                values[record_id] = got.json()["properties"][field]
            else:
                got = await http.get(
                    f"/salesforce/services/data/v59.0/sobjects/{object_name}/{record_id}"
                )
                assert got.status_code == 200, got.text
                values[record_id] = got.json()[field]
    return values


async def of_kind(
    receiver: SubscribeReceiver, ids: set[str] | None, kind: str, *, want: int = 0
) -> set[str]:
    """Wait until each of ids (or want records) has an entry of this subscribeEventType."""
    deadline = time.monotonic() + ARRIVE_WITHIN
    while True:
        found = {
            i
            for i, entries in receiver.entries.items()
            if any(e["subscribeEventType"] == kind for e in entries)
        }
        if (ids is not None and ids <= found) or (ids is None and len(found) >= want):
            return found
        assert time.monotonic() < deadline, f"{kind} events never arrived: {found}"
        await asyncio.sleep(0.2)


async def arrived(receiver: SubscribeReceiver, ids: set[str], patience: float) -> None:
    missing = await receiver.wait_for_records(ids, patience)
    assert not missing, (
        f"{len(missing)} of {len(ids)} changes never arrived, e.g. {sorted(missing)[:5]}"
    )


@pytest.mark.parametrize("provider", ["hubspot", "salesforce"])
async def test_touched_created_and_deleted_records_arrive_once_as_subscribe_messages(
    stack: Stack,
    control: sandbox_pb2_grpc.SandboxControlServiceStub,
    receiver: SubscribeReceiver,
    provider: str,
) -> None:
    world = await make_world(stack, receiver, control, provider)
    seeded = await control.SeedRecords(
        sandbox_pb2.SeedRecordsRequest(
            provider=world.sandbox_provider,
            object_name=world.object_name,
            count=TOUCHED + 20,
            seed=18,
            replace=True,
        )
    )
    assert seeded.created == TOUCHED + 20
    installation = await world.install("acme")
    registered = await world.wait_registered()
    if provider == "hubspot":
        kinds = {s.event_type for s in await world.registered()}
        assert {"contact.creation", "contact.deletion", "contact.propertyChange"} <= kinds
        watched = {s.property_name for s in registered if s.event_type.endswith("propertyChange")}
        assert {"email", "firstname"} <= watched, watched

    # The provider sends some events twice, as providers retry.
    duplicating = await control.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_DUPLICATE_EVENT,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_WEBHOOKS,
                provider=world.sandbox_provider,
                count=25,
            )
        )
    )
    touched = await control.TouchRecords(
        sandbox_pb2.TouchRecordsRequest(
            provider=world.sandbox_provider,
            object_name=world.object_name,
            count=TOUCHED,
            seed=7,
        )
    )
    ids = set(touched.ids)
    assert len(ids) == TOUCHED
    await arrived(receiver, ids, ARRIVE_WITHIN)
    # A fault that fired its count is no longer listed.
    faults = await control.ListFaults(sandbox_pb2.ListFaultsRequest())
    left = [f for f in faults.faults if f.id == duplicating.id]
    assert not left or left[0].fired > 0, "the sandbox sent no duplicate"

    # Each change once, with the record as the provider holds it now, mapped.
    assert {i: n for i, n in receiver.received.records.items() if n > 1} == {}
    assert receiver.received.bad_signatures == 0
    assert len(receiver.messages) == TOUCHED
    mapped_name = MAPPED[provider][0]
    sample = sorted(ids)[:10]
    now = await provider_values(stack, provider, world.object_name, sample)
    for record_id in ids:
        (entry,) = receiver.entries[record_id]
        assert entry["subscribeEventType"] == "update", entry
        assert entry["providerEventType"] == (
            "contact.propertyChange" if provider == "hubspot" else "UPDATE"
        )
        assert entry["fieldsUpdated"], entry
        assert entry["rawEvent"], entry
        assert "deleted" not in entry
        if record_id in now:
            assert entry["mappedFields"][mapped_name] == now[record_id], entry
    message = receiver.messages[0]
    assert message["installationId"] == installation["id"]
    assert message["projectId"] == world.project_id
    assert message["objectName"] == world.object_name
    assert message["resultInfo"] == {"type": "inline", "numRecords": 1}
    assert "operationId" not in message

    # Deleted and created records arrive as such.
    deleted = await control.DeleteRecords(
        sandbox_pb2.DeleteRecordsRequest(
            provider=world.sandbox_provider, object_name=world.object_name, count=5, seed=3
        )
    )
    created = await control.SeedRecords(
        sandbox_pb2.SeedRecordsRequest(
            provider=world.sandbox_provider,
            object_name=world.object_name,
            count=3,
            seed=99,
            replace=False,
        )
    )
    assert created.first_id and created.last_id
    await of_kind(receiver, set(deleted.ids), "delete")
    for record_id in deleted.ids:
        entry = receiver.entries[record_id][-1]
        assert entry["deleted"] is True and "mappedFields" not in entry, entry
    new_ids = await of_kind(receiver, None, "create", want=3)
    for record_id in new_ids:
        (entry,) = receiver.entries[record_id]
        assert entry["subscribeEventType"] == "create", entry
        assert entry["mappedFields"][mapped_name], entry
        assert {name.lower() for name in UNMAPPED[provider]} <= set(entry["fields"]), entry

    await world.uninstall(installation)
    await world.wait_unregistered()


async def test_nothing_is_lost_when_messenger_and_the_worker_die_or_the_receiver_is_down(
    stack: Stack,
    control: sandbox_pb2_grpc.SandboxControlServiceStub,
    receiver: SubscribeReceiver,
) -> None:
    world = await make_world(stack, receiver, control, "salesforce")
    await control.SeedRecords(
        sandbox_pb2.SeedRecordsRequest(
            provider=world.sandbox_provider,
            object_name=world.object_name,
            count=300,
            seed=5,
            replace=True,
        )
    )
    await world.install("acme")
    await world.wait_registered()
    # The builder's receiver is down for a minute (asking to come back later).
    receiver.fail(429, 60, retry_after=2)
    # Rounds may touch a record again: each touch is a change of its own, delivered once.
    touches: Counter[str] = Counter()
    for round_number, victim in enumerate(("messenger", "temporal-worker", None)):
        touched = await control.TouchRecords(
            sandbox_pb2.TouchRecordsRequest(
                provider=world.sandbox_provider,
                object_name=world.object_name,
                count=100,
                seed=round_number + 1,
            )
        )
        touches.update(touched.ids)
        await asyncio.sleep(1)
        if victim is not None:
            await kill(stack, victim)
    deadline = time.monotonic() + ARRIVE_WITHIN + 60
    while receiver.received.records != touches:
        short = {i: n for i, n in touches.items() if receiver.received.records[i] < n}
        assert time.monotonic() < deadline, f"{len(short)} changes never arrived"
        await asyncio.sleep(0.5)
    assert receiver.received.refused > 0, "the receiver was never down"


async def kill(stack: Stack, name: str) -> None:
    """kill -9 one service; the supervisor brings it back."""
    mesh = stack.mesh
    assert mesh.supervisor is not None
    before = mesh.restarts(name)
    pid = mesh.supervisor.record(name).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while mesh.restarts(name) == before:
        assert time.monotonic() < deadline, f"{name} was not restarted"
        await asyncio.sleep(0.1)


async def test_a_registration_the_provider_refuses_emits_subscribe_create_error(
    stack: Stack,
    control: sandbox_pb2_grpc.SandboxControlServiceStub,
    receiver: SubscribeReceiver,
) -> None:
    world = await make_world(stack, receiver, control, "hubspot", developer_api_key="wrong")
    await world.route("subscribe.create.error", "installation.created")
    installation = await world.install("acme")
    note = await receiver.wait_for_notification("subscribe.create.error", 120)
    data: dict[str, Any] = note["data"]
    assert data["installationId"] == installation["id"]
    assert data["projectId"] == world.project_id
    assert data["error"], data
    assert "wrong" not in str(note)  # the key is never echoed
    assert not await world.registered()
