"""A project's metrics through the edge (GET /v1/projects/{project}/metrics), which the
api relays to the metrics service over mTLS: the figures match what the project did,
bad windows are refused naming the parameter, and another project's key sees nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from ampmesh.platform.v1.project_metrics_pb2 import GetProjectMetricsRequest

from services.api.auth import Authenticator
from services.api.context import ApiContext, ApiPolicy
from services.api.platform.project_metrics import ProjectMetrics
from services.runtime.secretbox import SecretBox
from tests.e2e.proxy_world import proxy_world
from tests.metrics.metrics_world import World
from tests.support.control_plane import as_key, client, issue_names, problem
from tests.support.stack import Stack


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _metrics(stack: Stack, key: str, project: str, **query: str) -> Any:
    async with client(stack, headers=as_key(key)) as http:
        return await http.get(f"/v1/projects/{project}/metrics", params=query)


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def _operations(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["actionType"], o["status"]): o for o in body["operations"]}


async def test_the_last_day_of_a_project_through_the_edge(stack: Stack, world: World) -> None:
    response = await _metrics(stack, world.key, world.project_name)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["projectId"] == world.project_id
    end = datetime.fromisoformat(body["endTime"])
    start = datetime.fromisoformat(body["startTime"])
    assert end - start == timedelta(hours=24)
    assert abs(end - world.seeded_at) < timedelta(minutes=5)

    operations = _operations(body)
    assert set(operations) == {
        ("ACTION_TYPE_READ", "OPERATION_STATUS_SUCCESS"),
        ("ACTION_TYPE_WRITE", "OPERATION_STATUS_FAILURE"),
        ("ACTION_TYPE_READ", "OPERATION_STATUS_IN_PROGRESS"),
    }
    reads = operations[("ACTION_TYPE_READ", "OPERATION_STATUS_SUCCESS")]
    # The 3-day-old read is outside the window; the two of the last hour took 30 and 90 s.
    assert reads["count"] == "2"
    assert _seconds(reads["p50Duration"]) == pytest.approx(60)
    assert _seconds(reads["p99Duration"]) == pytest.approx(89.4)
    assert _seconds(
        operations[("ACTION_TYPE_WRITE", "OPERATION_STATUS_FAILURE")]["p50Duration"]
    ) == (pytest.approx(10))
    running = operations[("ACTION_TYPE_READ", "OPERATION_STATUS_IN_PROGRESS")]
    assert running["count"] == "1" and "p50Duration" not in running

    assert body["records"] == {
        "read": "157",
        "written": "5",
        "writeFailed": "2",
        "delivered": "100",
    }
    deliveries = body["deliveries"]
    assert (deliveries["succeeded"], deliveries["failed"], deliveries["outstanding"]) == (
        "2",
        "1",
        "1",
    )
    assert deliveries["attempts"] == "7"
    assert deliveries["successRate"] == pytest.approx(2 / 3)
    assert _seconds(deliveries["p50Latency"]) == pytest.approx(3)
    assert deliveries["endpointsDisabled"] == 1 and deliveries["endpointsDisabledNow"] == 1
    # The retrying delivery was accepted 20 minutes before the seeding.
    assert 20 * 60 - 5 < _seconds(deliveries["oldestUndeliveredAge"]) < 30 * 60

    assert sorted((c["provider"], c["status"], c["count"]) for c in body["connections"]) == [
        ("hubspot", "CONNECTION_STATUS_WORKING", "2"),
        ("salesforce", "CONNECTION_STATUS_BAD_CREDENTIALS", "1"),
    ]
    assert sorted((i["integrationId"], i["count"]) for i in body["installations"]) == sorted(
        [(world.sync_integration, "1"), (world.other_integration, "1")]
    )
    # The revocation the builder asked for is no failed refresh.
    assert body["tokenRefreshes"] == {"succeeded": "2", "failed": "1"}
    assert sorted((p["statusClass"], p["count"]) for p in body["proxyCalls"]) == [
        ("2xx", "7"),
        ("5xx", "1"),
    ]
    assert body["deadLetters"] == {"waiting": "1", "recorded": "2"}


async def test_one_integration_and_a_longer_window(stack: Stack, world: World) -> None:
    now = datetime.now(UTC)
    response = await _metrics(
        stack,
        world.key,
        world.project_id,
        integrationId="sync",
        startTime=_stamp(now - timedelta(days=30)),
        endTime=_stamp(now + timedelta(seconds=5)),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    operations = _operations(body)
    # Sync's three reads (the old one now inside the window) and its write; not the
    # other integration's read in progress.
    assert {k: o["count"] for k, o in operations.items()} == {
        ("ACTION_TYPE_READ", "OPERATION_STATUS_SUCCESS"): "3",
        ("ACTION_TYPE_WRITE", "OPERATION_STATUS_FAILURE"): "1",
    }
    assert body["records"]["read"] == "1150"
    # The retrying delivery is the other integration's installation's.
    assert body["deliveries"]["outstanding"] == "0"
    assert "oldestUndeliveredAge" not in body["deliveries"]
    assert [(i["integrationId"], i["count"]) for i in body["installations"]] == [
        (world.sync_integration, "1")
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"startTime": "2026-01-02T00:00:00Z", "endTime": "2026-01-01T00:00:00Z"}, "startTime"),
        ({"startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-01T00:00:00Z"}, "startTime"),
        ({"startTime": "2025-01-01T00:00:00Z", "endTime": "2026-01-01T00:00:00Z"}, "startTime"),
    ],
    ids=["start after end", "empty window", "more than 31 days"],
)
async def test_a_bad_window_is_refused_naming_the_parameter(
    stack: Stack, world: World, query: dict[str, str], field: str
) -> None:
    refused = problem(await _metrics(stack, world.key, world.project_name, **query), 400)
    assert issue_names(refused) == {f"query.{field}"}


async def test_an_unknown_integration_or_project_is_not_found(stack: Stack, world: World) -> None:
    problem(await _metrics(stack, world.key, world.project_name, integrationId="nope"), 404)
    problem(await _metrics(stack, stack.admin_api_key, "no-such-project"), 404)


async def test_another_projects_key_sees_nothing(stack: Stack, world: World) -> None:
    # As for every project resource: the project does not exist for that key.
    refused = problem(await _metrics(stack, world.stranger_key, world.project_name), 404)
    assert "157" not in str(refused)


async def test_the_org_key_sees_the_project(stack: Stack, world: World) -> None:
    response = await _metrics(stack, stack.admin_api_key, world.project_name)
    assert response.status_code == 200, response.text
    assert response.json()["records"]["read"] == "157"


async def test_a_builders_proxy_calls_installation_and_connection_are_counted(
    stack: Stack,
) -> None:
    """The real flow: a project installs a proxying integration for a customer (a sandbox
    connection) and calls HubSpot through the proxy host; the edge streams each call to
    the api, which rolls them up into PostgreSQL every few seconds."""
    world = await proxy_world(stack, "hubspot")
    async with httpx.AsyncClient(base_url=stack.endpoints["proxy"], timeout=30) as proxy:
        for _ in range(3):
            answer = await proxy.get(
                "/sandbox/echo/crm/v3/objects/contacts", headers=world.headers()
            )
            assert answer.status_code == 200, answer.text
    body: dict[str, Any] = {}
    for _ in range(60):
        response = await world.http.get("/metrics")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["proxyCalls"]:
            break
        await asyncio.sleep(0.5)
    assert [(p["statusClass"], p["count"]) for p in body["proxyCalls"]] == [("2xx", "3")]
    assert [(i["integrationId"], i["count"]) for i in body["installations"]] == [
        (world.integration["id"], "1")
    ]
    assert [(c["provider"], c["count"]) for c in body["connections"]] == [("hubspot", "1")]
    assert body["operations"] == [] and body["records"]["read"] == "0"


class _Aborted(Exception):
    pass


class _Call:
    """What the api's servicer asks of a gRPC call: the builder's key, and how it ends."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.code: Any = None
        self.details = ""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self.key),)

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    async def abort(self, code: Any, details: str, trailing_metadata: Any = ()) -> None:
        self.code, self.details = code, details
        raise _Aborted(details)


async def test_an_api_without_the_metrics_address_says_which_setting(
    pool: asyncpg.Pool, world: World
) -> None:
    ctx = ApiContext(
        pool=pool,
        secrets=SecretBox.from_spec(SecretBox.new_spec()),
        catalog={},
        auth=Authenticator(pool),
        policy=ApiPolicy(),
    )
    call = _Call(world.key)
    with pytest.raises(_Aborted):
        await ProjectMetrics(ctx, None).GetProjectMetrics(
            GetProjectMetricsRequest(project_id_or_name=world.project_name), call
        )
    assert call.code == grpc.StatusCode.UNAVAILABLE
    assert "AMPMESH_METRICS_ADDRESS" in call.details
