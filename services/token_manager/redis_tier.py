"""Redis as the token-manager's shared cache: used while it answers, skipped while it does
not, and never allowed to go back in time.

A shard that meets a Redis failure stops calling Redis at once (a circuit breaker): while
it is open every call that would have gone to Redis answers "not cached" without touching
the network, so token calls are served from PostgreSQL at PostgreSQL's speed instead of
each paying a connect timeout. One probe (a PING, backing off from `retry_after` to
`max_retry_after`) runs meanwhile; when it answers, Redis is used again and `on_recovery`
runs (the store settles what Redis missed meanwhile: store.CredentialStore.settle_debts).

Every value written carries the stamp of the change it holds (store.Row.stamp: creation
time and version, so it also orders a deletion before a re-creation), and is written by
one Lua script that refuses to replace a newer stamp: a shard that read PostgreSQL before
another shard's change cannot put the older credentials back after it, and a deletion
leaves a tombstone rather than an empty key for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import redis.asyncio
import redis.exceptions

from services.runtime.logs import get_logger
from services.token_manager.telemetry import token_metrics

_log = get_logger("ampmesh.token_manager.redis")

# A value is <stamp><kind><payload>: the stamp (store.STAMP_LENGTH hex digits), then V and
# the row as JSON, or T alone for a tombstone (the connection's credentials are gone).
VALUE = "V"
TOMBSTONE = "T"
STAMP_LENGTH = 24

# KEYS[1] the key; ARGV[1] the new stamp, ARGV[2] the whole new value, ARGV[3] its TTL.
# Writes unless the key holds a newer stamp, or the same stamp with credentials (a
# tombstone of a stamp gives way to that stamp's credentials, read afresh from
# PostgreSQL). Returns 1 when written.
_WRITE_UNLESS_NEWER = f"""
local current = redis.call('GET', KEYS[1])
if current then
  local stamp = string.sub(current, 1, {STAMP_LENGTH})
  if stamp > ARGV[1] then return 0 end
  if stamp == ARGV[1] and string.sub(current, {STAMP_LENGTH + 1}, {STAMP_LENGTH + 1}) == '{VALUE}'
  then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""

# What a call to Redis raises when Redis is down, restarting (LOADING its AOF), or slow.
_UNAVAILABLE = (redis.exceptions.RedisError, OSError, TimeoutError)


class RedisTier:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        ttl_seconds: int,
        *,
        retry_after: float = 0.5,
        max_retry_after: float = 5.0,
        on_recovery: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.retry_after = retry_after
        self.max_retry_after = max_retry_after
        self.on_recovery = on_recovery
        self._write = client.register_script(_WRITE_UNLESS_NEWER)
        self._down_since: float | None = None
        self._probe: asyncio.Task[None] | None = None
        token_metrics().redis_available.set(1)

    async def start(self) -> None:
        """Checks Redis once: a shard that starts while Redis is down serves from
        PostgreSQL and probes, rather than refusing to start."""
        try:
            await self.client.ping()
        except _UNAVAILABLE as error:
            self._lost(error)

    @property
    def available(self) -> bool:
        """Whether this shard uses Redis now (False from a failure until a probe answers)."""
        return self._down_since is None

    async def get(self, key: str) -> str | None:
        """The value stored under key; None when absent, or when Redis is not answering."""
        if self._down_since is not None:
            return None
        try:
            value = await self.client.get(key)
        except _UNAVAILABLE as error:
            self._lost(error)
            return None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def put(self, key: str, stamp: str, value: str) -> bool:
        """Writes value (which starts with stamp) unless Redis holds a newer one; True
        when Redis now holds this stamp or a newer one, False when Redis is not
        answering."""
        if self._down_since is not None:
            return False
        try:
            await self._write(keys=[key], args=[stamp, value, self.ttl_seconds])
        except _UNAVAILABLE as error:
            self._lost(error)
            return False
        return True

    async def delete(self, *keys: str) -> bool:
        if self._down_since is not None:
            return False
        try:
            await self.client.delete(*keys)
        except _UNAVAILABLE as error:
            self._lost(error)
            return False
        return True

    def _lost(self, error: BaseException) -> None:
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        token_metrics().redis_available.set(0)
        token_metrics().redis_outages.inc()
        _log.warning(
            "Redis is not answering; serving credentials from PostgreSQL until it does",
            error=type(error).__name__,
        )
        self._probe = asyncio.create_task(self._until_back(), name="redis probe")

    async def _until_back(self) -> None:
        wait = self.retry_after
        while True:
            await asyncio.sleep(wait)
            try:
                await self.client.ping()
            except _UNAVAILABLE:
                wait = min(wait * 2, self.max_retry_after)
                continue
            break
        down_since, self._down_since = self._down_since, None
        token_metrics().redis_available.set(1)
        _log.info(
            "Redis answers again; caching credentials there again",
            down_seconds=round(time.monotonic() - (down_since or time.monotonic()), 3),
        )
        if self.on_recovery is not None:
            # Not needed for correctness (shards skip what Redis still owes, see
            # invalidation.py), but it frees those connections to use Redis again.
            try:
                await self.on_recovery()
            except Exception as error:
                _log.warning("settling Redis after an outage failed", error=type(error).__name__)

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
