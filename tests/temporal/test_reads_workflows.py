"""The read workflows and activities on the session stack's Temporal, PostgreSQL and Pub/Sub
emulator, with the real ReadActivities on a test task queue. The provider is an in-memory
connector (records with modification times, paged by offset) and the token-manager a stub
that hands out a fixed token: what these tests check is the workflow and activity
machinery (windows, cursors, heartbeats, events, watermarks, schedule pausing), not a
provider's API (tests/temporal/test_connectors.py does that against the sandbox)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import asyncpg
import orjson
import pytest
from ampmesh.events.v1 import envelope_pb2
from ampmesh.events.v1 import operation_events_pb2 as ops
from ampmesh.events.v1.read_result_pb2 import BODY_ENCODING_ZLIB
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.messenger.v1 import messenger_pb2, messenger_pb2_grpc
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.workflows.v1 import (
    backfill_read_pb2,
    read_operation_pb2,
    read_page_pb2,
    scheduled_read_pb2,
    triggered_read_pb2,
)
from ampmesh.workflows.v1.read_plan_pb2 import ReadPlan
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from services.domain.catalog import load_catalog
from services.domain.connectors.base import (
    Page,
    PageTokenExpired,
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    ReadRequest,
    TokenRejected,
)
from services.domain.connectors.http import provider_session
from services.domain.read_bodies import page_body
from services.domain.read_plan import read_plan
from services.domain.read_workflows import (
    BACKFILL_WORKFLOW,
    FAILURES_BEFORE_PAUSE,
    SCHEDULED_WORKFLOW,
    TRIGGERED_WORKFLOW,
    read_schedule,
)
from services.runtime.channels import mesh_channel
from services.temporal.reads import activities as read_activities
from services.temporal.reads.activities import ReadActivities
from services.temporal.reads.publish import Publisher
from services.temporal.worker import reads_worker
from tests.support.reads import (
    OBJECT,
    REVISION,
    T0,
    Installation,
    Watch,
    body_ids,
    make_installation,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

_Input = TypeVar(
    "_Input",
    backfill_read_pb2.BackfillReadInput,
    triggered_read_pb2.TriggeredReadInput,
    scheduled_read_pb2.ScheduledReadInput,
)
_Output = TypeVar("_Output", bound=Message)


# --- stand-ins for the provider, its token and record shaping ----------------------------


@dataclass
class FakeProvider:
    """Records {id, modified, properties}, paged by offset in id order; optionally
    refusing every request (a permanent 4xx)."""

    provider: str = "hubspot"
    records: list[dict[str, Any]] = field(default_factory=list)
    refuse: bool = False
    # Failures to raise, one per request, before answering again.
    failures: list[Exception] = field(default_factory=list)
    requests: int = 0
    fat: int = 0  # bytes of padding per record, to make pages large
    # Requests (by number) whose page token the provider has forgotten, as Salesforce
    # forgets an idle query cursor.
    forget_tokens_at: set[int] = field(default_factory=set)

    def seed(self, count: int, start: datetime = T0) -> None:
        for n in range(len(self.records), len(self.records) + count):
            self.records.append(
                {
                    "id": f"{n + 1:06d}",
                    "modified": start + timedelta(seconds=n),
                    "properties": {"email": f"p{n}@example.com", "pad": "x" * self.fat},
                }
            )

    def touch(self, ids: list[str], moment: datetime) -> None:
        for record in self.records:
            if record["id"] in ids:
                record["modified"] = moment

    async def read_page(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: ReadRequest
    ) -> Page:
        self.requests += 1
        assert auth.headers == {"Authorization": "Bearer test-token"}
        if self.refuse:
            raise ProviderRequestError("hubspot refused: VALIDATION_ERROR")
        if self.failures:
            raise self.failures.pop(0)
        if request.page_token and self.requests in self.forget_tokens_at:
            raise PageTokenExpired("query cursor dropped", status=400, code="LOCATOR")
        await asyncio.sleep(0)
        chosen = [
            r
            for r in self.records
            if (request.since is None or r["modified"] >= request.since)
            and (request.until is None or r["modified"] < request.until)
        ]
        offset = int(request.page_token or 0)
        size = request.page_size or 100
        page = chosen[offset : offset + size]
        after = offset + size
        return Page(
            records=[{**r, "modified": r["modified"].isoformat()} for r in page],
            next_page_token=str(after) if after < len(chosen) else "",
            estimated_total=len(chosen),
        )

    def record_id(self, raw: Mapping[str, Any]) -> str:
        return str(raw["id"])

    def modified_time(self, raw: Mapping[str, Any]) -> datetime | None:
        return datetime.fromisoformat(raw["modified"])

    def field_values(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return dict(raw["properties"])

    def deleted(self, raw: Mapping[str, Any]) -> bool:
        return bool(raw.get("deleted"))


class FakeShaping:
    """Renders {id, fields, raw}; packs records into bodies of at most `limit` bytes."""

    class Selection:
        def provider_fields(self) -> list[str]:
            return []

    def plan_selection(self, planned: Any) -> Any:
        return self.Selection()

    def render_record(self, connector: Any, raw: dict[str, Any], selection: Any) -> bytes:
        return orjson.dumps(
            {"id": connector.record_id(raw), "fields": connector.field_values(raw), "raw": raw}
        )

    def pack_bodies(
        self, header: dict[str, Any], records: list[bytes], limit: int = 300_000
    ) -> list[tuple[bytes, int]]:
        parts: list[list[bytes]] = [[]]
        size = 0
        for record in records:
            if parts[-1] and size + len(record) + 200 > limit:
                parts.append([])
                size = 0
            parts[-1].append(record)
            size += len(record) + 1
        bodies = []
        for part in parts:
            head = orjson.dumps(
                {**header, "resultInfo": {"type": "inline", "numRecords": len(part)}}
            )
            bodies.append((head[:-1] + b',"result":[' + b",".join(part) + b"]}", len(part)))
        return bodies


class FakeTokens:
    def __init__(self) -> None:
        self.requests: list[tm.GetTokenRequest] = []

    async def GetToken(self, request: tm.GetTokenRequest, **options: Any) -> Any:
        self.requests.append(request)
        return tm.GetTokenResponse(token=tm.AccessToken(token="test-token"))


def bearer_auth(info: Any, workspace: str, response: tm.GetTokenResponse) -> ProviderAuth:
    return ProviderAuth(
        base_url=info.base_url, headers={"Authorization": f"Bearer {response.token.token}"}
    )


@dataclass
class Harness:
    stack: Stack
    temporal: Client
    task_queue: str
    pool: asyncpg.Pool
    provider: FakeProvider
    tokens: FakeTokens
    activities: ReadActivities
    results: Watch
    operations: Watch
    notifications: Watch

    def worker(self) -> Worker:
        return reads_worker(self.temporal, self.activities, task_queue=self.task_queue)

    async def start(
        self, workflow: str, request: Message, result_type: type[_Output], seconds: int = 60
    ) -> WorkflowHandle[Any, _Output]:
        """Start a read workflow on this test's task queue (a worker must run it)."""
        return await self.temporal.start_workflow(
            workflow,
            request,
            id=f"test-{workflow}-{uuid.uuid4().hex[:12]}",
            task_queue=self.task_queue,
            result_type=result_type,
            execution_timeout=timedelta(seconds=seconds),
        )

    async def run(self, workflow: str, request: Message, result_type: type[_Output]) -> _Output:
        """Run a read workflow to its end on a worker of this test's."""
        async with self.worker():
            handle = await self.start(workflow, request, result_type)
            return await handle.result()


