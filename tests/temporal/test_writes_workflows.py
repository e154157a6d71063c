"""The write workflows on the session stack's Temporal, PostgreSQL and Pub/Sub emulator,
writing through the real HubSpot writer to the provider sandbox, with the real
WriteActivities on a test task queue (the token-manager stands in as a stub handing out a
sandbox access token). The writer is wrapped only to record the batches it was given (and,
in two tests, to lose the provider's answer after it wrote); the sandbox's faults play
the provider's rate limits.

The writers retry nothing inside an attempt here (writer_max_wait=0), so each 429 the
sandbox answers is one Temporal attempt: what these tests check is Temporal's retries,
the deadline, what a retried attempt knows about its predecessor, the batching and the
events.

Run as a script (`python -m tests.temporal.test_writes_workflows doomed <config>`), this
module is a writes worker that writes once and then hangs until it is killed, for the
test of a worker killed mid-write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from ampmesh.events.v1 import log_entry_pb2
from ampmesh.events.v1 import operation_events_pb2 as ops
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.sandbox.v1 import sandbox_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import CancelledError

from services.api.writes import Writes
from services.domain.catalog import load_catalog
from services.domain.catalog.sandbox import point_at_sandbox
from services.domain.connectors import registry
from services.domain.connectors.base import ProviderAuth, ProviderUnavailable
from services.domain.connectors.http import provider_session
from services.domain.connectors.writes import WriteBatch, WriteOutcome, Writer
from services.domain.write_workflows import (
    ASYNC_WRITE_WORKFLOW,
    async_write_workflow_id,
    batcher_workflow_id,
)
from services.runtime.pubsub_topology import emulator_subscriber
from services.temporal.reads.publish import Publisher
from services.temporal.worker import writes_worker
from services.temporal.writes.activities import WriteActivities
from services.temporal.writes.workflows import CANCELLED_ERROR
from tests.support.control_plane import database_url, sandbox_tokens
from tests.support.reads import Installation, Watch, make_installation
from tests.support.sandbox import controlling, duration
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

SHOWN = "Contact"


# --- stand-ins: the token-manager, and a writer that records what it was asked ----------


class SandboxTokens:
    """Hands out a sandbox access token; `stale` first (until a forced refresh) when set."""

    def __init__(self, token: str, stale: str = "") -> None:
        self.token, self.stale = token, stale
        self.requests: list[tm.GetTokenRequest] = []

    async def GetToken(self, request: tm.GetTokenRequest, **options: Any) -> Any:
        self.requests.append(request)
        forced = request.refresh == tm.REFRESH_MODE_FORCE
        token = self.token if forced or not self.stale else self.stale
        return tm.GetTokenResponse(token=tm.AccessToken(token=token, token_type="Bearer"))


AfterWrite = Callable[[int, WriteOutcome], Any]


@dataclass
class Recorder:
    """The real writers, recording each batch; `after` may replace a call's outcome (by
    call number, from 1), as a lost answer or a dying worker does."""

    batches: list[WriteBatch] = field(default_factory=list)
    after: AfterWrite | None = None
    # Set once the writer has been called.
    called: asyncio.Event = field(default_factory=asyncio.Event)

    def writer_for(self, provider: str) -> Writer:
        return _Recording(registry.writer_for(provider), self)


class _Recording:
    def __init__(self, real: Writer, recorder: Recorder) -> None:
        self.provider, self.max_batch = real.provider, real.max_batch
        self._real, self._recorder = real, recorder

    async def write(
        self,
        http: aiohttp.ClientSession,
        auth: ProviderAuth,
        batch: WriteBatch,
        *,
        max_wait: float = 20.0,
    ) -> WriteOutcome:
        self._recorder.batches.append(batch)
        self._recorder.called.set()
        outcome = await self._real.write(http, auth, batch, max_wait=max_wait)
        if self._recorder.after is not None:
            replaced = self._recorder.after(len(self._recorder.batches), outcome)
            if asyncio.iscoroutine(replaced):
                replaced = await replaced
            if replaced is not None:
                return replaced
        return outcome


# --- the world ---------------------------------------------------------------------------


@dataclass
class World:
    stack: Stack
    temporal: Client
    task_queue: str
    pool: asyncpg.Pool
    installation: Installation
    control: Any
    tokens: SandboxTokens
    recorder: Recorder
    activities: WriteActivities
    operations: Watch
    logs: Watch
    notifications: Watch

    def worker(self) -> Any:
        return writes_worker(self.temporal, self.activities, task_queue=self.task_queue)

    def request(
        self,
        *records: dict[str, Any],
        batch: bool = False,
        deadline_in: float = 3600,
        write_type: int = writes_pb2.WRITE_TYPE_CREATE,
    ) -> writes_pb2.AsyncWriteInput:
        request = writes_pb2.AsyncWriteInput(
            target=self.installation.target(),
            operation_id=str(uuid.uuid4()),
            type=write_type,  # type: ignore[arg-type]
            batch=batch,
            shown_object_name=SHOWN,
        )
        request.meta.project_id = self.installation.project_id
        now = datetime.now(UTC)
        request.meta.time.FromDatetime(now)
        request.retry_deadline.FromDatetime(now + timedelta(seconds=deadline_in))
        for fields in records:
            request.records.add().record.update(fields)
        return request

    async def write(
        self, request: writes_pb2.AsyncWriteInput, seconds: float = 90
    ) -> writes_pb2.AsyncWriteOutput:
        """Run an AsyncWrite to its end on a worker of this test's."""
        async with self.worker():
            return await self.temporal.execute_workflow(
                ASYNC_WRITE_WORKFLOW,
                request,
                id=f"test-{async_write_workflow_id(request.operation_id)}",
                task_queue=self.task_queue,
                result_type=writes_pb2.AsyncWriteOutput,
                execution_timeout=timedelta(seconds=seconds),
            )

    def queued(self, fields: dict[str, Any], flush_at: datetime) -> writes_pb2.QueuedWrite:
        queued = writes_pb2.QueuedWrite(operation_id=str(uuid.uuid4()), shown_object_name=SHOWN)
        queued.meta.project_id = self.installation.project_id
        now = datetime.now(UTC)
        queued.meta.time.FromDatetime(now)
        queued.record.record.update(fields)
        queued.flush_time.FromDatetime(flush_at)
        queued.retry_deadline.FromDatetime(now + timedelta(hours=1))
        return queued

    def batcher_id(self) -> str:
        """A batcher of this test's own (its type name made unique)."""
        return batcher_workflow_id(
            self.installation.installation_id, "contacts", f"create-{uuid.uuid4().hex[:8]}"
        )

    async def enqueue(
        self, workflow_id: str, queued: writes_pb2.QueuedWrite
    ) -> WorkflowHandle[Any, Any]:
        """What the api does per record (services/api/writes.py): queue it in PostgreSQL
        and wake the group's batcher when it must act."""
        writes = Writes(self.temporal, task_queue=self.task_queue)
        async with self.pool.acquire() as conn, conn.transaction():
            await writes.enqueue(
                conn,
                self.installation.target(),
                writes_pb2.WRITE_TYPE_CREATE,
                queued,
                workflow_id.rpartition("/")[2],
            )
        return self.temporal.get_workflow_handle(workflow_id)

    async def counters(self) -> Any:
        return await self.control.GetCounters(sandbox_pb2.GetCountersRequest())

    async def rate_limit(self, **limits: Any) -> None:
        await self.control.InjectFault(
            sandbox_pb2.InjectFaultRequest(
                fault=sandbox_pb2.Fault(
                    kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT,
                    endpoint=sandbox_pb2.FAULT_ENDPOINT_WRITES,
                    provider=sandbox_pb2.PROVIDER_HUBSPOT,
                    **limits,
                )
            )
        )

    async def drain(self) -> None:
        """Pull everything published so far on the watched topics."""
        for watch in (self.operations, self.logs, self.notifications):
            await watch.drain()

    def events(self, operation: str) -> Events:
        """The operation's events among those pulled (drain first)."""
        return Events(
            created=self.operations.of(operation, "operation_created"),
            finished=self.operations.of(operation, "operation_finished"),
            logs=self.logs.of(operation, "log_entry"),
            notifications=[
                n
                for n in self.notifications.seen
                if n.meta.idempotency_key == f"{operation}/notification"
            ],
        )


