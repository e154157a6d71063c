"""Deleting a connection that installations use is refused, naming them: deleting it would
leave them pointing at nothing (their reads and writes would fail with no connection to
reconnect). Uninstalling first removes the connection with the last installation, as the
reference documents; a connection no installation uses is deleted as before."""

from __future__ import annotations

import textwrap

import httpx
import pytest

from tests.support.control_plane import (
    connect_group,
    create_project,
    insert_webhook_destinations,
    problem,
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
      - name: crm-twin
        provider: hubspot
        read:
          objects:
            - objectName: companies
              destination: crmWebhook
    """
)


async def test_a_connection_in_use_is_not_deleted_under_its_installations(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    project = await create_project(admin, "inuse", "In use")
    name = project["name"]
    await insert_webhook_destinations(stack, project["id"], "crmWebhook")
    deployed = await admin.put(
        f"/v1/projects/{name}/integrations:batch", json={"sourceYaml": MANIFEST}
    )
    assert deployed.status_code == 200, deployed.text
    crm, twin = deployed.json()
    connection_id = (await connect_group(admin, name, "hubspot", "acme"))["id"]
    installations = {}
    for integration in (crm, twin):
        url = f"/v1/projects/{name}/integrations/{integration['id']}/installations"
        created = await admin.post(
            url,
            json={"groupRef": "acme", "connectionId": connection_id, "config": {"content": {}}},
        )
        assert created.status_code == 201, created.text
        installations[f"{url}/{created.json()['id']}"] = created.json()["id"]
    connection = f"/v1/projects/{name}/connections/{connection_id}"

    refused = problem(await admin.delete(connection), 400)
    for installation_id in installations.values():
        assert installation_id in refused["detail"], refused
    # Nothing changed: the connection, its credentials and the installations' link to it.
    assert (await admin.get(connection)).status_code == 200
    for url in installations:
        shown = await admin.get(url)
        assert shown.json()["connection"]["id"] == connection_id, shown.text
    token = await admin.get(connection, params={"includeCreds": "true"})
    assert token.status_code == 200, token.text

    # Uninstalled one by one: the last uninstall takes the connection with it.
    first, second = installations
    assert (await admin.delete(first)).status_code == 204
    still = problem(await admin.delete(connection), 400)
    assert installations[second] in still["detail"]
    assert installations[first] not in still["detail"]
    assert (await admin.delete(second)).status_code == 204
    problem(await admin.get(connection), 404)

    # A connection no installation uses is deleted as before.
    spare = (await connect_group(admin, name, "hubspot", "globex"))["id"]
    deleted = await admin.delete(f"/v1/projects/{name}/connections/{spare}")
    assert deleted.status_code == 204, deleted.text
