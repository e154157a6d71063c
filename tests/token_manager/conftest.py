"""A token-manager shard in-process over mTLS, on the session stack's PostgreSQL server
and Redis, with a keyring and a database of its own.

Its own database (migrated here) because these tests rotate keys and re-seal every row of
connection_credentials: on the stack's database they would meet the rows the end-to-end
tests' connections left, sealed under the stack's keyring."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

from services.runtime.database import migrate
from services.runtime.identity import AccessPolicy
from services.runtime.server import MeshServer
from services.runtime.tls import ServiceCredentials
from services.token_manager.__main__ import CALLERS, open_services
from tests.support.probe import dial, serving
from tests.support.stack import Stack, component
from tests.support.token_manager import DATABASES, shard_settings

CredsFor = Callable[[str], ServiceCredentials]


@pytest.fixture(scope="session", autouse=True)
async def database(stack: Stack) -> AsyncIterator[str]:
    server_url = component(stack, "postgres").database_url
    name = f"token_manager_tests_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    await migrate(url)
    DATABASES[stack.home] = url
    yield url
    del DATABASES[stack.home]


@pytest.fixture
async def shard(stack: Stack, creds_for: CredsFor) -> AsyncIterator[MeshServer]:
    async with (
        open_services(shard_settings(stack)) as services,
        serving(
            creds_for("token-manager"), list(services), policy=AccessPolicy.allow_only(*CALLERS)
        ) as server,
    ):
        yield server


@pytest.fixture
async def stub(
    shard: MeshServer, creds_for: CredsFor
) -> AsyncIterator[tm_grpc.TokenManagerServiceStub]:
    """A client of the shard with the api identity."""
    async with dial(shard, creds_for("api")) as channel:
        yield tm_grpc.TokenManagerServiceStub(channel)
