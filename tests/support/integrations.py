"""What the integration tests through the edge share: a two-integration amp.yaml, and a
project with the webhook destinations it names, able to deploy and to tell what a refused
call must leave alone."""

from __future__ import annotations

import textwrap
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tests.support.control_plane import create_project, database_url, insert_webhook_destinations
from tests.support.stack import Stack

MANIFEST = textwrap.dedent(
    """\
    specVersion: 1.0.0
    integrations:
      - name: crm-sync
        displayName: CRM sync
        provider: hubspot
        module: crm
        proxy:
          enabled: true
        read:
          objects:
            - objectName: companies
              destination: crmWebhook
              schedule: "*/30 * * * *"
              backfill:
                defaultPeriod:
                  days: 90
              requiredFields:
                - fieldName: name
                  mapToName: company_name
            - objectName: contacts
              destination: crmWebhook
              schedule: "0 * * * *"
      - name: accounts
        provider: salesforce
        read:
          objects:
            - objectName: account
              destination: accountWebhook
              backfill:
                defaultPeriod:
                  fullHistory: true
    """
)


@dataclass
class Project:
    id: str
    name: str
    http: httpx.AsyncClient
    database_url: str

    @property
    def base(self) -> str:
        return f"/v1/projects/{self.name}/integrations"

    async def deploy(self, source: str, **params: Any) -> httpx.Response:
        return await self.http.put(f"{self.base}:batch", json={"sourceYaml": source}, params=params)

    async def state(self) -> tuple[Any, ...]:
        """Everything a refused call must leave alone: the integrations as listed, and
        the revision and config rows."""
        listed = await self.http.get(self.base)
        assert listed.status_code == 200, listed.text
        connection = await asyncpg.connect(self.database_url)
        try:
            revisions = await connection.fetch(
                "SELECT r.id, r.content::text FROM revisions r JOIN integrations g "
                "ON g.id = r.integration_id WHERE g.project_id = $1 ORDER BY r.id",
                uuid.UUID(self.id),
            )
            configs = await connection.fetch(
                "SELECT c.id, c.content::text FROM configs c JOIN installations i "
                "ON i.id = c.installation_id WHERE i.project_id = $1 ORDER BY c.id",
                uuid.UUID(self.id),
            )
        finally:
            await connection.close()
        return listed.json(), [tuple(r) for r in revisions], [tuple(c) for c in configs]


async def new_project(stack: Stack, admin: httpx.AsyncClient) -> Project:
    created = await create_project(admin, "integ", "Integrations")
    await insert_webhook_destinations(stack, created["id"], "crmWebhook", "accountWebhook")
    return Project(created["id"], created["name"], admin, database_url(stack))
