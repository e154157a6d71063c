"""Where a shard finds a connection's credentials: its memory, then Redis, then PostgreSQL.

PostgreSQL is the truth; Redis and memory are caches any shard may lack or lose. Redis
holds the same SEALED bytes as PostgreSQL (with the id of their key), so a Redis dump
reveals nothing; only a shard's memory holds opened credentials, in a small LRU
(memory.py).

Every change of a connection's credentials, in the transaction that makes it, records
that Redis is owed the change (`token_cache_debts`) and tells every shard
(invalidation.py), which drops its memory copy on commit. After the commit the shard
writes the change to Redis (redis_tier.py: never over a newer one) and settles the debt.
Redis down is a degraded mode, not a failure: reads skip it and go to PostgreSQL, writes
leave their debts, and a connection with a debt is never read from Redis, so what Redis
kept across an outage (it keeps an append-only file) is not served for a connection that
changed meanwhile. Debts are settled once Redis answers again (`settle_debts`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import asyncpg
from ampmesh.events.v1 import connection_events_pb2 as events_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.protobuf import json_format

from services.runtime.database import in_transaction, is_uuid
from services.runtime.logs import get_logger
from services.runtime.secretbox import Sealed, SecretBox
from services.token_manager import credentials as creds
from services.token_manager.invalidation import CHANGED, CHANNEL, SETTLED, Listener, message
from services.token_manager.memory import MemoryCache
from services.token_manager.redis_tier import STAMP_LENGTH, TOMBSTONE, VALUE, RedisTier

__all__ = [
    "AlreadyExists",
    "CredentialStore",
    "Locked",
    "MemoryCache",
    "NotFound",
    "Opened",
    "Row",
    "Stage",
    "redis_key",
]

_log = get_logger("ampmesh.token_manager.store")

# v2: values carry the stamp of their change (redis_tier.py); the v1 keys held bare rows
# and simply expire.
REDIS_PREFIX = "ampmesh:tm:cred:v2:"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class AlreadyExists(Exception):
    """The connection has credentials and the request did not ask to replace them."""


class NotFound(Exception):
    """The connection has no credentials (in the caller's project)."""


def redis_key(connection_id: str) -> str:
    return REDIS_PREFIX + connection_id


def stamp(created_at: datetime, version: int) -> str:
    """Orders the changes of a connection id: by its row's creation, then version. Hex of
    fixed width, so comparing the text compares the numbers (in Python and in Redis's Lua)."""
    text = f"{(created_at - _EPOCH) // _MICROSECOND:016x}{version:08x}"
    assert len(text) == STAMP_LENGTH
    return text


def associated_data(connection_id: str) -> bytes:
    """Binds sealed credentials to their connection: copied to another row, they do not
    open."""
    return f"connection_credentials.credentials:{connection_id}".encode()


@dataclass(frozen=True)
class Row:
    """One connection_credentials row: everything but the credentials is plaintext."""

    connection_id: str
    project_id: str
    provider: str
    auth_scheme: int
    status: int
    connection: str  # ConnectionContext as JSON
    sealed: Sealed
    access_token_expires_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    last_refreshed_at: datetime | None = None
    retried_refresh_failures: int = 0

    @cached_property
    def stamp(self) -> str:
        return stamp(self.created_at, self.version)

    @property
    def deleted_stamp(self) -> str:
        """The stamp of this row's deletion: after every version of it, before any
        row created later under the same connection id."""
        return stamp(self.created_at, self.version + 1)

    @cached_property
    def context(self) -> tm.ConnectionContext:
        """The connection's context, parsed once per row (read-only: it is shared)."""
        return json_format.Parse(
            self.connection, tm.ConnectionContext(), ignore_unknown_fields=True
        )

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Row:
        return cls(
            connection_id=record["connection_id"],
            project_id=str(record["project_id"]),
            provider=record["provider"],
            auth_scheme=record["auth_scheme"],
            status=record["status"],
            connection=record["connection"],
            sealed=Sealed(record["credentials_key_id"], bytes(record["credentials_sealed"])),
            access_token_expires_at=record["access_token_expires_at"],
            version=record["version"],
            created_at=record["created_at"],
            updated_at=record["updated_at"],
            last_refreshed_at=record["last_refreshed_at"],
            retried_refresh_failures=record["retried_refresh_failures"],
        )

    def to_redis(self) -> str:
        fields: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "sealed" and getattr(self, f.name) is not None
        }
        for name in ("access_token_expires_at", "created_at", "updated_at", "last_refreshed_at"):
            if name in fields:
                fields[name] = fields[name].isoformat()
        fields["key_id"] = self.sealed.key_id
        fields["sealed"] = self.sealed.data.hex()
        return self.stamp + VALUE + json.dumps(fields)

    @classmethod
    def from_redis(cls, value: str) -> Row | None:
        """The row a Redis value holds; None for a tombstone (deleted credentials)."""
        if value[STAMP_LENGTH : STAMP_LENGTH + 1] != VALUE:
            return None
        fields = json.loads(value[STAMP_LENGTH + 1 :])
        expires = fields.get("access_token_expires_at")
        refreshed = fields.get("last_refreshed_at")
        return cls(
            connection_id=fields["connection_id"],
            project_id=fields["project_id"],
            provider=fields["provider"],
            auth_scheme=fields["auth_scheme"],
            status=fields["status"],
            connection=fields["connection"],
            sealed=Sealed(fields["key_id"], bytes.fromhex(fields["sealed"])),
            access_token_expires_at=datetime.fromisoformat(expires) if expires else None,
            version=fields["version"],
            created_at=datetime.fromisoformat(fields["created_at"]),
            updated_at=datetime.fromisoformat(fields["updated_at"]),
            last_refreshed_at=datetime.fromisoformat(refreshed) if refreshed else None,
            retried_refresh_failures=fields.get("retried_refresh_failures", 0),
        )


