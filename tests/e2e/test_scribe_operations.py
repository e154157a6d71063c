"""Scribe's operations, end to end: lifecycle, backfill progress and log events published
on the bus (each twice, as Pub/Sub may deliver them) reach scribe through the emulator,
and the api's read side serves what scribe wrote; ScribeService over mTLS reports the
ingestion and keeps what could not be persisted as dead letters."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from ampmesh.events.v1 import backfill_progress_pb2 as bp
from ampmesh.events.v1 import log_entry_pb2 as le
from ampmesh.events.v1 import operation_events_pb2 as oe
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.scribe.v1 import scribe_pb2, scribe_pb2_grpc
from google.cloud import pubsub_v1

from services.launcher.infra.pubsub_emulator import PROJECT
from services.runtime.channels import mesh_channel
from services.runtime.envelopes import attributes_of, new_envelope, topic_id_of
from services.runtime.events import publisher_client
from tests.e2e.conformance import assert_conforms
from tests.support.control_plane import database_url, eventually
from tests.support.operations import BACKFILL, GET, LIST, LOGS, new_installation, new_project
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

# Bound of waiting for scribe: generous, and never an assertion about speed.
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def db(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=2) as pool:
        yield pool


@pytest.fixture(scope="module")
def publisher(stack: Stack) -> pubsub_v1.PublisherClient:
    return publisher_client(stack.endpoints["pubsub"])


@pytest.fixture
async def scribe(stack: Stack) -> AsyncIterator[scribe_pb2_grpc.ScribeServiceStub]:
    running = stack.mesh.service("scribe")
    async with mesh_channel(
        running.address, stack.credentials("api"), server_identity=running.identity
    ) as channel:
        yield scribe_pb2_grpc.ScribeServiceStub(channel)


async def publish(publisher: pubsub_v1.PublisherClient, *events: Envelope) -> None:
    """Each event twice: the second as a redelivery would bring it."""
    for event in events:
        for _ in range(2):
            future = publisher.publish(
                f"projects/{PROJECT}/topics/{topic_id_of(event)}",
                event.SerializeToString(),
                **attributes_of(event),
            )
            await asyncio.wrap_future(future)


def event(project_id: str, key: str, seconds: int, **payload: Any) -> Envelope:
    envelope = new_envelope(project_id=project_id, idempotency_key=key, source="test", **payload)
    envelope.meta.time.FromDatetime(START + timedelta(seconds=seconds))
    return envelope


async def test_a_backfill_published_twice_reads_back_once_through_rest(
    admin: httpx.AsyncClient,
    db: asyncpg.Pool,
    publisher: pubsub_v1.PublisherClient,
    scribe: scribe_pb2_grpc.ScribeServiceStub,
) -> None:
    installation = await new_installation(db, await new_project(admin))
    project_id, op = installation.project_id, str(uuid.uuid4())
    created = oe.OperationCreated(
        operation_id=op,
        integration_id=installation.integration_id,
        installation_id=installation.id,
        config_id=str(uuid.uuid4()),
        action_type=oe.ACTION_TYPE_READ,
        read_type=oe.READ_TYPE_BACKFILL,
        objects=["contact"],
    )
    created.create_time.FromDatetime(START)
    counts = oe.OperationCounts(records_read=120, records_published=120, pages=2)
    counts.records_estimated_total = 120
    progress = oe.OperationProgress(
        operation_id=op,
        sequence=1,
        installation_id=installation.id,
        object_name="contact",
        counts=oe.OperationCounts(records_read=60, records_published=60, pages=1),
    )
    finished = oe.OperationFinished(
        operation_id=op,
        sequence=2,
        installation_id=installation.id,
        action_type=oe.ACTION_TYPE_READ,
        status=oe.OPERATION_STATUS_SUCCESS,
        result="[contact] 120 records read",
        counts=counts,
    )
    backfill = bp.BackfillProgress(
        installation_id=installation.id,
        object_name="contact",
        operation_id=op,
        sequence=2,
        records_processed=120,
        records_estimated_total=120,
        done=True,
    )
    backfill.start_time.FromDatetime(START)
    backfill.update_time.FromDatetime(START + timedelta(seconds=2))
    logs = [
        le.LogEntry(
            operation_id=op,
            installation_id=installation.id,
            integration_id=installation.integration_id,
            severity=le.LOG_SEVERITY_INFO,
            msg=f"page {n} published",
            details={"page": str(n)},
        )
        for n in (1, 2)
    ]
    for n, entry in enumerate(logs, start=1):
        entry.timestamp.FromDatetime(START + timedelta(seconds=n))
    # Finished before the rest: scribe must not depend on the order.
    await publish(
        publisher,
        event(project_id, f"{op}/finished", 3, operation_finished=finished),
        event(project_id, f"{op}/progress/1", 1, operation_progress=progress),
        event(project_id, f"{op}/created", 0, operation_created=created),
        event(project_id, f"{op}/backfill/2", 2, backfill_progress=backfill),
        *(
            event(project_id, f"{op}/log/{n}", n, log_entry=entry)
            for n, entry in enumerate(logs, start=1)
        ),
    )

    async def complete() -> bool:
        row = await db.fetchrow(
            "SELECT o.healed, (SELECT count(*) FROM operation_logs l WHERE l.operation_id = o.id)"
            " AS logs, (SELECT count(*) FROM backfill_progress b WHERE b.operation_id = o.id)"
            " AS backfills FROM operations o WHERE o.id = $1",
            uuid.UUID(op),
        )
        return row is not None and not row["healed"] and row["logs"] == 2 and row["backfills"] == 1

    await eventually(complete, "persist the operation, its logs and its backfill progress")

    listed = await admin.get(installation.operations_path())
    assert listed.status_code == 200, listed.text
    assert_conforms(listed, "GET", LIST)
    (operation,) = listed.json()["results"]
    assert operation["id"] == op and operation["status"] == "success"
    assert operation["actionType"] == "read"
    assert operation["integrationId"] == installation.integration_id
    assert operation["configId"] == created.config_id
    assert operation["result"] == "[contact] 120 records read"
    assert operation["createTime"] == "2026-03-02T08:00:00Z"
    assert operation["metadata"]["objects"] == ["contact"]
    assert operation["metadata"]["progress"] == {
        "installationId": installation.id,
        "objectName": "contact",
        "operationId": op,
        "recordsProcessed": 120,
        "recordsEstimatedTotal": 120,
    }

    one = await admin.get(f"/v1/projects/{project_id}/operations/{op}")
    assert one.status_code == 200, one.text
    assert_conforms(one, "GET", GET)
    assert one.json() == operation

    got_logs = await admin.get(f"/v1/projects/{project_id}/operations/{op}/logs")
    assert got_logs.status_code == 200, got_logs.text
    assert_conforms(got_logs, "GET", LOGS)
    assert [(log["severity"], log["message"]["msg"]) for log in got_logs.json()] == [
        ("INFO", "page 1 published"),
        ("INFO", "page 2 published"),
    ]
    assert got_logs.json()[0]["message"]["details"] == {"page": "1"}
    assert got_logs.json()[0]["message"]["operation_id"] == op

    progress_got = await admin.get(installation.backfill_path("contact"))
    assert progress_got.status_code == 200, progress_got.text
    assert_conforms(progress_got, "GET", BACKFILL)
    assert progress_got.json() == {
        "installationId": installation.id,
        "objectName": "contact",
        "operationId": op,
        "recordsProcessed": 120,
        "recordsEstimatedTotal": 120,
        "createTime": "2026-03-02T08:00:00Z",
        "updateTime": "2026-03-02T08:00:02Z",
    }

    # Every event was published twice: one persisted, the other skipped as a duplicate;
    # the progress is also skipped when it arrived after the Finished (it is stale then).
    # The REST state above shows the first copies; the second ones may still be on their
    # way, so the counts are read until all twelve events are in them.
    expected = {
        "ampmesh.events.v1.OperationCreated": (1, 1),
        "ampmesh.events.v1.OperationFinished": (1, 1),
        "ampmesh.events.v1.BackfillProgress": (1, 1),
        "ampmesh.events.v1.LogEntry": (2, 2),
    }
    deadline = time.monotonic() + 30
    while True:
        status = await scribe.GetIngestionStatus(
            scribe_pb2.GetIngestionStatusRequest(project_id=project_id)
        )
        counted = {e.event_type: (e.persisted, e.duplicates_skipped) for e in status.event_types}
        progress_counts = counted.pop("ampmesh.events.v1.OperationProgress", (0, 0))
        if sum(map(sum, counted.values())) + sum(progress_counts) >= 12:
            break
        assert time.monotonic() < deadline, counted
        await asyncio.sleep(0.2)
    assert progress_counts in ((1, 1), (0, 2))
    assert counted == expected
    last_status = "SELECT last_operation_status FROM installations WHERE id = $1"
    assert await db.fetchval(last_status, uuid.UUID(installation.id)) == "success"


async def test_undecodable_and_invalid_events_become_dead_letters_over_mtls(
    admin: httpx.AsyncClient,
    db: asyncpg.Pool,
    publisher: pubsub_v1.PublisherClient,
    scribe: scribe_pb2_grpc.ScribeServiceStub,
) -> None:
    installation = await new_installation(db, await new_project(admin))
    project_id = installation.project_id
    marker = str(uuid.uuid4())
    garbage = publisher.publish(
        f"projects/{PROJECT}/topics/ampmesh-operations",
        b"\xff not an envelope " + marker.encode(),
        event_id=marker,
        event_type="garbage",
    )
    await asyncio.wrap_future(garbage)
    invalid = event(
        project_id,
        f"{marker}/log",
        0,
        log_entry=le.LogEntry(operation_id="not-an-id", msg="lost"),
    )
    await publish(publisher, invalid)

    async def listed() -> list[scribe_pb2.DeadLetter]:
        page = await scribe.ListDeadLetters(
            scribe_pb2.ListDeadLettersRequest(project_id=project_id)
        )
        return list(page.dead_letters)

    async def both_there() -> bool:
        undecodable = await scribe.ListDeadLetters(
            scribe_pb2.ListDeadLettersRequest(event_type="garbage")
        )
        found = any(d.event_id == marker for d in undecodable.dead_letters)
        return found and len(await listed()) == 2

    await eventually(both_there, "dead-letter the undecodable and the invalid event")
    letters = await listed()
    # Published twice: two Pub/Sub messages, two dead letters of the same event.
    assert {d.event_id for d in letters} == {invalid.meta.id}
    assert all("operation_id is required" in d.error for d in letters)
    assert letters[0].envelope == invalid

    retried = await scribe.RetryDeadLetters(
        scribe_pb2.RetryDeadLettersRequest(project_id=project_id)
    )
    assert (retried.retried, retried.failed) == (2, 2)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await scribe.ListDeadLetters(scribe_pb2.ListDeadLettersRequest(page_size=5000))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(caught.value.details()).startswith("page_size:")
