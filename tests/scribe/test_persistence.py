"""Operations, progress, backfill progress and logs persisted by scribe's handler:
the normal order, any other order, and every event twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
from ampmesh.events.v1 import backfill_progress_pb2 as bp
from ampmesh.events.v1 import log_entry_pb2 as le
from ampmesh.events.v1 import operation_events_pb2 as oe
from ampmesh.events.v1.envelope_pb2 import Envelope

from services.scribe.ingest import Ingestion
from tests.support.scribe import LOGS, Installation, delivery, envelope, later


def created(inst: Installation, operation_id: str) -> Envelope:
    message = oe.OperationCreated(
        operation_id=operation_id,
        integration_id=inst.integration_id,
        installation_id=inst.id,
        config_id=str(uuid.uuid4()),
        action_type=oe.ACTION_TYPE_READ,
        read_type=oe.READ_TYPE_BACKFILL,
        objects=["contact"],
        workflow_id=f"backfill-{operation_id}",
    )
    message.create_time.FromDatetime(later(0))
    return envelope(inst.project_id, f"{operation_id}/created", later(0), operation_created=message)


def progress(inst: Installation, operation_id: str, sequence: int, read: int) -> Envelope:
    message = oe.OperationProgress(
        operation_id=operation_id,
        sequence=sequence,
        installation_id=inst.id,
        object_name="contact",
        counts=oe.OperationCounts(
            records_read=read, records_published=read, pages=sequence, records_estimated_total=500
        ),
    )
    return envelope(
        inst.project_id,
        f"{operation_id}/progress/{sequence}",
        later(sequence),
        operation_progress=message,
    )


def finished(inst: Installation, operation_id: str, sequence: int, read: int) -> Envelope:
    message = oe.OperationFinished(
        operation_id=operation_id,
        sequence=sequence,
        installation_id=inst.id,
        action_type=oe.ACTION_TYPE_READ,
        status=oe.OPERATION_STATUS_SUCCESS,
        result=f"[contact] {read} records read",
        counts=oe.OperationCounts(records_read=read, records_published=read, pages=5),
        retry=oe.OperationRetry(attempts=1),
    )
    message.retry.last_attempt_time.FromDatetime(later(0))
    return envelope(
        inst.project_id, f"{operation_id}/finished", later(sequence), operation_finished=message
    )


def log(inst: Installation, operation_id: str, n: int) -> Envelope:
    message = le.LogEntry(
        operation_id=operation_id,
        installation_id=inst.id,
        integration_id=inst.integration_id,
        severity=le.LOG_SEVERITY_WARNING if n == 2 else le.LOG_SEVERITY_INFO,
        msg=f"page {n} read",
        details={"request": "GET /crm/v3/objects/contacts"},
    )
    message.timestamp.FromDatetime(later(n))
    return envelope(inst.project_id, f"{operation_id}/log/{n}", later(n), log_entry=message)


async def operation(pool: asyncpg.Pool, operation_id: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM operations WHERE id = $1", uuid.UUID(operation_id))
    assert row is not None, "no operation row"
    return row


def metadata(row: asyncpg.Record) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(row["metadata"])
    return value


async def handle_all(ingestion: Ingestion, *events: Envelope, subscription: str = "") -> None:
    for event in events:
        if subscription:
            await ingestion.handle(delivery(event, subscription))
        else:
            await ingestion.handle(delivery(event))


async def test_created_progress_finished(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    op = str(uuid.uuid4())
    await handle_all(ingestion, created(installation, op))
    row = await operation(pool, op)
    assert row["status"] == "in_progress" and row["action_type"] == "read"
    assert str(row["integration_id"]) == installation.integration_id
    assert row["read_type"] == "backfill"
    assert metadata(row)["objects"] == ["contact"]
    last_status = "SELECT last_operation_status FROM installations WHERE id = $1"
    assert await pool.fetchval(last_status, uuid.UUID(installation.id)) == "in_progress"

    await handle_all(
        ingestion, progress(installation, op, 1, 100), progress(installation, op, 2, 200)
    )
    row = await operation(pool, op)
    assert row["sequence"] == 2
    assert metadata(row)["progress"] == {
        "installationId": installation.id,
        "objectName": "contact",
        "operationId": op,
        "recordsProcessed": 200,
        "recordsEstimatedTotal": 500,
    }

    await handle_all(ingestion, finished(installation, op, 3, 250))
    row = await operation(pool, op)
    assert row["status"] == "success"
    assert row["result"] == "[contact] 250 records read"
    assert metadata(row)["progress"]["recordsProcessed"] == 250
    assert metadata(row)["retry"] == {"attempts": 1, "lastAttempt": "2026-03-01T09:00:00Z"}
    assert json.loads(row["counts"])["pages"] == 5
    assert await pool.fetchval(last_status, uuid.UUID(installation.id)) == "success"


async def test_reordered_events_end_finished_with_the_final_counts(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    op = str(uuid.uuid4())
    # Finished first (healing the row), then stale progress, then Created last.
    await handle_all(ingestion, finished(installation, op, 5, 400))
    row = await operation(pool, op)
    assert row["status"] == "success" and row["healed"]
    # The integration came from the installation, since no event named it yet.
    assert str(row["integration_id"]) == installation.integration_id

    await handle_all(
        ingestion, progress(installation, op, 4, 300), progress(installation, op, 2, 100)
    )
    await handle_all(ingestion, created(installation, op))
    row = await operation(pool, op)
    assert row["status"] == "success", "a finished operation went back"
    assert row["sequence"] == 5 and not row["healed"]
    assert row["read_type"] == "backfill" and row["config_id"] is not None
    meta = metadata(row)
    assert meta["objects"] == ["contact"]
    assert meta["progress"]["recordsProcessed"] == 400
    # Created knew the object, which Finished does not repeat.
    assert meta["progress"]["objectName"] == "contact"
    assert row["created_at"] == later(0)
    last_status = "SELECT last_operation_status FROM installations WHERE id = $1"
    assert await pool.fetchval(last_status, uuid.UUID(installation.id)) == "success"


async def test_redelivered_events_make_no_duplicates(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    op = str(uuid.uuid4())
    events = [
        created(installation, op),
        log(installation, op, 1),
        progress(installation, op, 1, 10),
        log(installation, op, 2),
        finished(installation, op, 2, 20),
    ]
    await handle_all(ingestion, *events)
    # Every one again, as a redelivery (same envelope) and as a republish (new event id).
    await handle_all(ingestion, *events)
    for event in events:
        event.meta.id = str(uuid.uuid4())
    await handle_all(ingestion, *events)

    assert await pool.fetchval("SELECT count(*) FROM operations WHERE id = $1", uuid.UUID(op)) == 1
    logs = await pool.fetch(
        "SELECT severity, message, logged_at FROM operation_logs WHERE operation_id = $1 "
        "ORDER BY logged_at",
        uuid.UUID(op),
    )
    assert [r["severity"] for r in logs] == ["INFO", "WARNING"]
    assert json.loads(logs[0]["message"]) == {
        "msg": "page 1 read",
        "operation_id": op,
        "details": {"request": "GET /crm/v3/objects/contacts"},
    }
    row = await operation(pool, op)
    assert row["status"] == "success" and row["sequence"] == 2

    await ingestion.counters.flush()
    counts = {
        r["event_type"]: (r["persisted"], r["duplicates_skipped"])
        for r in await pool.fetch(
            "SELECT * FROM scribe_ingestion WHERE project_id = $1", installation.project_id
        )
    }
    assert counts == {
        "ampmesh.events.v1.OperationCreated": (1, 2),
        "ampmesh.events.v1.LogEntry": (2, 4),
        "ampmesh.events.v1.OperationProgress": (1, 2),
        "ampmesh.events.v1.OperationFinished": (1, 2),
    }


async def test_a_log_before_its_operation_is_kept(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    op = str(uuid.uuid4())
    await ingestion.handle(delivery(log(installation, op, 1), LOGS))
    assert (await operation(pool, op))["status"] == "in_progress"
    await handle_all(ingestion, created(installation, op))
    assert (await operation(pool, op))["action_type"] == "read"
    count = "SELECT count(*) FROM operation_logs WHERE operation_id = $1"
    assert await pool.fetchval(count, uuid.UUID(op)) == 1


def backfill(inst: Installation, op: str, sequence: int, processed: int, done: bool) -> Envelope:
    message = bp.BackfillProgress(
        installation_id=inst.id,
        object_name="contact",
        operation_id=op,
        sequence=sequence,
        records_processed=processed,
        records_estimated_total=1000,
        done=done,
    )
    message.start_time.FromDatetime(later(0))
    message.update_time.FromDatetime(later(sequence))
    return envelope(
        inst.project_id, f"{op}/backfill/{sequence}", later(sequence), backfill_progress=message
    )


async def test_backfill_progress_keeps_the_highest_sequence(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    op = str(uuid.uuid4())
    await handle_all(
        ingestion,
        backfill(installation, op, 3, 300, True),
        backfill(installation, op, 1, 100, False),
        backfill(installation, op, 2, 200, False),
        backfill(installation, op, 3, 300, True),
    )
    row = await pool.fetchrow(
        "SELECT * FROM backfill_progress WHERE operation_id = $1", uuid.UUID(op)
    )
    assert row is not None
    assert (row["sequence"], row["records_processed"], row["done"]) == (3, 300, True)
    assert row["records_estimated_total"] == 1000
    assert row["created_at"] == later(0) and row["updated_at"] == later(3)
    # The backfill's operation exists (healed) so the read side can show it.
    assert (await operation(pool, op))["action_type"] == "read"


async def test_concurrent_progress_of_one_operation_applies_the_highest(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    op = str(uuid.uuid4())
    await handle_all(ingestion, created(installation, op))
    events = [progress(installation, op, n, n * 10) for n in range(1, 21)]
    events += [backfill(installation, op, n, n * 10, False) for n in range(1, 21)]
    await asyncio.gather(*(ingestion.handle(delivery(e)) for e in reversed(events)))
    row = await operation(pool, op)
    assert row["sequence"] == 20
    assert metadata(row)["progress"]["recordsProcessed"] == 200
    processed = "SELECT records_processed FROM backfill_progress WHERE operation_id = $1"
    assert await pool.fetchval(processed, uuid.UUID(op)) == 200