@pytest.fixture
async def harness(
    stack: Stack,
    temporal: Client,
    task_queue: str,
    pool: asyncpg.Pool,
    watches: dict[str, Watch],
) -> AsyncIterator[Harness]:
    pubsub = next(c for c in stack.mesh.components if c.name == "pubsub")
    publisher = Publisher.open(
        stack.endpoints["pubsub"], pubsub.service_env()["AMPMESH_PUBSUB_PROJECT"]
    )
    provider = FakeProvider()
    tokens = FakeTokens()
    async with provider_session() as http:
        activities = ReadActivities(
            pool=pool,
            tokens=tokens,  # type: ignore[arg-type]
            catalog=load_catalog(),
            http=http,
            publisher=publisher,
            client=temporal,
            connector_for=lambda name: provider,
            auth_for=bearer_auth,
            shaping=FakeShaping(),
        )
        yield Harness(
            stack,
            temporal,
            task_queue,
            pool,
            provider,
            tokens,
            activities,
            watches["ampmesh-read-results"],
            watches["ampmesh-operations"],
            watches["ampmesh-notifications"],
        )
    publisher.close()


async def watermark(pool: asyncpg.Pool, installation: Installation) -> datetime | None:
    value: datetime | None = await pool.fetchval(
        "SELECT watermark FROM read_watermarks WHERE installation_id = $1::uuid "
        "AND object_name = $2",
        installation.installation_id,
        OBJECT,
    )
    return value


