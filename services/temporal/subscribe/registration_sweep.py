"""The sweeper: SyncSubscriptions for rows nobody is working on.

The api commits a row `pending` (or `removing`) and then starts the workflow; a crash in
between, or Temporal refusing the start, leaves the row waiting. At worker start and
every SWEEP_EVERY the sweeper starts SyncSubscriptions for each row `pending` or
`removing` untouched for MIN_AGE, under the api's own workflow id for the row's change:
Temporal refuses the start while that run is still going, so a run in progress is never
doubled, and every worker process may sweep side by side. A removal that gave up
(`removing`, its updated_at touched) is tried again this way too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
from ampmesh.workflows.v1 import subscriptions_pb2
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from services.domain.subscribe_names import SUBSCRIBE_QUEUE, SYNC_WORKFLOW, sync_workflow_id
from services.runtime.logs import get_logger

SWEEP_EVERY = timedelta(seconds=60)
MIN_AGE = timedelta(seconds=60)
# Rows started per sweep at most (the rest wait for the next).
BATCH = 200

_log = get_logger("ampmesh.temporal.subscribe.sweep")

_SELECT = """
    SELECT installation_id::text AS installation_id, project_id::text AS project_id,
           integration_id::text AS integration_id, status, change
    FROM subscriptions
    WHERE status IN ('pending', 'removing') AND updated_at < now() - $1::interval
    ORDER BY updated_at LIMIT $2
"""


async def sweep_once(
    pool: asyncpg.Pool,
    client: Client,
    *,
    task_queue: str = SUBSCRIBE_QUEUE,
    min_age: timedelta = MIN_AGE,
) -> int:
    """Start the runs the waiting rows need; how many were started."""
    started = 0
    for row in await pool.fetch(_SELECT, min_age, BATCH):
        request = subscriptions_pb2.SyncSubscriptionsInput(
            installation_id=row["installation_id"],
            integration_id=row["integration_id"],
            installation_deleted=row["status"] == "removing",
        )
        workflow_id = sync_workflow_id(row["installation_id"], row["change"])
        meta = request.meta
        meta.type = subscriptions_pb2.SyncSubscriptionsInput.DESCRIPTOR.full_name
        meta.source = "temporal"
        meta.project_id = row["project_id"]
        meta.idempotency_key = workflow_id
        try:
            await client.start_workflow(
                SYNC_WORKFLOW, request, id=workflow_id, task_queue=task_queue
            )
        except WorkflowAlreadyStartedError:
            continue
        started += 1
        _log.info(
            "subscriptions swept",
            installation_id=row["installation_id"],
            status=row["status"],
            change=row["change"],
        )
    return started


@contextlib.asynccontextmanager
async def sweeping(
    pool: asyncpg.Pool,
    client: Client,
    *,
    task_queue: str = SUBSCRIBE_QUEUE,
    every: timedelta = SWEEP_EVERY,
    min_age: timedelta = MIN_AGE,
) -> AsyncIterator[asyncio.Task[None]]:
    """Sweep now and every `every` while the block runs; a failed sweep is logged and
    the next one tries again."""

    async def loop() -> None:
        while True:
            try:
                await sweep_once(pool, client, task_queue=task_queue, min_age=min_age)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning("subscriptions sweep failed", error=str(error)[:200])
            await asyncio.sleep(every.total_seconds())

    task = asyncio.create_task(loop(), name="subscriptions-sweeper")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
