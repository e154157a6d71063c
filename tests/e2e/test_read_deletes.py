"""Reads deliver deleted records, end to end through the mesh and the provider sandbox:
records deleted before an installation's backfill arrive with `deleted: true` exactly
once, the live ones without it; records deleted afterwards arrive, again as deleted, in
the next read since the last (a scheduled run for HubSpot, a triggered read for
Salesforce), along with the records touched meanwhile and nothing else. Both providers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from temporalio.client import Client

from services.domain.read_workflows import schedule_id
from tests.e2e.reads_world import (
    SANDBOX_PROVIDERS,
    Fields,
    ReadsWorld,
    make_world,
    provider_ids,
    sandbox_token,
    seed,
)
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, serve

pytestmark = pytest.mark.e2e

# Generous bounds for a busy 2-core machine, not timing claims.
PATIENCE = 180.0
RECORDS = 400
DELETED_FIRST = 23
DELETED_LATER = 17
TOUCHED = 9
SCHEDULE = "*/30 * * * *"


class DeletesReceiver(Receiver):
    """Counts live and deleted records apart, by id."""

    def __init__(self) -> None:
        super().__init__()
        self.live: Counter[str] = Counter()
        self.deleted: Counter[str] = Counter()

    def _count(self, message: dict[str, Any]) -> None:
        super()._count(message)
        for entry in message.get("result") or ():
            if "deleted" in entry:
                assert entry["deleted"] is True, entry  # never printed false
                self.deleted[str(entry["id"])] += 1
            else:
                self.live[str(entry["id"])] += 1

    def clear(self) -> None:
        self.live.clear()
        self.deleted.clear()
        self.received.records.clear()


@pytest.fixture
async def receiver() -> AsyncIterator[DeletesReceiver]:
    running = DeletesReceiver()
    async with serve(running):
        yield running


async def live_ids(stack: Stack, provider: str, object_name: str) -> set[str]:
    """Every id the sandbox still holds live for object_name."""
    if provider == "hubspot":
        return await provider_ids(stack, object_name)
    token = (await sandbox_token(stack, provider))["access_token"]
    ids: set[str] = set()
    async with httpx.AsyncClient(
        base_url=f"{stack.endpoints['sandbox-http']}/salesforce",
        headers={"authorization": f"Bearer {token}"},
    ) as salesforce:
        page = await salesforce.get(
            "/services/data/v60.0/query",
            params={"q": f"SELECT Id FROM {object_name}"},  # noqa: S608 (test's name)
        )
        while True:
            assert page.status_code == 200, page.text
            body = page.json()
            ids.update(r["Id"] for r in body["records"])
            if body.get("done", True):
                return ids
            page = await salesforce.get(body["nextRecordsUrl"])


async def delete(
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub, world: ReadsWorld, count: int
) -> set[str]:
    deleted = await sandbox.DeleteRecords(
        sandbox_pb2.DeleteRecordsRequest(
            provider=SANDBOX_PROVIDERS[world.provider],
            object_name=world.object_name,
            count=count,
            seed=uuid.uuid4().int % 2**31,
        )
    )
    assert len(deleted.ids) == count
    return set(deleted.ids)


async def arrive(receiver: DeletesReceiver, live: set[str], deleted: set[str]) -> None:
    """Wait until every id arrived, then check each came once, as live or as deleted."""
    missing = await receiver.wait_for_records(live | deleted, PATIENCE)
    assert not missing, f"{len(missing)} of {len(live | deleted)} records never arrived"
    assert receiver.received.bad_signatures == 0
    assert dict(receiver.deleted) == dict.fromkeys(deleted, 1)
    assert dict(receiver.live) == dict.fromkeys(live, 1)


async def operation_succeeds(world: ReadsWorld, installation_id: str, count: int) -> None:
    """Wait until the installation's count-th read operation ended, successfully."""
    deadline = time.monotonic() + PATIENCE
    while True:
        ended = [
            o
            for o in await world.operations(installation_id)
            if o["status"] in ("success", "failure")
        ]
        if len(ended) >= count:
            assert all(o["status"] == "success" for o in ended), ended
            return
        assert time.monotonic() < deadline, "the read never ended"
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("provider", ["hubspot", "salesforce"])
async def test_reads_deliver_deleted_records_once_in_their_window(
    stack: Stack,
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
    receiver: DeletesReceiver,
    provider: str,
) -> None:
    if provider == "hubspot":
        world = await make_world(
            stack, receiver.url(), f"deletes_{uuid.uuid4().hex[:8]}", schedule=SCHEDULE
        )
    else:
        # The sandbox gives Salesforce objects other than Account and Contact a `Name`.
        world = await make_world(
            stack,
            receiver.url(),
            f"Deletes{uuid.uuid4().hex[:8]}",
            provider="salesforce",
            fields=Fields(("accountName", "Name"), ()),
        )
    receiver.secrets[HOOK] = world.signing_key
    now = datetime.now(UTC)
    await seed(
        sandbox,
        world.object_name,
        RECORDS,
        modified_from=now - timedelta(days=9),
        modified_until=now - timedelta(days=8),
        provider=provider,
    )
    gone = await delete(sandbox, world, DELETED_FIRST)
    live = await live_ids(stack, provider, world.object_name)
    assert len(live) == RECORDS - DELETED_FIRST and not live & gone

    # The backfill (full history, up to now) delivers the live records and the deleted ones.
    receiver.keep_bodies = True
    installation = await world.install("acme", schedule=SCHEDULE if provider == "hubspot" else "")
    await arrive(receiver, live, gone)
    deleted_entry = next(
        e for b in receiver.received.bodies for e in b.get("result") or () if e.get("deleted")
    )
    # What the provider still gives of a deleted record is delivered as for any other.
    assert deleted_entry["id"] in gone and deleted_entry["raw"]
    mapped, source = world.fields.mapped
    values = deleted_entry["raw"]["properties"] if provider == "hubspot" else deleted_entry["raw"]
    assert deleted_entry["mappedFields"] == {mapped: values[source]}
    await operation_succeeds(world, installation["id"], 1)
    # Deleted records count as records read.
    got = await world.http.get(
        f"/integrations/{world.integration['id']}/installations/{installation['id']}"
        f"/objects/{world.object_name}/backfill-progress"
    )
    assert got.status_code == 200, got.text
    assert got.json()["recordsProcessed"] == RECORDS

    # Later deletions and changes reach the builder in the next read since the last.
    receiver.clear()
    since = datetime.now(UTC)
    await asyncio.sleep(0.01)
    later = await delete(sandbox, world, DELETED_LATER)
    assert not later & gone
    touched = await sandbox.TouchRecords(
        sandbox_pb2.TouchRecordsRequest(
            provider=SANDBOX_PROVIDERS[provider], object_name=world.object_name, count=TOUCHED
        )
    )
    changed = set(touched.ids)
    assert len(changed) == TOUCHED and not changed & later
    if provider == "hubspot":
        temporal = await Client.connect(stack.endpoints["temporal"], namespace="ampmesh")
        await temporal.get_schedule_handle(
            schedule_id(installation["id"], world.object_name)
        ).trigger()
    else:
        started = await world.read_http.post(
            f"/integrations/{world.integration['id']}/objects/{world.object_name}",
            json={
                "groupRef": "acme",
                "mode": "async",
                "sinceTimestamp": since.isoformat().replace("+00:00", "Z"),
            },
        )
        assert started.status_code == 201, started.text
    await operation_succeeds(world, installation["id"], 2)
    await arrive(receiver, changed, later)
