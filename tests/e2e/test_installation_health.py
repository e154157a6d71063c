"""An installation's healthStatus as the API shows it: unhealthy while its connection has
bad credentials (the provider refused them: scribe records the connection's status from
the token-manager's events) or is gone, or after its newest operation failed (scribe
records it); healthy again once the connection works and operations succeed."""

from __future__ import annotations

import textwrap
import uuid

import asyncpg
import httpx
import pytest

from tests.support.control_plane import (
    connect_group,
    create_project,
    database_url,
    insert_webhook_destinations,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

MANIFEST = textwrap.dedent(
    """\
    specVersion: 1.0.0
    integrations:
      - name: crm-sync
        provider: hubspot
        read:
          objects:
            - objectName: contacts
              destination: crmWebhook
    """
)


async def test_health_status_follows_the_connection_and_the_operations(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    project = await create_project(admin, "health", "Health")
    name = project["name"]
    await insert_webhook_destinations(stack, project["id"], "crmWebhook")
    deployed = await admin.put(
        f"/v1/projects/{name}/integrations:batch", json={"sourceYaml": MANIFEST}
    )
    assert deployed.status_code == 200, deployed.text
    (crm,) = deployed.json()
    connection_id = uuid.UUID((await connect_group(admin, name, "hubspot", "acme"))["id"])
    url = f"/v1/projects/{name}/integrations/{crm['id']}/installations"
    created = await admin.post(url, json={"groupRef": "acme", "config": {"content": {}}})
    assert created.status_code == 201, created.text
    assert created.json()["healthStatus"] == "healthy"
    url = f"{url}/{created.json()['id']}"
    installation_id = uuid.UUID(created.json()["id"])

    async def shown() -> tuple[str, ...]:
        got = await admin.get(url)
        assert got.status_code == 200, got.text
        listed = await admin.get(f"/v1/projects/{name}/installations")
        (in_list,) = [i for i in listed.json() if i["id"] == str(installation_id)]
        return got.json()["healthStatus"], in_list["healthStatus"]

    database = await asyncpg.connect(database_url(stack))
    try:
        # What scribe writes when the token-manager says the provider refused the tokens.
        await database.execute(
            "UPDATE connections SET status = 'bad_credentials' WHERE id = $1", connection_id
        )
        assert await shown() == ("unhealthy", "unhealthy")
        await database.execute(
            "UPDATE connections SET status = 'working' WHERE id = $1", connection_id
        )
        assert await shown() == ("healthy", "healthy")
        # What scribe writes when the installation's newest operation failed.
        await database.execute(
            "UPDATE installations SET health_status = 'unhealthy', "
            "last_operation_status = 'failure' WHERE id = $1",
            installation_id,
        )
        assert await shown() == ("unhealthy", "unhealthy")
        await database.execute(
            "UPDATE installations SET health_status = 'healthy', "
            "last_operation_status = 'success' WHERE id = $1",
            installation_id,
        )
        assert await shown() == ("healthy", "healthy")
    finally:
        await database.close()
