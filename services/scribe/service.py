"""ScribeService: ingestion status, dead letters and their retry (internal, mTLS)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import grpc
import orjson
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.scribe.v1 import scribe_pb2, scribe_pb2_grpc
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from services.runtime.database import is_uuid
from services.runtime.errors import abort_invalid_argument
from services.scribe.ingest import Ingestion

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_TOKEN_VERSION = 1
_STATES = {
    scribe_pb2.DEAD_LETTER_STATE_PENDING: "pending",
    scribe_pb2.DEAD_LETTER_STATE_RESOLVED: "resolved",
}
_STATE_VALUES = {name: value for value, name in _STATES.items()}
_PROJECT_PROBLEM = "must be a project id (a UUID), or empty for every project"


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def to_dead_letter(row: asyncpg.Record) -> scribe_pb2.DeadLetter:
    attributes = row["attributes"]
    if isinstance(attributes, str):
        attributes = orjson.loads(attributes)
    letter = scribe_pb2.DeadLetter(
        id=str(row["id"]),
        project_id=row["project_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        idempotency_key=row["idempotency_key"],
        subscription=row["subscription"],
        data=bytes(row["data"]),
        attributes={str(k): str(v) for k, v in attributes.items()},
        error=row["error"],
        delivery_attempts=row["delivery_attempts"],
        create_time=_timestamp(row["created_at"]),
        state=_STATE_VALUES[row["state"]],
        retry_count=row["retry_count"],
        last_retry_time=_timestamp(row["last_retry_at"]),
    )
    try:
        letter.envelope.CopyFrom(Envelope.FromString(letter.data))
    except DecodeError:
        letter.ClearField("envelope")
    return letter


def _encode_token(filters: list[Any], created_at: datetime, letter_id: uuid.UUID) -> str:
    payload = json.dumps(
        [_TOKEN_VERSION, filters, created_at.isoformat(), str(letter_id)], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_token(token: str, filters: list[Any]) -> tuple[datetime, uuid.UUID] | None:
    """The position a token names, or None when it is not one of this list's tokens."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, token_filters, created_at, letter_id = json.loads(raw)
        if version != _TOKEN_VERSION or token_filters != filters:
            return None
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            return None
        return moment, uuid.UUID(letter_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        return None


async def _invalid(context: Any, field: str, problem: str) -> None:
    await abort_invalid_argument(context, f"{field}: {problem}", {field: problem})


class Scribe(scribe_pb2_grpc.ScribeServiceServicer):
    def __init__(self, ingestion: Ingestion) -> None:
        self.ingestion = ingestion
        self.pool = ingestion.pool

    async def GetIngestionStatus(
        self, request: scribe_pb2.GetIngestionStatusRequest, context: grpc.aio.ServicerContext
    ) -> scribe_pb2.IngestionStatus:
        if request.project_id and not is_uuid(request.project_id):
            await _invalid(context, "project_id", _PROJECT_PROBLEM)
        # What this process counted but has not saved yet belongs in the answer.
        await self.ingestion.counters.flush()
        counted = await self.pool.fetch(
            """
            SELECT event_type, sum(persisted)::bigint AS persisted,
                sum(duplicates_skipped)::bigint AS duplicates_skipped,
                sum(dead_lettered)::bigint AS dead_lettered,
                max(last_event_time) AS last_event_time,
                max(last_persist_time) AS last_persist_time,
                min(created_at) AS since
            FROM scribe_ingestion WHERE ($1 = '' OR project_id = $1)
            GROUP BY event_type
            """,
            request.project_id,
        )
        pending = await self.pool.fetch(
            "SELECT event_type, count(*) AS pending FROM scribe_dead_letters "
            "WHERE state = 'pending' AND ($1 = '' OR project_id = $1) GROUP BY event_type",
            request.project_id,
        )
        entries: dict[str, scribe_pb2.EventTypeIngestion] = {}
        since: datetime | None = None
        for row in counted:
            entries[row["event_type"]] = scribe_pb2.EventTypeIngestion(
                event_type=row["event_type"],
                persisted=row["persisted"],
                duplicates_skipped=row["duplicates_skipped"],
                dead_lettered=row["dead_lettered"],
                last_event_time=_timestamp(row["last_event_time"]),
                last_persist_time=_timestamp(row["last_persist_time"]),
            )
            since = row["since"] if since is None else min(since, row["since"])
        for row in pending:
            entry = entries.setdefault(
                row["event_type"], scribe_pb2.EventTypeIngestion(event_type=row["event_type"])
            )
            entry.dead_letters_pending = row["pending"]
        return scribe_pb2.IngestionStatus(
            project_id=request.project_id,
            event_types=[entries[t] for t in sorted(entries)],
            count_start_time=_timestamp(since),
        )

    async def ListDeadLetters(
        self, request: scribe_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> scribe_pb2.ListDeadLettersResponse:
        if request.project_id and not is_uuid(request.project_id):
            await _invalid(context, "project_id", _PROJECT_PROBLEM)
        if request.state not in (scribe_pb2.DEAD_LETTER_STATE_UNSPECIFIED, *_STATES):
            await _invalid(context, "state", "must be PENDING, RESOLVED or UNSPECIFIED")
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            await _invalid(
                context, "page_size", f"must be between 0 (meaning 100) and {MAX_PAGE_SIZE}"
            )
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        filters: list[Any] = [request.project_id, request.event_type, int(request.state)]
        after = None
        if request.page_token:
            after = _decode_token(request.page_token, filters)
            if after is None:
                await _invalid(
                    context,
                    "page_token",
                    "is not a next_page_token of this list with these filters: pass the "
                    "previous page's next_page_token with the same filters, or leave it empty",
                )
        rows = await self.pool.fetch(
            """
            SELECT * FROM scribe_dead_letters
            WHERE ($1 = '' OR project_id = $1) AND ($2 = '' OR event_type = $2)
              AND ($3 = '' OR state = $3)
              AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
            ORDER BY created_at DESC, id DESC LIMIT $6
            """,
            request.project_id,
            request.event_type,
            _STATES.get(request.state, ""),
            after[0] if after else None,
            after[1] if after else None,
            page_size + 1,
        )
        page = rows[:page_size]
        response = scribe_pb2.ListDeadLettersResponse(
            dead_letters=[to_dead_letter(r) for r in page]
        )
        if len(rows) > page_size:
            last = page[-1]
            response.next_page_token = _encode_token(filters, last["created_at"], last["id"])
        return response

    async def RetryDeadLetters(
        self, request: scribe_pb2.RetryDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> scribe_pb2.RetryDeadLettersResponse:
        for index, letter_id in enumerate(request.ids):
            if not is_uuid(letter_id):
                await _invalid(context, f"ids[{index}]", "must be a dead letter id (a UUID)")
        if request.project_id and not is_uuid(request.project_id):
            await _invalid(context, "project_id", _PROJECT_PROBLEM)
        if request.ids and (request.project_id or request.event_type):
            await _invalid(
                context,
                "ids",
                "give ids, or project_id and event_type to select pending dead letters, not both",
            )
        outcome = await self.ingestion.retry(
            list(request.ids), request.project_id, request.event_type
        )
        await self.ingestion.counters.flush()
        return scribe_pb2.RetryDeadLettersResponse(
            retried=outcome.retried,
            persisted=outcome.persisted,
            duplicates_skipped=outcome.duplicates,
            failed=len(outcome.still_failing),
            still_failing=[to_dead_letter(r) for r in outcome.still_failing],
        )
