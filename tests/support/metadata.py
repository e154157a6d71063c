"""A builder's setup for the live-metadata tests (hydrated revisions, object metadata):
a project with a HubSpot and a Salesforce integration, connections of a group holding real
sandbox tokens, and that group's installations."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.control_plane import (
    admin_client,
    create_project,
    create_provider_app,
    insert_webhook_destinations,
    unique,
)
from tests.support.sandbox import TOKEN_PATHS, sandbox_connection
from tests.support.stack import Stack

# HubSpot contacts delivered as `people`; a HubSpot object the sandbox's instance does not
# have (`spaceships`); Salesforce accounts with a field named in its API spelling.
MANIFEST = textwrap.dedent(
    """\
    specVersion: 1.0.0
    integrations:
      - name: crm
        displayName: CRM
        provider: hubspot
        module: crm
        proxy:
          enabled: true
        read:
          objects:
            - objectName: contacts
              mapToName: people
              mapToDisplayName: People
              destination: crmWebhook
              schedule: "*/30 * * * *"
              backfill:
                defaultPeriod:
                  days: 30
              requiredFields:
                - fieldName: email
                  mapToName: emailAddress
                  mapToDisplayName: Email address
              optionalFields:
                - fieldName: firstname
                - mapToName: segment
                  mapToDisplayName: Segment
                  prompt: Which field holds the segment?
                  default: lifecyclestage
              optionalFieldsAuto: all
            - objectName: spaceships
              destination: crmWebhook
      - name: accounts
        provider: salesforce
        read:
          objects:
            - objectName: Account
              destination: crmWebhook
              requiredFields:
                - fieldName: Name
              optionalFields:
                - fieldName: BillingCity
    """
)


@dataclass
class MetadataWorld:
    stack: Stack
    http: httpx.AsyncClient  # the API, rooted at /v1/projects/<id>
    project: dict[str, Any]
    integrations: dict[str, dict[str, Any]]  # by name
    connections: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def project_id(self) -> str:
        return str(self.project["id"])

    def integration(self, name: str) -> dict[str, Any]:
        return self.integrations[name]

    async def connect(self, provider: str, group: str) -> dict[str, Any]:
        """A connection of group to provider holding real sandbox tokens."""
        connection, _ = await sandbox_connection(self.stack, self.http, provider, group)
        self.connections[(provider, group)] = connection
        return connection

    async def install(self, integration: str, group: str) -> dict[str, Any]:
        """Connect group to the integration's provider and install it (reading nothing
        yet: the config selects no object, so no read starts)."""
        provider = self.integrations[integration]["provider"]
        connection = await self.connect(provider, group)
        created = await self.http.post(
            f"/integrations/{self.integrations[integration]['id']}/installations",
            json={
                "groupRef": group,
                "connectionId": connection["id"],
                "config": {"content": {}},
            },
        )
        assert created.status_code == 201, created.text
        installation: dict[str, Any] = created.json()
        return installation


async def metadata_world(stack: Stack) -> MetadataWorld:
    async with admin_client(stack) as admin:
        project = await create_project(admin, "metadata", "Metadata")
        for provider in TOKEN_PATHS:
            await create_provider_app(admin, project["id"], provider)
    await insert_webhook_destinations(stack, project["id"], "crmWebhook")
    http = admin_client(stack, f"/v1/projects/{project['id']}")
    deployed = await http.put("/integrations:batch", json={"sourceYaml": MANIFEST})
    assert deployed.status_code == 200, deployed.text
    integrations = {i["name"]: i for i in deployed.json()}
    return MetadataWorld(stack, http, project, integrations)


def custom_name(prefix: str) -> str:
    """A custom field name no other test made (the session shares one sandbox)."""
    return unique(prefix).replace("-", "_")


def shown(value: Any) -> Any:
    """value without the empty strings and lists the edge prints for unset fields (the
    transcoder prints every field without presence; the reference leaves them out)."""
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items() if v not in ("", [])}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value
