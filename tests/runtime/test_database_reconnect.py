"""The services' pool (services.runtime.database) against the stack's PostgreSQL when the
server ends its connections under it, as a restart does: reads are sent again, a
transaction that had not committed runs again, a write that may have gone through is
not, and every such failure reads as "unavailable" (answered UNAVAILABLE, not INTERNAL)."""

# ruff: noqa: S608 (the SQL names tables and markers this file makes, never input)
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.runtime.database import create_pool, in_transaction, read_only
from services.runtime.db_errors import unavailable
from tests.support.stack import Stack, component


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    url = component(stack, "postgres").database_url
    made = await create_pool(url, min_size=2, max_size=4)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(component(stack, "postgres").database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def end_sessions_running(admin: asyncpg.Connection, marker: str) -> int:
    """Ends (as a restart does) the server sessions whose current query holds marker."""
    while True:
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE $1 AND pid <> pg_backend_pid()",
            f"%{marker}%",
        )
        if ended:
            return int(ended)
        await asyncio.sleep(0.02)


async def test_a_read_whose_connection_dies_is_sent_again(
    pool: asyncpg.Pool, admin: asyncpg.Connection
) -> None:
    marker = f"read_{uuid.uuid4().hex}"
    read = asyncio.create_task(pool.fetchval(f"SELECT 1 AS {marker} FROM pg_sleep(0.5)"))
    assert await end_sessions_running(admin, marker) == 1
    assert await read == 1  # sent again on a new connection, answered


async def test_a_write_whose_connection_dies_is_not_sent_again_and_reads_unavailable(
    pool: asyncpg.Pool, admin: asyncpg.Connection
) -> None:
    table = f"reconnect_{uuid.uuid4().hex[:12]}"
    await pool.execute(f"CREATE TABLE {table} (n integer)")
    try:
        write = asyncio.create_task(
            pool.execute(f"INSERT INTO {table} SELECT 1 FROM pg_sleep(0.5)")
        )
        await end_sessions_running(admin, f"INSERT INTO {table}")
        with pytest.raises(Exception) as failed:
            await write
        assert unavailable(failed.value)
        # Not sent again behind the caller's back (the caller may know it is safe).
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0
    finally:
        await pool.execute(f"DROP TABLE {table}")


async def test_a_transaction_whose_connection_dies_before_commit_runs_again_once(
    pool: asyncpg.Pool, admin: asyncpg.Connection
) -> None:
    table = f"reconnect_{uuid.uuid4().hex[:12]}"
    await pool.execute(f"CREATE TABLE {table} (n integer)")
    runs = 0

    async def body(connection: asyncpg.Connection) -> int:
        nonlocal runs
        runs += 1
        await connection.execute(f"INSERT INTO {table} VALUES ($1)", runs)
        await connection.execute(f"SELECT pg_sleep(0.5) /* {table} body */")
        return runs

    try:
        done = asyncio.create_task(in_transaction(pool, body))
        await end_sessions_running(admin, f"{table} body")
        assert await done == 2
        # The first run's insert died with its transaction; the second committed.
        assert await pool.fetch(f"SELECT n FROM {table}") == [(2,)]
    finally:
        await pool.execute(f"DROP TABLE {table}")


def test_only_statements_that_change_nothing_count_as_reads() -> None:
    assert read_only("SELECT * FROM connection_credentials WHERE connection_id = $1")
    assert read_only("  with x AS (SELECT 1) SELECT * FROM x")
    for changing in (
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET n = 1",
        "WITH d AS (DELETE FROM t RETURNING 1) SELECT count(*) FROM d",
        "SELECT pg_notify('c', 'x')",
        "SELECT nextval('s')",
        "SELECT pg_advisory_lock(1)",
    ):
        assert not read_only(changing), changing
