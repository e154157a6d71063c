"""A builder's first day, through the edge with REST only, as their tools would do it:
the org admin key makes a project and a project key; with that key the builder registers
an OAuth app, creates a webhook destination, deploys an amp.yaml with two integrations,
looks at what it made, connects a customer and installs one for them, changes the
installation, and finds the backfill its install started among its operations."""

from __future__ import annotations

import textwrap
from typing import Any

import httpx
import pytest

from tests.support.control_plane import (
    as_key,
    client,
    connect_group,
    create_api_key,
    create_project,
    eventually,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

AMP_YAML = textwrap.dedent(
    """\
    specVersion: 1.0.0
    integrations:
      - name: hubspot-companies
        provider: hubspot
        read:
          objects:
            - objectName: companies
              destination: orders-hook
              schedule: "*/30 * * * *"
              backfill:
                defaultPeriod:
                  days: 30
            - objectName: contacts
              destination: orders-hook
              schedule: "0 * * * *"
      - name: salesforce-accounts
        provider: salesforce
        read:
          objects:
            - objectName: account
              destination: orders-hook
              schedule: "0 */6 * * *"
    """
)


async def test_a_builders_day(stack: Stack, admin: httpx.AsyncClient) -> None:
    created = await create_project(admin, "day", "Acme")
    assert created["orgId"] == stack.org_id
    project_name = created["name"]
    secret = await create_api_key(admin, project_name, ["full"], label="ci")

    base = f"/v1/projects/{project_name}"
    async with client(stack, headers=as_key(secret)) as builder:
        app = await builder.post(
            f"{base}/provider-apps",
            json={"provider": "hubspot", "clientId": "acme-client", "clientSecret": "s3cr3t"},
        )
        assert app.status_code == 200, app.text
        assert "clientSecret" not in app.json()

        hook = await builder.post(
            f"{base}/destinations",
            json={
                "name": "orders-hook",
                "type": "webhook",
                "metadata": {"url": "http://127.0.0.1:9/hooks/orders"},
            },
        )
        assert hook.status_code == 201, hook.text

        deployed = await builder.put(f"{base}/integrations:batch", json={"sourceYaml": AMP_YAML})
        assert deployed.status_code == 200, deployed.text
        assert {i["name"] for i in deployed.json()} == {
            "hubspot-companies",
            "salesforce-accounts",
        }

        listed = (await builder.get(f"{base}/integrations")).json()
        assert len(listed) == 2
        by_name = {i["name"]: i for i in listed}
        hubspot = by_name["hubspot-companies"]
        assert hubspot["provider"] == "hubspot"
        assert (await builder.get(f"{base}/integrations/hubspot-companies")).json() == hubspot
        assert (await builder.get(f"{base}/integrations/{hubspot['id']}")).json() == hubspot
        objects = hubspot["latestRevision"]["content"]["read"]["objects"]
        assert [o["objectName"] for o in objects] == ["companies", "contacts"]

        # The customer connects their HubSpot account before anything is installed for them.
        await connect_group(builder, project_name, "hubspot", "customer-42")
        installations = f"{base}/integrations/{hubspot['id']}/installations"
        companies = {
            "objectName": "companies",
            "destination": "orders-hook",
            "schedule": "0 * * * *",
        }
        installed = await builder.post(
            installations,
            json={
                "groupRef": "customer-42",
                "config": {"content": {"read": {"objects": {"companies": companies}}}},
            },
        )
        assert installed.status_code == 201, installed.text
        installation = installed.json()
        assert installation["group"]["groupRef"] == "customer-42"

        contacts = {"objectName": "contacts", "destination": "orders-hook"}
        changed = await builder.patch(
            f"{installations}/{installation['id']}",
            json={
                "updateMask": ["config.content.read.objects.contacts"],
                "installation": {
                    "config": {"content": {"read": {"objects": {"contacts": contacts}}}}
                },
            },
        )
        assert changed.status_code == 200, changed.text
        read_objects = changed.json()["config"]["content"]["read"]["objects"]
        assert set(read_objects) == {"companies", "contacts"}
        # Compared without lastOperationStatus, which the backfill moves meanwhile.
        fetched = (await builder.get(f"{installations}/{installation['id']}")).json()
        fetched.pop("lastOperationStatus", None)
        assert fetched == {k: v for k, v in changed.json().items() if k != "lastOperationStatus"}

        # Installing started the backfill of companies (30 days); contacts has none and
        # is read from now on, by its schedule.
        operations_path = f"{installations}/{installation['id']}/operations"
        listed_operations: list[dict[str, Any]] = []

        async def backfill_recorded() -> bool:
            response = await builder.get(operations_path)
            assert response.status_code == 200, response.text
            assert response.json()["pagination"]["done"] is True
            listed_operations[:] = response.json()["results"]
            return bool(listed_operations)

        await eventually(backfill_recorded, "list the backfill's operation")
        [backfill] = listed_operations
        assert backfill["actionType"] == "read"
        assert backfill["installationId"] == installation["id"]
        assert backfill["metadata"]["objects"] == ["companies"]

        # The project key sees only its own project.
        assert [p["name"] for p in (await builder.get("/v1/projects")).json()] == [project_name]
