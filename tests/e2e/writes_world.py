"""A builder's setup for writing to a customer's HubSpot or Salesforce (the sandbox): a
project with the provider's app and a webhook destination (a local Receiver), an
integration that reads and writes contacts (HubSpot, the builder's `emailAddress` mapped to
`email` and inherited by the write) or accounts (Salesforce), a connection holding real
sandbox tokens, and the installation with deletes enabled and a field default. Plus
reading back what the sandbox holds, through the provider's own API. Used by the write
tests and bench/writes.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.reads_world import CLIENT_ID, CLIENT_SECRET
from tests.support.control_plane import admin_client, create_project
from tests.support.sandbox import sandbox_connection
from tests.support.stack import Stack

INTEGRATION = "crm-writes"
DESTINATION = "writesHook"
# Per provider: the object written, the object that is also written without a mapping,
# the builder's mapped field and the provider's name of it.
OBJECTS = {"hubspot": ("contacts", "companies"), "salesforce": ("Account", "Contact")}
MAPPED = {"hubspot": ("emailAddress", "email"), "salesforce": ("accountName", "Name")}
# A default the installation gives a field the builder leaves out on create.
DEFAULTS = {"hubspot": ("lifecyclestage", "Lead"), "salesforce": ("Industry", "Retail")}
SF_VERSION = "v59.0"


def manifest(provider: str) -> str:
    main, other = OBJECTS[provider]
    builder, theirs = MAPPED[provider]
    return (
        "\n".join(
            [
                "specVersion: 1.0.0",
                "integrations:",
                f"  - name: {INTEGRATION}",
                f"    provider: {provider}",
                "    read:",
                "      objects:",
                f"        - objectName: {main}",
                f"          destination: {DESTINATION}",
                "          requiredFields:",
                f"            - fieldName: {theirs}",
                f"              mapToName: {builder}",
                "    write:",
                "      objects:",
                f"        - objectName: {main}",
                "          inheritMapping: true",
                f"        - objectName: {other}",
            ]
        )
        + "\n"
    )


def config(provider: str, *, deletes: bool = True) -> dict[str, Any]:
    main, other = OBJECTS[provider]
    builder, theirs = MAPPED[provider]
    default_field, default_value = DEFAULTS[provider]
    return {
        "provider": provider,
        "read": {
            "objects": {
                main: {
                    "objectName": main,
                    "destination": DESTINATION,
                    "selectedFields": {theirs: True},
                    "selectedFieldMappings": {builder: theirs},
                }
            }
        },
        "write": {
            "objects": {
                main: {
                    "objectName": main,
                    "deletionSettings": {"enabled": deletes},
                    "selectedFieldSettings": {
                        default_field: {
                            "default": {"stringValue": default_value},
                            "writeOnCreate": "always",
                            "writeOnUpdate": "never",
                        }
                    },
                },
                other: {"objectName": other},
            }
        },
    }


@dataclass
class WritesWorld:
    stack: Stack
    http: httpx.AsyncClient  # the API, rooted at the project
    write_http: httpx.AsyncClient  # the write host, rooted at the project
    read_http: httpx.AsyncClient  # the read host, rooted at the project
    project_id: str
    integration: dict[str, Any]
    destination: dict[str, Any]
    provider: str
    group: str = ""
    installation: dict[str, Any] = field(default_factory=dict)
    access_token: str = ""

    @property
    def object_name(self) -> str:
        return OBJECTS[self.provider][0]

    def path(self, object_name: str | None = None) -> str:
        return f"/integrations/{INTEGRATION}/objects/{object_name or self.object_name}"

    async def write(
        self, body: dict[str, Any], *, object_name: str | None = None, **headers: str
    ) -> httpx.Response:
        """POST a WriteRequest for this world's group (groupRef filled in)."""
        return await self.write_http.post(
            self.path(object_name),
            json={"groupRef": self.group, **body},
            headers={name.replace("_", "-"): value for name, value in headers.items()},
        )

    async def install(self, group: str, *, deletes: bool = True) -> dict[str, Any]:
        self.group = group
        _connection, tokens = await sandbox_connection(self.stack, self.http, self.provider, group)
        self.access_token = tokens["access_token"]
        created = await self.http.post(
            f"/integrations/{self.integration['id']}/installations",
            json={"groupRef": group, "config": {"content": config(self.provider, deletes=deletes)}},
        )
        assert created.status_code == 201, created.text
        self.installation = created.json()
        return self.installation

    def sandbox(self) -> httpx.AsyncClient:
        """The sandbox's provider API with the connection's own token (to read back)."""
        return httpx.AsyncClient(
            base_url=self.stack.endpoints["sandbox-http"],
            headers={"Authorization": f"Bearer {self.access_token}"},
            timeout=30,
        )

    async def find(
        self, field_name: str, value: str, object_name: str | None = None
    ) -> list[dict[str, Any]]:
        """The provider's records of the object whose field equals value: HubSpot's CRM
        search, or a SOQL query."""
        name = object_name or self.object_name
        async with self.sandbox() as sandbox:
            if self.provider == "hubspot":
                found = await sandbox.post(
                    f"/hubspot/crm/v3/objects/{name}/search",
                    json={
                        "filterGroups": [
                            {
                                "filters": [
                                    {"propertyName": field_name, "operator": "EQ", "value": value}
                                ]
                            }
                        ],
                        "properties": [field_name, DEFAULTS["hubspot"][0], "firstname"],
                        "limit": 100,
                    },
                )
                assert found.status_code == 200, found.text
                return [{"id": row["id"], **row["properties"]} for row in found.json()["results"]]
            # Test values only (no quotes in them): the sandbox's own SOQL.
            soql = f"SELECT Id, Name, Industry, Phone FROM {name} WHERE {field_name} = '{value}'"  # noqa: S608
            found = await sandbox.get(
                f"/salesforce/services/data/{SF_VERSION}/query", params={"q": soql}
            )
            assert found.status_code == 200, found.text
            return [{"id": row["Id"], **row} for row in found.json()["records"]]


