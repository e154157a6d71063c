"""The names both sides of the read workflows agree on: the api starts workflows and
manages schedules by these names and ids, the temporal workers register and run them.

Ids are deterministic so that a second start is refused by Temporal itself (a backfill
per object of an installation, a triggered read per operation, a schedule per object).
"""

from __future__ import annotations

from ampmesh.workflows.v1 import scheduled_read_pb2
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)

READS_QUEUE = "reads"

BACKFILL_WORKFLOW = "BackfillRead"
SCHEDULED_WORKFLOW = "ScheduledRead"
TRIGGERED_WORKFLOW = "TriggeredRead"

# Runs of a schedule that fail in a row before the schedule is paused (read.schedule.paused).
FAILURES_BEFORE_PAUSE = 3


def backfill_workflow_id(installation_id: str, object_name: str) -> str:
    return f"read-backfill/{installation_id}/{object_name}"


def triggered_workflow_id(operation_id: str) -> str:
    return f"read-triggered/{operation_id}"


def schedule_id(installation_id: str, object_name: str) -> str:
    return f"read-schedule/{installation_id}/{object_name}"


def read_schedule(
    workflow_input: scheduled_read_pb2.ScheduledReadInput,
    cron: str,
    *,
    paused: bool = False,
    task_queue: str = READS_QUEUE,
) -> Schedule:
    """The Temporal schedule of one object: ScheduledRead on the object's cron (UTC),
    never two runs at once (a run still going when the next is due makes that one skip,
    and the next run reads from the watermark the slow one leaves). The workflow id is
    the schedule id; Temporal appends each run's scheduled time."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SCHEDULED_WORKFLOW,
            workflow_input,
            id=workflow_input.schedule_id,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=[cron]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(paused=paused),
    )
