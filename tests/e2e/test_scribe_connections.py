"""Scribe's connection history, end to end: connection events published on the bus reach
scribe through the emulator, set the connection's status the REST API shows, are recorded
once per idempotency key, and never let an older event overwrite a newer status."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from ampmesh.events.v1 import connection_events_pb2 as ce
from ampmesh.events.v1.envelope_pb2 import Envelope

from services.launcher.infra.pubsub_emulator import PROJECT
from services.runtime.envelopes import new_envelope
from services.runtime.events import EventBus
from tests.support.control_plane import admin_client, create_project, database_url, eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

# Bound of waiting for scribe: generous, and never an assertion about speed.


@pytest.fixture(scope="module")
async def project(admin: httpx.AsyncClient) -> dict[str, Any]:
    return await create_project(admin, "scribe", "Scribe")


@pytest.fixture
async def api(stack: Stack, project: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(stack, f"/v1/projects/{project['name']}") as http:
        yield http


@pytest.fixture(scope="module")
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=4) as pool:
        yield pool


@pytest.fixture(scope="module")
async def bus(stack: Stack, pool: asyncpg.Pool) -> AsyncIterator[EventBus]:
    async with EventBus.open(
        source="test-scribe", pool=pool, emulator_host=stack.endpoints["pubsub"], project=PROJECT
    ) as bus:
        yield bus


async def new_connection(api: httpx.AsyncClient) -> dict[str, Any]:
    created = await api.post(
        "/connections:generate",
        json={
            "provider": "openAI",  # takes an API key
            "groupRef": "acme",
            "groupName": "Acme Inc",
            "consumerRef": "user-1",
            "apiKey": f"sk-test-{uuid.uuid4().hex}",
        },
    )
    assert created.status_code == 201, created.text
    connection: dict[str, Any] = created.json()
    assert connection["status"] == "created"
    return connection


def info(connection: dict[str, Any], status: int) -> ce.ConnectionInfo:
    return ce.ConnectionInfo(
        connection_id=connection["id"],
        provider=connection["provider"],
        group_ref="acme",
        consumer_ref="user-1",
        auth_scheme=ce.AUTH_SCHEME_API_KEY,
        status=status,  # type: ignore[arg-type]
    )


def at(envelope: Envelope, when: datetime) -> Envelope:
    envelope.meta.time.FromDatetime(when)
    return envelope


async def status_of(api: httpx.AsyncClient, connection_id: str) -> str:
    response = await api.get(f"/connections/{connection_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def history(pool: asyncpg.Pool, connection_id: str) -> list[asyncpg.Record]:
    """The events these tests published about the connection (their keys start with its
    id), without the token-manager's own (its connection.created, keyed `connection/…`)."""
    return await pool.fetch(
        "SELECT idempotency_key, type, status, event_id, payload FROM connection_events"
        " WHERE connection_id = $1 AND starts_with(idempotency_key, $1 || '/')"
        " ORDER BY event_time",
        connection_id,
    )


async def test_connection_events_set_the_status_once_and_never_backwards(
    api: httpx.AsyncClient, project: dict[str, Any], pool: asyncpg.Pool, bus: EventBus
) -> None:
    connection = await new_connection(api)
    connection_id, project_id = connection["id"], project["id"]
    now = datetime.now(UTC)

    def error() -> Envelope:
        return at(
            new_envelope(
                project_id=project_id,
                idempotency_key=f"{connection_id}/error/1",
                source="token-manager",
                connection_error=ce.ConnectionError(
                    connection=info(connection, ce.CONNECTION_STATUS_BAD_CREDENTIALS),
                    kind=ce.CONNECTION_ERROR_KIND_INVALID_GRANT,
                    errors=["the provider refused the refresh token"],
                    provider_status_code=400,
                    provider_error="invalid_grant",
                    previous_status=ce.CONNECTION_STATUS_CREATED,
                ),
            ),
            now,
        )

    first = error()
    await bus.publish(first)

    async def is_bad() -> bool:
        return await status_of(api, connection_id) == "bad_credentials"

    await eventually(is_bad, "mark the connection bad_credentials")
    (row,) = await history(pool, connection_id)
    assert row["event_id"] == first.meta.id
    assert (row["type"], row["status"]) == ("ampmesh.events.v1.ConnectionError", "bad_credentials")
    assert '"providerError": "invalid_grant"' in row["payload"]

    # The same event again (a republish: same key, new event id), then an older one that
    # says created: neither changes anything. A newer refresh, published last, shows that
    # scribe got past both before it.
    again = error()
    assert again.meta.id != first.meta.id
    await bus.publish(again)
    older = at(
        new_envelope(
            project_id=project_id,
            idempotency_key=f"{connection_id}/created",
            source="token-manager",
            connection_created=ce.ConnectionCreated(
                connection=info(connection, ce.CONNECTION_STATUS_CREATED)
            ),
        ),
        now - timedelta(minutes=5),
    )
    await bus.publish(older)

    async def recorded_older() -> bool:
        return len(await history(pool, connection_id)) == 2

    await eventually(recorded_older, "record the older event")
    assert await status_of(api, connection_id) == "bad_credentials"

    refreshed = at(
        new_envelope(
            project_id=project_id,
            idempotency_key=f"{connection_id}/refresh/1",
            source="token-manager",
            connection_refreshed=ce.ConnectionRefreshed(
                connection=info(connection, ce.CONNECTION_STATUS_CREATED),
                trigger=ce.REFRESH_TRIGGER_FORCED,
                recovered=True,
            ),
        ),
        now + timedelta(seconds=1),
    )
    await bus.publish(refreshed)

    async def is_created() -> bool:
        return await status_of(api, connection_id) == "created"

    await eventually(is_created, "apply the newer refresh")
    rows = await history(pool, connection_id)
    assert [(r["idempotency_key"], r["event_id"]) for r in rows] == [
        (older.meta.idempotency_key, older.meta.id),
        (first.meta.idempotency_key, first.meta.id),
        (refreshed.meta.idempotency_key, refreshed.meta.id),
    ]


async def test_a_deleted_connection_s_event_is_history_only(
    api: httpx.AsyncClient, project: dict[str, Any], pool: asyncpg.Pool, bus: EventBus
) -> None:
    connection = await new_connection(api)
    # Ids that are not in connections (not UUIDs) are kept as history too.
    foreign = dict(connection, id="not-a-uuid-" + uuid.uuid4().hex[:6])
    events = [
        new_envelope(
            project_id=project["id"],
            idempotency_key=f"{c['id']}/deleted",
            source="token-manager",
            connection_deleted=ce.ConnectionDeleted(
                connection=info(c, ce.CONNECTION_STATUS_BAD_CREDENTIALS)
            ),
        )
        for c in (connection, foreign)
    ]
    for event in events:
        await bus.publish(event)

    async def recorded() -> bool:
        counts = [len(await history(pool, c["id"])) for c in (connection, foreign)]
        return counts == [1, 1]

    await eventually(recorded, "record both deletions")
    for c in (connection, foreign):
        ((status, kind),) = [(r["status"], r["type"]) for r in await history(pool, c["id"])]
        assert (status, kind) == (None, "ampmesh.events.v1.ConnectionDeleted")
    assert await status_of(api, connection["id"]) == "created"
