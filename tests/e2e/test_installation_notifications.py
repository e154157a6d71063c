"""Installation notifications through the whole mesh: creating an installation, updating
its config, switching its connection, JSON-patching an object's config and deleting it
each deliver exactly one `installation.created|updated|deleted` to the webhook the
builder routed them to, signed (svix and standardwebhooks), with the reference's data
(the installation, its integration, group, connection and consumer; `config`, and for an
update `lastConfig`). A refused request announces nothing: the api's outbox holds one
notification per change and none for the refusals. An installation with subscribe
objects gets its `subscriptions` row (pending, `change` moved on by each change, then
`removing`) and one SyncSubscriptions run per change.

One project serves every case. The integration's revision gets its subscribe section in
the database, as tests/e2e/test_installations.py does: the deploy check refuses subscribe
sections until subscribe is declared supported (services/domain/catalog/actions.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from ampmesh.events.v1.envelope_pb2 import Envelope
from temporalio.client import Client

from services.domain.subscribe_names import SUBSCRIBE_QUEUE, SYNC_WORKFLOW, sync_workflow_id
from tests.support.control_plane import (
    connect_group,
    create_project,
    database_url,
    eventually,
    issue_names,
    problem,
)
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, receiving

pytestmark = pytest.mark.e2e

INTEGRATION = "crm-notes"
DESTINATION = "notesHook"
TYPES = ("installation.created", "installation.updated", "installation.deleted")
MANIFEST = f"""\
specVersion: 1.0.0
integrations:
  - name: {INTEGRATION}
    provider: hubspot
    read:
      objects:
        - objectName: contacts
          destination: {DESTINATION}
        - objectName: companies
          destination: {DESTINATION}
