"""Messenger in-process on the session stack's PostgreSQL server and Pub/Sub emulator,
with a database of its own (migrated here) so the mesh's own messenger, which polls the
stack's database, never takes these tests' deliveries; and a receiver on a real socket."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import pytest

from services.domain.destination_secrets import seal_secrets
from services.messenger.__main__ import open_messenger
from services.messenger.consumers import Consumers
from services.messenger.deliveries import Deliverer
from services.messenger.service import Messenger
from services.messenger.settings import MessengerSettings
from services.runtime.database import migrate
from services.runtime.secretbox import SecretBox
from tests.conftest import Stack
from tests.messenger.receiver import Receiver, receiving

KEYS = SecretBox.new_spec("messenger")
BOX = SecretBox.from_spec(KEYS)


def component(stack: Stack, name: str) -> Any:
    return next(c for c in stack.mesh.components if c.name == name)


@pytest.fixture(scope="session")
async def database(stack: Stack) -> str:
    server_url = component(stack, "postgres").database_url
    name = f"messenger_tests_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    await migrate(url)
    return url


@pytest.fixture(scope="session")
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database, min_size=1, max_size=8) as pool:
        yield pool


def settings_for(stack: Stack, database: str, **extra: Any) -> MessengerSettings:
    pubsub = component(stack, "pubsub").service_env()
    return MessengerSettings.model_validate(
        {
            "service_name": "messenger",
            "database_url": database,
            "pubsub_emulator_host": pubsub["AMPMESH_PUBSUB_EMULATOR_HOST"],
            "pubsub_project": pubsub["AMPMESH_PUBSUB_PROJECT"],
            "secret_keys": KEYS,
            "allow_loopback_webhooks": True,
            "refuse_private_destinations": False,
            "backoff_first": 0.2,
            "backoff_cap": 0.5,
            "poll_interval": 0.1,
            "lease": 2.0,
            **extra,
        }
    )


@dataclass
class Project:
    id: str
    pool: asyncpg.Pool

    async def destination(
        self, url: str, headers: dict[str, str] | None = None, name: str = ""
    ) -> tuple[str, str]:
        """A webhook destination of the project: (id, whsec_ secret)."""
        destination_id = str(uuid.uuid4())
        secret = "whsec_" + __import__("base64").b64encode(uuid.uuid4().bytes * 2).decode()
        sealed = seal_secrets(BOX, destination_id, {"webhookSigningKey": secret})
        await self.pool.execute(
            "INSERT INTO destinations (id, project_id, name, type, metadata, secrets_sealed, "
            "secrets_key_id) VALUES ($1, $2, $3, 'webhook', $4::jsonb, $5, $6)",
            uuid.UUID(destination_id),
            uuid.UUID(self.id),
            name or f"hook-{destination_id[:8]}",
            orjson.dumps({"url": url, "headers": headers or {}}).decode(),
            sealed.data,
            sealed.key_id,
        )
        return destination_id, secret


@pytest.fixture
async def project(pool: asyncpg.Pool) -> Project:
    org = await pool.fetchval("INSERT INTO orgs (label) VALUES ('messenger') RETURNING id")
    project_id = await pool.fetchval(
        "INSERT INTO projects (org_id, name, app_name) VALUES ($1, $2, 'Messenger') RETURNING id",
        org,
        f"messenger-{uuid.uuid4().hex[:8]}",
    )
    return Project(str(project_id), pool)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


@dataclass
class Running:
    messenger: Messenger
    deliverer: Deliverer
    consumers: Consumers


MessengerFactory = Callable[..., Any]


@pytest.fixture
async def running(stack: Stack, database: str) -> AsyncIterator[Running]:
    async with open_messenger(settings_for(stack, database), consume_events=False) as (
        servicer,
        deliverer,
    ):
        yield Running(servicer, deliverer, Consumers(deliverer.pool, deliverer))


@pytest.fixture
async def stub(running: Running, creds_for: Callable[[str], Any]) -> AsyncIterator[Any]:
    """A MessengerService client with the api identity, over mTLS."""
    from ampmesh.messenger.v1 import messenger_pb2, messenger_pb2_grpc

    from services.messenger.__main__ import CALLERS
    from services.runtime.identity import AccessPolicy
    from services.runtime.server import Service
    from tests.runtime.probe import dial, serving

    service = Service.from_servicer(
        messenger_pb2.DESCRIPTOR.services_by_name["MessengerService"],
        messenger_pb2_grpc.add_MessengerServiceServicer_to_server,
        running.messenger,
    )
    async with (
        serving(
            creds_for("messenger"), [service], policy=AccessPolicy.allow_only(*CALLERS)
        ) as server,
        dial(server, creds_for("api")) as channel,
    ):
        yield messenger_pb2_grpc.MessengerServiceStub(channel)
