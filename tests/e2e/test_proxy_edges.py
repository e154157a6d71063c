"""The proxy's limits hold across edge processes: a deployment runs several Envoys, and a
builder's calls for one connection land on any of them. A throttle hold recorded through
one edge stops throttled calls through another, and the connection's rate limit counts the
calls of every edge together (both live in Redis, services/api/proxy/limits.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from services.launcher.edge import Edge
from services.launcher.ports import PortBook
from tests.e2e.proxy_world import ORIGIN, assert_ours, echo_calls, echo_fails_once, proxy_world
from tests.support.sandbox import duration
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

# HubSpot's documented limit (services/domain/catalog/rate_limits.py).
LIMIT_CALLS = 100
LIMIT_SECONDS = 10


@pytest.fixture(scope="module")
async def second_edge(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Edge]:
    """An Envoy beside the session's, in front of the same api and token-manager shards, as
    the mesh renders its own; with its own home and ports, and the session's certificates
    (it must present an envoy certificate the api and the shards trust)."""
    mesh = stack.mesh
    assert mesh.edge is not None
    home = tmp_path_factory.mktemp("second-edge")
    edge = Edge(home, PortBook(home), stack.home / "certs", mesh.edge.cors)
    shards = {s.name: s.address for s in mesh.services if s.identity == "token-manager"}
    edge.render(api_address=mesh.service("api").address, token_manager_shards=shards)
    try:
        await edge.start(within=60)
        yield edge
    finally:
        await edge.stop()


@pytest.fixture
async def edges(
    stack: Stack, second_edge: Edge
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Clients of the session's proxy host (A) and the second edge's (B)."""
    async with (
        httpx.AsyncClient(base_url=stack.endpoints["proxy"], timeout=30) as a,
        httpx.AsyncClient(base_url=second_edge.endpoints()["proxy"], timeout=30) as b,
    ):
        yield a, b


async def test_a_hold_recorded_through_one_edge_holds_throttled_calls_through_another(
    stack: Stack,
    edges: tuple[httpx.AsyncClient, httpx.AsyncClient],
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
) -> None:
    a, b = edges
    world = await proxy_world(stack, "hubspot")
    throttled = world.headers(x_amp_rate_limiter_mode="throttle")
    # B forwards this connection's throttled calls before the provider's 429.
    passed = await b.get("/sandbox/echo/before", headers=throttled)
    assert passed.status_code == 200, passed.text
    assert passed.headers[ORIGIN] == "provider"
    await echo_fails_once(
        sandbox, "hubspot", sandbox_pb2.FAULT_KIND_RATE_LIMIT, retry_after=duration(30)
    )
    limited = await a.get("/sandbox/echo/x", headers=throttled)
    assert limited.status_code == 429, limited.text
    assert limited.headers[ORIGIN] == "provider"
    retry_at = limited.headers["x-amp-retry-after"]
    before = await echo_calls(sandbox)

    held = await b.get("/sandbox/echo/y", headers=throttled)
    problem = assert_ours(held, 429, retry_at)
    assert "held" in problem["detail"]
    assert held.headers["x-amp-retry-after"] == retry_at
    # The provider said 30 s; B counts down from the same moment (a second may pass).
    assert int(limited.headers["retry-after"]) - 1 <= int(held.headers["retry-after"])
    assert int(held.headers["retry-after"]) <= int(limited.headers["retry-after"])
    assert await echo_calls(sandbox) == before


async def test_the_rate_limit_counts_the_calls_of_every_edge(
    stack: Stack,
    edges: tuple[httpx.AsyncClient, httpx.AsyncClient],
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
) -> None:
    a, b = edges
    world = await proxy_world(stack, "hubspot")
    before = await echo_calls(sandbox)
    calls = 260
    started = time.time()
    answers = [
        (edge, await (a if edge == "A" else b).get("/sandbox/echo/x", headers=world.headers()))
        for edge in ("A", "B") * (calls // 2)
    ]
    ended = time.time()
    windows = int(ended // LIMIT_SECONDS) - int(started // LIMIT_SECONDS) + 1
    # Slower than 260 calls in 10 s, the calls would span more windows than the bounds
    # below allow for; that says nothing about the proxy.
    assert windows <= 2, f"{calls} calls took {ended - started:.1f} s"
    passed = [(edge, r) for edge, r in answers if r.status_code == 200]
    limited = [(edge, r) for edge, r in answers if r.status_code == 429]
    assert len(passed) + len(limited) == calls, [r.status_code for _, r in answers]
    # Each edge alone would let 100 per window pass: 260 in all.
    assert len(passed) <= LIMIT_CALLS * windows, len(passed)
    assert len(limited) >= calls - LIMIT_CALLS * windows, len(limited)
    assert {edge for edge, _ in passed} == {"A", "B"}
    for _, answer in passed:
        assert answer.headers[ORIGIN] == "provider"
    for _, answer in limited:
        assert_ours(answer, 429, f"{LIMIT_CALLS} calls per {LIMIT_SECONDS} s")
        assert 1 <= int(answer.headers["retry-after"]) <= LIMIT_SECONDS
        assert answer.headers["x-amp-retry-after"].endswith("Z")
    assert await echo_calls(sandbox) - before == len(passed)
