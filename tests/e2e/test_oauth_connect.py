"""Connecting through OAuth, end to end: oauth-connect hands out the sandbox's
authorization URL, the sandbox approves and redirects the browser to our callback through
the edge, the callback exchanges the code (token-manager) and answers the popup page, and
the connection's token works at the sandbox. A state is single-use and expires; every
failure is a page that says why and creates nothing; oauth-update replaces the tokens of
the same connection.

The tests marked `exchange` need the token-manager's ExchangeAuthorizationCode."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx
import pytest

from tests.support.control_plane import (
    SANDBOX_CLIENT_ID,
    as_key,
    assert_not_logged,
    bearer,
    client,
    connect_group,
    create_api_key,
    create_project,
    create_provider_app,
    customer_claims,
    database_dump,
    database_url,
    issue_names,
    listed,
    new_rsa_key,
    problem,
    register_jwt_key,
    sign_jwt,
    spki_pem,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

EXPIRED = "this authorization link has expired or was already used; start connecting again"
# The callback answers its failure page with 400: a page (what the popup must show) with
# the status the api chose for it (x-ampmesh-http-status, applied by the edge).
PAGE_STATUS = 400


@dataclass
class Project:
    id: str
    name: str
    key: str
    http: httpx.AsyncClient  # the API's root, with the project's full key

    async def connect(self, provider: str = "hubspot", **body: Any) -> httpx.Response:
        payload = {
            "projectIdOrName": self.name,
            "provider": provider,
            "groupRef": "acme",
            "consumerRef": "alice",
            **body,
        }
        return await self.http.post("/v1/oauth-connect", json=payload)

    async def connections(self) -> list[dict[str, Any]]:
        return await listed(self.http, f"/v1/projects/{self.name}/connections")


@pytest.fixture(scope="module")
async def project(stack: Stack, admin: httpx.AsyncClient) -> AsyncIterator[Project]:
    created = await create_project(admin, "oauth", "OAuth")
    await create_provider_app(admin, created["name"], "hubspot", ["crm.objects.contacts.read"])
    await create_provider_app(admin, created["name"], "salesforce", ["api", "refresh_token"])
    key = await create_api_key(admin, created["name"], ["full"])
    async with client(stack, headers=as_key(key)) as http:
        yield Project(created["id"], created["name"], key, http)


async def authorization_url(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def approve(stack: Stack, url: str) -> str:
    """What the sandbox's consent does in a browser: the callback URL it redirects to."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=20) as browser:
        answer = await browser.get(url)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"{stack.endpoints['api']}/callbacks/v1/oauth?")
    return location


async def callback(url: str) -> tuple[int, str, str | None]:
    """(status, page, connection id when it succeeded) of the callback at url."""
    async with httpx.AsyncClient(timeout=30) as browser:
        answer = await browser.get(url)
    assert answer.headers["content-type"] == "text/html; charset=utf-8", answer.text
    page = answer.text
    assert "window.opener.postMessage" in page
    made = re.search(r'"connection": "([0-9a-f-]{36})"', page)
    return answer.status_code, page, made.group(1) if made else None


def failed_with(page: str, reason: str) -> bool:
    return (
        "AUTHORIZATION_FAILED" in page and reason in page and "AUTHORIZATION_SUCCEEDED" not in page
    )


async def states_of(stack: Stack, project: Project) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url(stack))
    try:
        rows: list[asyncpg.Record] = await connection.fetch(
            "SELECT * FROM oauth_states WHERE project_id = $1 ORDER BY created_at",
            uuid.UUID(project.id),
        )
        return rows
    finally:
        await connection.close()


# --- the authorization URL ---------------------------------------------------------------


