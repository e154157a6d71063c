"""Where a shard finds a connection's credentials: its memory, then Redis, then PostgreSQL.

PostgreSQL is the truth; Redis and memory are caches any shard may lack or lose. Redis
holds the same SEALED bytes as PostgreSQL (with the id of their key), so a Redis dump
reveals nothing; only a shard's memory holds opened credentials, in a small LRU whose
entries also age out, so a shard that lost ownership and regains it later does not serve
what another shard replaced meanwhile for long.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.protobuf import json_format
from redis.asyncio import Redis

from services.runtime.secretbox import Sealed, SecretBox
from services.token_manager import credentials as creds

REDIS_PREFIX = "ampmesh:tm:cred:"


class AlreadyExists(Exception):
    """The connection has credentials and the request did not ask to replace them."""


class NotFound(Exception):
    """The connection has no credentials (in the caller's project)."""


def redis_key(connection_id: str) -> str:
    return REDIS_PREFIX + connection_id


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
        )

    def to_redis(self) -> str:
        fields: dict[str, Any] = {
            k: v for k, v in self.__dict__.items() if k not in ("sealed",) and v is not None
        }
        for name in ("access_token_expires_at", "created_at", "updated_at"):
            if name in fields:
                fields[name] = fields[name].isoformat()
        fields["key_id"] = self.sealed.key_id
        fields["sealed"] = self.sealed.data.hex()
        return json.dumps(fields)

    @classmethod
    def from_redis(cls, value: str | bytes) -> Row:
        fields = json.loads(value)
        expires = fields.get("access_token_expires_at")
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
        )


@dataclass(frozen=True)
class Opened:
    """A row with its credentials opened, and the tier that served it."""

    row: Row
    credentials: tm.Credentials
    source: tm.TokenSource


