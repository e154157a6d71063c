"""Integrations and revisions through the edge: a builder deploys amp.yaml (`PUT
.../integrations:batch`), lists and gets what it made, redeploys, and removes objects
destructively. Every bad manifest is refused with problem+json naming the integration, the
field path and the line, and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from ampmesh.platform.v1 import integrations_pb2, integrations_pb2_grpc

from services.runtime.errors import status_from_error, unpack_details
from tests.support.control_plane import (
    as_key,
    client,
    connect_group,
    create_api_key,
    line_of,
    problem,
)
from tests.support.integrations import MANIFEST, Project, new_project
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
async def project(stack: Stack, admin: httpx.AsyncClient) -> Project:
    return await new_project(stack, admin)


async def test_deploy_two_integrations_then_list_and_get_by_id_and_name(project: Project) -> None:
    deployed = await project.deploy(MANIFEST)
    assert deployed.status_code == 200, deployed.text
    integrations = deployed.json()
    assert [i["name"] for i in integrations] == ["crm-sync", "accounts"]
    crm = integrations[0]
    assert crm["provider"] == "hubspot" and crm["projectId"] == project.id
    revision = crm["latestRevision"]
    assert revision["specVersion"] == "1.0.0" and revision["id"]
    content = revision["content"]
    assert content["module"] == "crm" and content["proxy"] == {"enabled": True}
    companies = content["read"]["objects"][0]
    assert companies["objectName"] == "companies"
    assert companies["backfill"] == {"defaultPeriod": {"days": 90}}
    assert companies["requiredFields"][0]["mapToName"] == "company_name"
    assert integrations[1]["latestRevision"]["content"]["read"]["objects"][0]["backfill"] == {
        "defaultPeriod": {"fullHistory": True}
    }

    listed = await project.http.get(project.base)
    assert listed.status_code == 200
    assert listed.json() == integrations
    by_id = await project.http.get(f"{project.base}/{crm['id']}")
    by_name = await project.http.get(f"{project.base}/crm-sync")
    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json() == by_name.json() == crm
    missing = await project.http.get(f"{project.base}/no-such-integration")
    assert "no-such-integration" in problem(missing, 404)["detail"]


async def test_redeploy_makes_revisions_only_of_what_changed(project: Project) -> None:
    first = (await project.deploy(MANIFEST)).json()
    again = await project.deploy(MANIFEST)
    assert again.status_code == 200
    assert again.json() == first  # unchanged: no new revision

    changed = MANIFEST.replace('"*/30 * * * *"', '"*/15 * * * *"')
    second = await project.deploy(changed)
    assert second.status_code == 200, second.text
    crm, accounts = second.json()
    assert crm["id"] == first[0]["id"]
    assert crm["latestRevision"]["id"] != first[0]["latestRevision"]["id"]
    assert crm["latestRevision"]["content"]["read"]["objects"][0]["schedule"] == "*/15 * * * *"
    assert accounts["latestRevision"] == first[1]["latestRevision"]

    # One integration's revision from a manifest: 201 with the revision.
    third = MANIFEST.replace("displayName: CRM sync", "displayName: CRM sync v3")
    created = await project.http.post(
        f"{project.base}/{crm['id']}/revisions", json={"sourceYaml": third}
    )
    assert created.status_code == 201, created.text
    assert created.json()["content"]["displayName"] == "CRM sync v3"
    got = await project.http.get(f"{project.base}/crm-sync")
    assert got.json()["latestRevision"]["id"] == created.json()["id"]
    _, revisions, _ = await project.state()
    assert len(revisions) == 4  # two first revisions, the schedule change, the display name


async def test_revision_source_must_declare_the_integration(project: Project) -> None:
    crm = (await project.deploy(MANIFEST)).json()[0]
    before = await project.state()
    other = MANIFEST.replace("name: crm-sync", "name: crm-other")
    refused = await project.http.post(
        f"{project.base}/{crm['id']}/revisions", json={"sourceYaml": other}
    )
    body = problem(refused, 400)
    assert body["issues"][0]["name"] == "sourceYaml"
    assert "no integration named 'crm-sync'" in body["issues"][0]["detail"]
    assert await project.state() == before


@pytest.mark.parametrize(
    ("name", "change", "issue_name", "needle", "detail"),
    [
        (
            "malformed YAML",
            lambda m: m.replace("  - name: accounts", "  - name: [accounts"),
            "sourceYaml",
            None,
            "invalid YAML",
        ),
        (
            "unknown provider",
            lambda m: m.replace("provider: salesforce", "provider: salesfroce"),
            "integrations[1].provider",
            "salesfroce",
            "unknown provider 'salesfroce'; did you mean 'salesforce'?",
        ),
        (
            "unknown destination",
            lambda m: m.replace("destination: accountWebhook", "destination: ledger"),
            "integrations[1].read.objects[0].destination",
            "ledger",
            "the project has no destination named 'ledger'",
        ),
        (
            "bad cron",
            lambda m: m.replace('"0 * * * *"', '"0 25 * * *"'),
            "integrations[0].read.objects[1].schedule",
            "0 25 * * *",
            "not a valid cron expression",
        ),
        (
            "too frequent cron",
            lambda m: m.replace('"*/30 * * * *"', '"*/7 * * * *"'),
            "integrations[0].read.objects[0].schedule",
            "*/7 * * * *",
            "fires 4 minute(s) apart",
        ),
        (
            "bad backfill",
            lambda m: m.replace("days: 90", "days: -3"),
            "integrations[0].read.objects[0].backfill.defaultPeriod.days",
            "days: -3",
            "must be 0 or more",
        ),
        (
            "wrong type in the YAML",
            lambda m: m.replace("enabled: true", "enabled: sometimes"),
            "integrations[0].proxy.enabled",
            "enabled: sometimes",
            "expected true or false, found a string",
        ),
        (
            "duplicate integration names",
            lambda m: m.replace("name: accounts", "name: crm-sync"),
            "integrations[1].name",
            ("name: crm-sync", 2),
            "declared twice",
        ),
        (
            "duplicate object names",
            lambda m: m.replace("objectName: contacts", "objectName: companies"),
            "integrations[0].read.objects[1].objectName",
            ("objectName: companies", 2),
            "listed twice in read",
        ),
        (
            "unknown module",
            lambda m: m.replace("module: crm", "module: marketing"),
            "integrations[0].module",
            "module: marketing",
            "provider 'hubspot' has no module 'marketing'",
        ),
    ],
)
async def test_bad_manifests_are_refused_and_change_nothing(
    project: Project,
    name: str,
    change: Any,
    issue_name: str,
    needle: str | tuple[str, int] | None,
    detail: str,
) -> None:
    assert (await project.deploy(MANIFEST)).status_code == 200
    before = await project.state()
    bad = change(MANIFEST)
    assert bad != MANIFEST, name
    refused = await project.deploy(bad)
    body = problem(refused, 400)
    issues = {i["name"]: i for i in body["issues"]}
    assert issue_name in issues, body
    issue = issues[issue_name]
    assert issue["in"] == "body"
    assert detail in issue["detail"], issue
    if needle is not None:
        text, nth = needle if isinstance(needle, tuple) else (needle, 1)
        assert f"line {line_of(bad, text, nth)}" in issue["detail"], issue
    if issue_name.startswith("integrations["):
        assert "integration '" in issue["detail"]
    assert await project.state() == before


async def test_wrong_json_types_and_zip_sources_are_refused(project: Project) -> None:
    before = await project.state()
    wrong = await project.http.put(f"{project.base}:batch", json={"sourceYaml": 5})
    problem(wrong, 400)
    zipped = await project.http.put(
        f"{project.base}:batch", json={"sourceZipUrl": "gs://bucket/manifest.zip"}
    )
    body = problem(zipped, 400)
    assert body["issues"] == [
        {"in": "body", "name": "sourceZipUrl", "detail": "not supported; send sourceYaml"}
    ]
    empty = await project.http.put(f"{project.base}:batch", json={})
    assert problem(empty, 400)["issues"][0]["name"] == "sourceYaml"
    assert await project.state() == before


async def test_all_or_nothing_across_integrations(project: Project) -> None:
    before = await project.state()
    # The first integration is fine; the second is not: neither is created.
    refused = await project.deploy(MANIFEST.replace("provider: salesforce", "provider: nope"))
    problem(refused, 400)
    assert await project.state() == before
    assert (await project.http.get(f"{project.base}/crm-sync")).status_code == 404


async def _install(project: Project, integration: str, group: str, objects: list[str]) -> str:
    # An installation uses a connection of its group to the integration's provider.
    provider = (await project.http.get(f"{project.base}/{integration}")).json()["provider"]
    await connect_group(project.http, project.name, provider, group)
    created = await project.http.post(
        f"{project.base}/{integration}/installations",
        json={
            "groupRef": group,
            "config": {
                "content": {
                    "read": {
                        "objects": {
                            o: {"objectName": o, "destination": "crmWebhook"} for o in objects
                        }
                    }
                }
            },
        },
    )
    assert created.status_code == 201, created.text
    installation_id: str = created.json()["id"]
    return installation_id


async def test_removing_a_read_object_needs_destructive_and_then_pauses_its_reads(
    project: Project,
) -> None:
    crm = (await project.deploy(MANIFEST)).json()[0]
    reader = await _install(project, crm["id"], "acme", ["companies", "contacts"])
    other = await _install(project, crm["id"], "globex", ["companies"])
    contacts = (
        "        - objectName: contacts\n"
        "          destination: crmWebhook\n"
        '          schedule: "0 * * * *"\n'
    )
    without_contacts = MANIFEST.replace(contacts, "")
    assert without_contacts != MANIFEST
    before = await project.state()
    refused = await project.deploy(without_contacts)
    body = problem(refused, 400)
    (issue,) = body["issues"]
    assert issue["name"] == "integrations[0].read.objects"
    assert "'contacts' is no longer declared" in issue["detail"]
    assert "groups acme" in issue["detail"] and "destructive=true" in issue["detail"]
    assert await project.state() == before

    deployed = await project.deploy(without_contacts, destructive="true")
    assert deployed.status_code == 200, deployed.text
    revision_id = deployed.json()[0]["latestRevision"]["id"]
    assert revision_id != crm["latestRevision"]["id"]
    paused = await project.http.get(f"{project.base}/{crm['id']}/installations/{reader}")
    config = paused.json()["config"]
    assert config["revisionId"] == revision_id
    assert config["createdBy"] == "api:deploy"
    assert config["content"]["read"]["objects"]["contacts"]["disabled"] is True
    assert config["content"]["read"]["objects"]["companies"].get("disabled") is not True
    # An installation that did not read the object keeps its config.
    untouched = await project.http.get(f"{project.base}/{crm['id']}/installations/{other}")
    assert untouched.json()["config"]["revisionId"] == crm["latestRevision"]["id"]
    assert "contacts" not in untouched.json()["config"]["content"]["read"]["objects"]


async def test_create_integration_and_conflicts(project: Project) -> None:
    body = {
        "name": "direct",
        "provider": "hubspot",
        "latestRevision": {
            "specVersion": "1.0.0",
            "content": {
                "read": {"objects": [{"objectName": "deals", "destination": "crmWebhook"}]}
            },
        },
    }
    created = await project.http.post(project.base, json=body)
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["name"] == "direct" and made["latestRevision"]["content"]["name"] == "direct"
    assert made["latestRevision"]["content"]["provider"] == "hubspot"
    before = await project.state()
    again = await project.http.post(project.base, json=body)
    assert "direct" in problem(again, 409)["detail"]
    bad = {**body, "name": "direct-2"}
    bad["latestRevision"] = {
        "specVersion": "1.0.0",
        "content": {"read": {"objects": [{"objectName": "deals", "destination": "nowhere"}]}},
    }
    refused = await project.http.post(project.base, json=bad)
    issue = problem(refused, 400)["issues"][0]
    assert issue["name"] == "latestRevision.content.read.objects[0].destination"
    badly_named = await project.http.post(
        project.base, json={**body, "name": "Direct Two", "provider": "hubspt"}
    )
    assert {i["name"] for i in problem(badly_named, 400)["issues"]} == {"name", "provider"}
    assert await project.state() == before


async def test_delete_integration_removes_its_installations(project: Project) -> None:
    crm = (await project.deploy(MANIFEST)).json()[0]
    await _install(project, crm["id"], "acme", ["companies"])
    deleted = await project.http.delete(f"{project.base}/crm-sync")
    assert deleted.status_code == 204, deleted.text
    problem(await project.http.get(f"{project.base}/{crm['id']}"), 404)
    connection = await asyncpg.connect(project.database_url)
    try:
        left = await connection.fetchval(
            "SELECT count(*) FROM installations WHERE integration_id = $1", uuid.UUID(crm["id"])
        )
    finally:
        await connection.close()
    assert left == 0
    problem(await project.http.delete(f"{project.base}/crm-sync"), 404)


async def test_frontend_keys_may_read_but_not_deploy(project: Project, stack: Stack) -> None:
    await project.deploy(MANIFEST)
    key = await create_api_key(project.http, project.id, ["frontend"], label="ui")
    async with client(stack, headers=as_key(key)) as frontend:
        before = await project.state()
        refused = await frontend.put(f"{project.base}:batch", json={"sourceYaml": MANIFEST})
        problem(refused, 403)
        problem(await frontend.delete(f"{project.base}/crm-sync"), 403)
        assert await project.state() == before
        listed = await frontend.get(project.base)
        assert listed.status_code == 200 and len(listed.json()) == 2


async def test_other_projects_cannot_see_the_integrations(
    project: Project, stack: Stack, admin: httpx.AsyncClient
) -> None:
    await project.deploy(MANIFEST)
    other = await new_project(stack, admin)
    key = await create_api_key(admin, other.id, ["full"], label="other")
    async with client(stack, headers=as_key(key)) as intruder:
        problem(await intruder.get(project.base), 404)
        problem(await intruder.get(f"{project.base}/crm-sync"), 404)
        problem(await intruder.put(f"{project.base}:batch", json={"sourceYaml": MANIFEST}), 404)


async def test_grpc_callers_get_the_issues_as_field_violations(
    project: Project, stack: Stack
) -> None:
    bad = MANIFEST.replace('"*/30 * * * *"', '"*/5 * * * *"')
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        stub = integrations_pb2_grpc.IntegrationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.BatchUpsertIntegrations(
                integrations_pb2.BatchUpsertIntegrationsRequest(
                    project_id_or_name=project.id,
                    source=integrations_pb2.IntegrationSource(source_yaml=bad),
                ),
                metadata=(("x-api-key", project.http.headers["x-api-key"]),),
                timeout=20,
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = status_from_error(refused.value)
        assert status is not None
        (violations,) = [d for d in unpack_details(status) if hasattr(d, "field_violations")]
        (violation,) = violations.field_violations
        assert violation.field == "body.integrations[0].read.objects[0].schedule"
        assert f"line {line_of(bad, '*/5 * * * *')}" in violation.description

        hydrate = integrations_pb2.GetHydratedRevisionRequest(
            project_id_or_name=project.id, integration_id="x", revision_id="y", connection_id="z"
        )
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetHydratedRevision(
                hydrate, metadata=(("x-api-key", project.http.headers["x-api-key"]),), timeout=20
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert "integration 'x' not found" in (missing.value.details() or "")