async def test_oauth_connect_answers_the_sandbox_authorization_url(
    stack: Stack, project: Project
) -> None:
    url = await authorization_url(await project.connect("hubspot", groupName="Acme Inc"))
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        f"{stack.endpoints['sandbox-http']}/hubspot/oauth/authorize"
    )
    query = parse_qs(parts.query)
    state = query.pop("state")[0]
    assert query == {
        "response_type": ["code"],
        "client_id": [SANDBOX_CLIENT_ID],
        "redirect_uri": [f"{stack.endpoints['api']}/callbacks/v1/oauth"],
        "scope": ["crm.objects.contacts.read"],
    }
    # Only the state's digest is kept, bound to everything the callback needs.
    row = next(
        r
        for r in await states_of(stack, project)
        if bytes(r["state_sha256"]) == hashlib.sha256(state.encode()).digest()
    )
    assert (row["provider"], row["group_ref"], row["group_name"], row["consumer_ref"]) == (
        "hubspot",
        "acme",
        "Acme Inc",
        "alice",
    )
    assert row["code_verifier_sealed"] is None and row["used_at"] is None
    assert row["expires_at"] > row["created_at"]
    assert state not in await database_dump(stack)

    pkce = parse_qs(urlsplit(await authorization_url(await project.connect("salesforce"))).query)
    assert pkce["code_challenge_method"] == ["S256"] and len(pkce["code_challenge"][0]) == 43
    assert pkce["scope"] == ["api refresh_token"]
    salesforce_row = (await states_of(stack, project))[-1]
    assert salesforce_row["code_verifier_sealed"] is not None
    assert pkce["code_challenge"][0].encode() not in bytes(salesforce_row["code_verifier_sealed"])


async def test_oauth_connect_refusals_create_no_flow(
    stack: Stack, admin: httpx.AsyncClient, project: Project
) -> None:
    before = len(await states_of(stack, project))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"provider": "hubspott"}, "body.provider"),
        ({"provider": "openAI"}, "body.provider"),  # an API key provider
        ({"provider": "hubspot", "groupRef": " "}, "body.groupRef"),
        ({"provider": "hubspot", "consumerRef": ""}, "body.consumerRef"),
        ({"provider": "zendeskSupport"}, "body.providerAppId"),  # the project has no app
    ]
    for body, issue in cases:
        provider = body.pop("provider")
        refused = problem(await project.connect(provider, **body), 400)
        assert issue in issue_names(refused), (body, refused)
    salesforce_app = next(
        a
        for a in await listed(project.http, f"/v1/projects/{project.name}/provider-apps")
        if a["provider"] == "salesforce"
    )
    wrong_app = problem(await project.connect("hubspot", providerAppId=salesforce_app["id"]), 400)
    assert issue_names(wrong_app) == {"body.providerAppId"}
    problem(await project.connect("hubspot", providerAppId=str(uuid.uuid4())), 404)

    # Another project's key does not see this project.
    other = await create_project(admin, "oauth-other", "Other")
    other_key = await create_api_key(admin, other["name"], ["full"])
    async with client(stack, headers=as_key(other_key)) as stranger:
        foreign = await stranger.post(
            "/v1/oauth-connect",
            json={
                "projectIdOrName": project.name,
                "provider": "hubspot",
                "groupRef": "acme",
                "consumerRef": "alice",
            },
        )
        problem(foreign, 404)
    assert len(await states_of(stack, project)) == before


async def test_customer_jwts_connect_only_their_own_group_and_consumer(
    stack: Stack, admin: httpx.AsyncClient, project: Project
) -> None:
    private_key = new_rsa_key()
    kid = await register_jwt_key(admin, project.name, spki_pem(private_key.public_key()))
    token = sign_jwt(private_key, customer_claims(groupRef="acme", consumerRef="alice"), kid)
    body = {"projectIdOrName": project.name, "provider": "hubspot"}
    async with client(stack, headers=bearer(token)) as customer:
        own = await customer.post(
            "/v1/oauth-connect", json={**body, "groupRef": "acme", "consumerRef": "alice"}
        )
        await authorization_url(own)
        other_group = await customer.post(
            "/v1/oauth-connect", json={**body, "groupRef": "globex", "consumerRef": "alice"}
        )
        problem(other_group, 404)
        other_consumer = await customer.post(
            "/v1/oauth-connect", json={**body, "groupRef": "acme", "consumerRef": "bob"}
        )
        problem(other_consumer, 403)


