"""The task queues this process serves, one Temporal worker each, and their schedules.

Queue `connections`: the token keep-alive (workflow TokenKeepAlive, activity
keep_alive_batch), started every `keep_alive_every` by the schedule
`ampmesh-token-keep-alive`. Queue `reads`: BackfillRead, ScheduledRead and TriggeredRead
(reads/workflows.py) and their activities (reads/activities.py); the api starts them and
makes the schedules. Queue `writes`: AsyncWrite and WriteBatcher (writes/workflows.py)
and their activities (writes/activities.py); the api starts the first and signals the
second. Queue `subscribe`: SyncSubscriptions (subscribe/registration.py) and its
activities (subscribe/registration_activities.py); the api starts it after changing an
installation's subscribe objects, and the sweeper (subscribe/registration_sweep.py) for
rows left waiting. Each queue is its own Worker; a process runs those its
AMPMESH_TEMPORAL_TASK_QUEUES names (all four by default; one per Deployment in a cluster).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta

from ampmesh.events.v1 import envelope_pb2
from ampmesh.workflows.v1 import token_keep_alive_pb2 as keep_alive_pb2
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from services.domain.read_workflows import READS_QUEUE
from services.domain.subscribe_names import SUBSCRIBE_QUEUE
from services.domain.write_workflows import WRITES_QUEUE
from services.runtime.logs import get_logger
from services.temporal.keep_alive.activities import KeepAliveActivities
from services.temporal.keep_alive.workflows import WORKFLOW_NAME, TokenKeepAlive
from services.temporal.reads.activities import ReadActivities
from services.temporal.reads.workflows import BackfillRead, ScheduledRead, TriggeredRead
from services.temporal.subscribe.registration import SyncSubscriptions
from services.temporal.subscribe.registration_activities import RegistrationActivities
from services.temporal.writes.activities import WriteActivities
from services.temporal.writes.workflows import AsyncWrite, WriteBatcher

CONNECTIONS_QUEUE = "connections"
KEEP_ALIVE_SCHEDULE_ID = "ampmesh-token-keep-alive"

# Generated messages have no side effects: sharing the host's modules with the sandbox
# spares re-importing them in every run and keeps one class per message type.
# OpenTelemetry too (the runtime's tracing imports it): a copy per run would be slow and
# hold its own context and provider, apart from the TracingInterceptor's.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("ampmesh", "opentelemetry")
)
# Activities in flight get this long to finish when the process stops, then are
# cancelled; a cancelled keep-alive batch is retried from its start by another worker.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)

_log = get_logger("ampmesh.temporal.worker")

FatalErrorHandler = Callable[[BaseException], Awaitable[None]]


def connections_worker(
    client: Client,
    keep_alive: KeepAliveActivities,
    *,
    task_queue: str = CONNECTIONS_QUEUE,
    on_fatal_error: FatalErrorHandler | None = None,
) -> Worker:
    """The worker of the connections queue (run it with `async with`)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TokenKeepAlive],
        activities=[keep_alive.keep_alive_batch],
        workflow_runner=WORKFLOW_RUNNER,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        on_fatal_error=on_fatal_error,
    )


def reads_worker(
    client: Client,
    reads: ReadActivities,
    *,
    task_queue: str = READS_QUEUE,
    on_fatal_error: FatalErrorHandler | None = None,
) -> Worker:
    """The worker of the reads queue (run it with `async with`)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BackfillRead, ScheduledRead, TriggeredRead],
        activities=[
            reads.open_read,
            reads.read_pages,
            reads.confirm_read,
            reads.save_read_watermark,
            reads.close_read,
        ],
        workflow_runner=WORKFLOW_RUNNER,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        on_fatal_error=on_fatal_error,
    )


def writes_worker(
    client: Client,
    writes: WriteActivities,
    *,
    task_queue: str = WRITES_QUEUE,
    on_fatal_error: FatalErrorHandler | None = None,
) -> Worker:
    """The worker of the writes queue (run it with `async with`)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AsyncWrite, WriteBatcher],
        activities=[
            writes.open_write,
            writes.write_records,
            writes.close_write,
            writes.claim_writes,
            writes.open_queued_writes,
            writes.close_queued_writes,
            writes.release_writes,
        ],
        workflow_runner=WORKFLOW_RUNNER,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        on_fatal_error=on_fatal_error,
    )


def subscribe_worker(
    client: Client,
    registration: RegistrationActivities,
    *,
    task_queue: str = SUBSCRIBE_QUEUE,
    on_fatal_error: FatalErrorHandler | None = None,
) -> Worker:
    """The worker of the subscribe queue (run it with `async with`)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[SyncSubscriptions],
        activities=[
            registration.load_subscriptions,
            registration.register_subscriptions,
            registration.remove_subscriptions,
            registration.fail_subscriptions,
        ],
        workflow_runner=WORKFLOW_RUNNER,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        on_fatal_error=on_fatal_error,
    )


def keep_alive_schedule(every: timedelta, *, task_queue: str = CONNECTIONS_QUEUE) -> Schedule:
    """Start TokenKeepAlive every `every`, with no threshold (each provider's own), never
    two at once: a pass still running when the next is due makes that one skip."""
    meta = envelope_pb2.EventMeta(
        type=keep_alive_pb2.TokenKeepAliveInput.DESCRIPTOR.full_name, source="temporal"
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_NAME,
            keep_alive_pb2.TokenKeepAliveInput(meta=meta),
            id=KEEP_ALIVE_SCHEDULE_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_keep_alive_schedule(
    client: Client,
    every: timedelta,
    *,
    schedule_id: str = KEEP_ALIVE_SCHEDULE_ID,
    task_queue: str = CONNECTIONS_QUEUE,
) -> None:
    """Create the keep-alive schedule, or bring an existing one's spec, action and policy
    to ours (every worker process calls this at start; its state, paused or not, and its
    history are left alone)."""
    wanted = keep_alive_schedule(every, task_queue=task_queue)
    try:
        await client.create_schedule(schedule_id, wanted)
        _log.info("keep-alive schedule created", schedule_id=schedule_id, every=str(every))
        return
    except ScheduleAlreadyRunningError:
        pass

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        existing = current.description.schedule
        return ScheduleUpdate(
            schedule=dataclasses.replace(
                existing, action=wanted.action, spec=wanted.spec, policy=wanted.policy
            )
        )

    await client.get_schedule_handle(schedule_id).update(update)
    _log.info("keep-alive schedule updated", schedule_id=schedule_id, every=str(every))