@dataclass
class Events:
    created: list[Envelope]
    finished: list[Envelope]
    logs: list[Envelope]
    notifications: list[Envelope]

    def one_finished(self) -> ops.OperationFinished:
        keys = {e.meta.idempotency_key for e in self.finished}
        assert len(keys) == 1, keys
        return self.finished[0].operation_finished

    def one_notification(self) -> Any:
        assert len({e.meta.idempotency_key for e in self.notifications}) == 1
        return self.notifications[0].notification.write_async_done.data


def email() -> str:
    return f"w-{uuid.uuid4().hex[:12]}@example.com"


def contact(**more: Any) -> dict[str, Any]:
    return {"email": email(), "firstname": "Ada", **more}


@pytest.fixture
def logs(stack: Stack) -> Iterator[Watch]:
    pubsub = next(c for c in stack.mesh.components if c.name == "pubsub")
    project = pubsub.service_env()["AMPMESH_PUBSUB_PROJECT"]
    subscriber = emulator_subscriber(stack.endpoints["pubsub"])
    name = f"projects/{project}/subscriptions/test-{uuid.uuid4().hex[:12]}"
    subscriber.create_subscription(name=name, topic=f"projects/{project}/topics/ampmesh-logs")
    yield Watch(subscriber, name)
    subscriber.delete_subscription(subscription=name)


