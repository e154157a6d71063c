"""Scribe's handlers in-process, on the session stack's PostgreSQL.

Each test gets a project and an installation of its own (inserted as the control plane
would store them), so the mesh's own scribe, which consumes Pub/Sub meanwhile, never
meets these rows and counters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.scribe.ingest import Ingestion
from tests.support.control_plane import database_url
from tests.support.scribe import Installation
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=6) as pool:
        yield pool


@pytest.fixture
async def installation(stack: Stack, pool: asyncpg.Pool) -> Installation:
    project = await pool.fetchval(
        "INSERT INTO projects (org_id, name, app_name) VALUES ($1, $2, 'Scribe') RETURNING id",
        uuid.UUID(stack.org_id),
        f"scribe-{uuid.uuid4().hex[:10]}",
    )
    integration = await pool.fetchval(
        "INSERT INTO integrations (project_id, name, provider) VALUES ($1, 'sync', 'hubspot') "
        "RETURNING id",
        project,
    )
    installation = await pool.fetchval(
        "INSERT INTO installations (project_id, integration_id, group_ref) "
        "VALUES ($1, $2, 'acme') RETURNING id",
        project,
        integration,
    )
    return Installation(str(project), str(integration), str(installation))


@pytest.fixture
def ingestion(pool: asyncpg.Pool) -> Ingestion:
    return Ingestion.standard(pool)
