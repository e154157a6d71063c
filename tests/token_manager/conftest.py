"""A token-manager shard in-process over mTLS, on the session stack's PostgreSQL and Redis
(the schema migrated by the launcher), with a keyring of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

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


def component(stack: Stack, name: str) -> Any:
    return next(c for c in stack.mesh.components if c.name == name)


def shard_settings(stack: Stack, keys: str = OLD_KEYS, **extra: Any) -> TokenManagerSettings:
    return TokenManagerSettings.model_validate(
        {
            "service_name": "token-manager",
            "shard_name": "token-manager-7",
            "database_url": component(stack, "postgres").database_url,
            "redis_url": component(stack, "redis").service_env()["AMPMESH_REDIS_URL"],
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