def hang_from(provider: FakeProvider, offset: int) -> asyncio.Event:
    """Make every request for the page at `offset` or later hang; the event is set when
    one does."""
    original = provider.read_page
    hanging = asyncio.Event()

    async def hang_late_pages(
        http: aiohttp.ClientSession, auth: ProviderAuth, page: ReadRequest
    ) -> Page:
        if int(page.page_token or 0) >= offset:
            hanging.set()
            await asyncio.sleep(3600)
        return await original(http, auth, page)

    provider.read_page = hang_late_pages  # type: ignore[method-assign,assignment]
    return hanging


def read_request(message: type[_Input], installation: Installation, **fields: Any) -> _Input:
    """A read workflow's input for the installation's object, in its project."""
    request = message(target=installation.target(), **fields)
    request.meta.project_id = installation.project_id
    return request


def small_page_backfill(
    installation: Installation, operation: str
) -> backfill_read_pb2.BackfillReadInput:
    """A backfill of the full history, 10 records per page (200 pages per call: 2,000)."""
    return read_request(
        backfill_read_pb2.BackfillReadInput, installation, operation_id=operation, page_size=10
    )


# --- tests -------------------------------------------------------------------------------


async def test_a_backfill_publishes_every_record_once_with_its_operation_and_watermark(
    harness: Harness,
) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(2_000)
    operation = str(uuid.uuid4())
    until = T0 + timedelta(days=30)
    request = read_request(
        backfill_read_pb2.BackfillReadInput, installation, operation_id=operation
    )
    request.until.FromDatetime(until)
    output = await harness.run(BACKFILL_WORKFLOW, request, backfill_read_pb2.BackfillReadOutput)
    assert output.status == ops.OPERATION_STATUS_SUCCESS
    assert output.cursor.records_done == 2_000
    await harness.results.drain()
    pages = harness.results.of(operation, "read_result_page")
    ids = body_ids(pages)
    assert sorted(ids) == [f"{n:06d}" for n in range(1, 2_001)]
    assert len(set(ids)) == len(ids)  # each record once (no page republished in a clean run)
    assert {p.read_result_page.destination_id for p in pages} == {installation.destination_id}
    assert [p.read_result_page.last_page for p in pages].count(True) == 1
    assert max(pages, key=lambda p: p.read_result_page.page_number).read_result_page.last_page
    assert {p.read_result_page.message.read_type for p in pages} == {"backfill"}
    await harness.operations.drain()
    assert len(harness.operations.of(operation, "operation_created")) == 1
    progress = harness.operations.of(operation, "operation_progress")
    # At most one per PROGRESS_EVERY and one after the last page: 2000 records, 50 per
    # page (the manifest's delivery.pageSize), so the last says 40 pages.
    sequences = [p.operation_progress.sequence for p in progress]
    assert len(set(sequences)) == len(sequences) and max(sequences) == 40
    last = max(progress, key=lambda p: p.operation_progress.sequence).operation_progress
    assert (last.counts.pages, last.counts.records_read) == (40, 2_000)
    (finished,) = harness.operations.of(operation, "operation_finished")
    assert finished.operation_finished.status == ops.OPERATION_STATUS_SUCCESS
    assert finished.operation_finished.counts.records_read == 2_000
    assert finished.operation_finished.sequence > max(
        p.operation_progress.sequence for p in progress
    )
    backfill = harness.operations.of(operation, "backfill_progress")
    assert [b.backfill_progress.done for b in backfill].count(True) == 1
    assert await watermark(harness.pool, installation) == until
    await harness.notifications.drain()
    done = [
        n
        for n in harness.notifications.seen
        if n.notification.read_backfill_done.data.installation_id == installation.installation_id
    ]
    assert len(done) == 1 and done[0].meta.type == "read.backfill.done"


async def test_a_query_the_provider_forgot_is_read_again_from_the_newest_record(
    harness: Harness,
) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(2_000)
    # The 10th and 25th requests find their page token forgotten.
    harness.provider.forget_tokens_at = {10, 25}
    operation = str(uuid.uuid4())
    request = read_request(
        backfill_read_pb2.BackfillReadInput, installation, operation_id=operation
    )
    request.since.FromDatetime(T0 - timedelta(days=1))
    request.until.FromDatetime(T0 + timedelta(days=30))
    output = await harness.run(BACKFILL_WORKFLOW, request, backfill_read_pb2.BackfillReadOutput)
    assert output.status == ops.OPERATION_STATUS_SUCCESS
    await harness.results.drain()
    ids = body_ids(harness.results.of(operation, "read_result_page"))
    # No gap; only the records at the instant a query restarted from come twice.
    assert set(ids) == {f"{n:06d}" for n in range(1, 2_001)}
    assert len(ids) - len(set(ids)) <= 2


