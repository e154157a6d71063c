"""Providers' change webhooks through the whole stack: the edge's subscribe host, the api's
verification, dedupe and outbox, and the ProviderEventBatch on the bus.

HubSpot requests are signed here as HubSpot signs them (v3), with the project's HubSpot
provider app's client secret; Salesforce relays present the installation's relay token,
whose hash the test writes into `subscriptions` itself (registration is another part's).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.subscribe.v1 import provider_webhooks_pb2
from google.api_core.exceptions import DeadlineExceeded
from google.pubsub_v1 import SubscriberClient
from prometheus_client.parser import text_string_to_metric_families

from services.api.auth import Authenticator
from services.api.context import ApiContext, ApiPolicy
from services.api.subscribe import store
from services.api.subscribe.service import ProviderWebhooks
from services.domain.subscribe_names import (
    ORIGINAL_URI_HEADER,
    PUBLIC_URL_SETTING,
    installation_webhook_path,
    integration_webhook_path,
)
from services.launcher.infra.pubsub_emulator import PROJECT
from services.runtime.pubsub_topology import emulator_subscriber
from services.runtime.secretbox import keyring_from_settings
from tests.support.control_plane import (
    SANDBOX_CLIENT_SECRET,
    assert_not_logged,
    create_project,
    create_provider_app,
    database_url,
    problem,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

TOPIC = "ampmesh-provider-events"
ORG = "00D5g000004fGhIEAU"
PATIENCE = 30.0


@dataclass
class World:
    project_id: str
    hubspot_integration: str
    salesforce_integration: str
    installation: str
    relay_token: str
    base: str


@pytest.fixture(scope="module")
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=4) as pool:
        yield pool


@pytest.fixture(scope="module")
def bus(stack: Stack) -> Iterator[tuple[SubscriberClient, str]]:
    """A subscription of this module's own on the provider events topic, made before any
    webhook is sent."""
    client = emulator_subscriber(stack.endpoints["pubsub"])
    path = f"projects/{PROJECT}/subscriptions/test-subscribe-ingress-{uuid.uuid4().hex[:10]}"
    client.create_subscription(
        name=path, topic=f"projects/{PROJECT}/topics/{TOPIC}", ack_deadline_seconds=30
    )
    try:
        yield client, path
    finally:
        client.delete_subscription(subscription=path)
        client.transport.close()


def pull_batches(bus: tuple[SubscriberClient, str], project_id: str, count: int) -> list[Envelope]:
    """Envelopes of project_id from the bus (acked) until count arrived, or PATIENCE ran out."""
    client, path = bus
    found: list[Envelope] = []
    deadline = time.monotonic() + PATIENCE
    while len(found) < count and time.monotonic() < deadline:
        try:
            response = client.pull(subscription=path, max_messages=100, timeout=5)
        except DeadlineExceeded:
            continue
        if not response.received_messages:
            continue
        client.acknowledge(
            subscription=path, ack_ids=[m.ack_id for m in response.received_messages]
        )
        for message in response.received_messages:
            envelope = Envelope.FromString(message.message.data)
            if envelope.meta.project_id == project_id:
                found.append(envelope)
    return found


@pytest.fixture(scope="module")
async def world(stack: Stack, admin: httpx.AsyncClient, pool: asyncpg.Pool) -> World:
    project = await create_project(admin, "subscribe", "Subscribe")
    await create_provider_app(admin, project["id"], "hubspot")
    integrations = {}
    for provider in ("hubspot", "salesforce"):
        integrations[provider] = str(
            await pool.fetchval(
                "INSERT INTO integrations (project_id, name, provider) VALUES ($1, $2, $3) "
                "RETURNING id",
                uuid.UUID(project["id"]),
                f"{provider}-{uuid.uuid4().hex[:6]}",
                provider,
            )
        )
    installation = str(uuid.uuid4())
    token = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO subscriptions (installation_id, project_id, integration_id, provider, "
        "account_id, relay_token_sha256, status) VALUES ($1, $2, $3, 'salesforce', $4, $5, "
        "'active')",
        uuid.UUID(installation),
        uuid.UUID(project["id"]),
        uuid.UUID(integrations["salesforce"]),
        ORG,
        hashlib.sha256(token.encode()).digest(),
    )
    return World(
        project["id"],
        integrations["hubspot"],
        integrations["salesforce"],
        installation,
        token,
        stack.endpoints["subscribe"],
    )


# --- HubSpot ---------------------------------------------------------------------------


def hubspot_events(*event_ids: int, portal: int = 62515) -> bytes:
    return json.dumps(
        [
            {
                "eventId": event_id,
                "subscriptionId": 11,
                "portalId": portal,
                "appId": 77,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": 500 + n,
                "propertyName": "firstname",
                "propertyValue": f"Zoë-{event_id}",
                "changeSource": "CRM",
            }
            for n, event_id in enumerate(event_ids)
        ]
    ).encode()


def signed(
    url: str, body: bytes, *, secret: str = SANDBOX_CLIENT_SECRET, age: float = 0
) -> dict[str, str]:
    """HubSpot's v3 headers for a POST of body to url, signed `age` seconds ago."""
    stamp = str(int((time.time() - age) * 1000))
    message = b"POST" + url.encode() + body + stamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest())
    return {
        "content-type": "application/json",
        "X-HubSpot-Signature-v3": signature.decode(),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def new_ids(count: int) -> list[int]:
    first = secrets.randbelow(10**12) + 10**9
    return [first + n for n in range(count)]


async def inbound(pool: asyncpg.Pool, provider: str, scope: str) -> set[str]:
    rows = await pool.fetch(
        "SELECT event_id FROM subscribe_inbound_events WHERE provider = $1 AND event_id LIKE $2",
        provider,
        f"{scope}/%",
    )
    return {row["event_id"] for row in rows}


async def staged(pool: asyncpg.Pool, project_id: str) -> list[Envelope]:
    rows = await pool.fetch("SELECT envelope FROM event_outbox WHERE topic = $1 ORDER BY id", TOPIC)
    envelopes = [Envelope.FromString(row["envelope"]) for row in rows]
    return [e for e in envelopes if e.meta.project_id == project_id]


async def counted(stack: Stack, provider: str, outcome: str) -> float:
    """ampmesh_subscribe_webhooks_total{provider, outcome} as the api reports it now."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(stack.endpoints["api-metrics"])).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ampmesh_subscribe_webhooks_total" and sample.labels == {
                "provider": provider,
                "outcome": outcome,
            }:
                return float(sample.value)
    return 0.0


async def test_the_launcher_tells_every_process_the_subscribe_url(stack: Stack) -> None:
    url = stack.endpoints["subscribe"]
    assert url.startswith("http://127.0.0.1:")
    for service in stack.mesh.services:
        assert service.env[PUBLIC_URL_SETTING] == url, service.name


async def test_a_signed_hubspot_batch_is_accepted_once_and_reaches_the_bus(
    stack: Stack, world: World, pool: asyncpg.Pool, bus: tuple[SubscriberClient, str]
) -> None:
    # A query parameter the contract does not know is part of the signed URL, not an error.
    path = integration_webhook_path(world.project_id, world.hubspot_integration)
    url = f"{world.base}{path}?source=hubspot"
    first, second = new_ids(2)
    body = hubspot_events(first, second)
    headers = signed(url, body)
    accepted, duplicate = (
        await counted(stack, "hubspot", "accepted"),
        await counted(stack, "hubspot", "duplicate"),
    )
    async with httpx.AsyncClient(timeout=30) as http:
        # A client's own claim about the URL it called is replaced by the edge's.
        response = await http.post(url, content=body, headers={**headers, ORIGINAL_URI_HEADER: "x"})
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 2, "duplicates": 0}
        assert response.headers["x-request-id"]

        (envelope,) = await asyncio.to_thread(pull_batches, bus, world.project_id, 1)
        batch = envelope.provider_events
        assert (batch.provider, batch.project_id, batch.integration_id) == (
            "hubspot",
            world.project_id,
            world.hubspot_integration,
        )
        assert batch.installation_id == ""
        assert [e.event_id for e in batch.events] == [str(first), str(second)]
        assert {e.account_id for e in batch.events} == {"62515"}
        assert batch.events[0].object_name == "contacts"
        assert list(batch.events[0].fields_updated) == ["firstname"]
        assert envelope.meta.idempotency_key == (
            f"provider-events/hubspot/{world.hubspot_integration}/{first}"
        )
        assert await inbound(pool, "hubspot", world.hubspot_integration) >= {
            f"{world.hubspot_integration}/{first}",
            f"{world.hubspot_integration}/{second}",
        }

        # HubSpot retries the same request (a new signature each time): acknowledged,
        # nothing queued again; a batch with one new event queues that one only.
        before = len(await staged(pool, world.project_id))
        again = await http.post(url, content=body, headers=signed(url, body))
        assert again.status_code == 200, again.text
        assert again.json() == {"accepted": 0, "duplicates": 2}
        assert len(await staged(pool, world.project_id)) == before
        (third,) = new_ids(1)
        mixed = hubspot_events(second, third)
        response = await http.post(url, content=mixed, headers=signed(url, mixed))
        assert response.json() == {"accepted": 1, "duplicates": 1}
        (envelope,) = await asyncio.to_thread(pull_batches, bus, world.project_id, 1)
        assert [e.event_id for e in envelope.provider_events.events] == [str(third)]
    assert await counted(stack, "hubspot", "accepted") == accepted + 2
    assert await counted(stack, "hubspot", "duplicate") == duplicate + 1
    assert_not_logged(stack, headers["X-HubSpot-Signature-v3"], f"Zoë-{first}")


async def test_hubspot_requests_not_signed_by_the_app_are_401_and_leave_nothing(
    stack: Stack, world: World, pool: asyncpg.Pool
) -> None:
    path = integration_webhook_path(world.project_id, world.hubspot_integration)
    url = f"{world.base}{path}"
    ids = new_ids(1)
    body = hubspot_events(*ids)
    good = signed(url, body)
    cases = {
        "another secret": (url, signed(url, body, secret="not-the-apps-secret")),
        "stale": (url, signed(url, body, age=301)),
        "future": (url, signed(url, body, age=-301)),
        "signed for another URL": (url, signed(f"{url}?x=1", body)),
        "unsigned": (url, {"content-type": "application/json"}),
        "no timestamp": (url, {"X-HubSpot-Signature-v3": good["X-HubSpot-Signature-v3"]}),
        "unknown integration": (
            f"{world.base}{integration_webhook_path(world.project_id, str(uuid.uuid4()))}",
            good,
        ),
        "another project": (
            f"{world.base}{integration_webhook_path(str(uuid.uuid4()), world.hubspot_integration)}",
            good,
        ),
        "no app-level webhooks": (
            world.base + integration_webhook_path(world.project_id, world.salesforce_integration),
            good,
        ),
    }
    before = len(await staged(pool, world.project_id))
    refused = await counted(stack, "hubspot", "unverified")
    async with httpx.AsyncClient(timeout=30) as http:
        details = set()
        for case, (target, headers) in cases.items():
            response = await http.post(target, content=body, headers=headers)
            details.add(problem(response, 401)["detail"])
            assert response.status_code == 401, case
    # One answer for every reason: a caller learns nothing about which part was wrong.
    assert len(details) == 1
    # Counted under the provider the URL's integration names (unknown ones: "unknown").
    assert await counted(stack, "hubspot", "unverified") == refused + 6
    assert (
        await inbound(pool, "hubspot", world.hubspot_integration)
        & {f"{world.hubspot_integration}/{ids[0]}"}
        == set()
    )
    assert len(await staged(pool, world.project_id)) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b'{"eventId": 1}', "body"),
        (
            json.dumps(
                [{"eventId": 1, "subscriptionType": "contact.creation", "objectId": 2}]
            ).encode(),
            "body[0].portalId",
        ),
    ],
)
async def test_a_signed_but_malformed_hubspot_body_is_400_naming_the_field(
    world: World, pool: asyncpg.Pool, body: bytes, field: str
) -> None:
    url = f"{world.base}{integration_webhook_path(world.project_id, world.hubspot_integration)}"
    before = len(await staged(pool, world.project_id))
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, content=body, headers=signed(url, body))
    refused = problem(response, 400)
    assert field in refused["detail"]
    assert len(await staged(pool, world.project_id)) == before


# --- Salesforce ------------------------------------------------------------------------


def salesforce_change(event_uuid: str, record_ids: list[str], org: str = ORG) -> bytes:
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "AccountChangeEvent",
            "source": f"aws.partner/salesforce.com/{org}/0YLxx0000000001",
            "account": "000000000000",
            "time": "2026-12-07T19:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "payload": {
                    "ChangeEventHeader": {
                        "entityName": "Account",
                        "recordIds": record_ids,
                        "changeType": "UPDATE",
                        "changedFields": ["Name"],
                        "changeOrigin": "",
                        "transactionKey": "t",
                        "sequenceNumber": 1,
                        "commitTimestamp": int(time.time() * 1000),
                        "commitNumber": 1,
                        "commitUser": "005000000000001",
                    },
                    "Name": "Acme",
                },
                "schema": "s",
                "event": {"replayId": "1", "EventUuid": event_uuid},
            },
        }
    ).encode()


async def test_a_salesforce_relay_with_its_token_is_accepted_for_its_installation(
    world: World, pool: asyncpg.Pool, bus: tuple[SubscriberClient, str]
) -> None:
    path = installation_webhook_path(
        world.project_id, world.salesforce_integration, world.installation
    )
    url = f"{world.base}{path}"
    event_uuid = str(uuid.uuid4())
    body = salesforce_change(event_uuid, ["001A", "001B"])
    token = {"content-type": "application/json", "X-Ampmesh-Relay-Token": world.relay_token}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, content=body, headers=token)
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 2, "duplicates": 0}
        (envelope,) = await asyncio.to_thread(pull_batches, bus, world.project_id, 1)
        batch = envelope.provider_events
        assert (batch.provider, batch.installation_id) == ("salesforce", world.installation)
        assert [e.event_id for e in batch.events] == [f"{event_uuid}/001A", f"{event_uuid}/001B"]
        assert {e.account_id for e in batch.events} == {ORG}
        assert envelope.meta.idempotency_key == (
            f"provider-events/salesforce/{world.installation}/{event_uuid}/001A"
        )
        again = await http.post(url, content=body, headers=token)
        assert again.json() == {"accepted": 0, "duplicates": 2}

        before = len(await staged(pool, world.project_id))
        other = salesforce_change(str(uuid.uuid4()), ["001C"])
        for target, headers, sent in [
            (url, {"X-Ampmesh-Relay-Token": "wrong"}, other),
            (url, {}, other),
            (url, token, salesforce_change(str(uuid.uuid4()), ["001D"], org="00D000000000001AAA")),
            (url.replace(world.installation, str(uuid.uuid4())), token, other),
        ]:
            problem(await http.post(target, content=sent, headers=headers), 401)
        problem(await http.post(url, content=b'{"source": 1}', headers=token), 400)
        assert len(await staged(pool, world.project_id)) == before

        # An installation being removed accepts nothing more.
        await pool.execute(
            "UPDATE subscriptions SET status = 'removing' WHERE installation_id = $1",
            uuid.UUID(world.installation),
        )
        try:
            problem(await http.post(url, content=other, headers=token), 401)
        finally:
            await pool.execute(
                "UPDATE subscriptions SET status = 'active' WHERE installation_id = $1",
                uuid.UUID(world.installation),
            )


async def test_concurrent_relay_requests_each_hear_what_became_of_their_own_events(
    world: World, pool: asyncpg.Pool
) -> None:
    """Requests arriving together share a transaction (a group commit); each still hears
    only its own events' fate, an event two of them name is queued once, and every event
    is staged exactly once."""
    path = installation_webhook_path(
        world.project_id, world.salesforce_integration, world.installation
    )
    url = f"{world.base}{path}"
    token = {"content-type": "application/json", "X-Ampmesh-Relay-Token": world.relay_token}
    uuids = [str(uuid.uuid4()) for _ in range(60)]
    bodies = [salesforce_change(u, [f"001{i:03d}"]) for i, u in enumerate(uuids)]
    bodies += bodies[:10]  # the provider's retries, sent alongside the originals
    before = len(await staged(pool, world.project_id))
    # 30 at a time: the edge sheds past AMPMESH_EDGE_MAX_REQUESTS (64) in flight.
    limits = httpx.Limits(max_connections=30)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        answers = await asyncio.gather(
            *(http.post(url, content=body, headers=token) for body in bodies)
        )
    assert [a.status_code for a in answers] == [200] * len(bodies)
    results = [a.json() for a in answers]
    assert sum(r["accepted"] for r in results) == 60
    assert sum(r["duplicates"] for r in results) == 10
    assert all(r["accepted"] + r["duplicates"] == 1 for r in results)
    events = [
        e.event_id
        for envelope in (await staged(pool, world.project_id))[before:]
        for e in envelope.provider_events.events
    ]
    assert sorted(events) == sorted(uuids)  # one record each: the EventUuid alone


async def test_event_ids_older_than_a_week_are_pruned_and_newer_ones_kept(
    pool: asyncpg.Pool,
) -> None:
    scope = str(uuid.uuid4())
    await pool.execute(
        "INSERT INTO subscribe_inbound_events (provider, event_id, received_at) VALUES "
        "('hubspot', $1, now() - interval '8 days'), ('hubspot', $2, now() - interval '6 days')",
        f"{scope}/old",
        f"{scope}/recent",
    )
    while await store.prune_expired(pool):
        pass
    assert await inbound(pool, "hubspot", scope) == {f"{scope}/recent"}


# --- without the bus or the database: 503, so the provider retries -------------------------


class Aborted(Exception):
    pass


class CallContext:
    """What the servicer asks of a gRPC call: its metadata, and how it ends."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self.metadata = tuple(metadata.items())
        self.code: Any = None
        self.details = ""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def trailing_metadata(self) -> tuple[()]:
        return ()

    async def abort(self, code: Any, details: str, trailing_metadata: Any = ()) -> None:
        self.code, self.details = code, details
        raise Aborted(details)


def servicer(stack: Stack, pool: asyncpg.Pool) -> ProviderWebhooks:
    """The api's servicer in this process, on the stack's database, without an event bus."""
    keys = keyring_from_settings(stack.mesh.service("api").env["AMPMESH_SECRET_KEYS"])
    ctx = ApiContext(
        pool=pool, secrets=keys, catalog={}, auth=Authenticator(pool), policy=ApiPolicy()
    )
    return ProviderWebhooks(ctx)


async def test_without_an_event_bus_a_verified_webhook_is_503_and_nothing_is_kept(
    stack: Stack, world: World, pool: asyncpg.Pool
) -> None:
    url = f"{world.base}{integration_webhook_path(world.project_id, world.hubspot_integration)}"
    ids = new_ids(1)
    body = hubspot_events(*ids)
    headers = {k.lower(): v for k, v in signed(url, body).items()}
    call = CallContext({**headers, ORIGINAL_URI_HEADER: url})
    request = provider_webhooks_pb2.ReceiveIntegrationWebhookRequest(
        project_id=world.project_id, integration_id=world.hubspot_integration
    )
    request.body.data = body
    with pytest.raises(Aborted):
        await servicer(stack, pool).ReceiveIntegrationWebhook(request, call)
    assert call.code == grpc.StatusCode.UNAVAILABLE
    assert "retry later" in call.details
    assert f"{world.hubspot_integration}/{ids[0]}" not in await inbound(
        pool, "hubspot", world.hubspot_integration
    )
