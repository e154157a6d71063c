"""A token-manager shard in-process over mTLS, on the session stack's PostgreSQL server
and Redis, with a keyring and a database of its own.

Its own database (migrated here) because these tests rotate keys and re-seal every row of
connection_credentials: on the stack's database they would meet the rows the end-to-end
tests' connections left, sealed under the stack's keyring."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

from services.runtime.database import migrate
from services.runtime.identity import AccessPolicy
from services.runtime.secretbox import SecretBox
from services.runtime.server import MeshServer
from services.runtime.tls import ServiceCredentials
from services.token_manager.__main__ import CALLERS, TokenManagerSettings, open_services
from tests.conftest import Stack
from tests.runtime.probe import dial, serving

CredsFor = Callable[[str], ServiceCredentials]

# Two keyrings: the first as deployed, the second after a rotation (new key first, old kept).
OLD_KEYS = SecretBox.new_spec("old")
NEW_KEYS = SecretBox.new_spec("new") + "," + OLD_KEYS


# The database of these tests, per stack (made by the `database` fixture).
_DATABASES: dict[Path, str] = {}


def component(stack: Stack, name: str) -> Any:
    return next(c for c in stack.mesh.components if c.name == name)


def database_url(stack: Stack) -> str:
    return _DATABASES[stack.home]


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
    _DATABASES[stack.home] = url
    yield url
    del _DATABASES[stack.home]


def shard_settings(stack: Stack, keys: str = OLD_KEYS, **extra: Any) -> TokenManagerSettings:
    pubsub = component(stack, "pubsub").service_env()
    return TokenManagerSettings.model_validate(
        {
            "service_name": "token-manager",
            "shard_name": "token-manager-7",
            "database_url": database_url(stack),
            "redis_url": component(stack, "redis").service_env()["AMPMESH_REDIS_URL"],
            # Events go through the stack's emulator, as a shard of the mesh's would.
            "pubsub_emulator_host": pubsub["AMPMESH_PUBSUB_EMULATOR_HOST"],
            "pubsub_project": pubsub["AMPMESH_PUBSUB_PROJECT"],
            "secret_keys": keys,
            **extra,
        }
    )


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