async def test_a_triggered_read_returns_only_records_modified_in_its_window(
    harness: Harness,
) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(300)
    since = T0 + timedelta(days=10)
    harness.provider.touch(["000007", "000123", "000299"], since + timedelta(minutes=1))
    operation = str(uuid.uuid4())
    request = read_request(
        triggered_read_pb2.TriggeredReadInput, installation, operation_id=operation
    )
    request.since.FromDatetime(since)
    output = await harness.run(TRIGGERED_WORKFLOW, request, triggered_read_pb2.TriggeredReadOutput)
    assert output.status == ops.OPERATION_STATUS_SUCCESS
    await harness.results.drain()
    assert sorted(body_ids(harness.results.of(operation, "read_result_page"))) == [
        "000007",
        "000123",
        "000299",
    ]
    assert await watermark(harness.pool, installation) is None  # triggered reads leave it
    await harness.notifications.drain()
    assert any(
        n.notification.read_triggered_done.data.installation_id == installation.installation_id
        for n in harness.notifications.seen
    )


async def test_a_worker_stopped_mid_read_is_resumed_after_its_last_page_without_gaps(
    harness: Harness,
) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(3_000)
    operation = str(uuid.uuid4())
    original = harness.provider.read_page
    # The first worker stops while its call hangs at page 16.
    hanging = hang_from(harness.provider, 150)
    handle = await harness.start(
        BACKFILL_WORKFLOW,
        small_page_backfill(installation, operation),
        backfill_read_pb2.BackfillReadOutput,
        seconds=120,
    )
    async with harness.worker():
        await asyncio.wait_for(hanging.wait(), 30)
    # The first worker is gone mid-call; read_pages says 15 pages are on the bus.
    harness.provider.read_page = original  # type: ignore[method-assign]
    first_requests = harness.provider.requests
    async with harness.worker():
        output = await handle.result()
    assert output.status == ops.OPERATION_STATUS_SUCCESS
    await harness.results.drain()
    ids = body_ids(harness.results.of(operation, "read_result_page"))
    assert sorted(set(ids)) == [f"{n:06d}" for n in range(1, 3_001)]
    # Resumed after page 15, not from the start: pages 1-15 were not fetched again.
    assert harness.provider.requests - first_requests == 300 - 15


async def test_a_cancelled_backfill_closes_its_operation_as_failed_and_keeps_no_watermark(
    harness: Harness,
) -> None:
    """The api cancels an installation's backfills when it is deleted; the operation the
    builder sees ends, saying the read was cancelled, and the workflow ends cancelled."""
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(3_000)
    operation = str(uuid.uuid4())
    # The second call hangs at its first page (201): the first call's 2,000 records are
    # what the operation counts.
    hanging = hang_from(harness.provider, 2_000)
    async with harness.worker():
        handle = await harness.start(
            BACKFILL_WORKFLOW,
            small_page_backfill(installation, operation),
            backfill_read_pb2.BackfillReadOutput,
            seconds=120,
        )
        await asyncio.wait_for(hanging.wait(), 30)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()
    assert isinstance(ended.value.cause, CancelledError)
    await harness.operations.drain()
    (finished,) = harness.operations.of(operation, "operation_finished")
    assert finished.operation_finished.status == ops.OPERATION_STATUS_FAILURE
    assert "the read was cancelled before it finished" in finished.operation_finished.result
    assert finished.operation_finished.counts.records_read == 2_000
    assert await watermark(harness.pool, installation) is None


async def test_a_page_larger_than_the_inline_limit_is_split_into_parts(harness: Harness) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.fat = 20_000
    harness.provider.seed(50)  # one page of 50 records of ~40 KB each: 2 MB
    operation = str(uuid.uuid4())
    request = read_request(
        triggered_read_pb2.TriggeredReadInput, installation, operation_id=operation
    )
    await harness.run(TRIGGERED_WORKFLOW, request, triggered_read_pb2.TriggeredReadOutput)
    await harness.results.drain()
    parts = harness.results.of(operation, "read_result_page")
    assert len(parts) > 1
    # The limit is the delivered JSON's; on the bus each part is compressed.
    assert all(len(page_body(p.read_result_page)) <= 300_000 for p in parts)
    assert all(p.read_result_page.body_encoding == BODY_ENCODING_ZLIB for p in parts)
    assert {p.read_result_page.part_count for p in parts} == {len(parts)}
    assert sorted(p.read_result_page.part_number for p in parts) == list(range(1, len(parts) + 1))
    assert sorted(body_ids(parts)) == [f"{n:06d}" for n in range(1, 51)]


