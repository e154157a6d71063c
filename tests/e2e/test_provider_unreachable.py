"""A provider that drops the connection instead of answering, as a builder meets it over
REST through the edge: refreshing answers 503 with retry advice and changes nothing;
finishing an OAuth connection answers the page with 503 and Retry-After and makes
nothing; deleting the connection still deletes it (204, as the reference says), and the
builder is told the provider did not revoke its tokens, in the answer's headers and in
the `connection.deleted` notification their webhook receives.

The sandbox's DROP_CONNECTION fault plays the provider's network failure: its status line
goes out, then the connection closes before the body (the client sees a dropped
connection, not an HTTP status)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2

from tests.support.control_plane import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    admin_client,
    assert_not_logged,
    create_project,
    create_provider_app,
    problem,
    sandbox_tokens,
    unique,
)
from tests.support.stack import Stack
from tests.support.webhooks import Receiver, receiving

pytestmark = pytest.mark.e2e

HUBSPOT = sandbox_pb2.PROVIDER_HUBSPOT
HOOK_PATH = "/connection-events"
# What a builder must never read in an answer: exception text and internals.
LEAKS = ("Errno", "Traceback", "Exception", "httpx", "RemoteProtocolError(", "INTERNAL")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


@pytest.fixture
async def project(admin: httpx.AsyncClient) -> str:
    """A new project with a hubspot provider app (the sandbox's client): its id."""
    project = await create_project(admin, "unreachable", "Unreachable provider")
    await create_provider_app(admin, project["id"], "hubspot", ["crm.objects.read"])
    project_id: str = project["id"]
    return project_id


@pytest.fixture
async def api(stack: Stack, project: str) -> AsyncIterator[httpx.AsyncClient]:
    """A REST client of the project."""
    async with admin_client(stack, f"/v1/projects/{project}") as http:
        yield http


async def created(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(path, json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def hubspot_connection(stack: Stack, api: httpx.AsyncClient) -> tuple[str, str, str]:
    """(id, access token, refresh token) of a hubspot connection holding tokens the
    sandbox issued, refreshed through the project's provider app."""
    access, refresh = await sandbox_tokens(stack)
    connection = await created(
        api,
        "/connections:generate",
        {
            "provider": "hubspot",
            "groupRef": "acme",
            "consumerRef": "user-1",
            "oauth2AuthorizationCode": {
                "accessToken": {"token": access},
                "refreshToken": {"token": refresh},
                "scopes": ["crm.objects.read"],
            },
        },
    )
    return connection["id"], access, refresh


async def drop_connections(sandbox: Any, endpoint: sandbox_pb2.FaultEndpoint) -> None:
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_DROP_CONNECTION, endpoint=endpoint, provider=HUBSPOT
            )
        )
    )


async def test_refreshing_answers_503_with_retry_advice_and_changes_nothing(
    stack: Stack, api: httpx.AsyncClient, sandbox: Any
) -> None:
    connection_id, access, refresh = await hubspot_connection(stack, api)
    path = f"/connections/{connection_id}"
    before = (await api.get(path)).json()
    await drop_connections(sandbox, sandbox_pb2.FAULT_ENDPOINT_TOKEN)

    async def refreshes() -> int:
        """refresh_token requests the sandbox's HubSpot received so far."""
        counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
        hubspot = next(p for p in counters.providers if p.provider == HUBSPOT)
        return int(hubspot.token_requests_by_grant_type.get("refresh_token", 0))

    seen = await refreshes()
    unavailable = await api.get(path, params={"refresh": "force"})
    # The token-manager's own attempts (3 by default); its callers do not multiply them.
    assert 1 <= await refreshes() - seen <= 3
    body = problem(unavailable, 503)
    assert int(unavailable.headers["retry-after"]) > 0
    assert "try again in" in body["detail"]
    assert "could not be reached" in body["detail"]
    assert not [leak for leak in LEAKS if leak in unavailable.text], unavailable.text
    assert access not in unavailable.text and refresh not in unavailable.text

    after = await api.get(path, params={"includeRefreshToken": "true"})
    assert after.status_code == 200, after.text
    shown = after.json()
    assert shown["status"] == before["status"]
    assert shown["oauth2AuthorizationCode"]["accessToken"]["token"] == access
    assert shown["oauth2AuthorizationCode"]["refreshToken"]["token"] == refresh
    assert_not_logged(stack, access, refresh)


