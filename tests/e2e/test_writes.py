"""The Write API through the real stack: the write host on the edge, the api, the
token-manager, Temporal, Pub/Sub, scribe and messenger, against the sandbox's HubSpot and
Salesforce. What is written is checked at the sandbox, through the provider's own API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from tests.e2e.writes_world import (
    DEFAULTS,
    MAPPED,
    WritesWorld,
    route_notifications,
    writes_world,
)
from tests.support.control_plane import issue_names
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, serve

pytestmark = pytest.mark.e2e

PATIENCE = 120.0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve(Receiver(keep_bodies=True)) as running:
        yield running


async def world_for(stack: Stack, receiver: Receiver, provider: str = "hubspot") -> WritesWorld:
    world = await writes_world(stack, receiver.url(), provider)
    receiver.secrets[HOOK] = world.destination["secrets"]["webhookSigningKey"]
    return world


def email() -> str:
    return f"w{uuid.uuid4().hex[:12]}@example.com"


async def records_written(sandbox: sandbox_pb2_grpc.SandboxControlServiceStub) -> int:
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    return int(counters.records_written)


async def operation_done(world: WritesWorld, operation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + PATIENCE
    while True:
        got = await world.http.get(f"/operations/{operation_id}")
        if got.status_code == 200 and got.json()["status"] != "in_progress":
            operation: dict[str, Any] = got.json()
            return operation
        assert time.monotonic() < deadline, got.text
        await asyncio.sleep(0.3)


async def test_hubspot_create_update_delete_synchronously(stack: Stack, receiver: Receiver) -> None:
    world = await world_for(stack, receiver)
    builder_field, provider_field = MAPPED["hubspot"]
    address = email()
    created = await world.write(
        {"type": "create", "record": {builder_field: address, "firstname": "Ada"}}
    )
    assert created.status_code == 200, created.text
    body = created.json()
    record_id = body["result"]["recordId"]
    assert body["result"]["success"] is True
    assert body["operationId"]
    # The mapped field arrived under the provider's name; the default filled the rest.
    (found,) = await world.find(provider_field, address)
    assert found["id"] == record_id
    assert found["firstname"] == "Ada"
    assert found[DEFAULTS["hubspot"][0]] == DEFAULTS["hubspot"][1]

    updated = await world.write(
        {"type": "update", "record": {"id": record_id, "firstname": "Grace"}}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["result"]["recordId"] == record_id
    (found,) = await world.find(provider_field, address)
    assert found["firstname"] == "Grace"

    deleted = await world.write({"type": "delete", "record": {"id": record_id}})
    assert deleted.status_code == 200, deleted.text
    assert await world.find(provider_field, address) == []
    # Each write is an operation, with its outcome.
    operation = await operation_done(world, deleted.json()["operationId"])
    assert operation["status"] == "success"


async def test_salesforce_create_update_delete_synchronously(
    stack: Stack, receiver: Receiver
) -> None:
    world = await world_for(stack, receiver, "salesforce")
    builder_field, provider_field = MAPPED["salesforce"]
    name = f"Acme {uuid.uuid4().hex[:10]}"
    created = await world.write(
        {"type": "create", "record": {builder_field: name, "Phone": "+1-555-0100"}}
    )
    assert created.status_code == 200, created.text
    record_id = created.json()["result"]["recordId"]
    (found,) = await world.find(provider_field, name)
    assert found["id"] == record_id
    assert found["Industry"] == DEFAULTS["salesforce"][1]

    updated = await world.write(
        {"type": "update", "record": {"id": record_id, "Phone": "+1-555-0199"}}
    )
    assert updated.status_code == 200, updated.text
    (found,) = await world.find(provider_field, name)
    assert found["Phone"] == "+1-555-0199"

    deleted = await world.write({"type": "delete", "record": {"id": record_id}})
    assert deleted.status_code == 200, deleted.text
    assert await world.find(provider_field, name) == []


async def test_a_record_the_provider_refuses_answers_422_with_its_message(
    stack: Stack, receiver: Receiver
) -> None:
    world = await world_for(stack, receiver)
    builder_field, _ = MAPPED["hubspot"]
    address = email()
    first = await world.write({"type": "create", "record": {builder_field: address}})
    assert first.status_code == 200, first.text
    again = await world.write({"type": "create", "record": {builder_field: address}})
    assert again.status_code == 422, again.text
    body = again.json()
    assert body["result"]["success"] is False
    assert any("already exists" in error["message"] for error in body["errors"]), body
    assert "already exists" in body["rawResponse"]
    operation = await operation_done(world, body["operationId"])
    assert operation["status"] == "failure"


@pytest.mark.parametrize("provider", ["hubspot", "salesforce"])
async def test_a_batch_of_100_with_two_bad_records(
    stack: Stack, receiver: Receiver, provider: str
) -> None:
    world = await world_for(stack, receiver, provider)
    builder_field, _ = MAPPED[provider]
    tag = uuid.uuid4().hex[:8]
    if provider == "hubspot":
        taken = email()
        assert (
            await world.write({"type": "create", "record": {builder_field: taken}})
        ).status_code == 200
        good = [{builder_field: f"b{tag}{n}@example.com", "firstname": tag} for n in range(98)]
        # Two records the provider refuses: an email another contact holds.
        bad = [{builder_field: taken, "firstname": tag}, {builder_field: taken, "firstname": tag}]
    else:
        good = [{builder_field: f"Batch {tag} {n}", "Phone": tag} for n in range(98)]
        # Two records without the required Name.
        bad = [{"Phone": tag}, {"Phone": tag}]
    records = good[:40] + bad[:1] + good[40:] + bad[1:]
    bad_at = {40, 99}
    batch = [{"record": record} for record in records]

    answer = await world.write({"type": "create", "batch": batch})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["successCount"], body["failureCount"]) == (98, 2)
    failed = {n for n, result in enumerate(body["results"]) if not result["success"]}
    assert failed == bad_at
    assert all(body["results"][n].get("recordId") for n in range(100) if n not in bad_at)
    field, value = ("firstname", tag) if provider == "hubspot" else ("Phone", tag)
    assert len(await world.find(field, value)) == 98

    # All or none: one bad record and nothing is written.
    tag = uuid.uuid4().hex[:8]
    if provider == "hubspot":
        records = [{builder_field: f"n{tag}{n}@example.com", "firstname": tag} for n in range(9)]
        records.append({builder_field: taken, "firstname": tag})
    else:
        records = [{builder_field: f"None {tag} {n}", "Phone": tag} for n in range(9)]
        records.append({"Phone": tag})
    answer = await world.write(
        {
            "type": "create",
            "batch": [{"record": record} for record in records],
            "batchPolicy": {"allOrNone": True},
        }
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["successCount"] == 0
    assert await world.find("firstname" if provider == "hubspot" else "Phone", tag) == []


async def test_an_idempotency_key_answers_the_first_answer_without_writing_again(
    stack: Stack, receiver: Receiver, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub
) -> None:
    world = await world_for(stack, receiver)
    builder_field, provider_field = MAPPED["hubspot"]
    address, key = email(), uuid.uuid4().hex
    body = {"type": "create", "record": {builder_field: address}}
    first = await world.write(body, idempotency_key=key)
    assert first.status_code == 200, first.text
    written = await records_written(sandbox)
    again = await world.write(body, idempotency_key=key)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert await records_written(sandbox) == written
    assert len(await world.find(provider_field, address)) == 1
    # The same key for another write is refused.
    other = await world.write(
        {"type": "create", "record": {builder_field: email()}}, idempotency_key=key
    )
    assert other.status_code == 409, other.text
    assert "Idempotency-Key" in other.json()["detail"]
    assert await records_written(sandbox) == written


async def test_an_asynchronous_write_ends_as_an_operation_and_a_notification(
    stack: Stack, receiver: Receiver
) -> None:
    world = await world_for(stack, receiver)
    await route_notifications(world, "write.async.done")
    builder_field, provider_field = MAPPED["hubspot"]
    address = email()
    accepted = await world.write(
        {
            "type": "create",
            "mode": "asynchronous",
            "record": {builder_field: address},
            "retryPolicy": {"deadlineHours": 2},
        }
    )
    assert accepted.status_code == 200, accepted.text
    assert set(accepted.json()) == {"operationId"}
    operation_id = accepted.json()["operationId"]
    operation = await operation_done(world, operation_id)
    assert operation["status"] == "success", operation
    (found,) = await world.find(provider_field, address)
    assert operation["metadata"]["successfulRecordIds"] == [found["id"]]
    deadline = time.monotonic() + PATIENCE
    while not (done := [b for b in receiver.received.bodies if b.get("notificationType")]):
        assert time.monotonic() < deadline, "write.async.done never arrived"
        await asyncio.sleep(0.2)
    (notification,) = done
    assert notification["notificationType"] == "write.async.done"
    data = notification["data"]
    assert data["success"] is True
    assert data["successfulRecordIds"] == [found["id"]]
    assert data["installationId"] == world.installation["id"]
    assert data["groupRef"] == world.group


async def test_written_records_come_back_in_the_next_triggered_read(
    stack: Stack, receiver: Receiver
) -> None:
    world = await world_for(stack, receiver)
    builder_field, _ = MAPPED["hubspot"]
    since = datetime.now(UTC) - timedelta(seconds=5)
    addresses = [email() for _ in range(3)]
    answer = await world.write(
        {"type": "create", "batch": [{"record": {builder_field: a}} for a in addresses]}
    )
    assert answer.status_code == 200, answer.text
    ids = {result["recordId"] for result in answer.json()["results"]}
    started = await world.read_http.post(
        f"/integrations/{world.integration['id']}/objects/{world.object_name}",
        json={
            "groupRef": world.group,
            "mode": "async",
            "sinceTimestamp": since.isoformat().replace("+00:00", "Z"),
        },
    )
    assert started.status_code == 201, started.text
    missing = await receiver.wait_for_records(ids, PATIENCE)
    assert not missing
    # Delivered in the builder's names: the mapped field under its mapped name.
    delivered = {
        entry["id"]: entry
        for body in receiver.received.bodies
        for entry in body.get("result") or ()
    }
    assert {delivered[i]["mappedFields"][builder_field] for i in ids} == set(addresses)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    return problem


async def test_bad_writes_are_refused_naming_the_field_and_write_nothing(
    stack: Stack, receiver: Receiver, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub
) -> None:
    world = await world_for(stack, receiver)
    builder_field, _ = MAPPED["hubspot"]
    nondeleting = await writes_world(stack, receiver.url(), deletes=False)
    good = {builder_field: email()}
    cases: list[tuple[str, WritesWorld, str | None, dict[str, Any], int, str]] = [
        (
            "object not written",
            world,
            "deals",
            {"type": "create", "record": good},
            400,
            "path.objectName",
        ),
        (
            "unknown field",
            world,
            None,
            {"type": "create", "record": {"nickname": "x"}},
            400,
            "body.record.nickname",
        ),
        (
            "update without id",
            world,
            None,
            {"type": "update", "record": good},
            400,
            "body.record.id",
        ),
        ("delete without id", world, None, {"type": "delete", "record": {}}, 400, "body.record.id"),
        (
            "delete not enabled",
            nondeleting,
            None,
            {"type": "delete", "record": {"id": "1"}},
            400,
            "body.type",
        ),
        (
            "record and batch",
            world,
            None,
            {"type": "create", "record": good, "batch": [{"record": good}]},
            400,
            "body.batch",
        ),
        ("neither", world, None, {"type": "create"}, 400, "body.record"),
        (
            "batch of 101",
            world,
            None,
            {"type": "create", "batch": [{"record": good}] * 101},
            400,
            "body.batch",
        ),
        (
            "deadline 0",
            world,
            None,
            {
                "type": "create",
                "mode": "asynchronous",
                "record": good,
                "retryPolicy": {"deadlineHours": 0},
            },
            400,
            "body.retryPolicy.deadlineHours",
        ),
        (
            "deadline 49",
            world,
            None,
            {
                "type": "create",
                "mode": "asynchronous",
                "record": good,
                "retryPolicy": {"deadlineHours": 49},
            },
            400,
            "body.retryPolicy.deadlineHours",
        ),
        ("bad type", world, None, {"type": "upsert", "record": good}, 400, "body.type"),
    ]
    written = await records_written(sandbox)
    for name, target, object_name, body, status, field in cases:
        problem = _problem(await target.write(body, object_name=object_name), status)
        assert field in issue_names(problem), (name, problem)
    # A group without an installation.
    problem = _problem(
        await world.write_http.post(
            world.path(), json={"groupRef": "nobody-here", "type": "create", "record": good}
        ),
        404,
    )
    assert "groupRef" in problem["detail"]
    assert await records_written(sandbox) == written
