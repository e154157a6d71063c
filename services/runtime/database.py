"""The database schema's one entry point: alembic migrations, run from code.

Services never create tables; the launcher (or a deployment's release step) calls
`migrate(AMPMESH_DATABASE_URL)` before services start. Revisions live in
`services/runtime/migrations/versions/`, in SQL, each with its downgrade. No alembic.ini:
the configuration is built here.

    head = await migrate("postgresql://ampmesh:…@127.0.0.1:5432/ampmesh")

And every service's pool (`open_pool`), made to live through a PostgreSQL restart:

- a new connection that PostgreSQL refuses (down, or "the database system is starting
  up") is tried again for about a second before the caller hears of it, so a quick
  restart is not seen at all;
- a pool-level read (`pool.fetch`, `fetchrow`, `fetchval`, `execute` of a statement that
  changes nothing) whose connection turns out dead is sent again on a new one, and the
  pool's other connections, opened to the same dead server, are replaced;
- a transaction run by `in_transaction` whose connection died before its COMMIT is run
  again on a new connection (PostgreSQL rolled it back);
- what cannot be retried safely here (a write that may have committed, a transaction
  whose caller holds it open itself) raises as it did; `unavailable(error)`
  (db_errors.py) tells those failures apart, and the runtime answers them UNAVAILABLE
  (errors.py), which callers retry, never INTERNAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.runtime.db_errors import SERVER_GONE, unavailable
from services.runtime.entrypoint import StartupError
from services.runtime.logs import get_logger

_log = get_logger("ampmesh.database")

MIGRATIONS = Path(__file__).parent / "migrations"


def is_uuid(text: str) -> bool:
    """Whether text can be a uuid column's value: checked before a query casts it, so a
    malformed id reads as "no such row" instead of a database error."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# Held for the migration's transaction, so two launchers on one database take turns.
_MIGRATION_LOCK = 0x616D706D  # "ampm"

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def sqlalchemy_url(database_url: str) -> str:
    """A libpq-style `postgresql://…` URL as SQLAlchemy's asyncpg one."""
    scheme, separator, rest = database_url.partition("://")
    if not separator or scheme not in _POSTGRES_SCHEMES:
        # The URL may hold a password: name its scheme only.
        raise ValueError(f"not a PostgreSQL URL (scheme {scheme!r}); expected postgresql://…")
    return f"postgresql+asyncpg://{rest}"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision in versions/ (what `migrate` brings a database to)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations in services/runtime/migrations/versions"
    return head


def _upgrade(connection: Connection) -> str:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    current = MigrationContext.configure(connection).get_current_revision()
    assert current is not None
    return current


async def migrate(database_url: str) -> str:
    """Bring the database to the head revision; returns it. A no-op when already there."""
    # asyncpg parses the URL itself (sslmode, sslrootcert, ...: a managed server's TLS);
    # SQLAlchemy would pass its query as keyword arguments asyncpg.connect() refuses.
    engine = create_async_engine(
        sqlalchemy_url(database_url),
        poolclass=pool.NullPool,
        async_creator=lambda: asyncpg.connect("postgresql://" + database_url.partition("://")[2]),
    )
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


# --- surviving a PostgreSQL restart -------------------------------------------------------

# How long opening a connection keeps trying while PostgreSQL refuses (down or starting).
CONNECT_PATIENCE = 1.0
# How many times a pool-level read is sent again after its connection died under it.
READ_RETRIES = 2

_READS = re.compile(r"^\s*(SELECT|WITH|VALUES|SHOW|TABLE)\b", re.IGNORECASE)
_CHANGES = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|CREATE|DROP|ALTER|NOTIFY|pg_notify|nextval|"
    r"setval|pg_advisory\w*)\b",
    re.IGNORECASE,
)


def read_only(query: str) -> bool:
    """Whether a statement can be sent twice without changing more than once: a query
    that names no statement or function that writes (a SELECT … FOR UPDATE outside a
    transaction locks only for its own duration)."""
    return bool(_READS.match(query)) and not _CHANGES.search(query)


