"""Connections through the edge, backed by the token-manager: generate from credentials
the caller holds, list and get without any secret (the credential only with
includeCreds), nothing in plaintext in the database, delete removing the credentials too,
and every refusal as problem+json that creates nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.control_plane import (
    admin_client,
    as_key,
    client,
    create_api_key,
    create_project,
    database_dump,
    eventually,
    issue_names,
    listed,
    problem,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

API_KEY_PROVIDER = "openAI"  # the catalog's auth type for it: apiKey


@pytest.fixture(scope="module")
async def project(admin: httpx.AsyncClient) -> dict[str, Any]:
    return await create_project(admin, "connections", "Connections")


@pytest.fixture
async def api(stack: Stack, project: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(stack, f"/v1/projects/{project['name']}") as http:
        yield http


def secret_key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


def api_key_connection(key: str, group: str = "acme", **extra: Any) -> dict[str, Any]:
    return {
        "provider": API_KEY_PROVIDER,
        "groupRef": group,
        "groupName": "Acme Inc",
        "consumerRef": "user-1",
        "apiKey": key,
        **extra,
    }


async def generate(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    created = await api.post("/connections:generate", json=body)
    assert created.status_code == 201, created.text
    connection: dict[str, Any] = created.json()
    return connection


async def test_an_api_key_connection_keeps_its_key_in_the_token_manager_only(
    stack: Stack, api: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    key = secret_key()
    created = await generate(
        api,
        api_key_connection(
            key,
            providerMetadata={"region": {"value": "eu", "source": "input"}},
        ),
    )
    assert key not in str(created)
    assert created["provider"] == API_KEY_PROVIDER
    assert created["projectId"] == project["id"]
    assert created["authScheme"] == "apiKey"
    assert created["status"] == "created"
    assert created["group"]["groupRef"] == "acme"
    assert created["group"]["groupName"] == "Acme Inc"
    assert created["consumer"] == {
        "consumerRef": "user-1",
        "consumerName": "user-1",
        "projectId": project["id"],
        "createTime": created["createTime"],
    }
    assert created["providerMetadata"] == {"region": {"value": "eu", "source": "input"}}
    connection_id = created["id"]

    everything = await listed(api, "/connections")
    assert [c["id"] for c in everything] == [connection_id]
    assert key not in str(everything)
    plain = await api.get(f"/connections/{connection_id}")
    assert plain.status_code == 200, plain.text
    # Scribe may have stamped updateTime meanwhile, as it applies the creation event.
    assert {k: v for k, v in plain.json().items() if k != "updateTime"} == created

    with_creds = await api.get(f"/connections/{connection_id}", params={"includeCreds": "true"})
    assert with_creds.status_code == 200, with_creds.text
    assert with_creds.json()["apiKey"] == key
    # An API key never needs refreshing: asking for one answers with the stored key.
    forced = await api.get(
        f"/connections/{connection_id}", params={"includeCreds": "true", "refresh": "force"}
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["apiKey"] == key

    assert key not in await database_dump(stack)

    deleted = await api.delete(f"/connections/{connection_id}")
    assert deleted.status_code == 204, deleted.text
    problem(await api.get(f"/connections/{connection_id}"), 404)
    problem(await api.get(f"/connections/{connection_id}", params={"includeCreds": "true"}), 404)
    problem(await api.delete(f"/connections/{connection_id}"), 404)

    # The connection and its credentials are gone; only its history (scribe's
    # connection_events, which never hold a secret) still names it, once the
    # token-manager's shards have paid the Redis debt the delete left (a
    # token_cache_debts row, deleted just after the tombstone reaches Redis).
    async def only_history_names_it() -> bool:
        dump = await database_dump(stack)
        assert key not in dump
        kept = [line for line in dump.splitlines() if connection_id in line]
        return bool(kept) and all("ampmesh.events.v1.Connection" in line for line in kept)

    await eventually(only_history_names_it, "leave only scribe's history naming the connection")
    assert await listed(api, "/connections") == []


async def test_lists_filter_by_provider_group_and_consumer(api: httpx.AsyncClient) -> None:
    first = await generate(api, api_key_connection(secret_key(), group="g-one"))
    second = await generate(
        api, {**api_key_connection(secret_key(), group="g-two"), "consumerRef": "user-2"}
    )
    try:
        ids = {c["id"] for c in await listed(api, "/connections")}
        assert {first["id"], second["id"]} <= ids
        by_group = await listed(api, "/connections", groupRef="g-two")
        assert [c["id"] for c in by_group] == [second["id"]]
        by_consumer = await listed(api, "/connections", consumerRef="user-1", groupRef="g-one")
        assert [c["id"] for c in by_consumer] == [first["id"]]
        assert await listed(api, "/connections", provider="hubspot") == []
    finally:
        for made in (first, second):
            assert (await api.delete(f"/connections/{made['id']}")).status_code == 204


async def test_an_oauth_import_returns_tokens_only_when_asked(api: httpx.AsyncClient) -> None:
    access, refresh = f"at-{uuid.uuid4().hex}", f"rt-{uuid.uuid4().hex}"
    created = await generate(
        api,
        {
            "provider": "salesforce",
            "groupRef": "acme",
            "consumerRef": "user-1",
            "providerWorkspaceRef": "acme-dev",
            "oauth2AuthorizationCode": {
                "accessToken": {"token": access, "expiresAt": "2099-01-01T00:00:00Z"},
                "refreshToken": {"token": refresh},
                "scopes": ["api", "refresh_token"],
            },
        },
    )
    try:
        assert created["authScheme"] == "oauth2/authorizationCodePKCE"
        assert created["providerWorkspaceRef"] == "acme-dev"
        assert "oauth2AuthorizationCode" not in created
        path = f"/connections/{created['id']}"
        tokens = (await api.get(path, params={"includeCreds": "true"})).json()
        assert tokens["oauth2AuthorizationCode"]["accessToken"]["token"] == access
        assert tokens["oauth2AuthorizationCode"]["scopes"] == ["api", "refresh_token"]
        assert "refreshToken" not in tokens["oauth2AuthorizationCode"]
        both = (await api.get(path, params={"includeRefreshToken": "true"})).json()
        assert both["oauth2AuthorizationCode"]["refreshToken"]["token"] == refresh
        # Imported tokens the provider never issued: a forced refresh is refused, as a
        # problem that shows no token.
        refused = await api.get(path, params={"refresh": "force"})
        problem(refused, 400)
        assert access not in refused.text and refresh not in refused.text
        bad_mode = problem(await api.get(path, params={"refresh": "always"}), 400)
        assert issue_names(bad_mode) == {"query.refresh"}
    finally:
        assert (await api.delete(f"/connections/{created['id']}")).status_code == 204


@pytest.mark.parametrize(
    ("body", "issues"),
    [
        (api_key_connection("k", provider="nosuchprovider"), {"body.provider"}),
        # hubspot authenticates with OAuth2 (authorization code): an API key is refused.
        (api_key_connection("k", provider="hubspot"), {"body.apiKey"}),
        (
            {
                "provider": API_KEY_PROVIDER,
                "groupRef": "acme",
                "consumerRef": "user-1",
                "basicAuth": {"username": "u", "password": "p"},
            },
            {"body.basicAuth"},
        ),
        ({"provider": API_KEY_PROVIDER, "groupRef": "acme", "consumerRef": "u"}, {"body.apiKey"}),
        (
            api_key_connection("", groupRef="", consumerRef=""),
            {
                "body.apiKey",
                "body.groupRef",
                "body.consumerRef",
            },
        ),
        (
            {
                "provider": "salesforce",
                "groupRef": "acme",
                "consumerRef": "user-1",
                "oauth2AuthorizationCode": {"scopes": ["api"]},
            },
            {"body.oauth2AuthorizationCode.accessToken.token"},
        ),
        (
            api_key_connection("k", providerMetadata={"region": {"value": "eu", "source": "x"}}),
            {"body.providerMetadata.region.source"},
        ),
    ],
)
async def test_bad_inputs_are_refused_and_create_nothing(
    api: httpx.AsyncClient, body: dict[str, Any], issues: set[str]
) -> None:
    before = await listed(api, "/connections")
    refused = problem(await api.post("/connections:generate", json=body), 400)
    assert issue_names(refused) == issues
    assert await listed(api, "/connections") == before


async def test_another_projects_key_sees_nothing(
    stack: Stack, admin: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    created = await generate(api, api_key_connection(secret_key()))
    try:
        other = await create_project(admin, "connections-other", "Other")
        key = await create_api_key(admin, other["id"], ["full"])
        async with client(stack, "", as_key(key)) as stranger:
            theirs = f"/v1/projects/{created['projectId']}/connections"
            problem(await stranger.get(theirs), 404)
            problem(await stranger.get(f"{theirs}/{created['id']}"), 404)
            problem(await stranger.delete(f"{theirs}/{created['id']}"), 404)
            # Naming its own project does not reach another project's connection either.
            mine = f"/v1/projects/{other['id']}/connections"
            problem(await stranger.get(f"{mine}/{created['id']}"), 404)
            problem(
                await stranger.get(f"{mine}/{created['id']}", params={"includeCreds": "true"}),
                404,
            )
            problem(await stranger.delete(f"{mine}/{created['id']}"), 404)
        still = await api.get(f"/connections/{created['id']}")
        assert still.status_code == 200, still.text
    finally:
        assert (await api.delete(f"/connections/{created['id']}")).status_code == 204


async def test_patch_rotates_an_api_key_and_refuses_what_does_not_fit(
    api: httpx.AsyncClient,
) -> None:
    created = await generate(api, api_key_connection(secret_key(), group="rotation"))
    path = f"/connections/{created['id']}"
    try:
        new_key = secret_key()
        rotated = await api.patch(
            path, json={"updateMask": ["apiKey"], "connection": {"apiKey": new_key}}
        )
        assert rotated.status_code == 200, rotated.text
        assert new_key not in rotated.text
        assert rotated.json()["status"] == "created" and rotated.json()["updateTime"]
        shown = (await api.get(path, params={"includeCreds": "true"})).json()
        assert shown["apiKey"] == new_key

        moved = await api.patch(
            path,
            json={
                "updateMask": ["providerWorkspaceRef"],
                "connection": {"providerWorkspaceRef": "acme-eu"},
            },
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["providerWorkspaceRef"] == "acme-eu"

        before = (await api.get(path, params={"includeCreds": "true"})).json()
        refusals: list[tuple[dict[str, Any], str]] = [
            (
                {"updateMask": ["basicAuth"], "connection": {"basicAuth": {"username": "u"}}},
                "body.connection.basicAuth",
            ),
            ({"updateMask": ["provider"], "connection": {"provider": "x"}}, "body.updateMask"),
            ({"updateMask": [], "connection": {"apiKey": "k"}}, "body.updateMask"),
            ({"updateMask": ["apiKey"], "connection": {}}, "body.connection.apiKey"),
            ({"updateMask": ["apiKey"], "connection": {"apiKey": " "}}, "body.connection.apiKey"),
            (
                {"updateMask": ["providerWorkspaceRef"], "connection": {}},
                "body.connection.providerWorkspaceRef",
            ),
            (
                {"updateMask": ["providerMetadata"], "connection": {}},
                "body.connection.providerMetadata",
            ),
        ]
        for body, issue in refusals:
            refused = problem(await api.patch(path, json=body), 400)
            assert issue in issue_names(refused), (body, refused)
        problem(
            await api.patch(
                f"/connections/{uuid.uuid4()}",
                json={"updateMask": ["apiKey"], "connection": {"apiKey": "k"}},
            ),
            404,
        )
        assert (await api.get(path, params={"includeCreds": "true"})).json() == before
    finally:
        assert (await api.delete(path)).status_code == 204