class MemoryCache:
    """A bounded LRU whose entries also expire: the shard's fastest tier."""

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self._entries: OrderedDict[str, tuple[float, Opened]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl_seconds

    def get(self, connection_id: str) -> Opened | None:
        entry = self._entries.get(connection_id)
        if entry is None:
            return None
        stored_at, opened = entry
        if time.monotonic() - stored_at > self._ttl:
            del self._entries[connection_id]
            return None
        self._entries.move_to_end(connection_id)
        return opened

    def put(self, opened: Opened) -> None:
        if self._max <= 0:
            return
        self._entries[opened.row.connection_id] = (time.monotonic(), opened)
        self._entries.move_to_end(opened.row.connection_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def evict(self, connection_id: str) -> None:
        self._entries.pop(connection_id, None)

    def __len__(self) -> int:
        return len(self._entries)


class CredentialStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        box: SecretBox,
        *,
        memory: MemoryCache,
        redis_ttl_seconds: int,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.box = box
        self.memory = memory
        self.redis_ttl_seconds = redis_ttl_seconds
        # Writes and cache fills of one connection take turns on this shard (the edge sends
        # a connection's calls here), so a fill that read PostgreSQL before a replace or
        # delete cannot put the old credentials back in Redis after it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, connection_id: str) -> asyncio.Lock:
        lock = self._locks.get(connection_id)
        if lock is None:
            lock = self._locks[connection_id] = asyncio.Lock()
        return lock

    def seal(self, connection_id: str, credentials: tm.Credentials) -> Sealed:
        return self.box.seal(credentials.SerializeToString(), associated_data(connection_id))

    def open(self, row: Row) -> tm.Credentials:
        return tm.Credentials.FromString(
            self.box.open(row.sealed, associated_data(row.connection_id))
        )

    async def create(self, context: tm.ConnectionContext, credentials: tm.Credentials) -> Opened:
        async with self._lock(context.connection_id):
            return await self._create(context, credentials)

    async def replace(self, context: tm.ConnectionContext, credentials: tm.Credentials) -> Opened:
        async with self._lock(context.connection_id):
            return await self._replace(context, credentials)

    async def _create(self, context: tm.ConnectionContext, credentials: tm.Credentials) -> Opened:
        sealed = self.seal(context.connection_id, credentials)
        record = await self.pool.fetchrow(
            "INSERT INTO connection_credentials (connection_id, project_id, provider, "
            "auth_scheme, connection, credentials_sealed, credentials_key_id, "
            "access_token_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (connection_id) DO NOTHING RETURNING *",
            context.connection_id,
            uuid.UUID(context.project_id),
            context.provider,
            creds.auth_scheme(credentials),
            _context_json(context),
            sealed.data,
            sealed.key_id,
            creds.access_token_expiry(credentials),
        )
        if record is None:
            raise AlreadyExists(context.connection_id)
        return await self._cached(Row.from_record(record), credentials)

    async def _replace(self, context: tm.ConnectionContext, credentials: tm.Credentials) -> Opened:
        sealed = self.seal(context.connection_id, credentials)
        record = await self.pool.fetchrow(
            "UPDATE connection_credentials SET provider = $3, auth_scheme = $4, "
            "connection = $5, credentials_sealed = $6, credentials_key_id = $7, "
            "access_token_expires_at = $8, version = version + 1, updated_at = now() "
            "WHERE connection_id = $1 AND project_id = $2 RETURNING *",
            context.connection_id,
            uuid.UUID(context.project_id),
            context.provider,
            creds.auth_scheme(credentials),
            _context_json(context),
            sealed.data,
            sealed.key_id,
            creds.access_token_expiry(credentials),
        )
        if record is None:
            raise NotFound(context.connection_id)
        return await self._cached(Row.from_record(record), credentials)

    async def get(self, connection_id: str, project_id: str) -> Opened:
        """The connection's credentials from the fastest tier holding them; NotFound when
        none does or they belong to another project."""
        opened = self.memory.get(connection_id)
        if opened is None:
            async with self._lock(connection_id):
                opened = await self._from_redis(connection_id)
                if opened is None:
                    opened = await self._from_postgres(connection_id)
        if opened is None or opened.row.project_id != _canonical(project_id):
            raise NotFound(connection_id)
        return opened

    async def delete(self, connection_id: str, project_id: str) -> None:
        if not _is_uuid(project_id):
            raise NotFound(connection_id)
        async with self._lock(connection_id):
            await self._delete(connection_id, project_id)

    async def _delete(self, connection_id: str, project_id: str) -> None:
        deleted = await self.pool.fetchval(
            "DELETE FROM connection_credentials WHERE connection_id = $1 AND project_id = $2 "
            "RETURNING connection_id",
            connection_id,
            uuid.UUID(project_id),
        )
        if deleted is None:
            raise NotFound(connection_id)
        await self.evict(connection_id)

    async def evict(self, connection_id: str) -> None:
        self.memory.evict(connection_id)
        await self.redis.delete(redis_key(connection_id))

    async def _cached(self, row: Row, credentials: tm.Credentials) -> Opened:
        """Write-through after a store: the shard that stored serves the next GetToken."""
        await self.redis.set(
            redis_key(row.connection_id), row.to_redis(), ex=self.redis_ttl_seconds
        )
        opened = Opened(row, credentials, tm.TOKEN_SOURCE_MEMORY)
        self.memory.put(opened)
        return opened

    async def _from_redis(self, connection_id: str) -> Opened | None:
        value = await self.redis.get(redis_key(connection_id))
        if value is None:
            return None
        row = Row.from_redis(value)
        opened = Opened(row, self.open(row), tm.TOKEN_SOURCE_REDIS)
        self.memory.put(replace(opened, source=tm.TOKEN_SOURCE_MEMORY))
        return opened

    async def _from_postgres(self, connection_id: str) -> Opened | None:
        record = await self.pool.fetchrow(
            "SELECT * FROM connection_credentials WHERE connection_id = $1",
            connection_id,
        )
        if record is None:
            return None
        row = Row.from_record(record)
        opened = Opened(row, self.open(row), tm.TOKEN_SOURCE_POSTGRES)
        await self.redis.set(redis_key(connection_id), row.to_redis(), ex=self.redis_ttl_seconds)
        self.memory.put(replace(opened, source=tm.TOKEN_SOURCE_MEMORY))
        return opened


def _context_json(context: tm.ConnectionContext) -> str:
    return json_format.MessageToJson(context, indent=None)


def _canonical(project_id: str) -> str:
    return str(uuid.UUID(project_id)) if _is_uuid(project_id) else project_id


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