# --- the callback's failures (no exchange needed) ----------------------------------------


async def test_unknown_tampered_expired_and_denied_states_fail_and_create_nothing(
    stack: Stack, project: Project
) -> None:
    before = await project.connections()
    callback_url = f"{stack.endpoints['api']}/callbacks/v1/oauth"

    status, page, _ = await callback(callback_url)  # no state at all
    assert status == PAGE_STATUS and failed_with(page, EXPIRED)

    url = await authorization_url(await project.connect())
    state = parse_qs(urlsplit(url).query)["state"][0]
    tampered = state[:-1] + ("A" if state[-1] != "A" else "B")
    status, page, _ = await callback(
        f"{callback_url}?{urlencode({'code': 'x', 'state': tampered})}"
    )
    assert status == PAGE_STATUS and failed_with(page, EXPIRED)

    # The provider's error is shown, escaped, and the state is spent.
    denied = {
        "state": state,
        "error": "access_denied",
        "error_description": "<b>the user said no</b>",
        "extra": "providers add parameters of their own",
    }
    status, page, _ = await callback(f"{callback_url}?{urlencode(denied)}")
    assert status == PAGE_STATUS and failed_with(page, "access_denied")
    assert "<b>the" not in page and "&lt;b&gt;the user said no&lt;/b&gt;" in page, page
    status, page, _ = await callback(f"{callback_url}?{urlencode({'code': 'x', 'state': state})}")
    assert failed_with(page, EXPIRED)

    # An expired state is refused even though it was never used.
    late = parse_qs(urlsplit(await authorization_url(await project.connect())).query)["state"][0]
    connection = await asyncpg.connect(database_url(stack))
    try:
        await connection.execute(
            "UPDATE oauth_states SET expires_at = now() - interval '1 second' "
            "WHERE state_sha256 = $1",
            hashlib.sha256(late.encode()).digest(),
        )
    finally:
        await connection.close()
    status, page, _ = await callback(f"{callback_url}?{urlencode({'code': 'x', 'state': late})}")
    assert status == PAGE_STATUS and failed_with(page, EXPIRED)
    assert late not in page and "code" not in re.sub(r"<[^>]+>", "", page).split("could not")[0]

    assert await project.connections() == before


async def test_a_refused_code_fails_and_creates_nothing(stack: Stack, project: Project) -> None:
    before = await project.connections()
    url = await authorization_url(await project.connect())
    location = await approve(stack, url)
    query = parse_qs(urlsplit(location).query)
    forged = {"code": "not-the-code-the-sandbox-issued", "state": query["state"][0]}
    status, page, connection_id = await callback(
        f"{stack.endpoints['api']}/callbacks/v1/oauth?{urlencode(forged)}"
    )
    assert status == PAGE_STATUS and "AUTHORIZATION_FAILED" in page and connection_id is None
    assert forged["code"] not in page and forged["state"] not in page
    assert await project.connections() == before


# --- the whole flow (needs the token-manager's ExchangeAuthorizationCode) ----------------


async def connect_through_sandbox(stack: Stack, url: str) -> str:
    location = await approve(stack, url)
    status, page, connection_id = await callback(location)
    assert status == 200 and "AUTHORIZATION_SUCCEEDED" in page, page
    assert connection_id is not None
    code = parse_qs(urlsplit(location).query)["code"][0]
    assert code not in page
    # Replaying the redirect fails: the state is spent, nothing new is made.
    status, page, again = await callback(location)
    assert failed_with(page, EXPIRED) and again is None
    return connection_id