async def _connect_patiently(*args: Any, **kwargs: Any) -> Any:
    """asyncpg.connect, tried again with backoff for CONNECT_PATIENCE seconds while the
    server refuses or is starting up."""
    deadline = time.monotonic() + CONNECT_PATIENCE
    delay = 0.05
    while True:
        try:
            return await asyncpg.connect(*args, **kwargs)
        except Exception as error:
            refused = isinstance(error, (*SERVER_GONE, OSError, TimeoutError))
            if not refused or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.4)


T = TypeVar("T")


def _discard(connection: Any) -> None:
    """Never reuse a connection whose server went away under it: its protocol state may
    be anything (asyncpg already detached one it saw close)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        connection.terminate()


class ResilientPool(asyncpg.Pool):
    """asyncpg's pool, whose pool-level reads survive a dead connection (see the module)."""

    _expired_at = 0.0

    async def _lost_server(self) -> None:
        # One dead connection means the server restarted or went away: its siblings were
        # opened to the same server. Replaced as they are next acquired.
        now = time.monotonic()
        if now - self._expired_at > 1.0:
            self._expired_at = now
            await self.expire_connections()

    async def _send(self, query: str, call: Callable[[Any], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            acquired = False
            try:
                async with self.acquire() as connection:
                    acquired = True
                    try:
                        return await call(connection)
                    except Exception as error:
                        if unavailable(error):
                            _discard(connection)
                        raise
            except Exception as error:
                # Not acquired: opening a connection already waited (_connect_patiently).
                if not acquired or not unavailable(error):
                    raise
                await self._lost_server()
                attempt += 1
                if attempt > READ_RETRIES or not read_only(query):
                    raise
                _log.info("connection lost under a read; sending it again", attempt=attempt)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._send(query, lambda c: c.fetch(query, *args, **kwargs))

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._send(query, lambda c: c.fetchrow(query, *args, **kwargs))

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._send(query, lambda c: c.fetchval(query, *args, **kwargs))

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._send(query, lambda c: c.execute(query, *args, **kwargs))


async def in_transaction(
    pool: asyncpg.Pool,
    body: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    attempts: int = 3,
) -> T:
    """body(connection) in a transaction, run again on a new connection when its
    connection died before COMMIT was sent (PostgreSQL rolled it back: nothing happened),
    never when it died during COMMIT (it may have committed). body must do nothing but
    through the connection, or nothing that cannot be done twice."""
    attempt = 0
    while True:
        attempt += 1
        committing = False
        try:
            async with pool.acquire() as connection:
                transaction = connection.transaction()
                await transaction.start()
                try:
                    result = await body(connection)
                except BaseException as error:
                    if isinstance(error, Exception) and unavailable(error):
                        _discard(connection)  # and the server rolled back
                    else:
                        with contextlib.suppress(Exception):
                            await transaction.rollback()
                    raise
                committing = True
                await transaction.commit()
                return result
        except Exception as error:
            if committing or attempt >= attempts or not unavailable(error):
                raise
            if isinstance(pool, ResilientPool):
                await pool._lost_server()
            _log.info("connection lost in a transaction; running it again", attempt=attempt)


async def create_pool(database_url: str, *, min_size: int = 1, max_size: int = 10) -> Any:
    """A ResilientPool (asyncpg.create_pool's defaults otherwise), connected."""
    pool = ResilientPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        connect=_connect_patiently,
        setup=None,
        init=None,
        reset=None,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
    )
    return await pool


@asynccontextmanager
async def open_pool(
    database_url: str, *, needed_for: str, min_size: int = 1, max_size: int = 10
) -> AsyncIterator[asyncpg.Pool]:
    """A service's asyncpg pool, or a one-line StartupError naming what is missing or
    unreachable (never the password: asyncpg's messages name host, port and user)."""
    if not database_url:
        raise StartupError(f"AMPMESH_DATABASE_URL is required to {needed_for}")
    try:
        pool = await create_pool(database_url, min_size=min_size, max_size=max_size)
    except (OSError, asyncpg.PostgresError) as error:
        raise StartupError(f"cannot reach PostgreSQL: {error}") from None
    try:
        yield pool
    finally:
        await pool.close()