async def test_deleting_deletes_and_says_the_provider_did_not_revoke(
    stack: Stack, api: httpx.AsyncClient, sandbox: Any, receiver: Receiver
) -> None:
    # The builder hears of deleted connections on a webhook.
    destination = await created(
        api,
        "/destinations",
        {"name": unique("hook"), "type": "webhook", "metadata": {"url": receiver.url(HOOK_PATH)}},
    )
    topic = await created(api, "/topics", {"name": unique("connections")})
    await created(
        api,
        "/notification-event-topic-routes",
        {"eventType": "connection.deleted", "topicId": topic["id"]},
    )
    await created(
        api,
        "/topic-destination-routes",
        {"topicId": topic["id"], "destinationId": destination["id"]},
    )
    connection_id, access, refresh = await hubspot_connection(stack, api)
    await drop_connections(sandbox, sandbox_pb2.FAULT_ENDPOINT_REVOKE)

    deleted = await api.delete(f"/connections/{connection_id}")
    assert deleted.status_code == 204, deleted.text
    assert deleted.headers["x-ampmesh-revoked-at-provider"] == "false"
    detail = deleted.headers["x-ampmesh-revocation-detail"]
    assert "revocation endpoint could not be reached" in detail
    problem(await api.get(f"/connections/{connection_id}"), 404)

    (notification,) = await receiver.wait_for(HOOK_PATH, 1)
    sent = json.loads(notification.body)
    assert sent["notificationType"] == "connection.deleted"
    assert sent["data"]["connectionId"] == connection_id
    assert sent["data"]["revokedAtProvider"] is False
    assert sent["data"]["revocationDetail"] == detail
    # Told the truth: the provider still honours the refresh token.
    async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as http:
        await sandbox.ClearFaults(sandbox_pb2.ClearFaultsRequest())
        still = await http.post(
            "/hubspot/oauth/v1/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SANDBOX_CLIENT_SECRET,
            },
        )
    assert still.status_code == 200, still.text
    assert_not_logged(stack, access, refresh)


async def test_deleting_with_the_provider_reachable_revokes_and_says_so(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    connection_id, _, _ = await hubspot_connection(stack, api)
    deleted = await api.delete(f"/connections/{connection_id}")
    assert deleted.status_code == 204, deleted.text
    assert deleted.headers["x-ampmesh-revoked-at-provider"] == "true"
    assert "x-ampmesh-revocation-detail" not in deleted.headers


async def test_finishing_an_oauth_connection_answers_503_and_makes_nothing(
    stack: Stack, admin: httpx.AsyncClient, api: httpx.AsyncClient, project: str, sandbox: Any
) -> None:
    started = await admin.post(
        "/v1/oauth-connect",
        json={
            "projectIdOrName": project,
            "provider": "hubspot",
            "groupRef": "acme",
            "consumerRef": "alice",
        },
    )
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient(follow_redirects=False, timeout=20) as browser:
        consent = await browser.get(started.text)  # the sandbox approves at once
        assert consent.status_code == 302, consent.text
        await drop_connections(sandbox, sandbox_pb2.FAULT_ENDPOINT_TOKEN)
        page = await browser.get(consent.headers["location"])
    assert page.status_code == 503, page.text
    assert int(page.headers["retry-after"]) > 0
    assert "AUTHORIZATION_FAILED" in page.text and "could not be reached" in page.text
    assert not [leak for leak in LEAKS if leak in page.text], page.text
    listed = await api.get("/connections")
    assert listed.status_code == 200 and listed.json() == [], listed.text
