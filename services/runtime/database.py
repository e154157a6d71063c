"""The database schema's one entry point: alembic migrations, run from code.

Services never create tables; the launcher (or a deployment's release step) calls
`migrate(AMPMESH_DATABASE_URL)` before services start. Revisions live in
`services/runtime/migrations/versions/`, in SQL, each with its downgrade. No alembic.ini:
the configuration is built here.

    head = await migrate("postgresql://ampmesh:…@127.0.0.1:5432/ampmesh")
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.runtime.entrypoint import StartupError

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
    engine = create_async_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_pool(
    database_url: str, *, needed_for: str, min_size: int = 1, max_size: int = 10
) -> AsyncIterator[asyncpg.Pool]:
    """A service's asyncpg pool, or a one-line StartupError naming what is missing or
    unreachable (never the password: asyncpg's messages name host, port and user)."""
    if not database_url:
        raise StartupError(f"AMPMESH_DATABASE_URL is required to {needed_for}")
    try:
        pool = await asyncpg.create_pool(database_url, min_size=min_size, max_size=max_size)
    except (OSError, asyncpg.PostgresError) as error:
        raise StartupError(f"cannot reach PostgreSQL: {error}") from None
    try:
        yield pool
    finally:
        await pool.close()
