"""A builder inspecting and steering a webhook destination's deliveries over REST, through
the edge, the api and messenger: pages a receiver refused are listed as failed with their
attempts, replayed once it recovers, redelivered one by one; the endpoint's state is
shown and it can be re-enabled; a sample webhook can be sent. Deliveries are made the
real way: read-result pages published on the event bus, which messenger delivers."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.domain.read_bodies import page_body
from services.launcher.infra.pubsub_emulator import PROJECT
from services.runtime.envelopes import attributes_of, topic_id_of
from services.runtime.events import publisher_client
from tests.support.control_plane import (
    as_key,
    client,
    create_api_key,
    create_project,
    eventually,
    issue_names,
    problem,
    unique,
)
from tests.support.messenger import page_envelope
from tests.support.stack import Stack
from tests.support.webhooks import Answer, Receiver, receiving

pytestmark = pytest.mark.e2e


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


@dataclass
class Builder:
    """A project key's REST client, rooted at its project."""

    http: httpx.AsyncClient
    project_id: str


@pytest.fixture
async def builder(stack: Stack, admin: httpx.AsyncClient) -> AsyncIterator[Builder]:
    project = await create_project(admin, "deliveries", "Deliveries")
    secret = await create_api_key(admin, project["name"], ["full"], label="deliveries")
    async with client(stack, f"/v1/projects/{project['id']}", as_key(secret)) as http:
        yield Builder(http, project["id"])


async def webhook(builder: Builder, receiver: Receiver, path: str) -> dict[str, Any]:
    created = await builder.http.post(
        "/destinations",
        json={"name": unique("hook"), "type": "webhook", "metadata": {"url": receiver.url(path)}},
    )
    assert created.status_code == 201, created.text
    destination: dict[str, Any] = created.json()
    revealed = await builder.http.get(
        f"/destinations/{destination['id']}", params={"includeSecrets": "true"}
    )
    receiver.secrets[path] = revealed.json()["secrets"]["webhookSigningKey"]
    return destination


async def publish_pages(
    stack: Stack, project_id: str, destination_id: str, count: int
) -> list[Any]:
    """Read-result pages on the bus, as a read workflow publishes them."""
    operation = str(uuid.uuid4())
    envelopes = [
        page_envelope(project_id, destination_id, operation_id=operation, page=n, records=2)
        for n in range(1, count + 1)
    ]
    publisher = publisher_client(stack.endpoints["pubsub"])
    try:
        for envelope in envelopes:
            future = publisher.publish(
                publisher.topic_path(PROJECT, topic_id_of(envelope)),
                envelope.SerializeToString(),
                **attributes_of(envelope),
            )
            await asyncio.wrap_future(future)
    finally:
        await asyncio.to_thread(publisher.stop)
    return envelopes


async def listed(builder: Builder, destination: str, **query: str) -> list[Any]:
    response = await builder.http.get(f"/destinations/{destination}/deliveries", params=query)
    assert response.status_code == 200, response.text
    deliveries: list[Any] = response.json().get("deliveries", [])
    return deliveries


