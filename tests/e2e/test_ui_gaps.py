"""What the reference's embeddable UI (@amp-labs/react) relies on besides CORS, over REST
through the whole mesh (issue 14, items 3 to 5):

- a Salesforce connection says its workspace in providerMetadata.workspace (the crm
  module needs it, and the UI asks the end user for it when missing): from the token
  response after OAuth (source `token`), or as given (source `input`), and a workspace the
  UI asked for and saved in providerMetadata becomes the connection's;
- a `frontend` key may list the project's provider apps (never a secret) and nothing more;
- GET project?includeEntitlements=true answers the entitlements;
- an installation's group has the name its connection gives the group, and its config
  leaves out the destination and schedule nobody chose.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.sandbox.oauth_routes import SALESFORCE_MY_DOMAIN
from tests.support.control_plane import (
    as_key,
    client,
    create_api_key,
    create_project,
    create_provider_app,
    insert_webhook_destinations,
    problem,
    settled,
)
from tests.support.integrations import MANIFEST
from tests.support.oauth_popup import connect_in_popup
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

SUBDOMAIN = {"displayName": "Subdomain"}


@dataclass
class Project:
    id: str
    full: httpx.AsyncClient  # the API's root, with a full key of the project
    frontend: httpx.AsyncClient  # the API's root, with a frontend key of the project
    integrations: dict[str, dict[str, Any]]  # by name, as deployed

    @property
    def root(self) -> str:
        return f"/v1/projects/{self.id}"

    async def connection(self, connection_id: str) -> dict[str, Any]:
        got = await self.full.get(f"{self.root}/connections/{connection_id}")
        assert got.status_code == 200, got.text
        found: dict[str, Any] = got.json()
        return found

    async def generate(self, provider: str, group: str, **extra: Any) -> dict[str, Any]:
        created = await self.full.post(
            f"{self.root}/connections:generate",
            json={
                "provider": provider,
                "groupRef": group,
                "consumerRef": "user-1",
                "oauth2AuthorizationCode": {"accessToken": {"token": "imported-token"}},
                **extra,
            },
        )
        assert created.status_code == 201, created.text
        connection: dict[str, Any] = created.json()
        return connection


@pytest.fixture(scope="module")
async def project(stack: Stack, admin: httpx.AsyncClient) -> AsyncIterator[Project]:
    created = await create_project(admin, "uigaps", "UI gaps")
    await create_provider_app(admin, created["id"], "salesforce", ["api", "refresh_token"])
    await create_provider_app(admin, created["id"], "hubspot", ["crm.objects.contacts.read"])
    await insert_webhook_destinations(stack, created["id"], "crmWebhook", "accountWebhook")
    deployed = await admin.put(
        f"/v1/projects/{created['id']}/integrations:batch", json={"sourceYaml": MANIFEST}
    )
    assert deployed.status_code == 200, deployed.text
    full = await create_api_key(admin, created["id"], ["full"])
    frontend = await create_api_key(admin, created["id"], ["frontend"])
    async with (
        client(stack, headers=as_key(full)) as full_http,
        client(stack, headers=as_key(frontend)) as frontend_http,
    ):
        yield Project(
            created["id"],
            full_http,
            frontend_http,
            {integration["name"]: integration for integration in deployed.json()},
        )


# --- connection metadata ----------------------------------------------------------------


async def test_salesforce_oauth_gives_the_connection_its_workspace_from_the_token(
    stack: Stack, project: Project
) -> None:
    # As the UI starts it: a frontend key, no workspace (the sandboxed catalog asks none).
    started = await project.frontend.post(
        "/v1/oauth-connect",
        json={
            "projectIdOrName": project.id,
            "provider": "salesforce",
            "groupRef": "initech",
            "groupName": "Initech",
            "consumerRef": "peter",
        },
    )
    assert started.status_code == 200, started.text
    connection = await project.connection(await connect_in_popup(stack, started.text))
    assert connection["providerWorkspaceRef"] == SALESFORCE_MY_DOMAIN
    assert connection["providerMetadata"] == {
        "workspace": {"value": SALESFORCE_MY_DOMAIN, "source": "token", **SUBDOMAIN}
    }
    # The frontend key sees the same (the UI reads it from the list).
    listed = await project.frontend.get(
        f"{project.root}/connections", params={"groupRef": "initech"}
    )
    assert listed.status_code == 200, listed.text
    (seen,) = [c for c in listed.json() if c["id"] == connection["id"]]
    assert seen["providerMetadata"]["workspace"]["value"] == SALESFORCE_MY_DOMAIN


async def test_a_given_workspace_is_the_connections_metadata_as_input(project: Project) -> None:
    connection = await project.generate("salesforce", "acme", providerWorkspaceRef="acme-dev")
    assert connection["providerMetadata"] == {
        "workspace": {"value": "acme-dev", "source": "input", **SUBDOMAIN}
    }
    # HubSpot's catalog entry declares no workspace input: nothing is added.
    hubspot = await project.generate("hubspot", "acme", providerWorkspaceRef="12345")
    assert hubspot.get("providerMetadata", {}) == {}


async def test_a_workspace_the_ui_asked_for_becomes_the_connections(project: Project) -> None:
    connection = await project.generate("salesforce", "globex")
    assert "providerWorkspaceRef" not in connection or not connection["providerWorkspaceRef"]
    assert connection.get("providerMetadata", {}) == {}
    # What the UI's "Additional information needed" form sends.
    patched = await project.frontend.patch(
        f"{project.root}/connections/{connection['id']}",
        json={
            "updateMask": ["providerMetadata"],
            "connection": {
                "providerMetadata": {"workspace": {"value": "globex-prod", "source": "input"}}
            },
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["providerWorkspaceRef"] == "globex-prod"
    assert (await project.connection(connection["id"]))["providerWorkspaceRef"] == "globex-prod"


# --- provider apps for a frontend key -----------------------------------------------------


async def test_a_frontend_key_lists_provider_apps_without_secrets(project: Project) -> None:
    path = f"{project.root}/provider-apps"
    as_builder = await project.full.get(path)
    assert as_builder.status_code == 200, as_builder.text
    listed = await project.frontend.get(path)
    assert listed.status_code == 200, listed.text
    apps = listed.json()
    assert apps == as_builder.json()
    assert {a["provider"] for a in apps} == {"salesforce", "hubspot"}
    assert all(a["clientId"] and "clientSecret" not in a for a in apps)
    assert "secret" not in listed.text.lower()

    # Everything else about provider apps stays the builder's.
    app = apps[0]
    refusals = [
        await project.frontend.post(
            path, json={"provider": "hubspot", "clientId": "x", "clientSecret": "y"}
        ),
        await project.frontend.patch(
            f"{path}/{app['id']}",
            json={"updateMask": ["clientId"], "providerApp": {"clientId": "stolen"}},
        ),
        await project.frontend.delete(f"{path}/{app['id']}"),
    ]
    for refused in refusals:
        problem(refused, 403)
    assert (await project.full.get(path)).json() == as_builder.json()
    # And nobody lists them without a key.
    async with httpx.AsyncClient(base_url=str(project.full.base_url), timeout=20) as anonymous:
        problem(await anonymous.get(path), 401)


# --- entitlements ----------------------------------------------------------------------------


async def test_entitlements_are_answered_only_when_asked(project: Project) -> None:
    for http in (project.full, project.frontend):
        asked = await http.get(project.root, params={"includeEntitlements": "true"})
        assert asked.status_code == 200, asked.text
        # A self-hosted deployment entitles every project to everything it has.
        assert asked.json()["entitlements"] == {"brandingRemoval": {"value": True}}
        for params in ({}, {"includeEntitlements": "false"}):
            plain = await http.get(project.root, params=params)
            assert plain.status_code == 200, plain.text
            assert "entitlements" not in plain.json()
    bad = await project.full.get(project.root, params={"includeEntitlements": "sometimes"})
    assert bad.status_code == 400, bad.text


# --- installations ----------------------------------------------------------------------------


async def test_an_installation_shows_its_groups_name_and_no_empty_config_fields(
    project: Project,
) -> None:
    connection = await project.generate("hubspot", "umbrella", groupName="Umbrella Corp")
    assert connection["group"]["groupName"] == "Umbrella Corp"
    crm = project.integrations["crm-sync"]
    path = f"{project.root}/integrations/{crm['id']}/installations"
    chosen = {"objectName": "companies", "schedule": "0 * * * *", "destination": "crmWebhook"}
    created = await project.frontend.post(
        path,
        json={
            "groupRef": "umbrella",
            "config": {
                "content": {
                    "read": {
                        "objects": {
                            # What the UI sends for an object whose schedule and
                            # destination the manifest decides.
                            "contacts": {
                                "objectName": "contacts",
                                "selectedFields": {"email": True},
                            },
                            "companies": chosen,
                        }
                    }
                }
            },
        },
    )
    assert created.status_code == 201, created.text
    installation = created.json()
    assert installation["group"]["groupName"] == "Umbrella Corp"
    assert installation["group"]["groupName"] == installation["connection"]["group"]["groupName"]
    objects = installation["config"]["content"]["read"]["objects"]
    contacts = objects["contacts"]
    assert "destination" not in contacts and "schedule" not in contacts
    assert contacts["objectName"] == "contacts"
    assert contacts["selectedFields"] == {"email": True}
    # Empty maps stay: the reference requires them.
    assert contacts["selectedFieldMappings"] == {}
    assert {k: objects["companies"][k] for k in chosen} == chosen

    got = await project.frontend.get(f"{path}/{installation['id']}")
    assert got.status_code == 200, got.text
    assert settled(got.json()) == settled(installation)
    listed = await project.full.get(path, params={"groupRef": "umbrella"})
    assert listed.status_code == 200, listed.text
    assert [settled(i) for i in listed.json()] == [settled(installation)]
    # An update that changes the selection keeps them out too.
    updated = await project.frontend.patch(
        f"{path}/{installation['id']}",
        json={
            "updateMask": ["config.content.read.objects.contacts"],
            "installation": {
                "config": {
                    "content": {
                        "read": {
                            "objects": {
                                "contacts": {
                                    "objectName": "contacts",
                                    "selectedFields": {"email": True, "firstname": True},
                                }
                            }
                        }
                    }
                }
            },
        },
    )
    assert updated.status_code == 200, updated.text
    contacts = updated.json()["config"]["content"]["read"]["objects"]["contacts"]
    assert "destination" not in contacts and "schedule" not in contacts
    assert contacts["selectedFields"] == {"email": True, "firstname": True}