async def scheduled_run(harness: Harness, installation: Installation, schedule_id: str) -> Any:
    """One run of the object's schedule, as Temporal starts it (worker left to the caller)."""
    request = read_request(
        scheduled_read_pb2.ScheduledReadInput, installation, schedule_id=schedule_id
    )
    handle = await harness.start(
        SCHEDULED_WORKFLOW, request, scheduled_read_pb2.ScheduledReadOutput
    )
    return await handle.result()


async def test_a_scheduled_run_reads_from_the_watermark_and_moves_it(harness: Harness) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(100)
    mark = T0 + timedelta(seconds=60)  # records 61..100 are newer
    await harness.pool.execute(
        "INSERT INTO read_watermarks (installation_id, object_name, project_id, watermark) "
        "VALUES ($1::uuid, $2, $3::uuid, $4)",
        installation.installation_id,
        OBJECT,
        installation.project_id,
        mark,
    )
    schedule_id = f"test-schedule-{uuid.uuid4().hex[:8]}"
    async with harness.worker():
        first = await scheduled_run(harness, installation, schedule_id)
        second = await scheduled_run(harness, installation, schedule_id)
    assert first.status == ops.OPERATION_STATUS_SUCCESS and not first.no_new_data
    await harness.results.drain()
    assert sorted(body_ids(harness.results.of(first.operation_id, "read_result_page"))) == [
        f"{n:06d}" for n in range(61, 101)
    ]
    moved = await watermark(harness.pool, installation)
    assert moved is not None and moved > mark
    assert second.no_new_data
    await harness.operations.drain()
    (finished,) = harness.operations.of(second.operation_id, "operation_finished")
    assert finished.operation_finished.result == f"[{OBJECT}] No new data found"


async def test_persistent_failures_pause_the_schedule_and_say_so(harness: Harness) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    schedule_id = f"read-schedule/{installation.installation_id}/{OBJECT}"
    input = scheduled_read_pb2.ScheduledReadInput(
        target=installation.target(), schedule_id=schedule_id
    )
    input.meta.project_id = installation.project_id
    await harness.temporal.create_schedule(
        schedule_id,
        read_schedule(input, "0 0 1 1 *", task_queue=harness.task_queue),
    )
    await harness.pool.execute(
        "INSERT INTO read_schedules (installation_id, object_name, project_id, schedule_id, "
        "cron) VALUES ($1::uuid, $2, $3::uuid, $4, '0 0 1 1 *')",
        installation.installation_id,
        OBJECT,
        installation.project_id,
        schedule_id,
    )
    harness.provider.refuse = True
    try:
        async with harness.worker():
            outputs = [
                await scheduled_run(harness, installation, schedule_id)
                for _ in range(FAILURES_BEFORE_PAUSE)
            ]
        assert [o.status for o in outputs] == [ops.OPERATION_STATUS_FAILURE] * 3
        assert [o.schedule_paused for o in outputs] == [False, False, True]
        assert "VALIDATION_ERROR" in outputs[-1].error
        description = await harness.temporal.get_schedule_handle(schedule_id).describe()
        assert description.schedule.state.paused
        row = await harness.pool.fetchrow(
            "SELECT paused, pause_reason, consecutive_failures FROM read_schedules "
            "WHERE schedule_id = $1",
            schedule_id,
        )
        assert row is not None
        assert (row["paused"], row["pause_reason"], row["consecutive_failures"]) == (
            True,
            "errors",
            3,
        )
        await harness.notifications.drain()
        paused = [
            n
            for n in harness.notifications.seen
            if n.meta.type == "read.schedule.paused"
            and n.notification.read_schedule_paused.data.installation_id
            == installation.installation_id
        ]
        assert len(paused) == 1
    finally:
        await harness.temporal.get_schedule_handle(schedule_id).delete()


