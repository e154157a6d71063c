"""The token-manager's degraded modes on the whole mesh, called as the api and the temporal
worker call it (through Envoy's token-manager listener, ring hash on the connection id):

- Redis stopped for 30 s in the middle of a stream of GetToken calls (as close to 1,000 a
  second as the machine allows), while credentials are replaced through the shard that
  does NOT own them: no call fails, no call started after a replacement returned gets the
  older credentials, and once Redis is back the shards read it again;
- PostgreSQL stopped and started: calls meanwhile are refused as UNAVAILABLE (never
  INTERNAL), and token and api calls succeed afterwards, and a change made then still
  reaches the event bus (the outbox relay lived through it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

from services.runtime.channels import CONNECTION_ID_HEADER, mesh_channel, token_manager_channel
from tests.support.control_plane import admin_client, database_url
from tests.support.stack import Stack, component

pytestmark = pytest.mark.e2e

Stub = tm_grpc.TokenManagerServiceStub
SHARDS = ("token-manager-0", "token-manager-1")
CONNECTIONS = 100
RATE = 1000  # GetToken calls a second, asked for
OUTAGE = 30.0
MAX_IN_FLIGHT = 1000


def hashed(connection_id: str) -> tuple[tuple[str, str], ...]:
    return ((CONNECTION_ID_HEADER, connection_id),)


def api_key(connection_id: str, n: int) -> tm.Credentials:
    return tm.Credentials(api_key=tm.ApiKeyCredentials(key=f"{connection_id}#{n}"))


@contextlib.asynccontextmanager
async def shard_stubs(stack: Stack) -> AsyncIterator[dict[str, Stub]]:
    """A client of each shard itself (not through the edge), as the api identity."""
    async with contextlib.AsyncExitStack() as channels:
        stubs = {}
        for shard in SHARDS:
            channel = await channels.enter_async_context(
                mesh_channel(
                    stack.endpoints[shard],
                    stack.credentials("api"),
                    server_identity="token-manager",
                    services=("ampmesh.token.v1.TokenManagerService",),
                )
            )
            stubs[shard] = tm_grpc.TokenManagerServiceStub(channel)
        yield stubs


@dataclass
class Run:
    """What the GetToken stream saw."""

    project: str
    connections: list[str]
    # Connection -> the newest credentials number whose replacement has returned.
    floor: dict[str, int]
    sent: int = 0
    answered: int = 0
    not_sent: int = 0  # the generator fell behind (more than MAX_IN_FLIGHT in flight)
    # Phase -> calls sent, and calls not sent, in it.
    sent_in: Counter[str] = field(default_factory=Counter)
    not_sent_in: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    sources: Counter[tuple[str, int]] = field(default_factory=Counter)
    phase: str = "before"

    async def get(self, stub: Stub, connection_id: str) -> None:
        floor, phase = self.floor[connection_id], self.phase
        try:
            reply = await stub.GetToken(
                tm.GetTokenRequest(connection_id=connection_id, project_id=self.project)
            )
        except grpc.aio.AioRpcError as error:
            self.failures.append(f"GetToken {phase}: {error.code().name} {error.details()}")
            return
        self.answered += 1
        self.sources[(phase, reply.source)] += 1
        served = int(reply.token.token.rpartition("#")[2])
        if served < floor:
            self.stale.append(f"{connection_id}: #{served} after #{floor} ({phase})")


async def stream(run: Run, stub: Stub, stop: asyncio.Event) -> None:
    """Open loop: calls are started at RATE a second whether or not earlier ones answered."""
    in_flight: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    while not stop.is_set():
        due = int((time.monotonic() - started) * RATE) - run.sent - run.not_sent
        for _ in range(due):
            if len(in_flight) >= MAX_IN_FLIGHT:
                run.not_sent += 1
                run.not_sent_in[run.phase] += 1
                continue
            connection_id = run.connections[(run.sent + run.not_sent) % len(run.connections)]
            task = asyncio.create_task(run.get(stub, connection_id))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            run.sent += 1
            run.sent_in[run.phase] += 1
        await asyncio.sleep(0.005)
    await asyncio.gather(*in_flight)


async def replace_elsewhere(
    run: Run, shards: dict[str, Stub], owner: dict[str, str], stop: asyncio.Event
) -> int:
    """Every 100 ms, replaces one connection's credentials through the shard that does not
    own it; the stream's calls go to the owner, whose memory held the older ones."""
    replaced = 0
    while not stop.is_set():
        connection_id = random.choice(run.connections)  # noqa: S311 (not a secret)
        other = next(s for s in SHARDS if s != owner[connection_id])
        n = run.floor[connection_id] + 1
        try:
            await shards[other].StoreCredentials(
                tm.StoreCredentialsRequest(
                    connection=tm.ConnectionContext(
                        project_id=run.project, connection_id=connection_id, provider="anthropic"
                    ),
                    credentials=api_key(connection_id, n),
                    replace=True,
                ),
                metadata=hashed(connection_id),
            )
        except grpc.aio.AioRpcError as error:
            run.failures.append(f"replace {run.phase}: {error.code().name} {error.details()}")
        else:
            run.floor[connection_id] = n
            replaced += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    return replaced


