"""Messenger in-process on the session stack's PostgreSQL server and Pub/Sub emulator,
with a database of its own (migrated here) so the mesh's own messenger, which polls the
stack's database, never takes these tests' deliveries; and a receiver on a real socket."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.messenger.__main__ import open_messenger
from services.messenger.consumers import Consumers
from services.runtime.database import migrate
from tests.support.messenger import Project, Running, settings_for
from tests.support.probe import dial, serving
from tests.support.stack import Stack, component
from tests.support.webhooks import Receiver, receiving


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
