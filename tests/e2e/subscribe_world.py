"""A builder's setup for subscribe actions through the whole mesh: a project whose HubSpot
and Salesforce provider apps are the sandbox's clients (HubSpot's with the developer app id
and key its webhooks API needs), a webhook destination at a local Receiver, one integration
per provider that reads and subscribes to one object, connections holding real sandbox
tokens, and installations whose creation registers the provider-side subscriptions.

HubSpot's webhooks are app-level and the sandbox has one app, so the integration that
registered last receives every HubSpot event: the subscribe tests run one at a time (as the
session does). Salesforce objects get a name of their own per world, so a world's change
events are only its own."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from tests.support.control_plane import admin_client, create_project
from tests.support.sandbox import CLIENT_ID, CLIENT_SECRET, sandbox_connection
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver

DESTINATION = "changes"
SANDBOX_PROVIDERS = {
    "hubspot": sandbox_pb2.PROVIDER_HUBSPOT,
    "salesforce": sandbox_pb2.PROVIDER_SALESFORCE,
}
# (builder's name, provider field) mapped, and the fields taken as they are, per provider.
MAPPED = {"hubspot": ("emailAddress", "email"), "salesforce": ("title", "Name")}
UNMAPPED = {"hubspot": ("firstname", "lastname", "company", "phone"), "salesforce": ()}
REGISTERED_WITHIN = 120.0


class SubscribeReceiver(Receiver):
    """Counts only subscribe deliveries' records (reads and notifications may share the
    destination), by record id, and keeps their entries."""

    def __init__(self) -> None:
        super().__init__(both_libraries=True, keep_requests=False)
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self.messages: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []

    def _count(self, message: dict[str, Any]) -> None:
        if "notificationType" in message:
            self.notifications.append(message)
            return
        if message.get("action") != "subscribe":
            return
        self.messages.append(message)
        for entry in message.get("result") or ():
            record_id = str(entry.get("id"))
            self.received.records[record_id] += 1
            self.entries.setdefault(record_id, []).append(entry)

    async def wait_for_notification(self, kind: str, patience: float) -> dict[str, Any]:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            for note in self.notifications:
                if note["notificationType"] == kind:
                    return note
            await asyncio.sleep(0.2)
        seen = [n["notificationType"] for n in self.notifications]
        raise AssertionError(f"no {kind} notification within {patience:.0f} s (saw {seen})")


def manifest(provider: str, object_name: str) -> str:
    mapped, unmapped = MAPPED[provider], UNMAPPED[provider]
    lines = [
        "specVersion: 1.0.0",
        "integrations:",
        f"  - name: {provider}-changes",
        f"    provider: {provider}",
        "    read:",
        "      objects:",
        f"        - objectName: {object_name}",
        f"          destination: {DESTINATION}",
        "          requiredFields:",
        f"            - fieldName: {mapped[1]}",
        f"              mapToName: {mapped[0]}",
    ]
    if unmapped:
        lines.append("          optionalFields:")
        lines += [f"            - fieldName: {name}" for name in unmapped]
    lines += [
        "    subscribe:",
        "      objects:",
        f"        - objectName: {object_name}",
        f"          destination: {DESTINATION}",
        "          inheritFieldsAndMapping: true",
        "          createEvent:",
        "            enabled: always",
        "          updateEvent:",
        "            enabled: always",
        "            watchFieldsAuto: all",
        "          deleteEvent:",
        "            enabled: always",
    ]
    return "\n".join(lines) + "\n"


def config(provider: str, object_name: str) -> dict[str, Any]:
    mapped, unmapped = MAPPED[provider], UNMAPPED[provider]
    return {
        "read": {
            "objects": {
                object_name: {
                    "objectName": object_name,
                    "destination": DESTINATION,
                    "selectedFields": {mapped[1]: True, **dict.fromkeys(unmapped, True)},
                    "selectedFieldMappings": {mapped[0]: mapped[1]},
                }
            }
        },
        "subscribe": {
            "objects": {
                object_name: {
                    "objectName": object_name,
                    "destination": DESTINATION,
                    "inheritFieldsAndMappings": True,
                    "createEvent": {"enabled": "always"},
                    "updateEvent": {"enabled": "always", "watchFieldsAuto": "all"},
                    "deleteEvent": {"enabled": "always"},
                }
            }
        },
    }


@dataclass
class SubscribeWorld:
    stack: Stack
    http: httpx.AsyncClient  # the API, rooted at the project
    project: dict[str, Any]
    provider: str
    object_name: str
    integration: dict[str, Any]
    destination: dict[str, Any]
    control: sandbox_pb2_grpc.SandboxControlServiceStub
    secrets: list[str] = field(default_factory=list)

    @property
    def sandbox_provider(self) -> sandbox_pb2.Provider:
        return SANDBOX_PROVIDERS[self.provider]

    async def install(self, group: str) -> dict[str, Any]:
        connection, tokens = await sandbox_connection(self.stack, self.http, self.provider, group)
        self.secrets += [tokens["access_token"], tokens["refresh_token"]]
        created = await self.http.post(
            f"/integrations/{self.integration['id']}/installations",
            json={
                "groupRef": group,
                "connectionId": connection["id"],
                "config": {"content": config(self.provider, self.object_name)},
            },
        )
        assert created.status_code == 201, created.text
        installation: dict[str, Any] = created.json()
        return installation

    async def uninstall(self, installation: dict[str, Any]) -> None:
        deleted = await self.http.delete(
            f"/integrations/{self.integration['id']}/installations/{installation['id']}"
        )
        assert deleted.status_code == 204, deleted.text

    async def registered(self) -> list[sandbox_pb2.WebhookSubscription]:
        """The sandbox's subscriptions that deliver this world's object's changes here."""
        listed = await self.control.ListWebhookSubscriptions(
            sandbox_pb2.ListWebhookSubscriptionsRequest(provider=self.sandbox_provider)
        )
        return [
            s
            for s in listed.subscriptions
            if s.object_name == self.object_name and s.active and self.project_id in s.target_url
        ]

    async def wait_registered(self, *, want: int = 1) -> list[sandbox_pb2.WebhookSubscription]:
        deadline = time.monotonic() + REGISTERED_WITHIN
        while len(found := await self.registered()) < want:
            assert time.monotonic() < deadline, f"not registered at the sandbox: {found}"
            await asyncio.sleep(0.5)
        return found

    async def wait_unregistered(self) -> None:
        deadline = time.monotonic() + REGISTERED_WITHIN
        while found := await self.registered():
            assert time.monotonic() < deadline, f"still registered at the sandbox: {found}"
            await asyncio.sleep(0.5)

    @property
    def project_id(self) -> str:
        return str(self.project["id"])

    async def route(self, *event_types: str) -> None:
        """Send these notifications to the world's destination."""
        topic = await self.http.post("/topics", json={"name": f"t-{uuid.uuid4().hex[:8]}"})
        assert topic.status_code == 201, topic.text
        topic_id = topic.json()["id"]
        for event_type in event_types:
            routed = await self.http.post(
                "/notification-event-topic-routes",
                json={"eventType": event_type, "topicId": topic_id},
            )
            assert routed.status_code == 201, routed.text
        routed = await self.http.post(
            "/topic-destination-routes",
            json={"topicId": topic_id, "destinationId": self.destination["id"]},
        )
        assert routed.status_code == 201, routed.text


