"""Token-manager sharding through the Envoy edge: callers reach the shards through the
edge's ring hash on the connection id, the shard sees the caller's identity (not Envoy's),
and when a shard dies its connections move to the other while requests keep succeeding."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

from services.runtime.channels import token_manager_channel
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

CONNECTIONS = [f"conn-{i:03d}" for i in range(60)]
SHARDS = {"token-manager-0", "token-manager-1"}


async def owners(stub: tm_grpc.TokenManagerServiceStub) -> dict[str, str]:
    replies = await asyncio.gather(
        *(stub.DescribeShard(tm.DescribeShardRequest(connection_id=c)) for c in CONNECTIONS)
    )
    return {reply.connection_id: reply.shard for reply in replies}


async def test_each_connection_sticks_to_one_shard_and_the_shard_sees_the_caller(
    stack: Stack,
) -> None:
    async with token_manager_channel(
        stack.endpoints["token-manager"], stack.credentials("temporal")
    ) as channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)
        first = await owners(stub)
        assert set(first.values()) == SHARDS  # 60 ids hash onto both shards
        for _ in range(3):
            assert await owners(stub) == first
        reply = await stub.DescribeShard(tm.DescribeShardRequest(connection_id="c"))
    assert reply.caller == "temporal"  # forwarded by Envoy in XFCC, not "envoy"


async def test_identities_the_token_manager_refuses_are_refused_through_the_edge(
    stack: Stack,
) -> None:
    async with token_manager_channel(
        stack.endpoints["token-manager"], stack.credentials("messenger")
    ) as channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.DescribeShard(tm.DescribeShardRequest(connection_id="c"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'messenger'" in (refused.value.details() or "")


async def test_killing_a_shard_moves_its_connections_and_requests_keep_succeeding(
    stack: Stack,
) -> None:
    mesh = stack.mesh
    async with token_manager_channel(
        stack.endpoints["token-manager"], stack.credentials("api")
    ) as channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)
        before = await owners(stub)
        victim = mesh.service("token-manager-0")
        scraped = victim.extra["token-manager-0-metrics"]
        # Left dead (not restarted by the mesh's supervisor) while the survivor serves.
        mesh.hold("token-manager-0")
        victim.process.kill()
        await victim.process.wait()
        try:
            # Straight away, and for as long as Envoy takes to notice: no call fails, and
            # every connection is served by the survivor.
            for _ in range(5):
                after = await owners(stub)
                assert set(after.values()) == {"token-manager-1"}
            # The survivor's own connections never moved.
            kept = [c for c, shard in before.items() if shard == "token-manager-1"]
            assert kept and all(after[c] == "token-manager-1" for c in kept)
        finally:
            restarted = await mesh.restart("token-manager-0")
        # Prometheus keeps scraping the same URL: the metrics port is booked too.
        assert restarted.extra["token-manager-0-metrics"] == scraped
        # Once the edge's health checks see it again, its connections come back to it.
        deadline = time.monotonic() + 60
        while (now := await owners(stub)) != before:
            assert time.monotonic() < deadline, "token-manager-0 never took its connections back"
            await asyncio.sleep(0.5)
        assert now == before