@pytest.fixture
async def world(
    stack: Stack,
    temporal: Client,
    task_queue: str,
    pool: asyncpg.Pool,
    watches: dict[str, Watch],
    logs: Watch,
) -> AsyncIterator[World]:
    access, _ = await sandbox_tokens(stack)
    installation = await make_installation(pool, stack.org_id)
    pubsub = next(c for c in stack.mesh.components if c.name == "pubsub")
    publisher = Publisher.open(
        stack.endpoints["pubsub"], pubsub.service_env()["AMPMESH_PUBSUB_PROJECT"]
    )
    tokens = SandboxTokens(access)
    recorder = Recorder()
    async with provider_session() as http, controlling(stack) as control:
        await control.GetCounters(sandbox_pb2.GetCountersRequest(reset=True))
        activities = WriteActivities(
            pool=pool,
            tokens=tokens,  # type: ignore[arg-type]
            catalog=point_at_sandbox(load_catalog(), stack.endpoints["sandbox-http"]),
            http=http,
            publisher=publisher,
            writer_for=recorder.writer_for,
            auth_for=registry.provider_auth,
            writer_max_wait=0,
        )
        yield World(
            stack,
            temporal,
            task_queue,
            pool,
            installation,
            control,
            tokens,
            recorder,
            activities,
            watches["ampmesh-operations"],
            logs,
            watches["ampmesh-notifications"],
        )
    publisher.close()


# --- AsyncWrite --------------------------------------------------------------------------


async def test_an_async_write_creates_its_record_and_says_so_in_every_event(
    world: World,
) -> None:
    request = world.request(contact())
    output = await world.write(request)
    assert output.success, output.errors
    (result,) = output.results
    assert result.success and result.record_id
    assert result.data.fields["id"].string_value == result.record_id
    assert list(output.successful_record_ids) == [result.record_id]
    assert (await world.counters()).write_requests_by_route["create"] == 1
    assert [b.may_have_written for b in world.recorder.batches] == [False]
    assert world.recorder.batches[0].single  # the request's one-record form

    await world.drain()
    seen = world.events(request.operation_id)
    (created,) = seen.created
    assert created.meta.idempotency_key == f"{request.operation_id}/created"
    message = created.operation_created
    assert message.action_type == ops.ACTION_TYPE_WRITE
    assert list(message.objects) == ["contacts"]
    assert message.installation_id == world.installation.installation_id
    assert message.workflow_id == f"test-{async_write_workflow_id(request.operation_id)}"
    assert message.workflow_run_id and message.config_id
    assert message.create_time == request.meta.time
    finished = seen.one_finished()
    assert finished.status == ops.OPERATION_STATUS_SUCCESS
    assert finished.result == "Wrote 1 record"
    assert (finished.counts.records_written, finished.counts.records_failed) == (1, 0)
    assert list(finished.successful_record_ids) == [result.record_id]
    assert sorted(e.meta.idempotency_key.rsplit("/", 1)[1] for e in seen.logs) == [
        "finished",
        "started",
    ]
    data = seen.one_notification()
    assert seen.notifications[0].meta.type == "write.async.done"
    assert data.success and list(data.successful_record_ids) == [result.record_id]
    assert (data.object_name, data.integration_name) == (SHOWN, "crm")
    assert (data.group_ref, data.group_name) == ("g1", "Group 1")
    assert (data.consumer_ref, data.consumer_name) == ("c1", "Consumer 1")
    assert data.installation_id == world.installation.installation_id


