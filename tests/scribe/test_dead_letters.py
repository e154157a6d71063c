"""Dead letters: undecodable and invalid events at once, failing ones after the attempt
cap, those a dead-letter subscription brings; retried through the same persistence code.
The RPCs are called on the servicer directly (their gRPC path is tested end to end)."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
import pytest
from ampmesh.events.v1 import log_entry_pb2 as le
from ampmesh.events.v1 import operation_events_pb2 as oe
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.scribe.v1 import scribe_pb2

from services.scribe.ingest import MAX_ATTEMPTS, UNDECODABLE, Ingestion
from services.scribe.service import Scribe
from tests.support.scribe import LOGS, OPERATIONS, Installation, delivery, envelope, later


class AbortCalled(Exception):
    pass


class FakeContext:
    """Just enough of a grpc.aio.ServicerContext to record an abort."""

    code: grpc.StatusCode | None = None
    details: str = ""

    async def abort(self, code: grpc.StatusCode, details: str = "", **_: object) -> None:
        self.code, self.details = code, details
        raise AbortCalled

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


def log_of(inst: Installation, operation_id: str) -> Envelope:
    entry = le.LogEntry(operation_id=operation_id, installation_id=inst.id, msg="hello")
    return envelope(inst.project_id, f"{operation_id}/log", later(1), log_entry=entry)


async def letters(pool: asyncpg.Pool, *, event_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM scribe_dead_letters WHERE event_id = $1 ORDER BY created_at", event_id
    )


async def test_undecodable_data_is_dead_lettered_at_once(
    ingestion: Ingestion, pool: asyncpg.Pool
) -> None:
    event_id = str(uuid.uuid4())
    message = delivery(b"\xff\xfe not protobuf", LOGS, event_id=event_id, event_type="x.Y")
    await ingestion.handle(message)
    await ingestion.handle(message)  # redelivered: still one dead letter
    rows = await letters(pool, event_id=event_id)
    assert len(rows) == 1
    row = rows[0]
    assert row["error"] == UNDECODABLE and row["state"] == "pending"
    assert bytes(row["data"]) == b"\xff\xfe not protobuf"
    assert row["project_id"] == "" and row["event_type"] == "x.Y"
    assert row["subscription"] == LOGS and row["delivery_attempts"] == 1


async def test_an_invalid_event_is_dead_lettered_at_once_and_retry_keeps_it(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    bad = log_of(installation, "not-a-uuid")
    await ingestion.handle(delivery(bad, LOGS))
    (row,) = await letters(pool, event_id=bad.meta.id)
    assert "operation_id is required and must be a UUID" in row["error"]
    assert row["project_id"] == installation.project_id

    servicer = Scribe(ingestion)
    answer = await servicer.RetryDeadLetters(
        scribe_pb2.RetryDeadLettersRequest(ids=[str(row["id"])]),
        FakeContext(),
    )
    assert (answer.retried, answer.persisted, answer.failed) == (1, 0, 1)
    assert answer.still_failing[0].retry_count == 1
    assert answer.still_failing[0].state == scribe_pb2.DEAD_LETTER_STATE_PENDING


class Flaky:
    """A persister that fails (as an unreachable database would) until told to work."""

    def __init__(self, real: Ingestion) -> None:
        self.real = real.persisters["operation_created"]
        self.broken = True

    async def __call__(self, event: Envelope) -> bool:
        if self.broken:
            raise ConnectionRefusedError("password=hunter2 in the error text")
        return await self.real(event)


async def test_failing_events_are_retried_then_dead_lettered_then_resolved(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    flaky = Flaky(ingestion)
    ingestion.persisters["operation_created"] = flaky
    op = str(uuid.uuid4())
    event = oe.OperationCreated(
        operation_id=op, installation_id=installation.id, action_type=oe.ACTION_TYPE_WRITE
    )
    created = envelope(installation.project_id, f"{op}/created", operation_created=event)
    message_id = uuid.uuid4().hex
    for attempt in range(1, MAX_ATTEMPTS):
        # Below the cap the failure is raised, so the message is nacked and redelivered.
        with pytest.raises(ConnectionRefusedError):
            await ingestion.handle(delivery(created, OPERATIONS, attempt))
    assert await letters(pool, event_id=created.meta.id) == []
    at_cap = delivery(created, OPERATIONS, MAX_ATTEMPTS)
    await ingestion.handle(at_cap)
    (row,) = await letters(pool, event_id=created.meta.id)
    assert row["error"] == "persisting failed (ConnectionRefusedError)"
    assert "hunter2" not in row["error"]
    assert row["delivery_attempts"] == MAX_ATTEMPTS
    assert row["message_id"] == at_cap.message_id != message_id

    servicer = Scribe(ingestion)
    listed = await servicer.ListDeadLetters(
        scribe_pb2.ListDeadLettersRequest(
            project_id=installation.project_id, state=scribe_pb2.DEAD_LETTER_STATE_PENDING
        ),
        FakeContext(),
    )
    assert [d.id for d in listed.dead_letters] == [str(row["id"])]
    assert listed.dead_letters[0].envelope == created

    flaky.broken = False
    retry = scribe_pb2.RetryDeadLettersRequest(project_id=installation.project_id)
    answer = await servicer.RetryDeadLetters(retry, FakeContext())
    assert (answer.retried, answer.persisted, answer.duplicates_skipped, answer.failed) == (
        1,
        1,
        0,
        0,
    )
    assert await pool.fetchval("SELECT status FROM operations WHERE id = $1", uuid.UUID(op)) == (
        "in_progress"
    )
    (row,) = await letters(pool, event_id=created.meta.id)
    assert row["state"] == "resolved" and row["retry_count"] == 1
    # Nothing pending is left to retry.
    again = await servicer.RetryDeadLetters(retry, FakeContext())
    assert again.retried == 0

    status = await servicer.GetIngestionStatus(
        scribe_pb2.GetIngestionStatusRequest(project_id=installation.project_id),
        FakeContext(),
    )
    (entry,) = status.event_types
    assert entry.event_type == "ampmesh.events.v1.OperationCreated"
    assert (entry.persisted, entry.dead_lettered, entry.dead_letters_pending) == (1, 1, 0)
    assert entry.last_event_time == created.meta.time


async def test_a_duplicate_dead_letter_resolves_as_duplicate(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    op = str(uuid.uuid4())
    event = log_of(installation, op)
    await ingestion.handle(delivery(event, LOGS))
    # The same event, forwarded by Pub/Sub to the dead-letter subscription meanwhile.
    forwarded = delivery(
        event, LOGS + ".dead-letter", None, CloudPubSubDeadLetterSourceDeliveryCount=5
    )
    await ingestion.handle(forwarded)
    (row,) = await letters(pool, event_id=event.meta.id)
    assert row["delivery_attempts"] == 5 and row["subscription"] == LOGS + ".dead-letter"
    answer = await Scribe(ingestion).RetryDeadLetters(
        scribe_pb2.RetryDeadLettersRequest(ids=[str(row["id"])]),
        FakeContext(),
    )
    assert (answer.retried, answer.persisted, answer.duplicates_skipped) == (1, 0, 1)


async def test_dead_letters_page_newest_first(
    ingestion: Ingestion, pool: asyncpg.Pool, installation: Installation
) -> None:
    bad = [log_of(installation, f"bad-{n}") for n in range(5)]
    for event in bad:
        await ingestion.handle(delivery(event, LOGS))
    servicer = Scribe(ingestion)
    request = scribe_pb2.ListDeadLettersRequest(project_id=installation.project_id, page_size=2)
    seen: list[str] = []
    while True:
        page = await servicer.ListDeadLetters(request, FakeContext())
        seen += [d.event_id for d in page.dead_letters]
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert seen == [e.meta.id for e in reversed(bad)]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (scribe_pb2.ListDeadLettersRequest(project_id="nope"), "project_id"),
        (scribe_pb2.ListDeadLettersRequest(page_size=1001), "page_size"),
        (scribe_pb2.ListDeadLettersRequest(page_token="garbage"), "page_token"),
        (scribe_pb2.RetryDeadLettersRequest(ids=["x"]), "ids[0]"),
        (scribe_pb2.GetIngestionStatusRequest(project_id="nope"), "project_id"),
    ],
)
async def test_bad_requests_name_the_field(
    ingestion: Ingestion, request_: object, field: str
) -> None:
    servicer = Scribe(ingestion)
    method = {
        scribe_pb2.ListDeadLettersRequest: servicer.ListDeadLetters,
        scribe_pb2.RetryDeadLettersRequest: servicer.RetryDeadLetters,
        scribe_pb2.GetIngestionStatusRequest: servicer.GetIngestionStatus,
    }[type(request_)]
    context = FakeContext()
    with pytest.raises(AbortCalled):
        await method(request_, context)  # type: ignore[operator]
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details.startswith(field + ":")