async def make_world(
    stack: Stack,
    receiver: Receiver,
    control: sandbox_pb2_grpc.SandboxControlServiceStub,
    provider: str,
    *,
    object_name: str = "",
    developer_api_key: str | None = None,
) -> SubscribeWorld:
    """developer_api_key: HubSpot's, instead of the sandbox's own (a wrong one makes
    registration fail)."""
    if not object_name:
        object_name = "contacts" if provider == "hubspot" else f"Sub{uuid.uuid4().hex[:8]}__c"
    async with admin_client(stack) as admin:
        project = await create_project(admin, "subscribe", "Subscribe")
    http = admin_client(stack, f"/v1/projects/{project['id']}")
    app: dict[str, Any] = {
        "provider": provider,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
    }
    if provider == "hubspot":
        info = await control.GetSandboxInfo(sandbox_pb2.GetSandboxInfoRequest())
        client = next(c for c in info.clients if c.app_id)
        app["metadata"] = {
            "providerParams": {
                "appId": client.app_id,
                "developerApiKey": developer_api_key or client.developer_api_key,
            }
        }
    created = await http.post("/provider-apps", json=app)
    assert created.status_code == 200, created.text
    made = await http.post(
        "/destinations",
        json={"name": DESTINATION, "type": "webhook", "metadata": {"url": receiver.url()}},
    )
    assert made.status_code == 201, made.text
    revealed = await http.get(f"/destinations/{DESTINATION}", params={"includeSecrets": "true"})
    assert revealed.status_code == 200, revealed.text
    destination = revealed.json()
    receiver.secrets[HOOK] = destination["secrets"]["webhookSigningKey"]
    deployed = await http.put(
        "/integrations:batch", json={"sourceYaml": manifest(provider, object_name)}
    )
    assert deployed.status_code == 200, deployed.text
    (integration,) = deployed.json()
    return SubscribeWorld(
        stack=stack,
        http=http,
        project=project,
        provider=provider,
        object_name=object_name,
        integration=integration,
        destination=destination,
        control=control,
        secrets=[destination["secrets"]["webhookSigningKey"]],
    )