async def test_a_provider_limiting_the_rate_is_retried_by_temporal_until_it_writes(
    world: World,
) -> None:
    await world.rate_limit(count=3, retry_after=duration(1))
    request = world.request(contact(), contact(), batch=True)
    started = time.monotonic()
    output = await world.write(request)
    elapsed = time.monotonic() - started
    assert output.success and output.success_count == 2, output.errors
    # Three attempts answered 429 (each retried after the Retry-After of 1 s), the fourth
    # wrote; none of them may have written before it, so none hunts for duplicates.
    assert len(world.recorder.batches) == 4
    assert [b.may_have_written for b in world.recorder.batches] == [False] * 4
    counters = await world.counters()
    assert counters.write_requests_by_route["batch_create"] == 4
    assert counters.records_written == 2
    assert elapsed >= 3
    await world.drain()
    finished = world.events(request.operation_id).one_finished()
    assert finished.result == "Batch write completed (2 succeeded, 0 failed)"


async def test_a_rejected_token_is_refreshed_once_inside_the_attempt(world: World) -> None:
    world.tokens.stale = "not-a-sandbox-token"
    output = await world.write(world.request(contact()))
    assert output.success, output.errors
    assert [r.refresh for r in world.tokens.requests] == [
        tm.REFRESH_MODE_UNSPECIFIED,
        tm.REFRESH_MODE_FORCE,
    ]
    assert len(world.recorder.batches) == 2  # one attempt, two calls


async def test_a_refused_record_fails_at_once_and_the_others_are_written(world: World) -> None:
    request = world.request(contact(), contact(no_such_property="x"), contact(), batch=True)
    output = await world.write(request)
    assert [r.success for r in output.results] == [True, False, True]
    (refusal,) = output.results[1].errors
    assert refusal.startswith("VALIDATION_ERROR") and "PROPERTY_DOESNT_EXIST" in refusal
    assert (output.success, output.success_count, output.failure_count) == (False, 2, 1)
    assert len(world.recorder.batches) == 1  # no retry
    await world.drain()
    seen = world.events(request.operation_id)
    finished = seen.one_finished()
    assert finished.status == ops.OPERATION_STATUS_FAILURE
    assert finished.result == "Batch write completed (2 succeeded, 1 failed)"
    assert list(finished.successful_record_ids) == list(output.successful_record_ids)
    assert any("no_such_property" in error for error in finished.errors)
    (ended,) = [e for e in seen.logs if e.meta.idempotency_key.endswith("/log/finished")]
    assert ended.log_entry.severity == log_entry_pb2.LOG_SEVERITY_ERROR
    data = seen.one_notification()
    assert data.HasField("success") and not data.success
    assert len(data.successful_record_ids) == 2 and len(data.errors) == 1


