"""A Temporal client of the session stack's server (namespace ampmesh), for tests that run
their own workers on task queues of their own beside the mesh's; a pool on the stack's
database, and subscriptions of the test's own on the read topics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from temporalio.client import Client

from services.runtime.pubsub_topology import emulator_subscriber
from tests.support.control_plane import database_url
from tests.support.reads import Watch
from tests.support.stack import Stack


@pytest.fixture(scope="session")
async def temporal(stack: Stack) -> Client:
    return await Client.connect(stack.endpoints["temporal"], namespace="ampmesh")


@pytest.fixture
def task_queue() -> str:
    """A queue no mesh worker polls: only the test's own worker takes its tasks."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url(stack), min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def watches(stack: Stack) -> Iterator[dict[str, Watch]]:
    pubsub = next(c for c in stack.mesh.components if c.name == "pubsub")
    project = pubsub.service_env()["AMPMESH_PUBSUB_PROJECT"]
    subscriber = emulator_subscriber(stack.endpoints["pubsub"])
    made = {}
    for topic in ("ampmesh-read-results", "ampmesh-operations", "ampmesh-notifications"):
        name = f"projects/{project}/subscriptions/test-{uuid.uuid4().hex[:12]}"
        subscriber.create_subscription(name=name, topic=f"projects/{project}/topics/{topic}")
        made[topic] = Watch(subscriber, name)
    yield made
    for watch in made.values():
        subscriber.delete_subscription(subscription=watch.name)
