"""Messenger through the real mesh: a ReadResultPage published on the bus for a
destination made through REST arrives signed at a local receiver, and the delivery is
listed by messenger's gRPC API (called as the api, over mTLS)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ampmesh.messenger.v1 import messenger_pb2 as pb
from ampmesh.messenger.v1 import messenger_pb2_grpc

from services.domain.read_bodies import page_body
from services.launcher.infra.pubsub_emulator import PROJECT
from services.messenger.signing import delivery_id
from services.runtime.channels import mesh_channel
from services.runtime.envelopes import attributes_of, topic_id_of
from services.runtime.events import publisher_client
from tests.support.control_plane import admin_client, create_project, unique
from tests.support.messenger import page_envelope
from tests.support.stack import Stack
from tests.support.webhooks import Receiver, receiving

pytestmark = pytest.mark.e2e

PATIENCE = 30.0  # bound of waits, never an assertion about speed


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


@pytest.fixture(scope="module")
async def project(admin: httpx.AsyncClient) -> dict[str, Any]:
    return await create_project(admin, "messenger", "Messenger")


async def test_read_result_reaches_the_receiver_signed(
    stack: Stack, project: dict[str, Any], receiver: Receiver
) -> None:
    async with admin_client(stack, f"/v1/projects/{project['name']}") as api:
        created = await api.post(
            "/destinations",
            json={
                "name": unique("hook"),
                "type": "webhook",
                "metadata": {"url": receiver.url("/e2e"), "headers": {"X-From": "mesh"}},
            },
        )
        assert created.status_code == 201, created.text
        destination = created.json()
        revealed = await api.get(
            f"/destinations/{destination['id']}", params={"includeSecrets": "true"}
        )
        receiver.secrets["/e2e"] = revealed.json()["secrets"]["webhookSigningKey"]

    envelope = page_envelope(project["id"], destination["id"], operation_id=str(uuid.uuid4()))
    publisher = publisher_client(stack.endpoints["pubsub"])
    try:
        future = publisher.publish(
            publisher.topic_path(PROJECT, topic_id_of(envelope)),
            envelope.SerializeToString(),
            **attributes_of(envelope),
        )
        await asyncio.wrap_future(future)
    finally:
        await asyncio.to_thread(publisher.stop)

    (got,) = await receiver.wait_for("/e2e", 1, patience=PATIENCE)
    assert got.verified and got.body == page_body(envelope.read_result_page)
    assert got.headers["x-from"] == "mesh"
    expected = delivery_id(project["id"], envelope.meta.idempotency_key, destination["id"])
    assert got.headers["webhook-id"] == expected

    async with mesh_channel(
        stack.endpoints["messenger"], stack.credentials("api"), server_identity="messenger"
    ) as channel:
        stub = messenger_pb2_grpc.MessengerServiceStub(channel)
        async with asyncio.timeout(PATIENCE):
            while True:
                listed = await stub.ListDeliveries(
                    pb.ListDeliveriesRequest(
                        project_id=project["id"], destination_id=destination["id"]
                    )
                )
                if (
                    listed.deliveries
                    and listed.deliveries[0].status == pb.DELIVERY_STATUS_SUCCEEDED
                ):
                    break
                await asyncio.sleep(0.1)
    (delivery,) = listed.deliveries
    assert delivery.id == expected and delivery.attempt_count == 1
    assert delivery.destination_name == destination["name"]