async def test_a_rejected_token_is_refreshed_and_an_unavailable_provider_waited_out(
    harness: Harness,
) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(120)
    harness.provider.failures = [
        TokenRejected(),
        ProviderUnavailable("hubspot answered 503 three times", retry_after=0.5),
        ProviderUnavailable("hubspot answered 429 three times"),
    ]
    operation = str(uuid.uuid4())
    request = read_request(
        triggered_read_pb2.TriggeredReadInput, installation, operation_id=operation
    )
    output = await harness.run(TRIGGERED_WORKFLOW, request, triggered_read_pb2.TriggeredReadOutput)
    assert output.status == ops.OPERATION_STATUS_SUCCESS
    assert output.cursor.records_done == 120
    assert not harness.provider.failures
    modes = [r.refresh for r in harness.tokens.requests]
    assert tm.REFRESH_MODE_FORCE in modes
    assert modes.count(tm.REFRESH_MODE_FORCE) == 1  # only after the rejection
    await harness.results.drain()
    assert sorted(body_ids(harness.results.of(operation, "read_result_page"))) == [
        f"{n:06d}" for n in range(1, 121)
    ]


async def plan_of(harness: Harness, installation: Installation, **changes: Any) -> ReadPlan:
    """The object's read plan as the api resolves it (from REVISION and the installation's
    config), with `changes` applied."""
    row = await harness.pool.fetchrow(
        "SELECT id::text AS id, content FROM configs WHERE installation_id = $1::uuid",
        installation.installation_id,
    )
    assert row is not None
    plan = read_plan(
        json_format.ParseDict(REVISION, manifest_pb2.Integration()),
        json_format.Parse(row["content"], config_pb2.ConfigContent()),
        OBJECT,
        config_id=row["id"],
        destination_ids={"hooks": installation.destination_id},
    )
    for name, value in changes.items():
        setattr(plan, name, value)
    return plan


async def test_a_read_carrying_its_plan_reads_with_it_and_a_stale_one_is_resolved_again(
    harness: Harness,
) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(200)
    pages = {}
    # The plan's page size (20) is not the manifest's (50): pages show which was read.
    for label, plan in (
        ("carried", await plan_of(harness, installation, page_size=20)),
        ("stale", await plan_of(harness, installation, page_size=20, config_id="gone")),
    ):
        operation = str(uuid.uuid4())
        request = read_request(
            triggered_read_pb2.TriggeredReadInput, installation, operation_id=operation
        )
        request.plan.CopyFrom(plan)
        output = await harness.run(
            TRIGGERED_WORKFLOW, request, triggered_read_pb2.TriggeredReadOutput
        )
        assert output.status == ops.OPERATION_STATUS_SUCCESS
        assert output.cursor.records_done == 200
        await harness.results.drain()
        results = harness.results.of(operation, "read_result_page")
        assert {p.read_result_page.destination_id for p in results} == {installation.destination_id}
        pages[label] = output.cursor.pages_done
    # A plan from an older config than the newest is resolved again from the stored ones.
    assert pages == {"carried": 10, "stale": 4}


async def test_a_deleted_installation_stops_a_read_at_its_next_call(harness: Harness) -> None:
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(3_000)
    operation = str(uuid.uuid4())
    original = harness.provider.read_page

    # The installation is deleted while the first call (200 pages of 10) reads its last
    # page: that call ends, the next one finds the installation gone.
    async def delete_at_last_page_of_first_call(
        http: aiohttp.ClientSession, auth: ProviderAuth, page: ReadRequest
    ) -> Page:
        if page.page_token == "1990":
            await harness.pool.execute(
                "DELETE FROM installations WHERE id = $1::uuid", installation.installation_id
            )
        return await original(http, auth, page)

    harness.provider.read_page = delete_at_last_page_of_first_call  # type: ignore[method-assign,assignment]
    request = small_page_backfill(installation, operation)
    request.plan.CopyFrom(await plan_of(harness, installation))
    output = await harness.run(BACKFILL_WORKFLOW, request, backfill_read_pb2.BackfillReadOutput)
    assert output.status == ops.OPERATION_STATUS_FAILURE
    assert output.error == f"installation {installation.installation_id} is gone"
    assert output.cursor.records_done == 2_000


