"""An installation's `subscriptions` row as the api keeps it (services/api/platform/
subscriptions.py), against the session stack's PostgreSQL: saved configs with subscribe
objects make it pending and move its change on, a config without them still resyncs an
installation that had some and touches none that never had, and a deletion marks it
`removing` and says whether the connection must stay for the worker (something is
registered at the provider, or a registration may be under way)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from ampmesh.manifest.v1 import config_pb2

from services.api.platform import subscriptions
from tests.support.control_plane import database_url
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

SUBSCRIBING = config_pb2.ConfigContent(
    subscribe=config_pb2.SubscribeConfig(
        objects={
            "contacts": config_pb2.SubscribeConfigObject(
                object_name="contacts", destination="hook", inherit_fields_and_mappings=True
            )
        }
    )
)
READING_ONLY = config_pb2.ConfigContent()


@pytest.fixture
async def conn(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url(stack))
    try:
        # Each test's rows are rolled back: the table has no foreign keys to satisfy.
        transaction = connection.transaction()
        await transaction.start()
        yield connection
        await transaction.rollback()
    finally:
        await connection.close()


async def saved(
    conn: asyncpg.Connection,
    installation_id: uuid.UUID,
    content: config_pb2.ConfigContent,
    connection_id: uuid.UUID | None = None,
) -> subscriptions.Sync | None:
    return await subscriptions.installation_saved(
        conn,
        project_id=str(uuid.uuid4()),
        integration_id=uuid.uuid4(),
        provider="hubspot",
        installation_id=installation_id,
        connection_id=connection_id,
        content=content,
    )


async def row_of(conn: asyncpg.Connection, installation_id: uuid.UUID) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "SELECT * FROM subscriptions WHERE installation_id = $1", installation_id
    )
    return row


async def test_each_saved_change_is_a_new_pending_change(conn: asyncpg.Connection) -> None:
    installation = uuid.uuid4()
    first, second = uuid.uuid4(), uuid.uuid4()
    sync = await saved(conn, installation, SUBSCRIBING, first)
    assert sync is not None and sync.change == 1 and not sync.deleted
    assert sync.workflow_id == f"subscriptions/{installation}/1"
    # The worker made it active and registered something; the next change resyncs it.
    await conn.execute(
        "UPDATE subscriptions SET status = 'failed', error = 'refused' WHERE installation_id = $1",
        installation,
    )
    sync = await saved(conn, installation, SUBSCRIBING, second)
    assert sync is not None and sync.change == 2
    row = await row_of(conn, installation)
    assert (row["status"], row["error"], row["connection_id"]) == ("pending", "", second)
    # Its subscribe objects all gone: still a change, so the worker removes what it had.
    sync = await saved(conn, installation, READING_ONLY, second)
    assert sync is not None and sync.change == 3
    assert (await row_of(conn, installation))["status"] == "pending"


async def test_an_installation_that_never_subscribed_gets_no_row(conn: asyncpg.Connection) -> None:
    installation = uuid.uuid4()
    assert await saved(conn, installation, READING_ONLY) is None
    assert await row_of(conn, installation) is None
    assert await subscriptions.installation_deleted(conn, str(uuid.uuid4()), installation) is None


@pytest.mark.parametrize(
    ("status", "registered", "keeps"),
    [
        ("pending", "{}", True),  # a registration may be under way
        ("active", '{"contacts": {"subscriptionIds": [1]}}', True),
        ("failed", '{"Account": {"channelMemberId": "0Xx"}}', True),
        ("active", "{}", False),  # nothing at the provider: the connection may go now
        ("failed", "{}", False),
    ],
)
async def test_a_deletion_marks_removing_and_keeps_the_connection_while_needed(
    conn: asyncpg.Connection, status: str, registered: str, keeps: bool
) -> None:
    installation = uuid.uuid4()
    await saved(conn, installation, SUBSCRIBING, uuid.uuid4())
    await conn.execute(
        "UPDATE subscriptions SET status = $2, registered = $3::jsonb WHERE installation_id = $1",
        installation,
        status,
        registered,
    )
    project = str(uuid.uuid4())
    sync = await subscriptions.installation_deleted(conn, project, installation)
    assert sync is not None
    assert (sync.deleted, sync.change, sync.keeps_connection) == (True, 2, keeps)
    assert sync.project_id == project
    row = await row_of(conn, installation)
    assert (row["status"], row["change"]) == ("removing", 2)