@dataclass(frozen=True)
class Opened:
    """A row with its credentials opened, and the tier that served it."""

    row: Row
    credentials: tm.Credentials
    source: tm.TokenSource
    # What the service derived from this entry once (the GetToken answer of a cache hit):
    # the memory tier hands out the same Opened until the row changes. Not an init field,
    # so a replace() for another tier starts with nothing derived.
    derived: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def connection_id(self) -> str:
        return self.row.connection_id

    @property
    def stamp(self) -> str:
        return self.row.stamp


# Called inside the transaction that writes a row, with that row: stages the events that
# announce the change (services.runtime.events), so they commit or roll back with it.
Stage = Callable[[asyncpg.Connection, Row], Awaitable[None]]


async def _no_stage(_connection: asyncpg.Connection, _row: Row) -> None:
    return None


class CredentialStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: RedisTier,
        box: SecretBox,
        *,
        memory: MemoryCache[Opened],
        listener: Listener | None = None,
        lock_timeout_seconds: float = 30.0,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.box = box
        self.memory = memory
        self.listener = listener
        self.lock_timeout_seconds = lock_timeout_seconds
        # Writes and cache fills of one connection take turns on this shard (the edge sends
        # a connection's calls here): fills from two callers do not race each other.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._settling = asyncio.Lock()

    def _lock(self, connection_id: str) -> asyncio.Lock:
        lock = self._locks.get(connection_id)
        if lock is None:
            lock = self._locks[connection_id] = asyncio.Lock()
        return lock

    def _trusts_redis(self, connection_id: str) -> bool:
        return self.listener is None or self.listener.trusts_redis(connection_id)

    def seal(self, connection_id: str, credentials: tm.Credentials) -> Sealed:
        return self.box.seal(credentials.SerializeToString(), associated_data(connection_id))

    def open(self, row: Row) -> tm.Credentials:
        return tm.Credentials.FromString(
            self.box.open(row.sealed, associated_data(row.connection_id))
        )

    async def create(
        self,
        context: tm.ConnectionContext,
        credentials: tm.Credentials,
        stage: Stage = _no_stage,
        *,
        replace_existing: bool = False,
    ) -> Opened:
        """Stores a new connection's credentials; with replace_existing, replaces those of
        a connection of the same project instead of refusing (the OAuth flows' upsert)."""
        async with self._lock(context.connection_id):
            sealed = self.seal(context.connection_id, credentials)

            async def insert(connection: asyncpg.Connection) -> Row:
                record = await connection.fetchrow(
                    "INSERT INTO connection_credentials (connection_id, project_id, provider, "
                    "auth_scheme, connection, credentials_sealed, credentials_key_id, "
                    "access_token_expires_at, last_refreshed_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now()) "
                    "ON CONFLICT (connection_id) DO NOTHING RETURNING *",
                    *_columns(context, credentials, sealed),
                )
                if record is None:
                    if not replace_existing:
                        raise AlreadyExists(context.connection_id)
                    record = await self._update(connection, context, credentials, sealed)
                row = Row.from_record(record)
                await changed(connection, row.connection_id, row.stamp, self.listener)
                await stage(connection, row)
                return row

            row = await in_transaction(self.pool, insert)
            return await self._cached(row, credentials)

    async def replace(
        self, context: tm.ConnectionContext, credentials: tm.Credentials, stage: Stage = _no_stage
    ) -> Opened:
        """Rotates a connection's credentials; the connection is `created` again."""
        async with self._lock(context.connection_id):
            sealed = self.seal(context.connection_id, credentials)

            async def update(connection: asyncpg.Connection) -> Row:
                row = Row.from_record(await self._update(connection, context, credentials, sealed))
                await changed(connection, row.connection_id, row.stamp, self.listener)
                await stage(connection, row)
                return row

            row = await in_transaction(self.pool, update)
            return await self._cached(row, credentials)

    async def _update(
        self,
        connection: asyncpg.Connection,
        context: tm.ConnectionContext,
        credentials: tm.Credentials,
        sealed: Sealed,
    ) -> asyncpg.Record:
        record = await connection.fetchrow(
            "UPDATE connection_credentials SET provider = $3, auth_scheme = $4, "
            "connection = $5, credentials_sealed = $6, credentials_key_id = $7, "
            "access_token_expires_at = $8, status = $9, retried_refresh_failures = 0, "
            "last_refreshed_at = now(), version = version + 1, updated_at = now() "
            "WHERE connection_id = $1 AND project_id = $2 RETURNING *",
            *_columns(context, credentials, sealed),
            events_pb2.CONNECTION_STATUS_CREATED,
        )
        if record is None:
            raise NotFound(context.connection_id)
        return record

    async def get(self, connection_id: str, project_id: str) -> Opened:
        """The connection's credentials from the fastest tier holding them; NotFound when
        none does or they belong to another project."""
        opened = self.memory.get(connection_id)
        if opened is None:
            async with self._lock(connection_id):
                opened = await self._read(connection_id)
        if opened is None or opened.row.project_id != _canonical(project_id):
            raise NotFound(connection_id)
        return opened

    async def _read(self, connection_id: str) -> Opened | None:
        # Taken before reading: a clear meanwhile (the shard stopped hearing of changes)
        # means what is read may be older than a change it missed.
        epoch = self.memory.epoch
        if self._trusts_redis(connection_id):
            value = await self.redis.get(redis_key(connection_id))
            row = Row.from_redis(value) if value is not None else None
            if row is not None:
                opened = Opened(row, self.open(row), tm.TOKEN_SOURCE_REDIS)
                self.memory.put(replace(opened, source=tm.TOKEN_SOURCE_MEMORY), epoch)
                return opened
        record = await self.pool.fetchrow(
            "SELECT * FROM connection_credentials WHERE connection_id = $1",
            connection_id,
        )
        if record is None:
            return None
        row = Row.from_record(record)
        opened = Opened(row, self.open(row), tm.TOKEN_SOURCE_POSTGRES)
        if self._trusts_redis(connection_id):
            # Never over a newer change another shard has written meanwhile.
            await self.redis.put(redis_key(connection_id), row.stamp, row.to_redis())
        self.memory.put(replace(opened, source=tm.TOKEN_SOURCE_MEMORY), epoch)
        return opened

    async def delete(self, connection_id: str, project_id: str, stage: Stage = _no_stage) -> Row:
        if not is_uuid(project_id):
            raise NotFound(connection_id)
        async with self._lock(connection_id):

            async def remove(connection: asyncpg.Connection) -> Row:
                record = await connection.fetchrow(
                    "DELETE FROM connection_credentials "
                    "WHERE connection_id = $1 AND project_id = $2 RETURNING *",
                    connection_id,
                    uuid.UUID(project_id),
                )
                if record is None:
                    raise NotFound(connection_id)
                row = Row.from_record(record)
                await changed(connection, connection_id, row.deleted_stamp, self.listener)
                await stage(connection, row)
                return row

            row = await in_transaction(self.pool, remove)
            self.memory.invalidate(connection_id, row.deleted_stamp)
            await self._settle(connection_id, row.deleted_stamp, row.deleted_stamp + TOMBSTONE)
            await self._heard(connection_id, row.deleted_stamp)
            return row

    @asynccontextmanager
    async def locked(self, connection_id: str) -> AsyncIterator[Locked]:
        """The connection's row, locked FOR UPDATE in an open transaction, opened afresh
        from PostgreSQL: the one place a refresh decides and writes.

        The lock lives in PostgreSQL, not in a shard, so it holds whichever shard the
        edge sends the connection to meanwhile, and it is released the moment its holder
        commits, rolls back or dies (its database session ends with it)."""
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                f"SET LOCAL lock_timeout = '{int(self.lock_timeout_seconds * 1000)}ms'"
            )
            record = await connection.fetchrow(
                "SELECT * FROM connection_credentials WHERE connection_id = $1 FOR UPDATE",
                connection_id,
            )
            if record is None:
                raise NotFound(connection_id)
            row = Row.from_record(record)
            yield Locked(self, connection, row, self.open(row))

    async def cache(self, row: Row, credentials: tm.Credentials) -> Opened:
        """After a commit that changed a row: every tier serves the new credentials."""
        async with self._lock(row.connection_id):
            return await self._cached(row, credentials)

    async def _cached(self, row: Row, credentials: tm.Credentials) -> Opened:
        """Write-through after a commit: the shard that stored serves the next GetToken,
        and Redis holds the change unless it is down (then the debt stays for later)."""
        opened = Opened(row, credentials, tm.TOKEN_SOURCE_MEMORY)
        self.memory.put(opened)
        await self._settle(row.connection_id, row.stamp, row.to_redis())
        await self._heard(row.connection_id, row.stamp)
        return opened

    async def _heard(self, connection_id: str, change: str) -> None:
        if self.listener is not None:
            await self.listener.heard(connection_id, change)

    async def _settle(self, connection_id: str, change: str, value: str) -> bool:
        """Writes a change to Redis and, once written, settles its debt; False when it
        stays owed (Redis or PostgreSQL not answering: settle_debts retries)."""
        if not await self.redis.put(redis_key(connection_id), change, value):
            return False
        try:
            await self.pool.execute(
                "WITH settled AS (DELETE FROM token_cache_debts "
                "WHERE connection_id = $1 AND stamp = $2 RETURNING connection_id) "
                "SELECT pg_notify($3, $4) FROM settled",
                connection_id,
                change,
                CHANNEL,
                message(SETTLED, change, connection_id),
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            _log.warning(
                "Redis is up to date but its debt is not settled yet",
                connection_id=connection_id,
                error=type(error).__name__,
            )
            return False
        return True

    async def settle_debts(self, older_than: float = 0.0, batch: int = 500) -> int:
        """Brings Redis up to date for every connection changed while it could not be
        written (a tombstone of the change's stamp: the next read fills it from
        PostgreSQL); returns how many debts were settled. Any shard may run it, any time:
        a tombstone never replaces a newer value, and a debt is deleted only with the
        stamp it was settled for."""
        settled, after = 0, ""
        async with self._settling:
            while self.redis.available:
                rows = await self.pool.fetch(
                    "SELECT connection_id, stamp FROM token_cache_debts "
                    "WHERE marked_at <= now() - $1::interval AND connection_id > $2 "
                    "ORDER BY connection_id LIMIT $3",
                    timedelta(seconds=older_than),
                    after,
                    batch,
                )
                for record in rows:
                    owed = record["stamp"]
                    if await self._settle(record["connection_id"], owed, owed + TOMBSTONE):
                        settled += 1
                if len(rows) < batch:
                    break
                after = rows[-1]["connection_id"]
        return settled

    async def keep_settling(self, every: float) -> None:
        """Settles debts left behind (a shard killed between commit and Redis, a failed
        write) every few seconds; never raises."""
        while True:
            await asyncio.sleep(every)
            if not self.redis.available:
                continue
            try:
                await self.settle_debts(older_than=every)
            except Exception as error:
                # PostgreSQL restarting, most likely: the debts wait for the next round.
                _log.warning("cannot settle Redis's debts now", error=type(error).__name__)


async def changed(
    connection: asyncpg.Connection,
    connection_id: str,
    change: str,
    listener: Listener | None,
) -> None:
    """In the transaction that changes a connection's credentials: Redis is owed the change,
    and every shard hears of it (invalidation.py) when, and only if, it commits."""
    if listener is not None:
        listener.expect(connection_id, change)
    await connection.execute(
        "WITH owed AS (INSERT INTO token_cache_debts (connection_id, stamp) VALUES ($1, $2) "
        "ON CONFLICT (connection_id) DO UPDATE SET stamp = EXCLUDED.stamp, marked_at = now() "
        "RETURNING connection_id) "
        "SELECT pg_notify($3, $4) FROM owed",
        connection_id,
        change,
        CHANNEL,
        message(CHANGED, change, connection_id),
    )


@dataclass
class Locked:
    """A connection's row under its lock, and the writes a refresh makes before commit."""

    store: CredentialStore
    connection: asyncpg.Connection
    row: Row
    credentials: tm.Credentials

    async def write(
        self,
        credentials: tm.Credentials,
        *,
        status: int,
        refreshed: bool,
        retried_failures: int,
    ) -> Row:
        """Writes new credentials and bookkeeping; the row's version moves on, so every
        event announcing this write has a key of its own."""
        sealed = self.store.seal(self.row.connection_id, credentials)
        record = await self.connection.fetchrow(
            "UPDATE connection_credentials SET credentials_sealed = $2, "
            "credentials_key_id = $3, access_token_expires_at = $4, status = $5, "
            "retried_refresh_failures = $6, "
            # The time of the write, not of the transaction's start: a forced refresh
            # asked for after the lock was taken is still satisfied by this one.
            "last_refreshed_at = CASE WHEN $7 THEN clock_timestamp() "
            "ELSE last_refreshed_at END, "
            "version = version + 1, updated_at = now() "
            "WHERE connection_id = $1 RETURNING *",
            self.row.connection_id,
            sealed.data,
            sealed.key_id,
            creds.access_token_expiry(credentials),
            status,
            retried_failures,
            refreshed,
        )
        self.row = Row.from_record(record)
        self.credentials = credentials
        await changed(self.connection, self.row.connection_id, self.row.stamp, self.store.listener)
        return self.row


def _columns(
    context: tm.ConnectionContext, credentials: tm.Credentials, sealed: Sealed
) -> tuple[Any, ...]:
    """$1 to $8 of the statements that write a connection's credentials (connection id,
    project, provider, auth scheme, context, ciphertext, its key id, access token expiry)."""
    return (
        context.connection_id,
        uuid.UUID(context.project_id),
        context.provider,
        creds.auth_scheme(credentials),
        _context_json(context),
        sealed.data,
        sealed.key_id,
        creds.access_token_expiry(credentials),
    )


def _context_json(context: tm.ConnectionContext) -> str:
    return json_format.MessageToJson(context, indent=None)


def _canonical(project_id: str) -> str:
    return str(uuid.UUID(project_id)) if is_uuid(project_id) else project_id
