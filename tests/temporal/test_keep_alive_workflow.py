"""TokenKeepAlive on the real Temporal server, with a stand-in batch activity (same name)
over a list of ids: batches chain by id, counts add up, inputs reach the activity, history
stays bounded by continuing as new; and the keep-alive schedule is created once and
brought to the configured interval."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from ampmesh.workflows.v1 import token_keep_alive_pb2 as keep_alive_pb2
from temporalio import activity
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    WorkflowExecutionStatus,
)
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from services.temporal.keep_alive import workflows as keep_alive_workflow
from services.temporal.keep_alive.workflows import BATCH_ACTIVITY, WORKFLOW_NAME, TokenKeepAlive
from services.temporal.worker import WORKFLOW_RUNNER, ensure_keep_alive_schedule

pytestmark = pytest.mark.e2e


class FakeConnections:
    """Stands in for keep_alive_batch: `total` connections with sortable ids, each one
    counted refreshed; records every batch input it gets."""

    def __init__(self, total: int) -> None:
        self.ids = [f"{n:08d}-0000-0000-0000-000000000000" for n in range(1, total + 1)]
        self.inputs: list[keep_alive_pb2.TokenKeepAliveBatchInput] = []

    @activity.defn(name=BATCH_ACTIVITY)
    async def batch(
        self, request: keep_alive_pb2.TokenKeepAliveBatchInput
    ) -> keep_alive_pb2.TokenKeepAliveBatchOutput:
        self.inputs.append(request)
        after = request.after_connection_id
        rest = [i for i in self.ids if i > after]
        taken = rest[: request.batch_size]
        return keep_alive_pb2.TokenKeepAliveBatchOutput(
            counts=keep_alive_pb2.TokenKeepAliveCounts(
                examined=len(taken), refreshed=len(taken) - 1 if taken else 0, skipped=1
            ),
            last_connection_id=taken[-1] if taken else after,
            done=len(taken) < request.batch_size,
        )


async def run_keep_alive(
    client: Client, task_queue: str, request: keep_alive_pb2.TokenKeepAliveInput
) -> tuple[keep_alive_pb2.TokenKeepAliveOutput, str, str]:
    """The output of a run started with request, its workflow id and its first run id."""
    handle = await client.start_workflow(
        WORKFLOW_NAME,
        request,
        id=f"keep-alive-test-{uuid.uuid4().hex}",
        task_queue=task_queue,
        result_type=keep_alive_pb2.TokenKeepAliveOutput,
        execution_timeout=timedelta(seconds=60),
    )
    output = await handle.result()
    assert handle.first_execution_run_id is not None
    return output, handle.id, handle.first_execution_run_id


async def test_batches_chain_by_id_and_counts_add_up(temporal: Client, task_queue: str) -> None:
    fake = FakeConnections(25)
    async with Worker(
        temporal,
        task_queue=task_queue,
        workflows=[TokenKeepAlive],
        activities=[fake.batch],
        workflow_runner=WORKFLOW_RUNNER,
    ):
        request = keep_alive_pb2.TokenKeepAliveInput(provider="hubspot", batch_size=10)
        request.idle_threshold.FromTimedelta(timedelta(hours=2))
        output, workflow_id, _ = await run_keep_alive(temporal, task_queue, request)

    assert [i.after_connection_id for i in fake.inputs] == ["", fake.ids[9], fake.ids[19]]
    assert output.counts == keep_alive_pb2.TokenKeepAliveCounts(
        examined=25, refreshed=22, skipped=3
    )
    first = fake.inputs[0]
    assert first.provider == "hubspot"
    assert first.batch_size == 10
    assert first.concurrency == keep_alive_workflow.DEFAULT_CONCURRENCY
    assert first.idle_threshold.ToTimedelta() == timedelta(hours=2)
    # The run completes the meta a schedule cannot fix in advance.
    assert first.meta.type == "ampmesh.workflows.v1.TokenKeepAliveBatchInput"
    assert first.meta.source == "temporal"
    assert first.meta.HasField("time") and first.meta.id
    assert first.meta.idempotency_key == f"{workflow_id}/after/"


async def test_no_threshold_reaches_the_activity_as_none_and_defaults_apply(
    temporal: Client, task_queue: str
) -> None:
    fake = FakeConnections(3)
    async with Worker(
        temporal,
        task_queue=task_queue,
        workflows=[TokenKeepAlive],
        activities=[fake.batch],
        workflow_runner=WORKFLOW_RUNNER,
    ):
        output, _, _ = await run_keep_alive(
            temporal, task_queue, keep_alive_pb2.TokenKeepAliveInput(batch_size=-5)
        )
    assert output.counts.examined == 3
    (only,) = fake.inputs
    assert not only.HasField("idle_threshold")
    assert only.batch_size == keep_alive_workflow.DEFAULT_BATCH_SIZE
    assert only.provider == ""


@pytest.fixture
def two_batches_per_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Read at run time by the workflow, which runs unsandboxed in this test so the
    # patched module is the one it sees.
    monkeypatch.setattr(keep_alive_workflow, "BATCHES_PER_RUN", 2)
    yield


@pytest.mark.usefixtures("two_batches_per_run")
async def test_a_long_pass_continues_as_new_where_it_stopped(
    temporal: Client, task_queue: str
) -> None:
    fake = FakeConnections(23)
    async with Worker(
        temporal,
        task_queue=task_queue,
        workflows=[TokenKeepAlive],
        activities=[fake.batch],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        output, workflow_id, first_run_id = await run_keep_alive(
            temporal, task_queue, keep_alive_pb2.TokenKeepAliveInput(batch_size=5)
        )
    # Every connection once, in order, across three runs of two, two and one batch.
    assert [i.after_connection_id for i in fake.inputs] == [
        "",
        fake.ids[4],
        fake.ids[9],
        fake.ids[14],
        fake.ids[19],
    ]
    first_run = temporal.get_workflow_handle(workflow_id, run_id=first_run_id)
    assert (await first_run.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    # Each run reports its own batches: the last one examined the last 3 connections.
    assert output.counts.examined == 3
    # The meta made by the first run travels on, so its key stays the pass's.
    assert {i.meta.idempotency_key.split("/after/")[0] for i in fake.inputs} == {workflow_id}


async def test_the_schedule_is_created_once_and_follows_the_configured_interval(
    temporal: Client,
) -> None:
    schedule_id = f"keep-alive-test-{uuid.uuid4().hex[:8]}"
    try:
        await ensure_keep_alive_schedule(
            temporal, timedelta(hours=1), schedule_id=schedule_id, task_queue="q-one"
        )
        handle = temporal.get_schedule_handle(schedule_id)
        first = (await handle.describe()).schedule
        assert [i.every for i in first.spec.intervals] == [timedelta(hours=1)]
        assert first.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert isinstance(first.action, ScheduleActionStartWorkflow)
        assert first.action.workflow == WORKFLOW_NAME
        assert first.action.task_queue == "q-one"
        # Stored as json/protobuf (a described action holds the raw payloads),
        # and decoded into the message its messageType names.
        (argument,) = await temporal.data_converter.decode(
            first.action.args,
            [keep_alive_pb2.TokenKeepAliveInput],
        )
        assert isinstance(argument, keep_alive_pb2.TokenKeepAliveInput)
        assert not argument.HasField("idle_threshold")
        assert argument.meta.type == "ampmesh.workflows.v1.TokenKeepAliveInput"

        await ensure_keep_alive_schedule(
            temporal, timedelta(minutes=30), schedule_id=schedule_id, task_queue="q-one"
        )
        again = (await handle.describe()).schedule
        assert [i.every for i in again.spec.intervals] == [timedelta(minutes=30)]
    finally:
        await temporal.get_schedule_handle(schedule_id).delete()
