"""Installations through the edge: create with a config checked against the integration's
latest revision, list (per integration, per project, by group), get, PATCH with the
reference's update masks (each config change a new config row), JSON Patch of one
object's config, delete. Every installation uses a connection of its group to the
integration's provider, named or the group's only one. Customer JWTs reach only their own
group. Every refused call is problem+json and changes nothing."""

from __future__ import annotations

import json
import textwrap
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.control_plane import (
    bearer,
    client,
    connect_group,
    create_project,
    customer_claims,
    database_url,
    insert_webhook_destinations,
    issue_names,
    new_rsa_key,
    problem,
    register_jwt_key,
    settled,
    sign_jwt,
    spki_pem,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

MANIFEST = textwrap.dedent(
    """\
    specVersion: 1.0.0
    integrations:
      - name: crm-sync
        provider: hubspot
        proxy:
          enabled: true
        read:
          objects:
            - objectName: companies
              destination: crmWebhook
              schedule: "*/30 * * * *"
            - objectName: contacts
              destination: crmWebhook
      - name: accounts
        provider: salesforce
        read:
          objects:
            - objectName: account
              destination: crmWebhook
    """
)

# ampmesh refuses to deploy write and subscribe sections while it has no connector for
# them (services/domain/catalog/actions.py); a revision deployed before it refused them
# still has them, and its installations still configure them. The fixture gives crm-sync's
# revision these sections in the database, as such a revision has them.
EARLIER_SECTIONS = {
    "write": {"objects": [{"objectName": "companies"}, {"objectName": "deals"}]},
    "subscribe": {
        "objects": [
            {
                "objectName": "companies",
                "destination": "crmWebhook",
                "inheritFieldsAndMapping": True,
                "createEvent": {"enabled": "always"},
            }
        ]
    },
}

COMPANIES = {"objectName": "companies", "destination": "crmWebhook", "schedule": "0 * * * *"}


@dataclass
class Project:
    id: str
    name: str
    http: httpx.AsyncClient
    database_url: str
    crm: dict[str, Any]
    accounts: dict[str, Any]
    # (group, provider) -> the id of the group's connection to the provider.
    connections: dict[tuple[str, str], str]

    def installations(self, integration: dict[str, Any] | None = None) -> str:
        return (
            f"/v1/projects/{self.name}/integrations/{(integration or self.crm)['id']}/installations"
        )

    async def create(self, group: str, content: dict[str, Any], **extra: Any) -> httpx.Response:
        body = {"groupRef": group, "config": {"content": content}, **extra}
        return await self.http.post(self.installations(), json=body)

    async def state(self) -> tuple[Any, ...]:
        connection = await asyncpg.connect(self.database_url)
        try:
            installations = await connection.fetch(
                "SELECT id, group_ref, connection_id, created_by, updated_at FROM installations "
                "WHERE project_id = $1 ORDER BY id",
                uuid.UUID(self.id),
            )
            configs = await connection.fetch(
                "SELECT c.id, c.revision_id, c.created_by, c.content::text FROM configs c "
                "JOIN installations i ON i.id = c.installation_id WHERE i.project_id = $1 "
                "ORDER BY c.id",
                uuid.UUID(self.id),
            )
        finally:
            await connection.close()
        return [tuple(r) for r in installations], [tuple(c) for c in configs]


@pytest.fixture
async def project(stack: Stack, admin: httpx.AsyncClient) -> Project:
    created = await create_project(admin, "inst", "Installations")
    await insert_webhook_destinations(stack, created["id"], "crmWebhook")
    deployed = await admin.put(
        f"/v1/projects/{created['name']}/integrations:batch", json={"sourceYaml": MANIFEST}
    )
    assert deployed.status_code == 200, deployed.text
    crm, accounts = deployed.json()
    connection = await asyncpg.connect(database_url(stack))
    try:
        await connection.execute(
            "UPDATE revisions SET content = content || $2::jsonb WHERE id = $1",
            uuid.UUID(crm["latestRevision"]["id"]),
            json.dumps(EARLIER_SECTIONS),
        )
    finally:
        await connection.close()
    connections = {
        (group, provider): (await connect_group(admin, created["name"], provider, group))["id"]
        for group, provider in (("acme", "hubspot"), ("acme", "salesforce"), ("globex", "hubspot"))
    }
    return Project(
        created["id"], created["name"], admin, database_url(stack), crm, accounts, connections
    )


async def test_installation_lifecycle(project: Project) -> None:
    created = await project.create("acme", {"read": {"objects": {"companies": COMPANIES}}})
    assert created.status_code == 201, created.text
    installation = created.json()
    assert installation["integrationId"] == project.crm["id"]
    assert installation["projectId"] == project.id
    assert installation["group"]["groupRef"] == "acme"
    assert installation["healthStatus"] == "healthy"
    assert installation["createdBy"] == "api:create-installation"
    config = installation["config"]
    assert config["revisionId"] == project.crm["latestRevision"]["id"]
    assert config["createdBy"] == "api:create-installation"
    assert config["content"]["provider"] == "hubspot"  # filled in from the integration
    assert config["content"]["read"]["objects"]["companies"]["schedule"] == "0 * * * *"
    # The group's only hubspot connection, shown as the connections API shows it.
    connection = installation["connection"]
    assert connection["id"] == project.connections["acme", "hubspot"]
    assert connection["provider"] == "hubspot" and connection["group"]["groupRef"] == "acme"
    assert connection["authScheme"] == "oauth2/authorizationCode"
    assert "oauth2AuthorizationCode" not in connection

    url = f"{project.installations()}/{installation['id']}"
    got = await project.http.get(url)
    assert got.status_code == 200 and settled(got.json()) == settled(installation)

    other = await project.create("globex", {"read": {"objects": {"companies": COMPANIES}}})
    assert other.status_code == 201, other.text
    on_accounts = await project.http.post(
        project.installations(project.accounts),
        json={"groupRef": "acme", "config": {"content": {}}},
    )
    assert on_accounts.status_code == 201, on_accounts.text
    assert on_accounts.json()["connection"]["id"] == project.connections["acme", "salesforce"]

    listed = await project.http.get(project.installations())
    assert [i["group"]["groupRef"] for i in listed.json()] == ["acme", "globex"]
    only_acme = await project.http.get(project.installations(), params={"groupRef": "acme"})
    assert [i["id"] for i in only_acme.json()] == [installation["id"]]
    per_project = await project.http.get(f"/v1/projects/{project.name}/installations")
    assert len(per_project.json()) == 3
    acme_everywhere = await project.http.get(
        f"/v1/projects/{project.id}/installations", params={"groupRef": "acme"}
    )
    assert {i["integrationId"] for i in acme_everywhere.json()} == {
        project.crm["id"],
        project.accounts["id"],
    }

    before = await project.state()
    again = await project.create("acme", {})
    assert "acme" in problem(again, 409)["detail"]
    assert await project.state() == before

    deleted = await project.http.delete(url)
    assert deleted.status_code == 204, deleted.text
    problem(await project.http.get(url), 404)
    problem(await project.http.delete(url), 404)
    left = await project.http.get(project.installations())
    assert [i["group"]["groupRef"] for i in left.json()] == ["globex"]


async def test_uninstalling_removes_the_connection_only_when_no_other_installation_uses_it(
    project: Project,
) -> None:
    # A second HubSpot integration: two installations of acme then share its connection.
    twin_manifest = MANIFEST + textwrap.indent(
        textwrap.dedent(
            """\
            - name: crm-twin
              provider: hubspot
              read:
                objects:
                  - objectName: contacts
                    destination: crmWebhook
            """
        ),
        "  ",
    )
    deployed = await project.http.put(
        f"/v1/projects/{project.name}/integrations:batch", json={"sourceYaml": twin_manifest}
    )
    assert deployed.status_code == 200, deployed.text
    twin = next(i for i in deployed.json() if i["name"] == "crm-twin")
    hubspot = project.connections[("acme", "hubspot")]
    salesforce = project.connections[("acme", "salesforce")]
    created = [
        await project.http.post(
            project.installations(integration),
            json={"groupRef": "acme", "connectionId": hubspot, "config": {"content": {}}},
        )
        for integration in (project.crm, twin)
    ]
    assert [c.status_code for c in created] == [201, 201], [c.text for c in created]
    first, second = (c.json()["id"] for c in created)
    connection = f"/v1/projects/{project.name}/connections/{hubspot}"

    deleted = await project.http.delete(f"{project.installations()}/{first}")
    assert deleted.status_code == 204, deleted.text
    still = await project.http.get(connection)
    assert still.status_code == 200, "the other installation still uses the connection"

    deleted = await project.http.delete(f"{project.installations(twin)}/{second}")
    assert deleted.status_code == 204, deleted.text
    problem(await project.http.get(connection), 404)
    # The provider was asked to revoke its tokens, as deleting the connection itself does.
    assert deleted.headers.get("x-ampmesh-revoked-at-provider") in ("true", "false")
    # The group's other connection, which no installation used, is not the uninstall's.
    other = await project.http.get(f"/v1/projects/{project.name}/connections/{salesforce}")
    assert other.status_code == 200, other.text


@pytest.mark.parametrize(
    ("body", "issue"),
    [
        ({"config": {"content": {}}}, "groupRef"),
        ({"groupRef": "acme"}, "config.content"),
        (
            {"groupRef": "acme", "connectionId": str(uuid.uuid4()), "config": {"content": {}}},
            "connectionId",
        ),
        (
            {"groupRef": "acme", "config": {"content": {"provider": "salesforce"}}},
            "config.content.provider",
        ),
        (
            {
                "groupRef": "acme",
                "config": {"content": {"read": {"objects": {"deals": {"objectName": "deals"}}}}},
            },
            "config.content.read.objects.deals",
        ),
        (
            {
                "groupRef": "acme",
                "config": {
                    "content": {"read": {"objects": {"companies": {"objectName": "contacts"}}}}
                },
            },
            "config.content.read.objects.companies.objectName",
        ),
        (
            {
                "groupRef": "acme",
                "config": {
                    "content": {
                        "read": {"objects": {"companies": {**COMPANIES, "schedule": "* * * * *"}}}
                    }
                },
            },
            "config.content.read.objects.companies.schedule",
        ),
        (
            {
                "groupRef": "acme",
                "config": {
                    "content": {
                        "read": {"objects": {"companies": {**COMPANIES, "destination": "ledger"}}}
                    }
                },
            },
            "config.content.read.objects.companies.destination",
        ),
        (
            {
                "groupRef": "acme",
                "config": {
                    "content": {
                        "read": {
                            "objects": {
                                "companies": {
                                    **COMPANIES,
                                    "backfill": {"defaultPeriod": {"days": -1}},
                                }
                            }
                        }
                    }
                },
            },
            "config.content.read.objects.companies.backfill.defaultPeriod.days",
        ),
        (
            {
                "groupRef": "acme",
                "config": {
                    "content": {"write": {"objects": {"tickets": {"objectName": "tickets"}}}}
                },
            },
            "config.content.write.objects.tickets",
        ),
        (
            {
                "groupRef": "acme",
                "config": {
                    "content": {
                        "subscribe": {
                            "objects": {
                                "companies": {
                                    "objectName": "companies",
                                    "inheritFieldsAndMappings": True,
                                }
                            }
                        }
                    }
                },
            },
            "config.content.subscribe.objects.companies.destination",
        ),
        (
            {
                "groupRef": "acme",
                "config": {
                    "content": {
                        "read": {
                            "objects": {
                                "companies": {
                                    **COMPANIES,
                                    "selectedValueMappings": {"stage": {"won": 3}},
                                }
                            }
                        }
                    }
                },
            },
            "config.content.read.objects.companies.selectedValueMappings.stage",
        ),
    ],
)
async def test_bad_creates_are_refused_and_change_nothing(
    project: Project, body: dict[str, Any], issue: str
) -> None:
    before = await project.state()
    refused = await project.http.post(project.installations(), json=body)
    assert f"body.{issue}" in issue_names(problem(refused, 400))
    assert await project.state() == before


async def test_proxy_needs_the_integration_to_allow_it(project: Project) -> None:
    before = await project.state()
    refused = await project.http.post(
        project.installations(project.accounts),
        json={"groupRef": "acme", "config": {"content": {"proxy": {"enabled": True}}}},
    )
    assert "body.config.content.proxy.enabled" in issue_names(problem(refused, 400))
    assert await project.state() == before


async def test_wrong_json_types_and_unknown_integrations(project: Project) -> None:
    before = await project.state()
    problem(await project.http.post(project.installations(), json={"groupRef": 7}), 400)
    problem(
        await project.http.post(
            project.installations(), json={"groupRef": "a", "config": {"content": []}}
        ),
        400,
    )
    missing = await project.http.post(
        f"/v1/projects/{project.name}/integrations/{uuid.uuid4()}/installations",
        json={"groupRef": "acme", "config": {"content": {}}},
    )
    problem(missing, 404)
    assert await project.state() == before


async def test_update_masks(project: Project) -> None:
    created = await project.create("acme", {"read": {"objects": {"companies": COMPANIES}}})
    url = f"{project.installations()}/{created.json()['id']}"
    first_config = created.json()["config"]

    async def patch(masks: list[str], installation: dict[str, Any]) -> httpx.Response:
        return await project.http.patch(
            url, json={"updateMask": masks, "installation": installation}
        )

    contacts = {"objectName": "contacts", "destination": "crmWebhook"}
    read = await patch(
        ["config.content.read.objects.contacts"],
        {"config": {"content": {"read": {"objects": {"contacts": contacts}}}}},
    )
    assert read.status_code == 200, read.text
    config = read.json()["config"]
    assert config["id"] != first_config["id"]
    assert config["createdBy"] == "api:update-installation"
    assert set(config["content"]["read"]["objects"]) == {"companies", "contacts"}

    by = await patch(["config.createdBy"], {"config": {"createdBy": "builder:bob"}})
    assert by.json()["config"]["createdBy"] == "builder:bob"
    assert by.json()["config"]["content"] == config["content"]

    writes = await patch(
        ["config.content.write.objects"],
        {
            "config": {
                "content": {
                    "write": {
                        "objects": {
                            "companies": {
                                "objectName": "companies",
                                "deletionSettings": {"enabled": True},
                            },
                            "deals": {"objectName": "deals"},
                        }
                    }
                }
            }
        },
    )
    assert writes.status_code == 200, writes.text
    assert set(writes.json()["config"]["content"]["write"]["objects"]) == {"companies", "deals"}
    one_write = await patch(
        ["config.content.write.objects.deals"],
        {
            "config": {
                "content": {
                    "write": {
                        "objects": {
                            "deals": {
                                "objectName": "deals",
                                "selectedFieldSettings": {
                                    "amount": {
                                        "default": {"integerValue": 5},
                                        "writeOnUpdate": "ifEmpty",
                                    }
                                },
                            }
                        }
                    }
                }
            }
        },
    )
    assert one_write.status_code == 200, one_write.text
    objects = one_write.json()["config"]["content"]["write"]["objects"]
    assert objects["deals"]["selectedFieldSettings"]["amount"]["writeOnUpdate"] == "ifEmpty"
    assert objects["companies"]["deletionSettings"] == {"enabled": True}

    subscribe = await patch(
        ["config.content.subscribe.objects.companies"],
        {
            "config": {
                "content": {
                    "subscribe": {
                        "objects": {
                            "companies": {
                                "objectName": "companies",
                                "destination": "crmWebhook",
                                "inheritFieldsAndMappings": True,
                                "createEvent": {"enabled": "always"},
                            }
                        }
                    }
                }
            }
        },
    )
    assert subscribe.status_code == 200, subscribe.text
    second = await connect_group(project.http, project.name, "hubspot", "acme", "user-2")
    proxy = await patch(
        ["config.content.proxy.enabled", "connectionId"],
        {"connectionId": second["id"], "config": {"content": {"proxy": {"enabled": True}}}},
    )
    assert proxy.status_code == 200, proxy.text
    final = proxy.json()
    assert final["connection"]["id"] == second["id"]
    assert final["config"]["content"]["proxy"] == {"enabled": True}
    assert final["config"]["content"]["subscribe"]["objects"]["companies"]["createEvent"] == {
        "enabled": "always"
    }

    # Every change was saved as a new config row.
    _, configs = await project.state()
    assert len(configs) == 7

    before = await project.state()
    refusals: list[tuple[list[str], dict[str, Any], str]] = [
        ([], {}, "updateMask"),
        (["groupRef"], {}, "updateMask"),
        (["config.content.read.objects"], {}, "updateMask"),
        (
            ["config.content.read.objects.contacts"],
            {"config": {}},
            "installation.config.content.read.objects.contacts",
        ),
        (
            ["config.content.read.objects.deals"],
            {"config": {"content": {"read": {"objects": {"deals": {"objectName": "deals"}}}}}},
            "installation.config.content.read.objects.deals",
        ),
        (["connectionId"], {"connectionId": str(uuid.uuid4())}, "installation.connectionId"),
        (["connectionId"], {"connectionId": ""}, "installation.connectionId"),
        (
            ["connectionId"],
            {"connectionId": project.connections["globex", "hubspot"]},
            "installation.connectionId",
        ),
        (
            ["connectionId"],
            {"connectionId": project.connections["acme", "salesforce"]},
            "installation.connectionId",
        ),
        (
            ["config.content.proxy.enabled"],
            {"config": {}},
            "installation.config.content.proxy.enabled",
        ),
        (
            ["config.content.read.objects.contacts"],
            {
                "config": {
                    "content": {
                        "read": {"objects": {"contacts": {**contacts, "schedule": "*/2 * * * *"}}}
                    }
                }
            },
            "installation.config.content.read.objects.contacts.schedule",
        ),
    ]
    for masks, installation, issue in refusals:
        refused = await patch(masks, installation)
        assert f"body.{issue}" in issue_names(problem(refused, 400)), (masks, refused.text)
    assert await project.state() == before


async def test_the_connection_must_be_the_groups_to_the_integrations_provider(
    project: Project,
) -> None:
    content = {"read": {"objects": {"companies": COMPANIES}}}
    before = await project.state()
    refusals: list[tuple[str, str | None, str]] = [
        ("acme", project.connections["globex", "hubspot"], "names no connection of group"),
        ("acme", project.connections["acme", "salesforce"], "needs a hubspot connection"),
        ("acme", "not-an-id", "names no connection of group"),
        ("initech", None, "has no hubspot connection"),
    ]
    for group, connection_id, why in refusals:
        extra = {"connectionId": connection_id} if connection_id else {}
        refused = problem(await project.create(group, content, **extra), 400)
        assert issue_names(refused) == {"body.connectionId"}, refused
        assert why in refused["detail"], refused
    assert await project.state() == before

    # Two hubspot connections: the installation must say which.
    second = await connect_group(project.http, project.name, "hubspot", "acme", "user-2")
    ambiguous = problem(await project.create("acme", content), 400)
    assert "name one" in ambiguous["detail"]
    named = await project.create("acme", content, connectionId=second["id"])
    assert named.status_code == 201, named.text
    assert named.json()["connection"]["id"] == second["id"]
    stored = await project.state()
    assert [row[2] for row in stored[0]] == [uuid.UUID(second["id"])]


async def test_configs_follow_the_latest_revision(project: Project) -> None:
    created = await project.create("acme", {"read": {"objects": {"companies": COMPANIES}}})
    url = f"{project.installations()}/{created.json()['id']}"
    redeployed = await project.http.put(
        f"/v1/projects/{project.name}/integrations:batch",
        json={"sourceYaml": MANIFEST.replace('"*/30 * * * *"', '"*/20 * * * *"')},
    )
    assert redeployed.status_code == 200, redeployed.text
    latest = redeployed.json()[0]["latestRevision"]["id"]
    assert latest != created.json()["config"]["revisionId"]
    patched = await project.http.patch(
        url,
        json={"updateMask": ["config.createdBy"], "installation": {"config": {"createdBy": "x"}}},
    )
    assert patched.json()["config"]["revisionId"] == latest


async def test_json_patch_of_one_objects_config(project: Project) -> None:
    created = await project.create("acme", {"read": {"objects": {"companies": COMPANIES}}})
    installation_id = created.json()["id"]
    integration = f"/v1/projects/{project.name}/integrations/{project.crm['id']}"
    url = f"{integration}/objects/companies/config-content"

    patched = await project.http.patch(
        url,
        json={
            "groupRef": "acme",
            "action": "read",
            "changes": [
                {"op": "add", "path": "/selectedFields", "value": {}},
                {"op": "add", "path": "/selectedFields/phone", "value": True},
                {"op": "replace", "path": "/schedule", "value": "*/15 * * * *"},
            ],
        },
    )
    assert patched.status_code == 200, patched.text
    companies = patched.json()["config"]["content"]["read"]["objects"]["companies"]
    assert companies["selectedFields"] == {"phone": True}
    assert companies["schedule"] == "*/15 * * * *"

    removed = await project.http.patch(
        url,
        json={
            "installationId": installation_id,
            "action": "read",
            "changes": [{"op": "remove", "path": "/selectedFields/phone"}],
        },
    )
    assert removed.status_code == 200, removed.text
    assert (
        removed.json()["config"]["content"]["read"]["objects"]["companies"].get(
            "selectedFields", {}
        )
        == {}
    )

    before = await project.state()
    for body in [
        {"groupRef": "acme", "action": "read", "changes": [{"op": "remove", "path": "/nope"}]},
        {"groupRef": "acme", "action": "read", "changes": [{"op": "move", "path": "/a"}]},
        {"groupRef": "acme", "action": "delete", "changes": [{"op": "add", "path": "/a"}]},
        {"action": "read", "changes": [{"op": "add", "path": "/schedule", "value": "0 * * * *"}]},
        {
            "groupRef": "acme",
            "action": "read",
            "changes": [{"op": "replace", "path": "/schedule", "value": "* * * * *"}],
        },
        {
            "groupRef": "acme",
            "action": "read",
            "changes": [{"op": "add", "path": "/noSuchField", "value": 1}],
        },
    ]:
        problem(await project.http.patch(url, json=body), 400)
    problem(
        await project.http.patch(
            url,
            json={
                "groupRef": "nobody",
                "action": "read",
                "changes": [{"op": "add", "path": "/schedule", "value": "0 * * * *"}],
            },
        ),
        404,
    )
    assert await project.state() == before


async def test_customer_jwts_reach_only_their_own_group(project: Project, stack: Stack) -> None:
    private_key = new_rsa_key()
    kid = await register_jwt_key(
        project.http, project.id, spki_pem(private_key.public_key()), label="ui"
    )
    token = sign_jwt(private_key, customer_claims(groupRef="acme", consumerRef="alice"), kid)
    globex = await project.create("globex", {"read": {"objects": {"companies": COMPANIES}}})
    assert globex.status_code == 201
    async with client(stack, headers=bearer(token)) as customer:
        mine = await customer.post(
            project.installations(),
            json={"groupRef": "acme", "config": {"content": {}}},
        )
        assert mine.status_code == 201, mine.text
        assert mine.json()["config"]["createdBy"] == "consumer:alice"
        before = await project.state()
        theirs = await customer.post(
            project.installations(),
            json={"groupRef": "initech", "config": {"content": {}}},
        )
        problem(theirs, 404)
        listed = await customer.get(project.installations())
        assert [i["group"]["groupRef"] for i in listed.json()] == ["acme"]
        everywhere = await customer.get(f"/v1/projects/{project.id}/installations")
        assert [i["group"]["groupRef"] for i in everywhere.json()] == ["acme"]
        problem(await customer.get(project.installations(), params={"groupRef": "globex"}), 404)
        globex_url = f"{project.installations()}/{globex.json()['id']}"
        problem(await customer.get(globex_url), 404)
        problem(await customer.delete(globex_url), 404)
        problem(
            await customer.put(
                f"/v1/projects/{project.id}/integrations:batch", json={"sourceYaml": MANIFEST}
            ),
            403,
        )
        assert await project.state() == before
