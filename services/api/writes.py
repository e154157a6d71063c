"""The api's side of the asynchronous write workflows: it starts AsyncWrite for an
asynchronous write, and hands an auto-batched record to its group's WriteBatcher with
signal-with-start (the first record of a group starts the batcher). The workflows run in
the temporal workers (services/temporal/writes).

Temporal refusing or unreachable is WritesUnavailable: the caller answers UNAVAILABLE and
nothing was accepted (the write service stages the operation's creation in the same
database transaction, which then rolls back).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import grpc
from ampmesh.workflows.v1 import async_write_pb2
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from services.domain.write_workflows import (
    ASYNC_WRITE_WORKFLOW,
    ENQUEUE_SIGNAL,
    WRITE_BATCHER_WORKFLOW,
    WRITES_QUEUE,
    async_write_workflow_id,
    batcher_workflow_id,
)
from services.runtime.errors import abort_with_details, error_info


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
        target: Any,
        write_type: async_write_pb2.WriteType,
        queued: async_write_pb2.QueuedWrite,
        type_name: str,
    ) -> str:
        """Add one record to its group's batcher, starting the batcher when none runs;
        returns the batcher's workflow id."""
        workflow_id = batcher_workflow_id(target.installation_id, target.object_name, type_name)
        with _refusals():
            await self.temporal.start_workflow(
                WRITE_BATCHER_WORKFLOW,
                async_write_pb2.WriteBatcherInput(
                    target=target,
                    type=write_type,
                ),
                id=workflow_id,
                task_queue=self.task_queue,
                start_signal=ENQUEUE_SIGNAL,
                start_signal_args=[queued],
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
