"""The auto-batching queue in PostgreSQL (table write_queue, migration 0009): the api
inserts each accepted record; a batcher claims a batch of its own records, writes it and
releases it.

A claim takes, oldest first, up to `size` waiting records of the batcher, skipping a
record whose provider id is already in a claimed batch or earlier in this one (two
writes of one record are never written at once, and stay in order), but only when a
batch is due: `size` records can be taken, or the oldest waiting record's flush time has
come. A claim is keyed (`batch_key`): a retried claim activity finds the records it
took the first time instead of taking more. Released records are deleted. Each claim
also sets the batcher's count of waiting records and their earliest flush time
(write_batchers), which the api reads to decide when a batcher needs waking.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
from ampmesh.workflows.v1 import async_write_pb2 as writes_pb2

# Waiting rows read per claim beyond its size, to step over records held back.
_LOOKAHEAD = 3

_ALREADY = "SELECT queued FROM write_queue WHERE batch_key = $1 ORDER BY accepted_at"
_WAITING = """
    SELECT operation_id, queued, record_id, flush_at FROM write_queue
    WHERE batcher_id = $1 AND batch_key IS NULL
    ORDER BY accepted_at, operation_id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
"""
_BUSY = """
    SELECT DISTINCT record_id FROM write_queue
    WHERE batcher_id = $1 AND batch_key IS NOT NULL AND record_id <> ''
"""
_TAKE = "UPDATE write_queue SET batch_key = $1 WHERE operation_id = ANY($2::uuid[])"
_LEFT = """
    SELECT count(*) AS waiting, min(flush_at) AS next_flush FROM write_queue
    WHERE batcher_id = $1 AND batch_key IS NULL
"""
_RELEASE = "DELETE FROM write_queue WHERE batch_key = $1"
# Taken first: the api's transactions that add records hold the batcher's row until they
# commit, so what a claim counts afterwards includes every record whose count it
# overwrites. The insert makes a claim wait for an api transaction that is creating the
# row (the first record of a batcher, whose wake may arrive before it commits); the
# select then locks the row.
_ENSURE = """
    INSERT INTO write_batchers (batcher_id, waiting) VALUES ($1, 0)
    ON CONFLICT (batcher_id) DO NOTHING
"""
_LOCK = "SELECT 1 FROM write_batchers WHERE batcher_id = $1 FOR UPDATE"
_COUNTED = """
    UPDATE write_batchers SET waiting = $2, earliest_flush = $3 WHERE batcher_id = $1
"""


async def claim(
    pool: asyncpg.Pool, request: writes_pb2.ClaimWritesInput, now: datetime
) -> writes_pb2.ClaimedWrites:
    claimed = writes_pb2.ClaimedWrites()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_ENSURE, request.batcher_id)
        await conn.execute(_LOCK, request.batcher_id)
        taken = [row["queued"] for row in await conn.fetch(_ALREADY, request.batch_key)]
        if not taken:
            taken = await _take(conn, request, now)
        claimed.writes.extend(writes_pb2.QueuedWrite.FromString(bytes(q)) for q in taken)
        left = await conn.fetchrow(_LEFT, request.batcher_id)
        await conn.execute(_COUNTED, request.batcher_id, left["waiting"], left["next_flush"])
    claimed.waiting = left["waiting"]
    if left["next_flush"] is not None:
        claimed.next_flush_time.FromDatetime(left["next_flush"])
    return claimed


async def _take(
    conn: asyncpg.Connection, request: writes_pb2.ClaimWritesInput, now: datetime
) -> list[bytes]:
    rows = await conn.fetch(_WAITING, request.batcher_id, request.size * _LOOKAHEAD)
    if not rows:
        return []
    held = {row["record_id"] for row in await conn.fetch(_BUSY, request.batcher_id)}
    chosen: list[asyncpg.Record] = []
    for row in rows:
        record_id = row["record_id"]
        if len(chosen) < request.size and not (record_id and record_id in held):
            chosen.append(row)
        if record_id:
            held.add(record_id)
    due = (
        request.regardless
        or len(chosen) >= request.size
        or min(row["flush_at"] for row in rows) <= now
    )
    if not chosen or not due:
        return []
    await conn.execute(_TAKE, request.batch_key, [row["operation_id"] for row in chosen])
    return [row["queued"] for row in chosen]


async def release(pool: asyncpg.Pool, batch_key: str) -> None:
    await pool.execute(_RELEASE, batch_key)
