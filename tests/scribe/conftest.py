"""Scribe's handlers in-process, on the session stack's PostgreSQL.

Each test gets a project and an installation of its own (inserted as the control plane
would store them), so the mesh's own scribe, which consumes Pub/Sub meanwhile, never
meets these rows and counters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from ampmesh.events.v1.envelope_pb2 import Envelope
from google.protobuf.message import Message

from services.runtime.events import new_envelope
from services.runtime.subscriber import Delivery
from services.scribe.ingest import Ingestion
from tests.conftest import Stack
from tests.e2e.control_plane import database_url

OPERATIONS = "ampmesh-operations.scribe"
LOGS = "ampmesh-logs.scribe"
EPOCH = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Installation:
    project_id: str
    integration_id: str
    id: str


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


def envelope(project_id: str, key: str, when: datetime = EPOCH, **payload: Message) -> Envelope:
    # mypy cannot tell the payload keyword from new_envelope's own str keywords.
    built = new_envelope(
        project_id=project_id,
        idempotency_key=key,
        source="test",
        **payload,  # type: ignore[arg-type]
    )
    built.meta.time.FromDatetime(when)
    return built


def delivery(
    data: Envelope | bytes,
    subscription: str = OPERATIONS,
    attempt: int | None = 1,
    **attributes: Any,
) -> Delivery:
    """A Pub/Sub message as the consumer hands it over (a new message id each time, as a
    republish would have)."""
    raw = data if isinstance(data, bytes) else data.SerializeToString()
    return Delivery(
        subscription=subscription,
        message_id=uuid.uuid4().hex,
        data=raw,
        attributes={k: str(v) for k, v in attributes.items()},
        delivery_attempt=attempt,
    )


def later(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)
