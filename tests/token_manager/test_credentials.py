"""Credential storage on in-process shards over the stack's PostgreSQL and Redis: store,
get from each tier, replace, delete, validation, refresh not built yet, nothing secret at
rest, and re-sealing under a rotated keyring."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
import redis.asyncio
from ampmesh.events.v1 import connection_events_pb2 as events
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc
from google.protobuf import timestamp_pb2

from services.runtime.channels import CONNECTION_ID_HEADER
from services.runtime.entrypoint import StartupError
from services.runtime.errors import status_from_error, unpack_details
from services.runtime.identity import AccessPolicy
from services.runtime.secretbox import SecretBox
from services.runtime.tls import ServiceCredentials
from services.token_manager.__main__ import CALLERS, open_services
from services.token_manager.reseal import reseal
from services.token_manager.store import redis_key
from tests.support.control_plane import database_dump
from tests.support.probe import dial, serving
from tests.support.stack import Stack, component
from tests.support.token_manager import NEW_KEYS, OLD_KEYS, database_url, shard_settings

CredsFor = Callable[[str], ServiceCredentials]
Stub = tm_grpc.TokenManagerServiceStub

PROJECT = str(uuid.uuid4())


@asynccontextmanager
async def another_shard(
    stack: Stack, creds_for: CredsFor, keys: str = OLD_KEYS, identity: str = "api"
) -> AsyncIterator[Stub]:
    """A fresh shard (empty memory) on the same PostgreSQL and Redis, and a client of it."""
    async with (
        open_services(shard_settings(stack, keys)) as services,
        serving(
            creds_for("token-manager"), list(services), policy=AccessPolicy.allow_only(*CALLERS)
        ) as server,
        dial(server, creds_for(identity)) as channel,
    ):
        yield tm_grpc.TokenManagerServiceStub(channel)


def hashed(connection_id: str) -> tuple[tuple[str, str], ...]:
    return ((CONNECTION_ID_HEADER, connection_id),)


def new_connection(provider: str = "anthropic") -> tm.ConnectionContext:
    return tm.ConnectionContext(
        project_id=PROJECT, connection_id=f"conn-{uuid.uuid4()}", provider=provider
    )


async def store(
    stub: Stub, connection: tm.ConnectionContext, credentials: tm.Credentials, **kw: Any
) -> tm.StoredCredentials:
    request = tm.StoreCredentialsRequest(connection=connection, credentials=credentials, **kw)
    return await stub.StoreCredentials(request, metadata=hashed(connection.connection_id))


async def get(stub: Stub, connection_id: str, **kw: Any) -> tm.GetTokenResponse:
    request = tm.GetTokenRequest(connection_id=connection_id, project_id=PROJECT, **kw)
    return await stub.GetToken(request, metadata=hashed(connection_id))


def api_key(key: str) -> tm.Credentials:
    return tm.Credentials(api_key=tm.ApiKeyCredentials(key=key))


def oauth(access: str, refresh: str, expires_in: timedelta) -> tm.Credentials:
    expire = timestamp_pb2.Timestamp()
    expire.FromDatetime(datetime.now(UTC) + expires_in)
    return tm.Credentials(
        oauth2_authorization_code=tm.OAuth2AuthorizationCodeCredentials(
            access_token=tm.OAuth2Token(token=access, expire_time=expire),
            refresh_token=tm.OAuth2Token(token=refresh),
            scopes=["crm.read"],
            token_type="Bearer",
        )
    )


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = status_from_error(error)
    assert status is not None
    return [
        v.field
        for detail in unpack_details(status)
        for v in getattr(detail, "field_violations", [])
    ]


def reason(error: grpc.aio.AioRpcError) -> str:
    status = status_from_error(error)
    assert status is not None
    return next(d.reason for d in unpack_details(status) if hasattr(d, "reason"))


async def test_a_stored_key_is_served_from_memory_then_redis_then_postgres(
    stack: Stack, stub: Stub, creds_for: CredsFor
) -> None:
    connection, key = new_connection(), secrets.token_hex(16)
    stored = await store(stub, connection, api_key(key))
    assert (stored.connection_id, stored.project_id, stored.provider) == (
        connection.connection_id,
        PROJECT,
        "anthropic",
    )
    assert stored.auth_scheme == events.AUTH_SCHEME_API_KEY
    assert stored.encryption_key_id == "old"

    first = await get(stub, connection.connection_id)
    assert first.source == tm.TOKEN_SOURCE_MEMORY
    assert first.token.token == key
    # The catalog says anthropic takes its key in the x-api-key header, bare.
    assert [(a.location, a.name, a.value) for a in first.token.attachments] == [
        (tm.ATTACHMENT_LOCATION_HEADER, "x-api-key", key)
    ]
    assert not first.HasField("credentials")

    async with another_shard(stack, creds_for) as other:
        assert (await get(other, connection.connection_id)).source == tm.TOKEN_SOURCE_REDIS
        assert (await get(other, connection.connection_id)).source == tm.TOKEN_SOURCE_MEMORY
    cache = redis.asyncio.Redis.from_url(
        component(stack, "redis").service_env()["AMPMESH_REDIS_URL"]
    )
    async with cache:
        assert await cache.delete(redis_key(connection.connection_id)) == 1
        async with another_shard(stack, creds_for) as third:
            from_postgres = await get(third, connection.connection_id)
        assert from_postgres.source == tm.TOKEN_SOURCE_POSTGRES
        assert from_postgres.token.token == key
        assert await cache.ttl(redis_key(connection.connection_id)) > 0  # cached again


async def test_query_keys_and_basic_auth_attach_as_the_catalog_says(stub: Stub) -> None:
    hunter, key = new_connection("hunter"), secrets.token_hex(8)
    await store(stub, hunter, api_key(key))
    token = (await get(stub, hunter.connection_id)).token
    assert [(a.location, a.name, a.value) for a in token.attachments] == [
        (tm.ATTACHMENT_LOCATION_QUERY, "api_key", key)
    ]
    basic = new_connection("hubspot")
    await store(stub, basic, tm.Credentials(basic=tm.BasicCredentials(username="u", password="p")))
    token = (await get(stub, basic.connection_id)).token
    assert token.token == "dTpw"  # base64("u:p")
    assert [(a.name, a.value) for a in token.attachments] == [("Authorization", "Basic dTpw")]


async def test_replace_rotates_and_create_refuses_to_overwrite(stub: Stub) -> None:
    connection = new_connection()
    await store(stub, connection, api_key("first-key"))
    with pytest.raises(grpc.aio.AioRpcError) as exists:
        await store(stub, connection, api_key("second-key"))
    assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await get(stub, connection.connection_id)).token.token == "first-key"

    replaced = await store(stub, connection, api_key("second-key"), replace=True)
    assert replaced.update_time.ToDatetime() >= replaced.create_time.ToDatetime()
    assert (await get(stub, connection.connection_id)).token.token == "second-key"

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await store(stub, new_connection(), api_key("k"), replace=True)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_delete_removes_the_credentials_everywhere(
    stack: Stack, stub: Stub, creds_for: CredsFor
) -> None:
    connection = new_connection()
    await store(stub, connection, api_key("doomed"))
    delete = tm.DeleteCredentialsRequest(connection_id=connection.connection_id, project_id=PROJECT)
    await stub.DeleteCredentials(delete, metadata=hashed(connection.connection_id))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await get(stub, connection.connection_id)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    async with another_shard(stack, creds_for) as other:
        with pytest.raises(grpc.aio.AioRpcError) as gone_elsewhere:
            await get(other, connection.connection_id)
    assert gone_elsewhere.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.DeleteCredentials(delete, metadata=hashed(connection.connection_id))
    assert again.value.code() == grpc.StatusCode.NOT_FOUND


async def test_another_project_sees_no_credentials(stub: Stub) -> None:
    connection = new_connection()
    await store(stub, connection, api_key("mine"))
    request = tm.GetTokenRequest(
        connection_id=connection.connection_id, project_id=str(uuid.uuid4())
    )
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.GetToken(request, metadata=hashed(connection.connection_id))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND


async def test_incomplete_requests_name_every_bad_field(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as no_kind:
        await store(
            stub,
            tm.ConnectionContext(connection_id="c", project_id="nope", provider="no-such"),
            tm.Credentials(),
        )
    assert no_kind.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(no_kind.value) == [
        "body.connection.project_id",
        "body.connection.provider",
        "body.credentials",
    ]
    with pytest.raises(grpc.aio.AioRpcError) as no_key:
        await store(stub, new_connection(), api_key(""))
    assert violations(no_key.value) == ["body.credentials.api_key.key"]
    with pytest.raises(grpc.aio.AioRpcError) as no_secret:
        await store(
            stub,
            new_connection(),
            tm.Credentials(oauth2_client_credentials=tm.OAuth2ClientCredentials(client_id="id")),
        )
    assert violations(no_secret.value) == [
        "body.credentials.oauth2_client_credentials.client_secret"
    ]
    with pytest.raises(grpc.aio.AioRpcError) as unhashed:
        connection = new_connection()
        await stub.StoreCredentials(
            tm.StoreCredentialsRequest(connection=connection, credentials=api_key("k")),
            metadata=hashed("someone-else"),
        )
    assert violations(unhashed.value) == [f"header.{CONNECTION_ID_HEADER}"]


async def test_a_token_nothing_can_renew_turns_the_connection_bad(stub: Stub) -> None:
    # Imported tokens without a provider app: expired, nothing can refresh them. (Real
    # refreshes against the provider sandbox: tests/e2e/test_token_refresh.py.)
    expired, fresh = new_connection("hubspot"), new_connection("hubspot")
    await store(stub, expired, oauth("old-access", "refresh-1", timedelta(minutes=-1)))
    await store(stub, fresh, oauth("new-access", "refresh-2", timedelta(hours=1)))

    as_stored = await get(stub, expired.connection_id, refresh=tm.REFRESH_MODE_NEVER)
    assert (as_stored.token.token, as_stored.refreshed) == ("old-access", False)
    for mode in (tm.REFRESH_MODE_UNSPECIFIED, tm.REFRESH_MODE_IF_EXPIRED):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await get(stub, expired.connection_id, refresh=mode)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(refused.value) == "BAD_CREDENTIALS"
        assert "reconnect" in (refused.value.details() or "")
    after = await get(stub, expired.connection_id, refresh=tm.REFRESH_MODE_NEVER)
    assert after.stored.status == events.CONNECTION_STATUS_BAD_CREDENTIALS

    # A valid token is served as stored, with the catalog's attachment.
    valid = await get(stub, fresh.connection_id)
    assert [(a.name, a.value) for a in valid.token.attachments] == [
        ("Authorization", "Bearer new-access")
    ]
    assert valid.stored.has_refresh_token and list(valid.token.scopes) == ["crm.read"]
    assert valid.stored.status == events.CONNECTION_STATUS_CREATED
    # Asked to stay valid longer than the token lives: a refresh is needed, and fails.
    with pytest.raises(grpc.aio.AioRpcError) as too_short:
        await get(stub, fresh.connection_id, min_validity={"seconds": 7200})
    assert reason(too_short.value) == "BAD_CREDENTIALS"


async def test_only_the_api_may_read_the_credentials_themselves(
    stack: Stack, stub: Stub, creds_for: CredsFor
) -> None:
    connection = new_connection()
    await store(stub, connection, api_key("for-the-api"))
    full = await get(stub, connection.connection_id, include_credentials=True)
    assert full.credentials.api_key.key == "for-the-api"
    async with another_shard(stack, creds_for, identity="temporal") as temporal:
        assert (await get(temporal, connection.connection_id)).token.token == "for-the-api"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await get(temporal, connection.connection_id, include_credentials=True)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_other_identities_cannot_store_or_read(stack: Stack, creds_for: CredsFor) -> None:
    async with another_shard(stack, creds_for, identity="messenger") as messenger:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await store(messenger, new_connection(), api_key("k"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_nothing_secret_is_stored_in_plaintext(stack: Stack, stub: Stub) -> None:
    access, refresh, key = (f"secret-{secrets.token_hex(12)}" for _ in range(3))
    oauth_connection, key_connection = new_connection("hubspot"), new_connection()
    await store(stub, oauth_connection, oauth(access, refresh, timedelta(hours=1)))
    await store(stub, key_connection, api_key(key))
    assert (await get(stub, key_connection.connection_id)).token.token == key

    dump = await database_dump(stack, database_url(stack))
    assert oauth_connection.connection_id in dump  # the rows are there…
    cache = redis.asyncio.Redis.from_url(
        component(stack, "redis").service_env()["AMPMESH_REDIS_URL"]
    )
    async with cache:
        cached = [
            await cache.get(redis_key(c.connection_id)) for c in (oauth_connection, key_connection)
        ]
    assert all(cached)
    for secret in (access, refresh, key):  # …their secrets are not
        assert secret not in dump
        assert all(secret.encode() not in value for value in cached if value)


async def test_reseal_moves_every_row_to_the_new_key_and_they_still_open(
    stack: Stack, stub: Stub, creds_for: CredsFor
) -> None:
    connection, key = new_connection(), secrets.token_hex(16)
    await store(stub, connection, api_key(key))  # sealed with "old"
    url = database_url(stack)
    redis_url = component(stack, "redis").service_env()["AMPMESH_REDIS_URL"]
    env = {
        **os.environ,
        "AMPMESH_DATABASE_URL": url,
        "AMPMESH_REDIS_URL": redis_url,
        "AMPMESH_SECRET_KEYS": NEW_KEYS,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.token_manager.reseal",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "with key 'new'" in out.decode()

    db = await asyncpg.connect(url)
    try:
        key_ids = {
            r["credentials_key_id"]
            for r in await db.fetch(
                "SELECT credentials_key_id FROM connection_credentials "
                "WHERE connection_id LIKE 'conn-%'"
            )
        }
    finally:
        await db.close()
    assert key_ids == {"new"}
    # A second pass has nothing left to do.
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        assert await reseal(pool, SecretBox.from_spec(NEW_KEYS)) == 0
    finally:
        await pool.close()
    # A shard that holds only the new key opens the re-sealed row (Redis was evicted, so it
    # comes from PostgreSQL).
    new_only = NEW_KEYS.split(",")[0]
    async with another_shard(stack, creds_for, keys=new_only) as rotated:
        reply = await get(rotated, connection.connection_id)
    assert (reply.source, reply.token.token) == (tm.TOKEN_SOURCE_POSTGRES, key)
    assert reply.stored.encryption_key_id == "new"


async def test_a_shard_that_cannot_reach_postgresql_does_not_start(stack: Stack) -> None:
    unreachable = "postgresql://ampmesh@127.0.0.1:1/ampmesh"
    with pytest.raises(StartupError, match=r"^cannot reach PostgreSQL: "):
        async with open_services(shard_settings(stack, database_url=unreachable)):
            pass
    # Redis is a cache: without it a shard starts, serving from PostgreSQL
    # (tests/token_manager/test_degraded.py).
    async with open_services(shard_settings(stack, redis_url="redis://127.0.0.1:1/0")):
        pass
    with pytest.raises(StartupError, match=r"^AMPMESH_SECRET_KEYS: "):
        async with open_services(shard_settings(stack, keys="not-a-keyring")):
            pass
