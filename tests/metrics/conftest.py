"""A project of the session's stack with known activity, for the metrics tests.

The project, its key and a stranger project are made through the REST API; the activity
is seeded by tests/metrics/metrics_world.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.metrics.metrics_world import World, seed
from tests.support.control_plane import (
    admin_client,
    create_api_key,
    create_project,
    database_url,
)
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=4) as pool:
        yield pool


@pytest.fixture(scope="module")
async def world(stack: Stack, pool: asyncpg.Pool) -> World:
    async with admin_client(stack) as admin:
        project = await create_project(admin, "metrics", "Metrics")
        key = await create_api_key(admin, project["name"], ["full"], label="metrics")
        stranger = await create_project(admin, "metrics-stranger", "Stranger")
        stranger_key = await create_api_key(admin, stranger["name"], ["full"])
    seeded_at = datetime.now(UTC)
    async with pool.acquire() as connection:
        sync, other = await seed(connection, uuid.UUID(project["id"]))
    return World(project["id"], project["name"], key, stranger_key, sync, other, seeded_at)
