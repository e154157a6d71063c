"""An installation's healthStatus follows its operations: unhealthy once its newest
operation failed, healthy again once a newer one succeeded; a running one changes nothing,
and an older operation's end, arriving late, does not override a newer one's."""

from __future__ import annotations

import uuid

import asyncpg
from ampmesh.events.v1 import operation_events_pb2 as oe
from ampmesh.events.v1.envelope_pb2 import Envelope

from services.scribe.ingest import Ingestion
from tests.support.scribe import Installation, delivery, envelope, later

HEALTH = "SELECT health_status, last_operation_status FROM installations WHERE id = $1"


def created(inst: Installation, operation_id: str, at: float) -> Envelope:
    message = oe.OperationCreated(
        operation_id=operation_id,
        integration_id=inst.integration_id,
        installation_id=inst.id,
        action_type=oe.ACTION_TYPE_READ,
        read_type=oe.READ_TYPE_SCHEDULED,
        objects=["contact"],
        workflow_id=f"read-{operation_id}",
    )
    message.create_time.FromDatetime(later(at))
    return envelope(
        inst.project_id, f"{operation_id}/created", later(at), operation_created=message
    )


def finished(
    inst: Installation, operation_id: str, at: float, status: oe.OperationStatus
) -> Envelope:
    message = oe.OperationFinished(
        operation_id=operation_id,
        sequence=2,
        installation_id=inst.id,
        action_type=oe.ACTION_TYPE_READ,
        status=status,
        result="[contact] done" if status == oe.OPERATION_STATUS_SUCCESS else "provider refused",
    )
    return envelope(
        inst.project_id, f"{operation_id}/finished", later(at), operation_finished=message
    )


async def health(pool: asyncpg.Pool, inst: Installation) -> tuple[str, str]:
    row = await pool.fetchrow(HEALTH, uuid.UUID(inst.id))
    assert row is not None
    return row["health_status"], row["last_operation_status"]


async def test_health_follows_the_newest_finished_operation(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    assert await health(pool, installation) == ("healthy", "")
    failed, retried, stale = (str(uuid.uuid4()) for _ in range(3))

    await ingestion.handle(delivery(created(installation, failed, 10)))
    await ingestion.handle(
        delivery(finished(installation, failed, 11, oe.OPERATION_STATUS_FAILURE))
    )
    assert await health(pool, installation) == ("unhealthy", "failure")

    await ingestion.handle(delivery(created(installation, retried, 20)))
    assert await health(pool, installation) == ("unhealthy", "in_progress")
    await ingestion.handle(
        delivery(finished(installation, retried, 21, oe.OPERATION_STATUS_SUCCESS))
    )
    assert await health(pool, installation) == ("healthy", "success")

    # An older operation's failure, delivered late, is not the installation's state now.
    await ingestion.handle(delivery(created(installation, stale, 5)))
    await ingestion.handle(delivery(finished(installation, stale, 6, oe.OPERATION_STATUS_FAILURE)))
    assert await health(pool, installation) == ("healthy", "success")
