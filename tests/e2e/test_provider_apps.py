"""Provider apps through the edge: lifecycle, the client secret write-only (never in a
response, sealed in the database), providers checked against the catalog, and every
refusal as problem+json that changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from ampmesh.platform.v1 import provider_apps_pb2, provider_apps_pb2_grpc

from tests.support.control_plane import (
    admin_client,
    create_project,
    database_dump,
    issue_names,
    listed,
    problem,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def project(admin: httpx.AsyncClient) -> str:
    name: str = (await create_project(admin, "apps", "Provider apps"))["name"]
    return name


@pytest.fixture
async def api(stack: Stack, project: str) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(stack, f"/v1/projects/{project}") as http:
        yield http


def secret() -> str:
    return f"client-secret-{uuid.uuid4().hex}"


async def test_lifecycle_with_a_write_only_client_secret(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    first_secret = secret()
    created = await api.post(
        "/provider-apps",
        json={
            "provider": "hubspot",
            "clientId": "client-id-123",
            "clientSecret": first_secret,
            "scopes": ["crm.objects.contacts.read", "oauth"],
            "externalRef": "external-id-123",
            "metadata": {
                "authQueryParams": {"optional_scope": ["automation.sequences.read"]},
                "providerParams": {"packageInstallURL": "https://example.com/install"},
            },
        },
    )
    assert created.status_code == 200, created.text  # the reference answers 200 here
    app = created.json()
    assert app["provider"] == "hubspot" and app["clientId"] == "client-id-123"
    assert app["scopes"] == ["crm.objects.contacts.read", "oauth"]
    assert app["externalRef"] == "external-id-123"
    assert app["metadata"]["authQueryParams"] == {"optional_scope": ["automation.sequences.read"]}
    assert app["metadata"]["providerParams"] == {"packageInstallURL": "https://example.com/install"}
    assert app["id"] and app["projectId"] and app["createTime"]
    assert "clientSecret" not in app
    assert app in await listed(api, "/provider-apps")

    second_secret = secret()
    updated = await api.patch(
        f"/provider-apps/{app['id']}",
        json={
            "updateMask": ["clientId", "clientSecret", "scopes"],
            "providerApp": {
                "clientId": "client-id-456",
                "clientSecret": second_secret,
                "scopes": ["oauth"],
                "externalRef": "not-in-the-mask",
            },
        },
    )
    assert updated.status_code == 200, updated.text
    changed = updated.json()
    assert changed["clientId"] == "client-id-456" and changed["scopes"] == ["oauth"]
    assert changed["externalRef"] == "external-id-123"
    assert changed["metadata"] == app["metadata"]
    assert changed["updateTime"] and "clientSecret" not in changed

    everything = (await api.get("/provider-apps")).text
    dump = await database_dump(stack)
    assert "client-id-456" in dump  # the dump does hold the row
    for plaintext in (first_secret, second_secret):
        assert plaintext not in everything
        assert plaintext not in dump

    deleted = await api.delete(f"/provider-apps/{app['id']}")
    assert deleted.status_code == 204, deleted.text
    assert app["id"] not in {a["id"] for a in await listed(api, "/provider-apps")}
    problem(await api.delete(f"/provider-apps/{app['id']}"), 404)
    problem(
        await api.patch(
            f"/provider-apps/{app['id']}",
            json={"updateMask": ["clientId"], "providerApp": {"clientId": "x"}},
        ),
        404,
    )


async def test_providers_must_be_oauth2_providers_of_the_catalog(api: httpx.AsyncClient) -> None:
    before = await listed(api, "/provider-apps")
    typo = problem(
        await api.post(
            "/provider-apps",
            json={"provider": "salesforse", "clientId": "id", "clientSecret": secret()},
        ),
        400,
    )
    assert issue_names(typo) == {"body.provider"}
    assert "did you mean 'salesforce'" in typo["detail"]
    api_key_only = problem(
        await api.post(
            "/provider-apps",
            json={"provider": "anthropic", "clientId": "id", "clientSecret": secret()},
        ),
        400,
    )
    assert issue_names(api_key_only) == {"body.provider"}
    assert "OAuth2" in api_key_only["detail"]
    assert await listed(api, "/provider-apps") == before


async def test_refusals_name_the_field_and_change_nothing(api: httpx.AsyncClient) -> None:
    app = (
        await api.post(
            "/provider-apps",
            json={"provider": "salesforce", "clientId": "keep-me", "clientSecret": secret()},
        )
    ).json()
    before = await listed(api, "/provider-apps")
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"provider": "salesforce", "clientId": "id"}, {"body.clientSecret"}),
        ({"provider": "salesforce", "clientSecret": "s"}, {"body.clientId"}),
        ({"clientId": "id", "clientSecret": "s"}, {"body.provider"}),
        (
            {"provider": "salesforce", "clientId": "id", "clientSecret": "s", "scopes": ["a", ""]},
            {"body.scopes[1]"},
        ),
        (
            {
                "provider": "hubspot",
                "clientId": "id",
                "clientSecret": "s",
                "metadata": {"authQueryParams": {"optional_scope": [1, 2]}},
            },
            {"body.metadata.authQueryParams.optional_scope"},
        ),
    ]
    for body, names in cases:
        refused = problem(await api.post("/provider-apps", json=body), 400)
        assert issue_names(refused) == names, (body, refused)

    for update, names in [
        (
            {"updateMask": ["provider"], "providerApp": {"provider": "nope"}},
            {"body.providerApp.provider"},
        ),
        ({"updateMask": ["clientSecret"], "providerApp": {}}, {"body.providerApp.clientSecret"}),
        ({"updateMask": ["projectId"], "providerApp": {}}, {"body.updateMask"}),
        ({"updateMask": [], "providerApp": {"clientId": "x"}}, {"body.updateMask"}),
    ]:
        refused = problem(await api.patch(f"/provider-apps/{app['id']}", json=update), 400)
        assert issue_names(refused) == names, (update, refused)
    problem(await api.delete("/provider-apps/not-an-id"), 404)
    assert await listed(api, "/provider-apps") == before


async def test_another_projects_apps_cannot_be_reached(
    admin: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    mine = (
        await api.post(
            "/provider-apps",
            json={"provider": "salesforce", "clientId": "mine", "clientSecret": secret()},
        )
    ).json()
    other = (await create_project(admin, "other", "Other"))["name"]
    elsewhere = f"/v1/projects/{other}/provider-apps/{mine['id']}"
    problem(
        await admin.patch(
            elsewhere, json={"updateMask": ["clientId"], "providerApp": {"clientId": "x"}}
        ),
        404,
    )
    problem(await admin.delete(elsewhere), 404)
    assert (await admin.get(f"/v1/projects/{other}/provider-apps")).json() == []
    assert mine in await listed(api, "/provider-apps")


async def test_grpc_clients_reach_the_same_apps(stack: Stack, project: str) -> None:
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        stub = provider_apps_pb2_grpc.ProviderAppServiceStub(channel)
        metadata = (("x-api-key", stack.admin_api_key),)
        created = await stub.CreateProviderApp(
            provider_apps_pb2.CreateProviderAppRequest(
                project_id_or_name=project,
                provider_app=provider_apps_pb2.ProviderApp(
                    provider="salesforce", client_id="over-grpc", client_secret=secret()
                ),
            ),
            metadata=metadata,
            timeout=10,
        )
        apps = await stub.ListProviderApps(
            provider_apps_pb2.ListProviderAppsRequest(project_id_or_name=project),
            metadata=metadata,
            timeout=10,
        )
    assert not created.HasField("client_secret")
    assert created in apps.provider_apps
