"""One worker process per task queue (AMPMESH_TEMPORAL_TASK_QUEUES), as a cluster deploys
them: a reads-only process runs reads and leaves every other queue, and the keep-alive
schedule, to the processes that own them. Real Temporal and PostgreSQL of the test's own
(not the session mesh, whose worker polls every queue)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from ampmesh.workflows.v1 import backfill_read_pb2, object_target_pb2
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, ScheduleHandle
from temporalio.service import RPCError

from services.domain.read_workflows import BACKFILL_WORKFLOW, READS_QUEUE
from services.domain.subscribe_names import SUBSCRIBE_QUEUE
from services.domain.write_workflows import ASYNC_WRITE_WORKFLOW, WRITES_QUEUE
from services.launcher.infra import Postgres, Temporal
from services.launcher.ports import PortBook
from services.temporal.worker import CONNECTIONS_QUEUE, KEEP_ALIVE_SCHEDULE_ID

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "ampmesh"


@dataclass
class Infra:
    home: Path
    temporal: Temporal
    postgres: Postgres


@pytest.fixture(scope="module")
async def infra() -> AsyncIterator[Infra]:
    # Not pytest's tmp_path: as root PostgreSQL runs as a user that could not reach it.
    home = Path(tempfile.mkdtemp(prefix="ampmesh-test-queues-"))
    home.chmod(0o755)
    ports = PortBook(home)
    temporal, postgres = Temporal(home, ports), Postgres(home, ports)
    try:
        await temporal.start()
        await postgres.start()
        yield Infra(home, temporal, postgres)
    finally:
        await postgres.stop()
        await temporal.stop()
        shutil.rmtree(home, ignore_errors=True)


def worker_env(infra: Infra, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        {
            **infra.temporal.service_env(),
            **infra.postgres.service_env(),
            "AMPMESH_CERT_DIR": str(infra.home / "certs"),
            "AMPMESH_LISTEN_PORT": "0",
            "AMPMESH_HEALTH_PORT": "0",
            # Reached only when an activity calls them: the reads here find nothing to read.
            "AMPMESH_TOKEN_MANAGER_ADDRESS": "127.0.0.1:9",
            "AMPMESH_PUBSUB_PROJECT": "ampmesh-local",
            "AMPMESH_PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
            **extra,
        }
    )
    return env


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.temporal",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_logged(process: asyncio.subprocess.Process, event: str) -> dict[str, object]:
    assert process.stderr is not None
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(process.stderr.readline(), timeout=60)
        if not raw:
            raise AssertionError(f"worker ended before {event!r}: {lines[-10:]}")
        line = raw.decode().strip()
        lines.append(line)
        if line.startswith("{") and json.loads(line).get("event") == event:
            return dict(json.loads(line))


async def polled_by(
    client: Client, process: asyncio.subprocess.Process, queue: str
) -> set[TaskQueueType.ValueType]:
    """The kinds of task (workflow, activity) of queue that process polls. Temporal lists
    a poller for minutes after it stops: the identity (pid@host) tells processes apart."""
    kinds: set[TaskQueueType.ValueType] = set()
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=NAMESPACE, task_queue=TaskQueue(name=queue), task_queue_type=kind
            )
        )
        if any(p.identity.startswith(f"{process.pid}@") for p in described.pollers):
            kinds.add(kind)
    return kinds


async def history_types(client: Client, workflow_id: str) -> list[int]:
    return [
        e.event_type async for e in client.get_workflow_handle(workflow_id).fetch_history_events()
    ]


async def test_a_reads_only_worker_runs_reads_and_polls_nothing_else(infra: Infra) -> None:
    client = await Client.connect(infra.temporal.endpoint, namespace=NAMESPACE)
    process = await start_worker(worker_env(infra, AMPMESH_TEMPORAL_TASK_QUEUES="reads"))
    write_id = f"test-write-{uuid.uuid4().hex[:8]}"
    try:
        connected = await wait_logged(process, "temporal connected")
        assert connected["task_queues"] == [READS_QUEUE]
        await wait_logged(process, "serving")

        # A write waits on its queue, which nobody here polls.
        await client.start_workflow(
            ASYNC_WRITE_WORKFLOW,
            writes_pb2.AsyncWriteInput(operation_id=str(uuid.uuid4())),
            id=write_id,
            task_queue=WRITES_QUEUE,
            execution_timeout=timedelta(minutes=5),
        )
        # A backfill of an installation that does not exist: the reads worker opens it
        # against the database, finds nothing to read, and finishes.
        target = object_target_pb2.ObjectTarget(
            project_id=str(uuid.uuid4()),
            installation_id=str(uuid.uuid4()),
            connection_id=str(uuid.uuid4()),
            provider="hubspot",
            object_name="contacts",
        )
        operation_id = str(uuid.uuid4())
        done = await client.execute_workflow(
            BACKFILL_WORKFLOW,
            backfill_read_pb2.BackfillReadInput(target=target, operation_id=operation_id),
            id=f"test-read-{uuid.uuid4().hex[:8]}",
            task_queue=READS_QUEUE,
            result_type=backfill_read_pb2.BackfillReadOutput,
            execution_timeout=timedelta(minutes=2),
        )
        assert done.operation_id == operation_id

        both = {TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY}
        assert await polled_by(client, process, READS_QUEUE) == both
        for queue in (WRITES_QUEUE, CONNECTIONS_QUEUE, SUBSCRIBE_QUEUE):
            assert await polled_by(client, process, queue) == set(), queue
        # The write's first task was never even picked up.
        events = await history_types(client, write_id)
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED in events
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED not in events
        # The keep-alive schedule belongs to the connections worker.
        with pytest.raises(RPCError):
            await ScheduleHandle(client, KEEP_ALIVE_SCHEDULE_ID).describe()

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await client.get_workflow_handle(write_id).terminate("test over")


async def test_the_connections_worker_ensures_the_keep_alive_schedule(infra: Infra) -> None:
    client = await Client.connect(infra.temporal.endpoint, namespace=NAMESPACE)
    process = await start_worker(worker_env(infra, AMPMESH_TEMPORAL_TASK_QUEUES="connections"))
    try:
        await wait_logged(process, "serving")
        described = await ScheduleHandle(client, KEEP_ALIVE_SCHEDULE_ID).describe()
        assert described.id == KEEP_ALIVE_SCHEDULE_ID
        # Its pollers reach the server soon after it serves, not necessarily before.
        for _ in range(60):
            if await polled_by(client, process, CONNECTIONS_QUEUE):
                break
            await asyncio.sleep(0.5)
        assert await polled_by(client, process, CONNECTIONS_QUEUE)
        for queue in (READS_QUEUE, WRITES_QUEUE, SUBSCRIBE_QUEUE):
            assert await polled_by(client, process, queue) == set(), queue
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_an_unknown_queue_exits_2_naming_the_variable_and_the_choices(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        AMPMESH_TEMPORAL_ADDRESS="127.0.0.1:9",
        AMPMESH_TEMPORAL_TASK_QUEUES="reads,write",
        AMPMESH_CERT_DIR=str(tmp_path),
    )
    process = await start_worker(env)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert stderr.decode().splitlines() == [
        "temporal: configuration error: AMPMESH_TEMPORAL_TASK_QUEUES is invalid: unknown "
        "task queue 'write' (allowed: connections, reads, writes, subscribe)"
    ]
