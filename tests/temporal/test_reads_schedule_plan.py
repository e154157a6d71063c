"""The api's side of read plans on the session stack's Temporal and PostgreSQL: an object's
schedule carries its plan, and saving a new config brings the schedule's input in step
(new plan, same meta), so scheduled runs read with the config just saved without
resolving it again."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.workflows.v1 import scheduled_read_pb2
from google.protobuf import json_format
from temporalio.client import Client, ScheduleActionStartWorkflow

from services.api.reads import InstallationFacts, Reads
from services.domain.read_workflows import schedule_id
from tests.support.control_plane import database_url
from tests.support.reads import OBJECT, REVISION, Installation, make_installation
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

# Yearly: no run of the schedule starts while the test looks at it.
CRON = "0 0 1 1 *"


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url(stack), min_size=1, max_size=2)
    yield pool
    await pool.close()


async def save_config(
    pool: asyncpg.Pool, reads: Reads, installation: Installation, entry: dict[str, object]
) -> str:
    """Save a config reading OBJECT as `entry` says and bring the reads in step, as the
    api does (one transaction); the config's id."""
    content = json_format.ParseDict(
        {"provider": "hubspot", "read": {"objects": {OBJECT: {"objectName": OBJECT, **entry}}}},
        config_pb2.ConfigContent(),
    )
    facts = InstallationFacts(
        project_id=installation.project_id,
        integration_id=installation.integration_id,
        installation_id=installation.installation_id,
        connection_id=installation.connection_id,
        provider="hubspot",
    )
    async with pool.acquire() as conn, conn.transaction():
        config_id: str = await conn.fetchval(
            "INSERT INTO configs (installation_id, revision_id, content, created_at) "
            "SELECT $1::uuid, latest_revision_id, $2::jsonb, clock_timestamp() "
            "FROM integrations WHERE id = $3::uuid RETURNING id::text",
            installation.installation_id,
            json.dumps(json_format.MessageToDict(content)),
            installation.integration_id,
        )
        await reads.installation_saved(
            conn,
            facts,
            content,
            json_format.ParseDict(REVISION, manifest_pb2.Integration()),
            created_at=datetime.now(UTC),
        )
    return config_id


async def schedule_input(temporal: Client, sid: str) -> scheduled_read_pb2.ScheduledReadInput:
    action = (await temporal.get_schedule_handle(sid).describe()).schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    (decoded,) = await temporal.data_converter.decode(
        list(action.args),
        [scheduled_read_pb2.ScheduledReadInput],
    )
    assert isinstance(decoded, scheduled_read_pb2.ScheduledReadInput)
    return decoded


async def test_a_schedule_carries_the_plan_of_the_config_saved_last(
    stack: Stack, temporal: Client, pool: asyncpg.Pool
) -> None:
    installation = await make_installation(pool, stack.org_id)
    # Known already (a watermark): saving starts no backfill, only the schedule.
    await pool.execute(
        "INSERT INTO read_watermarks (installation_id, object_name, project_id, watermark) "
        "VALUES ($1::uuid, $2, $3::uuid, now())",
        installation.installation_id,
        OBJECT,
        installation.project_id,
    )
    reads = Reads(temporal)
    sid = schedule_id(installation.installation_id, OBJECT)
    try:
        first = await save_config(pool, reads, installation, {"schedule": CRON})
        created = await schedule_input(temporal, sid)
        assert created.plan.config_id == first
        assert created.plan.schedule == CRON
        assert created.plan.destination_id == installation.destination_id
        assert created.plan.page_size == created.page_size == 50
        assert not created.plan.selection.fields
        second = await save_config(
            pool, reads, installation, {"schedule": CRON, "selectedFields": {"email": True}}
        )
        updated = await schedule_input(temporal, sid)
        assert updated.plan.config_id == second != first
        assert list(updated.plan.selection.fields) == ["email"]
        # The schedule's meta says when it was made: it stays.
        assert updated.meta == created.meta
        assert updated.target == created.target
    finally:
        await temporal.get_schedule_handle(sid).delete()
        await pool.execute(
            "DELETE FROM installations WHERE id = $1::uuid", uuid.UUID(installation.installation_id)
        )