async def test_refused_deliveries_are_listed_replayed_and_redelivered(
    stack: Stack, builder: Builder, receiver: Receiver
) -> None:
    destination = await webhook(builder, receiver, "/refusing")
    # A 400 is an answer: each page fails at its first attempt, without retries.
    receiver.script("/refusing", Answer(status=400, body=b"bad schema"), Answer(status=400))
    envelopes = await publish_pages(stack, builder.project_id, destination["id"], 2)

    async def both_failed() -> bool:
        failed = await listed(builder, destination["name"], status="DELIVERY_STATUS_FAILED")
        return len(failed) == 2

    await eventually(both_failed, "record both refused deliveries as failed", patience=30)
    deliveries = await listed(builder, destination["name"])
    assert {d["objectName"] for d in deliveries} == {"contacts"}
    first = next(d for d in deliveries if d["lastStatusCode"] == 400)

    got = await builder.http.get(
        f"/destinations/{destination['id']}/deliveries/{first['id']}",
        params={"includeBody": "true"},
    )
    assert got.status_code == 200, got.text
    delivery = got.json()
    [attempt] = delivery["attempts"]
    assert attempt["statusCode"] == 400 and attempt["outcome"] == "ATTEMPT_OUTCOME_CLIENT_ERROR"
    bodies = {page_body(e.read_result_page) for e in envelopes}
    assert base64.b64decode(delivery["body"]) in bodies

    endpoint = await builder.http.get(f"/destinations/{destination['id']}/endpoint")
    assert endpoint.status_code == 200, endpoint.text
    assert endpoint.json()["consecutiveFailures"] == 2

    # The receiver is fixed: replaying the failed ones sends both again, under their ids.
    dry = await builder.http.post(
        f"/destinations/{destination['id']}/deliveries:replay", json={"dryRun": True}
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["matched"] == 2 and not dry.json().get("scheduled")
    replayed = await builder.http.post(
        f"/destinations/{destination['id']}/deliveries:replay", json={}
    )
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == {"matched": 2, "scheduled": 2}
    arrived = await receiver.wait_for("/refusing", 4, patience=30)
    resent = [r for r in arrived[2:] if r.verified]
    assert {r.headers["svix-id"] for r in resent} == {d["id"] for d in deliveries}

    async def both_succeeded() -> bool:
        done = await listed(builder, destination["id"], status="DELIVERY_STATUS_SUCCEEDED")
        return len(done) == 2

    await eventually(both_succeeded, "record both replays as succeeded", patience=30)

    again = await builder.http.post(
        f"/destinations/{destination['name']}/deliveries/{first['id']}:redeliver", json={}
    )
    assert again.status_code == 200, again.text
    (fifth,) = (await receiver.wait_for("/refusing", 5, patience=30))[4:]
    assert fifth.verified and fifth.headers["svix-id"] == first["id"]

    enabled = await builder.http.post(f"/destinations/{destination['id']}/endpoint:enable", json={})
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["state"] == "ENDPOINT_STATE_ENABLED"
    assert not enabled.json().get("consecutiveFailures")


async def test_a_sample_webhook_reports_how_the_receiver_answered(
    builder: Builder, receiver: Receiver
) -> None:
    destination = await webhook(builder, receiver, "/sample")
    tested = await builder.http.post(
        f"/destinations/{destination['id']}:test", json={"eventType": "read.backfill.done"}
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["success"] is True and tested.json()["statusCode"] == 200
    (sample,) = await receiver.wait_for("/sample", 1)
    assert sample.verified and sample.headers["svix-id"] == tested.json()["messageId"]
    # A sample is not a delivery.
    assert await listed(builder, destination["id"]) == []


async def test_deliveries_of_other_destinations_and_projects_are_not_found(
    stack: Stack, admin: httpx.AsyncClient, builder: Builder, receiver: Receiver
) -> None:
    mine = await webhook(builder, receiver, "/mine")
    other = await webhook(builder, receiver, "/other")
    await publish_pages(stack, builder.project_id, mine["id"], 1)
    await receiver.wait_for("/mine", 1, patience=30)
    [delivery] = await listed(builder, mine["id"])
    # The destination by name lists the same.
    assert [d["id"] for d in await listed(builder, mine["name"])] == [delivery["id"]]

    wrong = await builder.http.get(f"/destinations/{other['id']}/deliveries/{delivery['id']}")
    assert problem(wrong, 404)["detail"] == f"delivery {delivery['id']!r} not found"
    unknown = await builder.http.get(f"/destinations/{mine['id']}/deliveries/msg_nothing")
    problem(unknown, 404)
    again = await builder.http.post(
        f"/destinations/{other['id']}/deliveries/{delivery['id']}:redeliver", json={}
    )
    problem(again, 404)
    assert len(receiver.at("/mine")) == 1  # nothing was sent again

    stranger = await create_project(admin, "stranger", "Stranger")
    hidden = await admin.get(f"/v1/projects/{stranger['id']}/destinations/{mine['id']}/deliveries")
    problem(hidden, 404)


async def test_bad_requests_name_the_field(builder: Builder, receiver: Receiver) -> None:
    destination = await webhook(builder, receiver, "/bad")
    base = f"/destinations/{destination['id']}/deliveries"
    window = await builder.http.get(
        base, params={"startTime": "2026-01-02T00:00:00Z", "endTime": "2026-01-01T00:00:00Z"}
    )
    assert issue_names(problem(window, 400)) == {"query.endTime"}
    size = await builder.http.get(base, params={"pageSize": "5000"})
    assert issue_names(problem(size, 400)) == {"query.pageSize"}
    operation = await builder.http.post(f"{base}:replay", json={"operationId": "yesterday"})
    assert issue_names(problem(operation, 400)) == {"body.operationId"}
    missing = await builder.http.get("/destinations/no-such-hook/deliveries")
    problem(missing, 404)
