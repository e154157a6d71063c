"""The URL rules are checked again when messenger delivers, on the address it connects to:
a destination saved while its host name resolved to a public address, whose name now
resolves to a loopback or private one, is not posted to. The attempt fails at once (a
rule, not a network hiccup: retrying would not change it), naming the rule and setting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ampmesh.messenger.v1 import messenger_pb2 as pb

from services.domain.webhook_urls import webhook_url_problem
from services.messenger.__main__ import open_messenger
from services.messenger.consumers import Consumers
from services.messenger.sending import Sender
from services.messenger.signing import delivery_id
from services.messenger.telemetry import messenger_metrics
from tests.support.messenger import BOX, Project, attempts, page_envelope, settings_for, settled
from tests.support.stack import Stack
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.e2e


class Listener:
    """A TCP port on 127.0.0.1 that counts the connections made to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    listening = Listener()
    server = await asyncio.start_server(listening._accept, "127.0.0.1", 0)
    listening.port = server.sockets[0].getsockname()[1]
    async with server:
        yield listening


async def test_a_name_resolving_to_loopback_is_refused_at_delivery_without_retry(
    stack: Stack, database: str, project: Project, listener: Listener
) -> None:
    refusing = settings_for(
        stack, database, refuse_private_destinations=True, allow_loopback_webhooks=False
    )
    async with open_messenger(refusing, consume_events=False) as (_, deliverer):
        destination, _ = await project.destination(f"https://localhost:{listener.port}/hook")
        envelope = page_envelope(project.id, destination)
        await Consumers(deliverer.pool, deliverer).read_result(envelope, {}, 1)
        delivery = delivery_id(project.id, envelope.meta.idempotency_key, destination)
        row = await settled(project.pool, delivery, "failed")
    assert row["attempt_count"] == 1
    (attempt,) = await attempts(project.pool, delivery)
    assert attempt["outcome"] == pb.ATTEMPT_OUTCOME_CLIENT_ERROR
    assert "loopback" in attempt["error"], attempt["error"]
    assert "AMPMESH_REFUSE_PRIVATE_DESTINATIONS" in attempt["error"], attempt["error"]
    assert listener.connections == 0


async def test_a_name_rebound_to_loopback_after_the_check_is_not_connected_to(
    stack: Stack, database: str, project: Project, listener: Listener
) -> None:
    answers = [["93.184.216.34"]]  # public when first asked, loopback ever after

    async def rebinding(host: str) -> list[str]:
        assert host == "hooks.example"
        return answers.pop() if answers else ["127.0.0.1"]

    refusing = settings_for(
        stack, database, refuse_private_destinations=True, allow_loopback_webhooks=False
    )
    sender = Sender(project.pool, BOX, refusing, messenger_metrics(), resolve=rebinding)
    try:
        url = f"https://hooks.example:{listener.port}/h"
        # Saved while the name resolved to a public address: the rules accepted it.
        assert await webhook_url_problem(url, refusing, rebinding) is None
        destination, _ = await project.destination(url)
        target = await sender.target(destination)
        assert target is not None
        attempt = await sender.attempt(target, "msg_1", b"{}")
    finally:
        await sender.close()
    assert attempt.outcome == pb.ATTEMPT_OUTCOME_CLIENT_ERROR, attempt
    assert "127.0.0.1" in attempt.error and "loopback" in attempt.error, attempt.error
    assert listener.connections == 0


async def test_loopback_stays_deliverable_where_the_deployment_allows_it(
    stack: Stack, database: str, project: Project, receiver: Receiver
) -> None:
    allowing = settings_for(
        stack, database, refuse_private_destinations=True, allow_loopback_webhooks=True
    )
    sender = Sender(project.pool, BOX, allowing, messenger_metrics())
    try:
        url = receiver.url("/local").replace("127.0.0.1", "localhost")
        destination, secret = await project.destination(url)
        receiver.secrets["/local"] = secret
        target = await sender.target(destination)
        assert target is not None and target.problem is None, target
        attempt = await sender.attempt(target, "msg_2", b"{}")
    finally:
        await sender.close()
    assert attempt.outcome == pb.ATTEMPT_OUTCOME_SUCCESS, attempt
    assert len(await receiver.wait_for("/local", 1)) == 1
