"""A backfill through the real HubSpot connector and record shaping against the provider
sandbox, with the real ReadActivities on a test task queue (the token-manager stands in
as a stub handing out a sandbox access token): every record once, the deleted ones
(archived at the sandbox before the backfill) with `deleted: true` and counted as read.
Prints the read's records/s: what the activity sustains on this machine beside the
sandbox and the Pub/Sub emulator."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from ampmesh.events.v1 import operation_events_pb2 as ops
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.workflows.v1 import backfill_read_pb2
from temporalio.client import Client

from services.domain.catalog import load_catalog
from services.domain.catalog.sandbox import point_at_sandbox
from services.domain.connectors import registry
from services.domain.connectors.http import provider_session
from services.domain.read_bodies import page_body
from services.domain.read_workflows import BACKFILL_WORKFLOW
from services.runtime.channels import mesh_channel
from services.temporal.reads import shape
from services.temporal.reads.activities import ReadActivities
from services.temporal.reads.publish import Publisher
from services.temporal.worker import reads_worker
from tests.support.control_plane import sandbox_tokens
from tests.support.reads import Watch, body_ids, make_installation
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

RECORDS = 20_000
DELETED = 500


class SandboxTokens:
    def __init__(self, token: str) -> None:
        self.token = token

    async def GetToken(self, request: tm.GetTokenRequest, **options: Any) -> Any:
        return tm.GetTokenResponse(token=tm.AccessToken(token=self.token, token_type="Bearer"))


@pytest.fixture
async def control(stack: Stack) -> AsyncIterator[Any]:
    channel = mesh_channel(
        stack.endpoints["sandbox"], stack.credentials("tests"), server_identity="sandbox"
    )
    async with channel:
        yield sandbox_pb2_grpc.SandboxControlServiceStub(channel)


async def test_a_sandbox_backfill_delivers_every_record_and_reports_its_rate(
    stack: Stack,
    temporal: Client,
    task_queue: str,
    pool: Any,
    watches: dict[str, Watch],
    control: Any,
) -> None:
    seeded = await control.SeedRecords(
        sandbox_pb2.SeedRecordsRequest(
            provider=sandbox_pb2.PROVIDER_HUBSPOT,
            object_name="contacts",
            count=RECORDS,
            replace=True,
        )
    )
    assert seeded.total == RECORDS
    deleted = await control.DeleteRecords(
        sandbox_pb2.DeleteRecordsRequest(
            provider=sandbox_pb2.PROVIDER_HUBSPOT, object_name="contacts", count=DELETED, seed=3
        )
    )
    assert len(deleted.ids) == DELETED
    access, _ = await sandbox_tokens(stack)
    installation = await make_installation(pool, stack.org_id)
    pubsub = next(c for c in stack.mesh.components if c.name == "pubsub")
    publisher = Publisher.open(
        stack.endpoints["pubsub"], pubsub.service_env()["AMPMESH_PUBSUB_PROJECT"]
    )
    operation = str(uuid.uuid4())
    request = backfill_read_pb2.BackfillReadInput(
        target=installation.target(), operation_id=operation, page_size=100
    )
    request.meta.project_id = installation.project_id
    async with provider_session() as http:
        activities = ReadActivities(
            pool=pool,
            tokens=SandboxTokens(access),  # type: ignore[arg-type]
            catalog=point_at_sandbox(load_catalog(), stack.endpoints["sandbox-http"]),
            http=http,
            publisher=publisher,
            client=temporal,
            connector_for=registry.connector_for,
            auth_for=registry.provider_auth,
            shaping=shape,
        )
        async with reads_worker(temporal, activities, task_queue=task_queue):
            started = time.perf_counter()
            output = await temporal.execute_workflow(
                BACKFILL_WORKFLOW,
                request,
                id=f"test-sandbox-backfill-{operation}",
                task_queue=task_queue,
                result_type=backfill_read_pb2.BackfillReadOutput,
                execution_timeout=timedelta(seconds=120),
            )
            elapsed = time.perf_counter() - started
    publisher.close()
    assert output.status == ops.OPERATION_STATUS_SUCCESS, output.error
    print(
        f"\nbackfill of {RECORDS} sandbox records: {elapsed:.2f} s, "
        f"{RECORDS / elapsed:,.0f} records/s (workflow start to result, publishes acked)"
    )
    results = watches["ampmesh-read-results"]
    await results.drain()
    pages = results.of(operation, "read_result_page")
    ids = body_ids(pages)
    assert len(ids) == RECORDS and len(set(ids)) == RECORDS
    flagged = [
        entry["id"]
        for envelope in pages
        for entry in orjson.loads(page_body(envelope.read_result_page))["result"]
        if entry.get("deleted")
    ]
    assert sorted(flagged) == sorted(deleted.ids)
    assert output.cursor.records_done == RECORDS
