"""The token-manager's degraded modes, on in-process shards over the stack's PostgreSQL
server and Redis: a change on one shard reaches every shard's memory at once; a shard
that lost the channel those changes come on forgets its memory; Redis stopped is a
slower path through PostgreSQL, never a failure, and what Redis kept across the outage is
never served for a connection changed meanwhile."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
import redis.asyncio
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

from services.runtime.channels import CONNECTION_ID_HEADER
from services.runtime.identity import AccessPolicy
from services.runtime.secretbox import keyring_from_settings
from services.runtime.tls import ServiceCredentials
from services.token_manager.__main__ import CALLERS, open_services
from services.token_manager.store import associated_data, redis_key
from tests.support.probe import dial, serving
from tests.support.stack import Stack, component
from tests.support.token_manager import OLD_KEYS, database_url, shard_settings

CredsFor = Callable[[str], ServiceCredentials]
Stub = tm_grpc.TokenManagerServiceStub

PROJECT = str(uuid.uuid4())


@asynccontextmanager
async def a_shard(stack: Stack, creds_for: CredsFor, name: str) -> AsyncIterator[Stub]:
    async with (
        open_services(shard_settings(stack, shard_name=name)) as services,
        serving(
            creds_for("token-manager"), list(services), policy=AccessPolicy.allow_only(*CALLERS)
        ) as server,
        dial(server, creds_for("api")) as channel,
    ):
        yield tm_grpc.TokenManagerServiceStub(channel)


def hashed(connection_id: str) -> tuple[tuple[str, str], ...]:
    return ((CONNECTION_ID_HEADER, connection_id),)


def a_connection() -> tm.ConnectionContext:
    return tm.ConnectionContext(
        project_id=PROJECT, connection_id=f"degraded-{uuid.uuid4()}", provider="anthropic"
    )


async def store(stub: Stub, connection: tm.ConnectionContext, key: str, **kw: Any) -> None:
    request = tm.StoreCredentialsRequest(
        connection=connection,
        credentials=tm.Credentials(api_key=tm.ApiKeyCredentials(key=key)),
        **kw,
    )
    await stub.StoreCredentials(request, metadata=hashed(connection.connection_id))


async def token(stub: Stub, connection_id: str) -> tuple[str, int]:
    reply = await stub.GetToken(
        tm.GetTokenRequest(connection_id=connection_id, project_id=PROJECT),
        metadata=hashed(connection_id),
    )
    return reply.token.token, reply.source


async def test_a_replacement_on_one_shard_reaches_the_other_shards_memory_at_once(
    stack: Stack, creds_for: CredsFor
) -> None:
    connection = a_connection()
    async with (
        a_shard(stack, creds_for, "token-manager-a") as first,
        a_shard(stack, creds_for, "token-manager-b") as second,
    ):
        await store(first, connection, "key-1")
        assert await token(second, connection.connection_id) == ("key-1", tm.TOKEN_SOURCE_REDIS)
        # The second shard holds it in memory now (for up to a minute, left alone)…
        assert await token(second, connection.connection_id) == ("key-1", tm.TOKEN_SOURCE_MEMORY)
        for n in range(2, 6):
            await store(first, connection, f"key-{n}", replace=True)
            # …and never serves it once the first shard has replaced it.
            assert (await token(second, connection.connection_id))[0] == f"key-{n}"
        delete = tm.DeleteCredentialsRequest(
            connection_id=connection.connection_id, project_id=PROJECT
        )
        await first.DeleteCredentials(delete, metadata=hashed(connection.connection_id))
        with pytest.raises(Exception, match="NOT_FOUND"):
            await token(second, connection.connection_id)


async def listener_pid(url: str, shard: str) -> int | None:
    admin = await asyncpg.connect(url)
    try:
        pid: int | None = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            f"{shard} invalidations",
        )
        return pid
    finally:
        await admin.close()


async def test_a_shard_that_lost_the_change_channel_forgets_its_memory(
    stack: Stack, creds_for: CredsFor
) -> None:
    connection, url = a_connection(), database_url(stack)
    async with a_shard(stack, creds_for, "token-manager-deaf") as shard:
        await store(shard, connection, "before")
        assert await token(shard, connection.connection_id) == ("before", tm.TOKEN_SOURCE_MEMORY)
        # A change whose notification this shard never gets: the row rewritten under it
        # (and its Redis copy gone), as if it had changed while the shard was not
        # listening.
        box = keyring_from_settings(OLD_KEYS)
        sealed = box.seal(
            tm.Credentials(api_key=tm.ApiKeyCredentials(key="after")).SerializeToString(),
            associated_data(connection.connection_id),
        )
        admin = await asyncpg.connect(url)
        cache = redis.asyncio.Redis.from_url(
            component(stack, "redis").service_env()["AMPMESH_REDIS_URL"]
        )
        try:
            await admin.execute(
                "UPDATE connection_credentials SET credentials_sealed = $2, "
                "credentials_key_id = $3, version = version + 1 WHERE connection_id = $1",
                connection.connection_id,
                sealed.data,
                sealed.key_id,
            )
            async with cache:
                await cache.delete(redis_key(connection.connection_id))
            # Unheard, the shard's memory still answers the old key.
            assert (await token(shard, connection.connection_id))[0] == "before"
            # PostgreSQL ends the shard's listening session (as a restart would).
            lost = await listener_pid(url, "token-manager-deaf")
            assert lost is not None
            await admin.execute("SELECT pg_terminate_backend($1)", lost)
        finally:
            await admin.close()
        deadline = time.monotonic() + 30
        while (again := await listener_pid(url, "token-manager-deaf")) in (None, lost):
            assert time.monotonic() < deadline, "the shard never listened again"
            await asyncio.sleep(0.1)
        assert again != lost
        # It could not know what it missed: its memory is gone, PostgreSQL answers.
        assert await token(shard, connection.connection_id) == ("after", tm.TOKEN_SOURCE_POSTGRES)


async def test_with_redis_stopped_tokens_come_from_postgresql_and_nothing_stale_after(
    stack: Stack, creds_for: CredsFor
) -> None:
    changed, untouched, created = a_connection(), a_connection(), a_connection()
    redis_server = component(stack, "redis")
    async with a_shard(stack, creds_for, "token-manager-w") as writer:
        await store(writer, changed, "old")
        await store(writer, untouched, "kept")
        await redis_server.stop()
        try:
            # Stores and replaces succeed with Redis down (the debt stays for later)…
            await store(writer, changed, "new", replace=True)
            await store(writer, created, "fresh")
            # …a shard started meanwhile serves from PostgreSQL, call after call.
            async with a_shard(stack, creds_for, "token-manager-r") as reader:
                for _ in range(20):
                    for c, key in ((changed, "new"), (untouched, "kept"), (created, "fresh")):
                        assert (await token(reader, c.connection_id))[0] == key
                first = await token(reader, untouched.connection_id)
            assert first == ("kept", tm.TOKEN_SOURCE_MEMORY)
        finally:
            await redis_server.start()
        cache = redis.asyncio.Redis.from_url(redis_server.service_env()["AMPMESH_REDIS_URL"])
        async with cache:
            # Redis came back with what it held before (its append-only file)…
            assert await cache.exists(redis_key(changed.connection_id))
            # …which no shard serves: a fresh one finds the debt and reads PostgreSQL,
            # until the debt is settled and Redis holds the new credentials.
            sources: list[int] = []
            deadline = time.monotonic() + 30
            while not sources or sources[-1] != tm.TOKEN_SOURCE_REDIS:
                assert time.monotonic() < deadline, f"Redis never served again: {sources}"
                async with a_shard(stack, creds_for, "token-manager-r2") as fresh:
                    key, source = await token(fresh, changed.connection_id)
                assert key == "new"
                sources.append(source)
                await asyncio.sleep(0.2)
            # The untouched connection's copy in Redis was right all along.
            async with a_shard(stack, creds_for, "token-manager-r3") as fresh:
                assert await token(fresh, untouched.connection_id) == (
                    "kept",
                    tm.TOKEN_SOURCE_REDIS,
                )