"""
SUBSCRIBE_SECTION = {
    "subscribe": {
        "objects": [
            {
                "objectName": "contacts",
                "destination": DESTINATION,
                "inheritFieldsAndMapping": True,
                "createEvent": {"enabled": "always"},
            }
        ]
    }
}
CONTACTS = {"objectName": "contacts", "destination": DESTINATION}
COMPANIES = {"objectName": "companies", "destination": DESTINATION}
SUBSCRIBED = {
    "objectName": "contacts",
    "destination": DESTINATION,
    "inheritFieldsAndMappings": True,
    "createEvent": {"enabled": "always"},
}
WAIT = 60.0


@dataclass
class World:
    stack: Stack
    http: httpx.AsyncClient  # the API, rooted at the project
    admin: httpx.AsyncClient  # the API's root
    project_id: str
    integration: dict[str, Any]
    receiver: Receiver
    # group -> the ids of its hubspot connections, in the order they were made.
    connections: dict[str, list[str]] = field(default_factory=dict)

    @property
    def installations(self) -> str:
        return f"/integrations/{self.integration['id']}/installations"

    async def connect(self, group: str, consumer: str = "user-1") -> str:
        made = await connect_group(self.admin, self.project_id, "hubspot", group, consumer)
        self.connections.setdefault(group, []).append(made["id"])
        return str(made["id"])

    def notifications(self, installation_id: str) -> list[dict[str, Any]]:
        """The verified notifications about the installation that reached the hook."""
        found = []
        for request in self.receiver.at(HOOK):
            assert request.verified, "a notification failed signature verification"
            body = orjson.loads(request.body)
            if body.get("data", {}).get("installationId") == installation_id:
                found.append(body)
        return found

    async def wait_for(self, installation_id: str, count: int) -> list[dict[str, Any]]:
        async def enough() -> bool:
            return len(self.notifications(installation_id)) >= count

        await eventually(enough, f"deliver {count} notifications", WAIT)
        return self.notifications(installation_id)

    async def outbox(self) -> list[tuple[str, str]]:
        """The api's staged notifications of this project: (type, installation id), in
        the order they were staged."""
        connection = await asyncpg.connect(database_url(self.stack))
        try:
            rows = await connection.fetch(
                "SELECT envelope FROM event_outbox WHERE source = 'api' ORDER BY id"
            )
        finally:
            await connection.close()
        staged = []
        for row in rows:
            envelope = Envelope.FromString(row["envelope"])
            if envelope.meta.project_id != self.project_id:
                continue
            assert envelope.WhichOneof("payload") == "notification", envelope.meta.type
            note = envelope.notification
            typed = getattr(note, note.WhichOneof("payload"))
            staged.append((typed.notification_type, typed.data.installation_id))
        return staged

    async def subscription(self, installation_id: str) -> asyncpg.Record | None:
        connection = await asyncpg.connect(database_url(self.stack))
        try:
            row: asyncpg.Record | None = await connection.fetchrow(
                "SELECT * FROM subscriptions WHERE installation_id = $1",
                uuid.UUID(installation_id),
            )
            return row
        finally:
            await connection.close()


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


@pytest.fixture(scope="module")
async def world(stack: Stack, admin: httpx.AsyncClient, receiver: Receiver) -> AsyncIterator[World]:
    project = await create_project(admin, "notes", "Notes")
    root = f"/v1/projects/{project['id']}"
    async with httpx.AsyncClient(
        base_url=stack.endpoints["api"] + root,
        headers={"x-api-key": stack.admin_api_key},
        timeout=60,
    ) as http:
        created = await http.post(
            "/destinations",
            json={"name": DESTINATION, "type": "webhook", "metadata": {"url": receiver.url()}},
        )
        assert created.status_code == 201, created.text
        revealed = await http.get(f"/destinations/{DESTINATION}", params={"includeSecrets": "true"})
        assert revealed.status_code == 200, revealed.text
        receiver.secrets[HOOK] = revealed.json()["secrets"]["webhookSigningKey"]
        deployed = await http.put("/integrations:batch", json={"sourceYaml": MANIFEST})
        assert deployed.status_code == 200, deployed.text
        (integration,) = deployed.json()
        connection = await asyncpg.connect(database_url(stack))
        try:
            await connection.execute(
                "UPDATE revisions SET content = content || $2::jsonb WHERE id = $1",
                uuid.UUID(integration["latestRevision"]["id"]),
                json.dumps(SUBSCRIBE_SECTION),
            )
        finally:
            await connection.close()
        topic = await http.post("/topics", json={"name": f"t-{uuid.uuid4().hex[:8]}"})
        assert topic.status_code == 201, topic.text
        for event_type in TYPES:
            routed = await http.post(
                "/notification-event-topic-routes",
                json={"eventType": event_type, "topicId": topic.json()["id"]},
            )
            assert routed.status_code == 201, routed.text
        routed = await http.post(
            "/topic-destination-routes",
            json={"topicId": topic.json()["id"], "destinationId": created.json()["id"]},
        )
        assert routed.status_code == 201, routed.text
        yield World(stack, http, admin, str(project["id"]), integration, receiver)


def compact(value: Any) -> Any:
    """A config as the API shows it, without the fields left at their defaults (the edge
    prints them; a notification leaves them out)."""
    if isinstance(value, dict):
        kept = {k: compact(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ("", [], {}, None, False, 0)}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def expected_common(world: World, installation: dict[str, Any]) -> dict[str, Any]:
    """The data every installation notification carries, as the installation shows it."""
    connection = installation["connection"]
    return {
        "projectId": world.project_id,
        "provider": "hubspot",
        "integrationId": world.integration["id"],
        "integrationName": INTEGRATION,
        "installationId": installation["id"],
        "connectionId": connection["id"],
        "groupRef": installation["group"]["groupRef"],
        "groupName": installation["group"]["groupName"],
        "consumerRef": connection["consumer"]["consumerRef"],
        "consumerName": connection["consumer"].get("consumerName")
        or connection["consumer"]["consumerRef"],
    }


async def test_each_change_delivers_one_notification_and_a_refusal_none(world: World) -> None:
    await world.connect("acme")
    created = await world.http.post(
        world.installations,
        json={
            "groupRef": "acme",
            "config": {"content": {"read": {"objects": {"contacts": CONTACTS}}}},
        },
    )
    assert created.status_code == 201, created.text
    installation = created.json()
    installation_id = installation["id"]
    url = f"{world.installations}/{installation_id}"

    (note,) = await world.wait_for(installation_id, 1)
    assert note["notificationType"] == "installation.created"
    data = note["data"]
    assert {k: data.get(k) for k in expected_common(world, installation)} == expected_common(
        world, installation
    )
    assert data["config"] == compact(installation["config"]["content"])
    assert "configURL" not in data and "lastConfig" not in data

    # The config changes: the new one and the one before.
    updated = await world.http.patch(
        url,
        json={
            "updateMask": ["config.content.read.objects.companies"],
            "installation": {
                "config": {"content": {"read": {"objects": {"companies": COMPANIES}}}}
            },
        },
    )
    assert updated.status_code == 200, updated.text
    notes = await world.wait_for(installation_id, 2)
    assert notes[1]["notificationType"] == "installation.updated"
    assert notes[1]["data"]["config"] == compact(updated.json()["config"]["content"])
    assert notes[1]["data"]["lastConfig"] == compact(installation["config"]["content"])

    # The connection changes (the config does not).
    second = await world.connect("acme", "user-2")
    switched = await world.http.patch(
        url, json={"updateMask": ["connectionId"], "installation": {"connectionId": second}}
    )
    assert switched.status_code == 200, switched.text
    notes = await world.wait_for(installation_id, 3)
    switch = notes[2]
    assert switch["notificationType"] == "installation.updated"
    assert switch["data"]["connectionId"] == second
    assert switch["data"]["consumerRef"] == "user-2"
    assert switch["data"]["config"] == switch["data"]["lastConfig"]
    assert switch["data"]["config"] == compact(updated.json()["config"]["content"])

    # One object's config, JSON-patched.
    patched = await world.http.patch(
        f"/integrations/{world.integration['id']}/objects/contacts/config-content",
        json={
            "installationId": installation_id,
            "action": "read",
            "changes": [{"op": "add", "path": "/selectedFields", "value": {"email": True}}],
        },
    )
    assert patched.status_code == 200, patched.text
    notes = await world.wait_for(installation_id, 4)
    patch_note = notes[3]
    assert patch_note["notificationType"] == "installation.updated"
    assert patch_note["data"]["config"]["read"]["objects"]["contacts"]["selectedFields"] == {
        "email": True
    }
    assert patch_note["data"]["lastConfig"] == compact(updated.json()["config"]["content"])

    # Refusals: a bad config, a connection of no one, a patch of nothing; none is announced.
    bad_create = await world.http.post(
        world.installations,
        json={
            "groupRef": "acme",
            "connectionId": second,
            "config": {
                "content": {
                    "read": {"objects": {"contacts": {**CONTACTS, "destination": "nowhere"}}}
                }
            },
        },
    )
    assert "body.config.content.read.objects.contacts.destination" in issue_names(
        problem(bad_create, 400)
    )
    bad_update = await world.http.patch(
        url,
        json={"updateMask": ["connectionId"], "installation": {"connectionId": str(uuid.uuid4())}},
    )
    problem(bad_update, 400)
    bad_patch = await world.http.patch(
        f"/integrations/{world.integration['id']}/objects/contacts/config-content",
        json={
            "installationId": installation_id,
            "action": "read",
            "changes": [{"op": "remove", "path": "/nothingHere"}],
        },
    )
    problem(bad_patch, 400)
    # The same connection again changes nothing, and says nothing.
    same = await world.http.patch(
        url, json={"updateMask": ["connectionId"], "installation": {"connectionId": second}}
    )
    assert same.status_code == 200, same.text

    shown = (await world.http.get(url)).json()
    deleted = await world.http.delete(url)
    assert deleted.status_code == 204, deleted.text
    notes = await world.wait_for(installation_id, 5)
    gone = notes[4]
    assert gone["notificationType"] == "installation.deleted"
    assert {k: gone["data"].get(k) for k in expected_common(world, shown)} == expected_common(
        world, shown
    )
    assert gone["data"]["config"] == compact(shown["config"]["content"])

    # Exactly one notification per change was staged, and each arrived once.
    kinds = [
        "installation.created",
        "installation.updated",
        "installation.updated",
        "installation.updated",
        "installation.deleted",
    ]
    assert await world.outbox() == [(kind, installation_id) for kind in kinds]
    assert [n["notificationType"] for n in world.notifications(installation_id)] == kinds
    ids = [r.headers["svix-id"] for r in world.receiver.at(HOOK)]
    assert len(ids) == len(set(ids))


async def test_a_subscribing_installation_keeps_its_subscriptions_row_and_starts_a_sync_per_change(
    world: World,
) -> None:
    temporal = await Client.connect(world.stack.endpoints["temporal"], namespace="ampmesh")
    connection_id = await world.connect("initech")
    content = {
        "read": {"objects": {"contacts": CONTACTS}},
        "subscribe": {"objects": {"contacts": SUBSCRIBED}},
    }
    created = await world.http.post(
        world.installations, json={"groupRef": "initech", "config": {"content": content}}
    )
    assert created.status_code == 201, created.text
    installation_id = created.json()["id"]

    async def started(change: int) -> None:
        described = await temporal.get_workflow_handle(
            sync_workflow_id(installation_id, change)
        ).describe()
        assert described.workflow_type == SYNC_WORKFLOW
        assert described.task_queue == SUBSCRIBE_QUEUE

    row = await world.subscription(installation_id)
    assert row is not None
    # The worker may have taken the row on since (active or failed): the api's part is
    # the change number, the identities and a run of that change.
    assert row["change"] == 1 and row["status"] != "removing"
    assert str(row["project_id"]) == world.project_id
    assert str(row["integration_id"]) == world.integration["id"]
    assert row["provider"] == "hubspot" and str(row["connection_id"]) == connection_id
    await started(1)

    updated = await world.http.patch(
        f"{world.installations}/{installation_id}",
        json={
            "updateMask": ["config.content.subscribe.objects.contacts"],
            "installation": {
                "config": {
                    "content": {
                        "subscribe": {
                            "objects": {
                                "contacts": {**SUBSCRIBED, "deleteEvent": {"enabled": "always"}}
                            }
                        }
                    }
                }
            },
        },
    )
    assert updated.status_code == 200, updated.text
    row = await world.subscription(installation_id)
    assert row is not None and row["change"] == 2 and row["status"] != "removing"
    await started(2)

    deleted = await world.http.delete(f"{world.installations}/{installation_id}")
    assert deleted.status_code == 204, deleted.text
    row = await world.subscription(installation_id)
    # Kept as `removing` until the worker has removed the provider-side subscriptions
    # (then it deletes the row, which it may have done already).
    assert row is None or (row["status"] == "removing" and row["change"] == 3)
    await started(3)
    notes = await world.wait_for(installation_id, 3)
    assert [n["notificationType"] for n in notes] == [
        "installation.created",
        "installation.updated",
        "installation.deleted",
    ]
    assert notes[0]["data"]["config"]["subscribe"]["objects"]["contacts"] == SUBSCRIBED
