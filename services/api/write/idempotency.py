"""The Write API's `Idempotency-Key` header: the same key and request within 24 hours
answer what the first answered, without a second provider call; the same key with
another request is a conflict (409).

The key is claimed before the provider is called (one INSERT; the primary key makes two
concurrent requests with one key race for it, and the loser waits for nothing: it is
told the first is still in progress, 409). The answer is saved when the write ends. A
claim whose answer never came (the api died mid-write) is taken over after
ABANDONED_AFTER: by then the first request's caller has long had its error, and that
write may or may not have reached the provider, which no retry can tell in general.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from ampmesh.write.v1 import write_pb2

HEADER = "idempotency-key"
KEPT_FOR = timedelta(hours=24)
# Longer than any synchronous write may take (provider_calls.CALL_BUDGET and the rest).
ABANDONED_AFTER = timedelta(minutes=2)
MAX_KEY_LENGTH = 255

_CLAIM = """
    INSERT INTO write_idempotency (project_id, idempotency_key, request_hash, operation_id)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (project_id, idempotency_key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, operation_id = EXCLUDED.operation_id,
            http_status = NULL, answer = NULL, created_at = now()
        -- Only an expired key, or a claim abandoned mid-write, is taken over.
        WHERE write_idempotency.created_at < now() - $5::interval
           OR (write_idempotency.answer IS NULL
               AND write_idempotency.created_at < now() - $6::interval)
    RETURNING operation_id
"""
_EXISTING = """
    SELECT request_hash, operation_id, http_status, answer FROM write_idempotency
    WHERE project_id = $1 AND idempotency_key = $2
"""
_SAVE = """
    UPDATE write_idempotency SET http_status = $3, answer = $4
    WHERE project_id = $1 AND idempotency_key = $2 AND operation_id = $5
"""


def key_problem(key: str) -> str | None:
    """Why a key cannot be used, or None."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"must be 1 to {MAX_KEY_LENGTH} characters"
    if not (key.isascii() and key.isprintable()):
        return "must be printable ASCII"
    return None


def request_hash(request: write_pb2.WriteRecordsRequest) -> bytes:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()


@dataclass(frozen=True)
class Claimed:
    """The key is ours: write, then save the answer."""

    operation_id: str


@dataclass(frozen=True)
class Replay:
    """The first request with this key finished: answer what it answered."""

    http_status: int
    response: write_pb2.WriteRecordsResponse


@dataclass(frozen=True)
class Conflict:
    """The key belongs to another request, or to this one still being written."""

    reason: str


async def claim(
    pool: asyncpg.Pool, project_id: str, key: str, request: write_pb2.WriteRecordsRequest
) -> Claimed | Replay | Conflict:
    project, digest, operation = uuid.UUID(project_id), request_hash(request), uuid.uuid4()
    won = await pool.fetchval(_CLAIM, project, key, digest, operation, KEPT_FOR, ABANDONED_AFTER)
    if won is not None:
        return Claimed(str(won))
    row = await pool.fetchrow(_EXISTING, project, key)
    if row is None:  # swept between the two statements: try once more
        return await claim(pool, project_id, key, request)
    if bytes(row["request_hash"]) != digest:
        return Conflict(
            "this Idempotency-Key was used with a different request in the last 24 hours: "
            "use a new key for a new write"
        )
    if row["answer"] is None:
        return Conflict(
            "a request with this Idempotency-Key is still being written: wait for its "
            "answer, then repeat this request to read it"
        )
    return Replay(
        row["http_status"], write_pb2.WriteRecordsResponse.FromString(bytes(row["answer"]))
    )


async def save(
    pool: asyncpg.Pool,
    project_id: str,
    key: str,
    operation_id: str,
    http_status: int,
    response: write_pb2.WriteRecordsResponse,
) -> None:
    await pool.execute(
        _SAVE,
        uuid.UUID(project_id),
        key,
        http_status,
        response.SerializeToString(),
        uuid.UUID(operation_id),
    )


async def release(pool: asyncpg.Pool, project_id: str, key: str, operation_id: str) -> None:
    """Forget a claim whose request was refused before anything was written (bad input,
    provider unavailable): the same key may be used again at once."""
    await pool.execute(
        "DELETE FROM write_idempotency WHERE project_id = $1 AND idempotency_key = $2 "
        "AND operation_id = $3 AND answer IS NULL",
        uuid.UUID(project_id),
        key,
        uuid.UUID(operation_id),
    )
