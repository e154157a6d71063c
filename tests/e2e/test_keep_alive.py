"""The token keep-alive through the whole mesh: the temporal worker's TokenKeepAlive walks
OAuth connections and refreshes, through the edge and the token-manager shards, those
idle longer than the threshold, at the provider sandbox's real OAuth server; a recently
refreshed connection is skipped; a refresh token the provider revoked turns its
connection bad_credentials; and the hourly schedule exists."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from ampmesh.workflows.v1 import token_keep_alive_pb2 as keep_alive_pb2
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from services.temporal.worker import CONNECTIONS_QUEUE, KEEP_ALIVE_SCHEDULE_ID
from tests.support.control_plane import admin_client, create_project
from tests.support.sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

HUBSPOT_TOKEN = "/hubspot/oauth/v1/token"
HUBSPOT_REVOKE = "/hubspot/oauth/v1/revoke"
# Seconds to wait for an event to reach the connection's status (not a timing claim:
# a generous bound for a 2-core machine).
STATUS_PATIENCE = 30.0


@pytest.fixture(scope="module")
async def temporal(stack: Stack) -> Client:
    return await Client.connect(stack.endpoints["temporal"], namespace="ampmesh")


@pytest.fixture
async def provider_http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"], timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The API rooted at a project of its own, whose HubSpot provider app is the
    sandbox's client (the one a refresh authenticates with)."""
    async with admin_client(stack) as admin:
        project = await create_project(admin, "keep-alive", "Keep-alive")
    async with admin_client(stack, f"/v1/projects/{project['name']}") as http:
        app = await http.post(
            "/provider-apps",
            json={"provider": "hubspot", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET},
        )
        assert app.status_code == 200, app.text
        yield http


async def sandbox_tokens(provider_http: httpx.AsyncClient) -> dict[str, Any]:
    """Real tokens from the sandbox's HubSpot OAuth server (password grant)."""
    response = await provider_http.post(
        HUBSPOT_TOKEN,
        data={"grant_type": "password", "username": USERNAME, "password": PASSWORD},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def import_connection(api: httpx.AsyncClient, tokens: dict[str, Any]) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(seconds=int(tokens["expires_in"]))
    created = await api.post(
        "/connections:generate",
        json={
            "provider": "hubspot",
            "groupRef": f"group-{uuid.uuid4().hex[:8]}",
            "consumerRef": "user-1",
            "oauth2AuthorizationCode": {
                "accessToken": {
                    "token": tokens["access_token"],
                    "expiresAt": expires.isoformat().replace("+00:00", "Z"),
                },
                "refreshToken": {"token": tokens["refresh_token"]},
            },
        },
    )
    assert created.status_code == 201, created.text
    connection: dict[str, Any] = created.json()
    return connection


async def access_token(api: httpx.AsyncClient, connection_id: str) -> str:
    got = await api.get(f"/connections/{connection_id}", params={"includeCreds": "true"})
    assert got.status_code == 200, got.text
    token: str = got.json()["oauth2AuthorizationCode"]["accessToken"]["token"]
    return token


async def eventually_status(api: httpx.AsyncClient, connection_id: str, wanted: str) -> None:
    """Wait until the connection's status is wanted (events reach scribe asynchronously)."""
    deadline = time.monotonic() + STATUS_PATIENCE
    while True:
        got = await api.get(f"/connections/{connection_id}")
        assert got.status_code == 200, got.text
        if got.json()["status"] == wanted:
            return
        assert time.monotonic() < deadline, f"status still {got.json()['status']!r}"
        await asyncio.sleep(0.2)


async def hubspot_refresh_grants(sandbox: sandbox_pb2_grpc.SandboxControlServiceStub) -> int:
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    (hubspot,) = [p for p in counters.providers if p.provider == sandbox_pb2.PROVIDER_HUBSPOT]
    return int(hubspot.token_requests_by_grant_type.get("refresh_token", 0))


async def keep_alive(
    temporal: Client, idle_threshold: timedelta
) -> keep_alive_pb2.TokenKeepAliveCounts:
    """One keep-alive pass over HubSpot connections, run by the mesh's own worker."""
    request = keep_alive_pb2.TokenKeepAliveInput(provider="hubspot")
    request.idle_threshold.FromTimedelta(idle_threshold)
    output: keep_alive_pb2.TokenKeepAliveOutput = await temporal.execute_workflow(
        "TokenKeepAlive",
        request,
        id=f"keep-alive-e2e-{uuid.uuid4().hex}",
        task_queue=CONNECTIONS_QUEUE,
        result_type=keep_alive_pb2.TokenKeepAliveOutput,
        execution_timeout=timedelta(seconds=90),
    )
    return output.counts


async def test_idle_connections_are_refreshed_and_recent_ones_skipped(
    temporal: Client,
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
    provider_http: httpx.AsyncClient,
    api: httpx.AsyncClient,
) -> None:
    tokens = await sandbox_tokens(provider_http)
    connection = await import_connection(api, tokens)
    grants_before = await hubspot_refresh_grants(sandbox)

    # Idle for more than 0 s: every HubSpot connection is due.
    counts = await keep_alive(temporal, timedelta(0))
    assert counts.refreshed >= 1, counts
    assert counts.examined >= 1
    grants_after = await hubspot_refresh_grants(sandbox)
    # This pass is the only caller of HubSpot's refresh grant (other connections of the
    # session may be refreshed by it too, each once).
    assert grants_after - grants_before >= 1
    # One grant per refresh; a connection turned bad made one (refused) or none (other
    # tests' imported tokens without a refresh token never reach the provider).
    refreshes = grants_after - grants_before
    assert counts.refreshed <= refreshes <= counts.refreshed + counts.bad_credentials
    renewed = await access_token(api, connection["id"])
    assert renewed != tokens["access_token"]
    listed = (await api.get(f"/connections/{connection['id']}")).json()
    assert listed["status"] != "bad_credentials"

    # Refreshed a moment ago, so not idle for an hour: nothing reaches the provider.
    again = await keep_alive(temporal, timedelta(hours=1))
    assert again.refreshed == 0, again
    assert again.skipped >= 1
    assert await hubspot_refresh_grants(sandbox) == grants_after
    assert await access_token(api, connection["id"]) == renewed


async def test_a_revoked_refresh_token_makes_the_connection_bad_credentials(
    temporal: Client,
    provider_http: httpx.AsyncClient,
    api: httpx.AsyncClient,
) -> None:
    tokens = await sandbox_tokens(provider_http)
    connection = await import_connection(api, tokens)
    revoked = await provider_http.post(
        HUBSPOT_REVOKE,
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert revoked.status_code == 200, revoked.text

    counts = await keep_alive(temporal, timedelta(0))
    assert counts.bad_credentials >= 1, counts
    # The token-manager announces the new status; scribe records it on the connection.
    await eventually_status(api, connection["id"], "bad_credentials")

    # Already refused: the next pass skips it rather than asking again.
    later = await keep_alive(temporal, timedelta(0))
    assert later.bad_credentials == 0, later
    assert later.skipped >= 1


async def test_the_hourly_schedule_exists(temporal: Client) -> None:
    described = await temporal.get_schedule_handle(KEEP_ALIVE_SCHEDULE_ID).describe()
    schedule = described.schedule
    assert [i.every for i in schedule.spec.intervals] == [timedelta(hours=1)]
    assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert isinstance(schedule.action, ScheduleActionStartWorkflow)
    assert schedule.action.workflow == "TokenKeepAlive"
    assert schedule.action.task_queue == CONNECTIONS_QUEUE