async def test_redis_stopped_for_30_seconds_under_load_fails_no_call_and_serves_nothing_stale(
    stack: Stack,
) -> None:
    project = str(uuid.uuid4())
    connections = [f"degraded-{uuid.uuid4()}" for _ in range(CONNECTIONS)]
    run = Run(project, connections, dict.fromkeys(connections, 1))
    redis_server = component(stack, "redis")
    async with (
        token_manager_channel(stack.endpoints["token-manager"], stack.credentials("api")) as api,
        token_manager_channel(
            stack.endpoints["token-manager"], stack.credentials("temporal")
        ) as temporal,
        shard_stubs(stack) as shards,
    ):
        api_stub, temporal_stub = Stub(api), Stub(temporal)
        for connection_id in connections:
            await api_stub.StoreCredentials(
                tm.StoreCredentialsRequest(
                    connection=tm.ConnectionContext(
                        project_id=project, connection_id=connection_id, provider="anthropic"
                    ),
                    credentials=api_key(connection_id, 1),
                ),
                metadata=hashed(connection_id),
            )
        owner = {
            c: (await temporal_stub.DescribeShard(tm.DescribeShardRequest(connection_id=c))).shard
            for c in connections
        }
        assert set(owner.values()) == set(SHARDS)

        stop = asyncio.Event()
        load = asyncio.create_task(stream(run, temporal_stub, stop))
        replacing = asyncio.create_task(replace_elsewhere(run, shards, owner, stop))
        began = time.monotonic()
        stopped = False
        try:
            await asyncio.sleep(5)
            # Calls sent while Redis shuts down may still be answered by it (CI saw one).
            run.phase = "stopping"
            await redis_server.stop()
            run.phase = "outage"
            stopped, outage_began = True, time.monotonic()
            await asyncio.sleep(OUTAGE)
            outage_seconds = time.monotonic() - outage_began
            run.phase = "after"
            await redis_server.start()
            stopped = False
            # Until the owners read Redis again (a replaced connection's next call misses
            # memory, and finds the new credentials there), for 30 s at most.
            deadline = time.monotonic() + 30
            while run.sources[("after", tm.TOKEN_SOURCE_REDIS)] < 20:
                assert time.monotonic() < deadline, f"Redis never used again: {run.sources}"
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)
        finally:
            stop.set()
            replaced = await replacing
            await load
            if stopped:
                await redis_server.start()
        seconds = time.monotonic() - began

    summary = (
        f"{run.answered} GetToken answered of {run.sent} sent in {seconds:.0f} s "
        f"({run.sent / seconds:.0f}/s; during the {outage_seconds:.0f} s outage "
        f"{run.sent_in['outage'] / outage_seconds:.0f}/s), not sent (generator behind) "
        f"{dict(run.not_sent_in)}, {replaced} replacements, "
        f"sources {dict(sorted(run.sources.items()))}"
    )
    print(summary)
    assert run.failures == [], summary
    assert run.stale == [], summary
    assert run.answered == run.sent
    # During the outage the calls that missed memory were answered by PostgreSQL…
    assert run.sources[("outage", tm.TOKEN_SOURCE_POSTGRES)] > 0, summary
    assert run.sources[("outage", tm.TOKEN_SOURCE_REDIS)] == 0, summary
    # …and the replacements kept the misses coming (each evicted the owner's memory).
    assert replaced > OUTAGE * 5, summary