async def test_a_cancellation_while_the_read_opens_closes_its_operation_as_failed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The api cancels an installation's backfills when it deletes it: a backfill still
    opening then ends its operation too, saying it was cancelled."""
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(100)
    operation = str(uuid.uuid4())
    original = read_activities.load_context
    opening, release = asyncio.Event(), asyncio.Event()

    async def slow_to_open(pool: Any, target: Any, plan: Any) -> Any:
        # open_read's load hangs; close_read's goes through.
        if not opening.is_set():
            opening.set()
            await release.wait()
        return await original(pool, target, plan)

    monkeypatch.setattr(read_activities, "load_context", slow_to_open)
    try:
        async with harness.worker():
            handle = await harness.start(
                BACKFILL_WORKFLOW,
                small_page_backfill(installation, operation),
                backfill_read_pb2.BackfillReadOutput,
            )
            await asyncio.wait_for(opening.wait(), 30)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as ended:
                await handle.result()
            release.set()
    finally:
        release.set()
    assert isinstance(ended.value.cause, CancelledError)
    assert harness.provider.requests == 0
    await harness.operations.drain()
    (finished,) = harness.operations.of(operation, "operation_finished")
    assert finished.operation_finished.status == ops.OPERATION_STATUS_FAILURE
    assert "the read was cancelled before it finished" in finished.operation_finished.result
    assert await watermark(harness.pool, installation) is None


async def stored_pages(pool: asyncpg.Pool, operation: str) -> list[int]:
    rows = await pool.fetch(
        "SELECT page_number FROM read_pages WHERE operation_id = $1 ORDER BY page_number",
        operation,
    )
    return [row["page_number"] for row in rows]


async def test_a_call_without_heartbeat_details_resumes_after_its_last_page_on_the_bus(
    harness: Harness,
) -> None:
    """A worker killed with -9 takes the heartbeats the SDK had not sent yet (it sends
    them at most every 8 s) with it: the retried call resumes from the pages written
    to PostgreSQL, not from the start."""
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(3_000)
    operation = str(uuid.uuid4())
    request = read_page_pb2.ReadPageInput(
        meta=envelope_pb2.EventMeta(project_id=installation.project_id),
        target=installation.target(),
        operation_id=operation,
        read_type=ops.READ_TYPE_BACKFILL,
        page_size=10,
        max_pages=300,
    )
    request.meta.time.FromDatetime(T0)
    request.cursor.until.FromDatetime(T0 + timedelta(days=30))
    original = harness.provider.read_page
    hanging = hang_from(harness.provider, 150)  # page 16
    first = ActivityEnvironment()
    call = asyncio.create_task(first.run(harness.activities.read_pages, request))
    await asyncio.wait_for(hanging.wait(), 30)
    for _ in range(100):
        if await stored_pages(harness.pool, operation) == list(range(1, 16)):
            break
        await asyncio.sleep(0.1)
    assert await stored_pages(harness.pool, operation) == list(range(1, 16))
    first.cancel()
    with pytest.raises(BaseException):  # noqa: B017 (cancelled, as a killed worker's call ends)
        await call
    harness.provider.read_page = original  # type: ignore[method-assign]
    before = harness.provider.requests
    # A fresh attempt, with the workflow's cursor from before the call and no heartbeat.
    output = await ActivityEnvironment().run(harness.activities.read_pages, request)
    assert output.done
    assert harness.provider.requests - before == 300 - 15
    assert output.cursor.pages_done == 300 and output.cursor.records_done == 3_000
    await harness.results.drain()
    pages = harness.results.of(operation, "read_result_page")
    ids = body_ids(pages)
    assert sorted(set(ids)) == [f"{n:06d}" for n in range(1, 3_001)]
    # Each page went out once, under its own key: nothing before page 16 came again.
    keys = [p.meta.idempotency_key for p in pages]
    assert len(keys) == len(set(keys)) == 300


class DroppingPublisher(Publisher):
    """Acknowledges the messages of `dropped` keys the first time without publishing
    them, as a Pub/Sub emulator that restarts after acknowledging them loses them."""

    def __init__(self, publisher: Publisher, dropped: set[str]) -> None:
        self.__dict__.update(publisher.__dict__)
        self.dropped = set(dropped)

    def start(self, envelopes: Any) -> list[asyncio.Future[str]]:
        futures: list[asyncio.Future[str]] = []
        for envelope in envelopes:
            key = envelope.meta.idempotency_key
            if key in self.dropped:
                self.dropped.discard(key)
                lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                lost.set_result("lost")
                futures.append(lost)
            else:
                futures.extend(super().start([envelope]))
        return futures


async def test_a_page_messenger_never_recorded_is_fetched_and_published_again_before_done(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read is done only once messenger has recorded every page: a page lost
    between Pub/Sub's acknowledgement and messenger is fetched again from its cursor in
    PostgreSQL and published under its key; no other page is fetched twice."""
    monkeypatch.setattr(read_activities, "STALLED_AFTER", 1.0)
    installation = await make_installation(harness.pool, harness.stack.org_id)
    harness.provider.seed(500)
    operation = str(uuid.uuid4())
    lost = {f"{operation}/page/3/part/1", f"{operation}/page/7/part/1"}
    publisher = harness.activities._publisher
    messenger_address = harness.stack.mesh.service("messenger").address
    channel = mesh_channel(
        messenger_address, harness.stack.credentials("temporal"), server_identity="messenger"
    )
    messenger = messenger_pb2_grpc.RecordedPagesServiceStub(channel)
    try:
        async with provider_session() as http:
            activities = ReadActivities(
                pool=harness.pool,
                tokens=harness.tokens,  # type: ignore[arg-type]
                catalog=load_catalog(),
                http=http,
                publisher=DroppingPublisher(publisher, lost),
                client=harness.temporal,
                connector_for=lambda name: harness.provider,
                auth_for=bearer_auth,
                shaping=FakeShaping(),
                messenger=messenger,
            )
            request = read_request(
                triggered_read_pb2.TriggeredReadInput, installation, operation_id=operation
            )
            async with reads_worker(harness.temporal, activities, task_queue=harness.task_queue):
                handle = await harness.start(
                    TRIGGERED_WORKFLOW, request, triggered_read_pb2.TriggeredReadOutput, 120
                )
                output = await handle.result()
        assert output.status == ops.OPERATION_STATUS_SUCCESS, output.error
        # Ten pages of 50, and the two lost ones once more.
        assert harness.provider.requests == 10 + 2
        keys = [f"{operation}/page/{n}/part/1" for n in range(1, 11)]
        recorded = await messenger.CountRecordedPages(
            messenger_pb2.CountRecordedPagesRequest(
                project_id=installation.project_id, operation_id=operation
            )
        )
        assert recorded.recorded == 10
        missing = await messenger.FindUnrecordedPages(
            messenger_pb2.FindUnrecordedPagesRequest(
                project_id=installation.project_id,
                destination_id=installation.destination_id,
                keys=keys,
            )
        )
        assert list(missing.missing_keys) == []
        # Its pages are forgotten once it closed.
        assert await stored_pages(harness.pool, operation) == []
    finally:
        await channel.close()