async def test_the_retry_deadline_fails_every_record_with_the_last_provider_error(
    world: World,
) -> None:
    await world.rate_limit(retry_after=duration(1))
    request = world.request(contact(), contact(), batch=True, deadline_in=6)
    started = time.monotonic()
    output = await world.write(request)
    elapsed = time.monotonic() - started
    assert not output.success and output.failure_count == 2
    (error,) = output.errors
    assert error.startswith("gave up at the retry deadline: POST ")
    assert "answered 429 RATE_LIMITS" in error
    assert all(list(r.errors) == [error] for r in output.results)
    assert len(world.recorder.batches) >= 3  # it kept trying until then
    assert elapsed < 30
    await world.drain()
    seen = world.events(request.operation_id)
    finished = seen.one_finished()
    assert finished.status == ops.OPERATION_STATUS_FAILURE
    assert finished.counts.records_failed == 2 and list(finished.errors) == [error]
    assert finished.result == "Batch write completed (0 succeeded, 2 failed)"
    data = seen.one_notification()
    assert not data.success and list(data.errors) == [error]


async def test_a_write_started_after_its_deadline_gets_one_attempt(world: World) -> None:
    await world.rate_limit(retry_after=duration(1))
    output = await world.write(world.request(contact(), deadline_in=-5))
    assert len(world.recorder.batches) == 1
    (error,) = output.errors
    assert error.startswith("gave up at the retry deadline: ") and "429" in error
    # Without the fault the one attempt writes.
    await world.control.ClearFaults(sandbox_pb2.ClearFaultsRequest())
    assert (await world.write(world.request(contact(), deadline_in=-5))).success