async def writes_world(
    stack: Stack,
    receiver_url: str,
    provider: str = "hubspot",
    *,
    group: str | None = None,
    deletes: bool = True,
) -> WritesWorld:
    async with admin_client(stack) as admin:
        project = await create_project(admin, "writes", "Writes")
    root = f"/v1/projects/{project['id']}"
    http = admin_client(stack, root)
    app = await http.post(
        "/provider-apps",
        json={"provider": provider, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET},
    )
    assert app.status_code == 200, app.text
    created = await http.post(
        "/destinations",
        json={"name": DESTINATION, "type": "webhook", "metadata": {"url": receiver_url}},
    )
    assert created.status_code == 201, created.text
    revealed = await http.get(f"/destinations/{DESTINATION}", params={"includeSecrets": "true"})
    assert revealed.status_code == 200, revealed.text
    deployed = await http.put("/integrations:batch", json={"sourceYaml": manifest(provider)})
    assert deployed.status_code == 200, deployed.text
    (integration,) = deployed.json()
    hosts = {
        surface: httpx.AsyncClient(
            base_url=stack.endpoints[surface] + root,
            headers={"x-api-key": stack.admin_api_key},
            timeout=60,
        )
        for surface in ("write", "read")
    }
    world = WritesWorld(
        stack=stack,
        http=http,
        write_http=hosts["write"],
        read_http=hosts["read"],
        project_id=str(project["id"]),
        integration=integration,
        destination=revealed.json(),
        provider=provider,
    )
    await world.install(group or f"g-{uuid.uuid4().hex[:8]}", deletes=deletes)
    return world


async def route_notifications(world: WritesWorld, event_type: str) -> None:
    """The builder routes event_type to a topic that goes to the world's webhook."""
    topic = await world.http.post("/topics", json={"name": f"t-{uuid.uuid4().hex[:8]}"})
    assert topic.status_code == 201, topic.text
    for path, body in (
        (
            "/notification-event-topic-routes",
            {"eventType": event_type, "topicId": topic.json()["id"]},
        ),
        (
            "/topic-destination-routes",
            {"topicId": topic.json()["id"], "destinationId": world.destination["id"]},
        ),
    ):
        routed = await world.http.post(path, json=body)
        assert routed.status_code == 201, routed.text