async def test_a_read_messenger_never_records_gives_up_saying_what_is_missing(
    harness: Harness,
) -> None:
    """Pages published whose deliveries never appear (messenger recording nothing) are
    not waited for forever: at give_up_time confirm_read reports the read incomplete,
    with how many of its messages messenger recorded."""
    installation = await make_installation(harness.pool, harness.stack.org_id)
    operation = str(uuid.uuid4())
    page = read_page_pb2.ReadPageInput().cursor
    await harness.pool.execute(
        "INSERT INTO read_pages (operation_id, page_number, project_id, cursor, next_cursor, "
        "page_size, parts, records) VALUES ($1, 1, $2::uuid, $3, $3, 10, 2, 10)",
        operation,
        installation.project_id,
        page.SerializeToString(),
    )
    address = harness.stack.mesh.service("messenger").address
    channel = mesh_channel(
        address, harness.stack.credentials("temporal"), server_identity="messenger"
    )
    try:
        async with provider_session() as http:
            activities = ReadActivities(
                pool=harness.pool,
                tokens=harness.tokens,  # type: ignore[arg-type]
                catalog=load_catalog(),
                http=http,
                publisher=harness.activities._publisher,
                client=harness.temporal,
                connector_for=lambda name: harness.provider,
                auth_for=bearer_auth,
                shaping=FakeShaping(),
                messenger=messenger_pb2_grpc.RecordedPagesServiceStub(channel),
            )
            request = read_operation_pb2.ConfirmReadInput(
                meta=envelope_pb2.EventMeta(project_id=installation.project_id),
                target=installation.target(),
                operation_id=operation,
                read_type=ops.READ_TYPE_TRIGGERED,
            )
            request.give_up_time.FromDatetime(datetime.now(UTC))
            output = await ActivityEnvironment().run(activities.confirm_read, request)
    finally:
        await channel.close()
        await harness.pool.execute("DELETE FROM read_pages WHERE operation_id = $1", operation)
    assert not output.complete
    assert (output.published, output.recorded) == (2, 0)
    assert "messenger recorded 0 of the 2 messages the read published" in output.error
    assert harness.provider.requests == 0
