"""What the token-manager tests share: the keyrings before and after a rotation, and the
settings of an in-process shard on the database of these tests (made by the conftest's
`database` fixture, which records it here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.runtime.secretbox import SecretBox
from services.token_manager.settings import TokenManagerSettings
from tests.support.stack import Stack, component

# Two keyrings: the first as deployed, the second after a rotation (new key first, old kept).
OLD_KEYS = SecretBox.new_spec("old")
NEW_KEYS = SecretBox.new_spec("new") + "," + OLD_KEYS


# The database of these tests, per stack (made by the `database` fixture).
DATABASES: dict[Path, str] = {}


def database_url(stack: Stack) -> str:
    return DATABASES[stack.home]


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
