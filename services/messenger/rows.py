"""A webhook delivery as messenger records and claims it (webhook_deliveries,
migration 0007): its kinds and statuses, a delivery to record, and a claimed one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

READ_RESULT, NOTIFICATION = "read_result", "notification"
PENDING, RETRYING, SUCCEEDED, FAILED, HELD = "pending", "retrying", "succeeded", "failed", "held"
DISABLED = "disabled"  # webhook_endpoints.state of an endpoint that is not sent to


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to record (from an event)."""

    id: str
    project_id: str
    destination_id: str
    kind: str
    event_type: str
    event_id: str
    body: bytes
    operation_id: str = ""
    installation_id: str = ""
    object_name: str = ""
    record_count: int = 0


@dataclass(frozen=True)
class Job:
    """A delivery claimed by this process for one attempt."""

    id: str
    project_id: str
    destination_id: str
    kind: str
    body: bytes
    attempt_count: int
    trigger: int
    retry_deadline: datetime
    record_count: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> Job:
        return cls(
            id=row["id"],
            project_id=str(row["project_id"]),
            destination_id=str(row["destination_id"]),
            kind=row["kind"],
            body=row["body"],
            attempt_count=row["attempt_count"],
            trigger=row["next_trigger"],
            retry_deadline=row["retry_deadline"],
            record_count=row["record_count"],
        )


# A Job's columns, of webhook_deliveries AS d.
JOB_COLUMNS = (
    "d.id, d.project_id, d.destination_id, d.kind, d.body, d.attempt_count, d.next_trigger, "
    "d.retry_deadline, d.record_count"
)