async def test_a_cancelled_write_closes_its_operation_then_ends_cancelled(world: World) -> None:
    await world.rate_limit(retry_after=duration(1))
    request = world.request(contact())
    async with world.worker():
        handle = await world.temporal.start_workflow(
            ASYNC_WRITE_WORKFLOW,
            request,
            id=f"test-{async_write_workflow_id(request.operation_id)}",
            task_queue=world.task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        await asyncio.wait_for(world.recorder.called.wait(), 30)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert isinstance(failed.value.cause, CancelledError)
    await world.drain()
    seen = world.events(request.operation_id)
    finished = seen.one_finished()
    assert finished.status == ops.OPERATION_STATUS_FAILURE
    assert list(finished.errors) == [CANCELLED_ERROR]
    assert not seen.one_notification().success


async def test_a_retry_after_a_lost_answer_takes_the_record_the_first_attempt_wrote(
    world: World,
) -> None:
    def lose_the_first_answer(call: int, outcome: WriteOutcome) -> None:
        if call == 1:
            # The provider wrote, then the connection broke before its answer came.
            raise ProviderUnavailable("POST /crm/v3/objects/contacts failed: ClientOSError")

    world.recorder.after = lose_the_first_answer
    request = world.request(contact())
    output = await world.write(request)
    assert output.success, output.errors
    first, second = world.recorder.batches
    assert (first.may_have_written, second.may_have_written) == (False, True)
    counters = await world.counters()
    # HubSpot refused the second create as a duplicate naming the first one's record.
    assert counters.records_written == 1
    assert counters.write_requests_by_route["create"] == 2
    created = output.results[0].record_id
    assert created and list(output.successful_record_ids) == [created]


async def test_a_worker_killed_mid_write_is_noticed_and_its_retry_finds_the_record(
    world: World,
) -> None:
    stack = world.stack
    request = world.request(contact())
    workflow_id = f"test-{async_write_workflow_id(request.operation_id)}"
    await world.temporal.start_workflow(
        ASYNC_WRITE_WORKFLOW,
        request,
        id=workflow_id,
        task_queue=world.task_queue,
        result_type=writes_pb2.AsyncWriteOutput,
        execution_timeout=timedelta(seconds=120),
    )
    pubsub = next(c for c in stack.mesh.components if c.name == "pubsub")
    config = {
        "temporal": stack.endpoints["temporal"],
        "queue": world.task_queue,
        "database": database_url(stack),
        "pubsub": stack.endpoints["pubsub"],
        "project": pubsub.service_env()["AMPMESH_PUBSUB_PROJECT"],
        "sandbox": stack.endpoints["sandbox-http"],
        "token": world.tokens.token,
    }
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.temporal.test_writes_workflows",
        "doomed",
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert doomed.stdout is not None
        # Its own log lines may come first.
        while (line := await asyncio.wait_for(doomed.stdout.readline(), 60)).strip() != b"written":
            assert line, "the doomed worker ended before it wrote"
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        await doomed.wait()
    killed = time.monotonic()
    async with world.worker():
        output = await world.temporal.get_workflow_handle(
            workflow_id, result_type=writes_pb2.AsyncWriteOutput
        ).result()
    noticed = time.monotonic() - killed
    assert output.success, output.errors
    # The dead attempt's last heartbeat said a call was in flight: its retry looked for
    # the record it had written, and HubSpot named it.
    assert [b.may_have_written for b in world.recorder.batches] == [True]
    counters = await world.counters()
    assert counters.records_written == 1
    assert counters.write_requests_by_route["create"] == 2
    # The heartbeat timeout (15 s) and a workflow task left on the dead worker's sticky
    # queue (5 s) bound how long the death goes unnoticed.
    assert noticed < 40
    print(f"\nworker killed mid-write: retried and finished {noticed:.1f} s later")


# --- WriteBatcher ------------------------------------------------------------------------


async def test_the_batcher_writes_as_soon_as_a_hundred_records_wait(world: World) -> None:
    workflow_id = world.batcher_id()
    later = datetime.now(UTC) + timedelta(hours=1)
    queued = [world.queued(contact(), later) for _ in range(100)]
    queued[41] = world.queued(contact(no_such_property="x"), later)
    started = time.monotonic()
    async with world.worker():
        for each in queued:
            await world.enqueue(workflow_id, each)
        await world.temporal.get_workflow_handle(workflow_id).result()
    # Written at once (the flush time was an hour away), in one request, and the
    # batcher ended: nothing waits.
    assert time.monotonic() - started < 60
    counters = await world.counters()
    assert dict(counters.write_batch_sizes) == {100: 1}
    assert counters.records_written == 99
    (batch,) = world.recorder.batches
    assert not batch.single and not batch.all_or_none
    await world.drain()
    for index, each in enumerate(queued):
        seen = world.events(each.operation_id)
        finished = seen.one_finished()
        data = seen.one_notification()
        assert len({e.meta.idempotency_key for e in seen.created}) == 1
        if index == 41:
            assert finished.status == ops.OPERATION_STATUS_FAILURE
            assert finished.result.startswith("Write failed: VALIDATION_ERROR")
            assert "no_such_property" in finished.result
            assert not data.success and not data.successful_record_ids
        else:
            assert finished.status == ops.OPERATION_STATUS_SUCCESS, finished.errors
            assert finished.result == "Wrote 1 record"
            assert data.success and len(data.successful_record_ids) == 1
    started_line = next(
        e for e in seen.logs if e.meta.idempotency_key.endswith("/log/started")
    ).log_entry.msg
    assert (
        started_line == "[Contact] Asynchronous create started (in a batch with 99 other records)"
    )


async def test_the_batcher_writes_full_batches_at_once_and_the_rest_at_its_flush_time(
    world: World,
) -> None:
    workflow_id = world.batcher_id()
    flush_at = datetime.now(UTC) + timedelta(seconds=8)
    queued = [world.queued(contact(), flush_at) for _ in range(250)]
    async with world.worker():
        for each in queued:
            await world.enqueue(workflow_id, each)
        await world.temporal.get_workflow_handle(workflow_id).result()
    written_at = datetime.now(UTC)
    assert written_at >= flush_at
    counters = await world.counters()
    # Two full batches as soon as they were full; the 50 left at their flush time.
    assert dict(counters.write_batch_sizes) == {100: 2, 50: 1}
    assert counters.records_written == 250
    await world.drain()
    for each in queued:
        finished = world.events(each.operation_id).one_finished()
        assert finished.status == ops.OPERATION_STATUS_SUCCESS, finished.errors


async def test_the_batcher_writes_a_few_records_at_their_flush_time(world: World) -> None:
    workflow_id = world.batcher_id()
    flush_at = datetime.now(UTC) + timedelta(seconds=3)
    queued = [world.queued(contact(), flush_at) for _ in range(3)]
    async with world.worker():
        for each in queued:
            await world.enqueue(workflow_id, each)
        await world.temporal.get_workflow_handle(workflow_id).result()
    assert datetime.now(UTC) >= flush_at
    assert dict((await world.counters()).write_batch_sizes) == {3: 1}
    assert len(world.recorder.batches) == 1


async def test_the_batcher_writes_up_to_four_batches_at_once(world: World) -> None:
    in_flight, most = 0, 0
    four = asyncio.Event()

    async def hold(call: int, outcome: WriteOutcome) -> None:
        # Each batch, once written, waits until four are in flight (or a while).
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == 4:
            four.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(four.wait(), 20)
        in_flight -= 1

    world.recorder.after = hold
    workflow_id = world.batcher_id()
    later = datetime.now(UTC) + timedelta(hours=1)
    async with world.worker():
        for _ in range(500):
            await world.enqueue(workflow_id, world.queued(contact(), later))
        await world.temporal.get_workflow_handle(workflow_id).result()
    assert most == 4
    assert dict((await world.counters()).write_batch_sizes) == {100: 5}


async def test_ten_thousand_signals_keep_every_runs_history_small(world: World) -> None:
    workflow_id = world.batcher_id()
    later = datetime.now(UTC) + timedelta(hours=1)
    queued = [world.queued(contact(), later) for _ in range(10_000)]
    started = time.monotonic()
    async with world.worker():
        for first in range(0, len(queued), 50):
            await asyncio.gather(
                *(world.enqueue(workflow_id, q) for q in queued[first : first + 50])
            )
        await world.temporal.get_workflow_handle(workflow_id).result()
    elapsed = time.monotonic() - started
    counters = await world.counters()
    assert counters.records_written == 10_000
    runs = [run async for run in world.temporal.list_workflows(f"WorkflowId = '{workflow_id}'")]
    longest = max(run.history_length for run in runs)
    print(
        f"\n10,000 queued writes: {elapsed:.1f} s, {len(runs)} runs, "
        f"batch sizes {dict(counters.write_batch_sizes)}, longest history {longest} events"
    )
    # Without continue-as-new one run would hold every signal (10,000 events at least).
    assert longest < 2_000


async def test_a_cancelled_batcher_fails_what_waits_and_ends_cancelled(world: World) -> None:
    workflow_id = world.batcher_id()
    later = datetime.now(UTC) + timedelta(hours=1)
    queued = [world.queued(contact(), later) for _ in range(3)]
    async with world.worker():
        for each in queued:
            handle = await world.enqueue(workflow_id, each)
        await asyncio.sleep(1)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await world.temporal.get_workflow_handle(workflow_id).result()
    assert world.recorder.batches == []
    await world.drain()
    for each in queued:
        finished = world.events(each.operation_id).one_finished()
        assert finished.status == ops.OPERATION_STATUS_FAILURE
        assert finished.result == f"Write failed: {CANCELLED_ERROR}"


# --- the doomed worker (run as a script) -------------------------------------------------


async def _doomed(config: dict[str, str]) -> None:
    """A writes worker whose first provider call writes, says so on stdout, then hangs
    (heartbeating) until the process is killed."""
    temporal = await Client.connect(config["temporal"], namespace="ampmesh")
    pool = await asyncpg.create_pool(config["database"], min_size=1, max_size=2)
    publisher = Publisher.open(config["pubsub"], config["project"])

    async def hang(call: int, outcome: WriteOutcome) -> None:
        print("written", flush=True)
        await asyncio.sleep(3600)

    recorder = Recorder(after=hang)
    async with provider_session() as http:
        activities = WriteActivities(
            pool=pool,
            tokens=SandboxTokens(config["token"]),  # type: ignore[arg-type]
            catalog=point_at_sandbox(load_catalog(), config["sandbox"]),
            http=http,
            publisher=publisher,
            writer_for=recorder.writer_for,
            auth_for=registry.provider_auth,
            writer_max_wait=0,
        )
        async with writes_worker(temporal, activities, task_queue=config["queue"]):
            await asyncio.sleep(3600)


if __name__ == "__main__" and sys.argv[1:2] == ["doomed"]:
    asyncio.run(_doomed(json.loads(sys.argv[2])))