async def test_a_credential_replaced_on_one_shard_is_never_served_by_another(
    stack: Stack,
) -> None:
    project, connection_id = str(uuid.uuid4()), f"moved-{uuid.uuid4()}"
    async with (
        token_manager_channel(stack.endpoints["token-manager"], stack.credentials("api")) as api,
        shard_stubs(stack) as shards,
    ):
        edge = Stub(api)
        context = tm.ConnectionContext(
            project_id=project, connection_id=connection_id, provider="anthropic"
        )
        request = tm.GetTokenRequest(connection_id=connection_id, project_id=project)
        await edge.StoreCredentials(
            tm.StoreCredentialsRequest(connection=context, credentials=api_key(connection_id, 1)),
            metadata=hashed(connection_id),
        )
        owner = (
            await edge.DescribeShard(tm.DescribeShardRequest(connection_id=connection_id))
        ).shard
        other = next(s for s in SHARDS if s != owner)
        # Both shards hold it in memory (the other after one call of its own).
        for shard in SHARDS:
            await shards[shard].GetToken(request, metadata=hashed(connection_id))
            again = await shards[shard].GetToken(request, metadata=hashed(connection_id))
            assert again.source == tm.TOKEN_SOURCE_MEMORY
        for n in range(2, 12):
            # Replaced on one shard (alternately), read at once from the other and
            # through the edge: never the older credentials.
            writer, reader = (other, owner) if n % 2 else (owner, other)
            await shards[writer].StoreCredentials(
                tm.StoreCredentialsRequest(
                    connection=context, credentials=api_key(connection_id, n), replace=True
                ),
                metadata=hashed(connection_id),
            )
            for stub in (shards[reader], edge):
                reply = await stub.GetToken(request, metadata=hashed(connection_id))
                assert reply.token.token == f"{connection_id}#{n}"
        await edge.DeleteCredentials(
            tm.DeleteCredentialsRequest(connection_id=connection_id, project_id=project)
        )
        for shard in SHARDS:
            with pytest.raises(grpc.aio.AioRpcError) as gone:
                await shards[shard].GetToken(request, metadata=hashed(connection_id))
            assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def kill_postgres(stack: Stack, postgres: Any) -> None:
    """kill -9 of the server's whole process group: no shutdown, crash recovery on start.
    The launcher's supervisor would restart it at once: held down until restarted."""
    stack.mesh.hold("postgres")
    os.killpg(postgres.process.pid, signal.SIGKILL)
    await postgres.process.wait()


async def every_shard_listening(stack: Stack, patience: float) -> None:
    """Wait until each token-manager shard hears credential changes again (its gauge)."""
    urls = [
        url
        for name, url in stack.endpoints.items()
        if name.startswith("token-manager-") and name.endswith("-metrics")
    ]
    assert urls, "no token-manager metrics endpoint"
    deadline = time.monotonic() + patience
    async with httpx.AsyncClient(timeout=5) as http:
        for url in urls:
            while "ampmesh_token_invalidations_listening 1.0" not in (await http.get(url)).text:
                assert time.monotonic() < deadline, f"{url}: the shard never listened again"
                await asyncio.sleep(0.5)


@pytest.mark.parametrize("how", ["stopped", "killed"])
async def test_postgresql_restarted_calls_are_unavailable_meanwhile_and_succeed_after(
    stack: Stack, how: str
) -> None:
    postgres = component(stack, "postgres")
    project, connection_id = str(uuid.uuid4()), f"restart-{uuid.uuid4()}"
    context = tm.ConnectionContext(
        project_id=project, connection_id=connection_id, provider="anthropic"
    )
    request = tm.GetTokenRequest(connection_id=connection_id, project_id=project)
    async with (
        token_manager_channel(stack.endpoints["token-manager"], stack.credentials("api")) as api,
        admin_client(stack) as admin,
    ):
        edge = Stub(api)
        await edge.StoreCredentials(
            tm.StoreCredentialsRequest(connection=context, credentials=api_key(connection_id, 1)),
            metadata=hashed(connection_id),
        )
        assert (await admin.get("/v1/projects")).status_code == 200
        await (postgres.stop() if how == "stopped" else kill_postgres(stack, postgres))
        try:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await edge.GetToken(request)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
            listed = await admin.get("/v1/projects")
            assert listed.status_code == 503, listed.text
        finally:
            await (postgres.start() if how == "stopped" else stack.mesh.restart_process("postgres"))

        # The first calls after the start may still meet it recovering; then each succeeds.
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = await edge.GetToken(request)
                break
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
                assert time.monotonic() < deadline, "token calls never succeeded again"
                await asyncio.sleep(0.5)
        assert reply.token.token == f"{connection_id}#1"
        for _ in range(20):
            assert (await edge.GetToken(request)).token.token == f"{connection_id}#1"
        while (listed := await admin.get("/v1/projects")).status_code != 200:
            assert listed.status_code == 503, listed.text
            assert time.monotonic() < deadline, "api calls never succeeded again"
            await asyncio.sleep(0.5)

        # A change now is announced on the bus: the token-manager's outbox relay lived.
        await edge.StoreCredentials(
            tm.StoreCredentialsRequest(
                connection=context, credentials=api_key(connection_id, 2), replace=True
            ),
            metadata=hashed(connection_id),
        )
        assert (await edge.GetToken(request)).token.token == f"{connection_id}#2"
        database = await asyncpg.connect(database_url(stack))
        try:
            while await database.fetchval(
                "SELECT count(*) FROM event_outbox WHERE source = 'token-manager' "
                "AND published_at IS NULL AND created_at > now() - interval '2 minutes'"
            ):
                assert time.monotonic() < deadline + 30, "the relay never published"
                await asyncio.sleep(0.5)
        finally:
            await database.close()
        await edge.DeleteCredentials(
            tm.DeleteCredentialsRequest(connection_id=connection_id, project_id=project)
        )
    # The shards serve from memory again only once they hear changes again (they back off
    # up to 5 s between tries): the tests after this one expect a mesh back to normal.
    await every_shard_listening(stack, patience=30)
