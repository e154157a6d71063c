"""The edge sheds what it will not serve, and says so: a key past its rate gets 429 with
Retry-After, more public requests than the api may have in flight get 503 with Retry-After,
both problem+json; other keys, the session's edge and the mesh's health are untouched.

The limits here are a second edge's, in front of the session's api (as a deployment runs
several Envoys), set low so that a few dozen requests cross them: the session's own edge
keeps its defaults for every other test. bench/overload.py measures what the defaults hold.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.launcher.edge import Edge, OverloadSettings, probe
from services.launcher.ports import PortBook
from services.launcher.processes import LAUNCHER_IDENTITY, grpc_healthy
from tests.support.control_plane import admin_client, create_api_key, create_project
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

TIGHT = OverloadSettings(per_key_rate=1, per_key_burst=3, max_requests=2, max_pending_requests=1)
SHED = {429, 503}


@pytest.fixture(scope="module")
async def tight_edge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    """An Envoy beside the session's, in front of the same api, with TIGHT limits."""
    mesh = stack.mesh
    assert mesh.edge is not None
    home = tmp_path_factory.mktemp("tight-edge")
    edge = Edge(home, PortBook(home), stack.home / "certs", mesh.edge.cors, TIGHT)
    shards = {s.name: s.address for s in mesh.services if s.identity == "token-manager"}
    edge.render(api_address=mesh.service("api").address, token_manager_shards=shards)
    try:
        await edge.start(within=60)
        yield edge
    finally:
        await edge.stop()


@pytest.fixture(scope="module")
async def project(stack: Stack) -> tuple[str, list[str]]:
    """A project's path, and API keys of it."""
    async with admin_client(stack) as admin:
        made = await create_project(admin, "overload", "overload")
        keys = [await create_api_key(admin, made["id"], ["full"]) for _ in range(8)]
    return f"/v1/projects/{made['id']}", keys


def assert_shed_problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in SHED, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == response.status_code
    assert problem["title"] in {"Too Many Requests", "Service Unavailable"}
    assert problem["detail"]
    assert problem["requestId"] == response.headers["x-request-id"]
    assert int(response.headers["retry-after"]) >= 1
    return problem


async def assert_mesh_healthy(stack: Stack, path: str, key: str) -> None:
    """Every service of the session's mesh passes its health check, and its edge serves."""
    credentials = stack.credentials(LAUNCHER_IDENTITY)
    checks = {
        s.name: grpc_healthy(s.address, s.identity, credentials, 5.0) for s in stack.mesh.services
    }
    results = await asyncio.gather(*checks.values())
    assert not [name for name, healthy in zip(checks, results, strict=True) if not healthy]
    assert await probe(stack.endpoints)
    async with httpx.AsyncClient(timeout=20) as http:
        answer = await http.get(f"{stack.endpoints['api']}{path}", headers={"x-api-key": key})
    assert answer.status_code == 200, answer.text


async def test_a_key_past_its_rate_is_answered_429_and_other_keys_are_not(
    stack: Stack, tight_edge: Edge, project: tuple[str, list[str]]
) -> None:
    path, keys = project
    hurried, patient = keys[0], keys[1]
    url = f"{tight_edge.endpoints()['api']}{path}"
    async with httpx.AsyncClient(timeout=20) as http:
        # One at a time, so the cap on requests in flight never decides: only the bucket,
        # which holds 3 and refills 1 a second (a 429 is the edge's alone, and quick).
        answers: list[httpx.Response] = []
        while len(answers) < 40 and sum(a.status_code == 429 for a in answers) < 3:
            answers.append(await http.get(url, headers={"x-api-key": hurried}))
        statuses = Counter(a.status_code for a in answers)
        assert set(statuses) <= {200, 429}, statuses
        assert statuses[429] == 3, statuses
        for answer in answers:
            if answer.status_code == 429:
                assert assert_shed_problem(answer)["title"] == "Too Many Requests"
                assert hurried not in answer.text
        # Another key of the same project has its own bucket.
        other = await http.get(url, headers={"x-api-key": patient})
        assert other.status_code == 200, other.text
    await assert_mesh_healthy(stack, path, hurried)


async def test_more_than_the_api_may_have_in_flight_is_answered_503(
    stack: Stack, tight_edge: Edge, project: tuple[str, list[str]]
) -> None:
    path, keys = project
    url = f"{tight_edge.endpoints()['api']}{path}"
    # 18 at once over keys 2..7 (3 each, within each bucket), past the cap of 2 in flight.
    senders = keys[2:]
    async with httpx.AsyncClient(
        timeout=20, limits=httpx.Limits(max_connections=32, max_keepalive_connections=32)
    ) as http:
        answers = await asyncio.gather(
            *(http.get(url, headers={"x-api-key": senders[n % len(senders)]}) for n in range(18))
        )
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, *SHED}, statuses
    assert statuses[200] > 0 and statuses[503] > 0, statuses
    for answer in answers:
        if answer.status_code in SHED:
            assert_shed_problem(answer)
    unavailable = next(a for a in answers if a.status_code == 503)
    assert "retry" in unavailable.json()["detail"]
    await assert_mesh_healthy(stack, path, senders[0])
