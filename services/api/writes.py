"""The api's side of the asynchronous write workflows: it starts AsyncWrite for an
asynchronous write, and hands an auto-batched record to its group's WriteBatcher with
signal-with-start (the first record of a group starts the batcher). The workflows run in
the temporal workers (services/temporal/writes).

Temporal refusing or unreachable is WritesUnavailable: the caller answers UNAVAILABLE and
nothing was accepted (the write service stages the operation's creation in the same
database transaction, which then rolls back).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any, NoReturn

import asyncpg
import grpc
from ampmesh.workflows.v1 import async_write_pb2, object_target_pb2
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from services.domain.write_workflows import (
    ASYNC_WRITE_WORKFLOW,
    AUTO_BATCH_SIZE,
    ENQUEUE_SIGNAL,
    WRITE_BATCHER_WORKFLOW,
    WRITES_QUEUE,
    async_write_workflow_id,
    batcher_workflow_id,
)
from services.runtime.errors import abort_with_details, error_info

# One auto-batched record waiting for its batch (services/temporal/writes/queue.py takes it).
_QUEUE = """
    INSERT INTO write_queue (operation_id, batcher_id, queued, record_id, flush_at)
    VALUES ($1, $2, $3, $4, $5)
"""
# The batcher's earliest flush time before this record, its row locked until the
# transaction commits (a claim takes the same lock, so counts stay exact); then its count
# of waiting records with this one.
_EARLIEST = "SELECT earliest_flush FROM write_batchers WHERE batcher_id = $1 FOR UPDATE"
_COUNT = """
    INSERT INTO write_batchers (batcher_id, waiting, earliest_flush) VALUES ($1, 1, $2)
    ON CONFLICT (batcher_id) DO UPDATE SET
        waiting = write_batchers.waiting + 1,
        earliest_flush = least(write_batchers.earliest_flush, EXCLUDED.earliest_flush)
    RETURNING waiting
"""


class WritesUnavailable(RuntimeError):
    """Temporal could not be reached or refused the start: nothing was accepted."""


class Writes:
    """Starts the write workflows on Temporal."""

    def __init__(self, temporal: Client, *, task_queue: str = WRITES_QUEUE) -> None:
        self.temporal = temporal
        self.task_queue = task_queue

    async def start(self, write: async_write_pb2.AsyncWriteInput) -> str:
        """Start one asynchronous write; returns its workflow id."""
        workflow_id = async_write_workflow_id(write.operation_id)
        with _refusals():
            await self.temporal.start_workflow(
                ASYNC_WRITE_WORKFLOW,
                write,
                id=workflow_id,
                task_queue=self.task_queue,
                # An operation id is written once, even if its start is repeated.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        return workflow_id

    async def enqueue(
        self,
        conn: asyncpg.Connection,
        target: object_target_pb2.ObjectTarget,
        write_type: async_write_pb2.WriteType,
        queued: async_write_pb2.QueuedWrite,
        type_name: str,
    ) -> str:
        """Queue one record for its group's batcher (inside the caller's transaction: the
        row commits with the operation's creation) and wake the batcher when it must act
        on it, starting it when none runs; returns the batcher's workflow id.

        The record waits in PostgreSQL, not in the workflow. A wake (a signal carrying the
        operation id and flush time only) is sent for the first waiting record (the
        batcher may have ended), for each full batch, and for a flush time sooner than
        every other waiting record's; between those the batcher needs no news, so its
        history holds a signal per hundred records, not one per record."""
        workflow_id = batcher_workflow_id(target.installation_id, target.object_name, type_name)
        flush_at = queued.flush_time.ToDatetime(tzinfo=UTC)
        await conn.execute(
            _QUEUE,
            uuid.UUID(queued.operation_id),
            workflow_id,
            queued.SerializeToString(),
            queued.record.record_id,
            flush_at,
        )
        earliest = await conn.fetchval(_EARLIEST, workflow_id)
        waiting = await conn.fetchval(_COUNT, workflow_id, flush_at)
        sooner = earliest is None or flush_at < earliest
        if not (waiting == 1 or waiting % AUTO_BATCH_SIZE == 0 or sooner):
            return workflow_id
        wake = async_write_pb2.QueuedWrite(
            operation_id=queued.operation_id, flush_time=queued.flush_time
        )
        with _refusals():
            await self.temporal.start_workflow(
                WRITE_BATCHER_WORKFLOW,
                async_write_pb2.WriteBatcherInput(target=target, type=write_type),
                id=workflow_id,
                task_queue=self.task_queue,
                start_signal=ENQUEUE_SIGNAL,
                start_signal_args=[wake],
            )
        return workflow_id


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except (RPCError, WorkflowFailureError, RuntimeError, OSError) as error:
        raise WritesUnavailable(str(error)[:200] or type(error).__name__) from None


async def abort_writes_unavailable(context: Any, error: WritesUnavailable) -> NoReturn:
    await abort_with_details(
        context,
        grpc.StatusCode.UNAVAILABLE,
        f"the write could not be queued, so nothing was accepted; try again: {error}",
        error_info("WORKFLOWS_UNAVAILABLE"),
    )