async def access_token(project: Project, connection_id: str) -> str:
    answer = await project.http.get(
        f"/v1/projects/{project.name}/connections/{connection_id}",
        params={"includeCreds": "true"},
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["oauth2AuthorizationCode"]["accessToken"]["token"]
    return token


async def test_hubspot_connects_through_the_sandbox_and_reconnects_in_place(
    stack: Stack, project: Project
) -> None:
    before = {c["id"] for c in await project.connections()}
    url = await authorization_url(await project.connect("hubspot", consumerName="Alice"))
    connection_id = await connect_through_sandbox(stack, url)

    made = [c for c in await project.connections() if c["id"] not in before]
    assert [c["id"] for c in made] == [connection_id]
    connection = made[0]
    assert connection["provider"] == "hubspot"
    assert connection["status"] == "created"
    assert connection["authScheme"] == "oauth2/authorizationCode"
    assert connection["group"]["groupRef"] == "acme"
    assert connection["consumer"] == {**connection["consumer"], "consumerRef": "alice"}
    assert connection["consumer"]["consumerName"] == "Alice"

    token = await access_token(project, connection_id)
    async with httpx.AsyncClient(timeout=20) as provider:
        contacts = await provider.get(
            f"{stack.endpoints['sandbox-http']}/hubspot/crm/v3/objects/contacts",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert contacts.status_code == 200, contacts.text

    # oauth-update: the same connection, new tokens.
    update = await project.http.patch(
        f"/v1/projects/{project.name}/connections/{connection_id}:oauth-update"
    )
    assert await connect_through_sandbox(stack, await authorization_url(update)) == connection_id
    renewed = await access_token(project, connection_id)
    assert renewed != token
    assert_not_logged(stack, token, renewed)
    after = [c for c in await project.connections() if c["id"] not in before]
    assert [c["id"] for c in after] == [connection_id]
    assert after[0]["status"] == "created" and after[0]["updateTime"]


async def test_salesforce_connects_with_pkce(stack: Stack, project: Project) -> None:
    url = await authorization_url(await project.connect("salesforce", groupRef="initech"))
    connection_id = await connect_through_sandbox(stack, url)
    connection = next(c for c in await project.connections() if c["id"] == connection_id)
    assert connection["authScheme"] == "oauth2/authorizationCodePKCE"
    assert await access_token(project, connection_id)


# --- oauth-update's refusals ---------------------------------------------------------------


async def test_oauth_update_refusals(
    stack: Stack, admin: httpx.AsyncClient, project: Project
) -> None:
    imported = await connect_group(project.http, project.name, "hubspot", "umbrella")
    path = f"/v1/projects/{project.name}/connections/{imported['id']}:oauth-update"
    await authorization_url(await project.http.patch(path))  # a builder may

    # The embeddable UI's Manage tab re-authenticates with the project's frontend key.
    frontend_key = await create_api_key(admin, project.name, ["frontend"])
    async with client(stack, headers=as_key(frontend_key)) as frontend:
        await authorization_url(await frontend.patch(path))
    elsewhere = (await create_project(admin, "elsewhere", "Elsewhere"))["name"]
    stranger = await create_api_key(admin, elsewhere, ["frontend"])
    async with client(stack, headers=as_key(stranger)) as other:
        problem(await other.patch(path), 404)

    private_key = new_rsa_key()
    kid = await register_jwt_key(admin, project.name, spki_pem(private_key.public_key()))
    outsider = sign_jwt(private_key, customer_claims(groupRef="acme"), kid)
    insider = sign_jwt(private_key, customer_claims(groupRef="umbrella"), kid)
    async with client(stack, headers=bearer(outsider)) as customer:
        problem(await customer.patch(path), 404)
    async with client(stack, headers=bearer(insider)) as customer:
        await authorization_url(await customer.patch(path))

    key_connection = await project.http.post(
        f"/v1/projects/{project.name}/connections:generate",
        json={"provider": "openAI", "groupRef": "umbrella", "consumerRef": "u", "apiKey": "k"},
    )
    assert key_connection.status_code == 201, key_connection.text
    refused = await project.http.patch(
        f"/v1/projects/{project.name}/connections/{key_connection.json()['id']}:oauth-update"
    )
    assert issue_names(problem(refused, 400)) == {"path.connectionId"}
    problem(
        await project.http.patch(
            f"/v1/projects/{project.name}/connections/{uuid.uuid4()}:oauth-update"
        ),
        404,
    )
