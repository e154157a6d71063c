"""The proxy's shared state in Redis: throttle holds and rate-limit leases.

Every edge process and worker decides from its own memory most of the time (see
authorization.py), so what they must agree on lives here:

- a hold (`ampmesh:proxy:hold:<connection>`): the provider answered 429 to a call in
  throttle mode; until it expires, throttled calls for the connection are answered 429
  without reaching the provider. Throttled calls are never decided from memory, so a
  hold recorded through one edge holds every other one from its next call on.
- a rate window (`ampmesh:proxy:rate:<connection>:<window>`): the calls granted in the
  connection's current fixed window. An edge worker is granted a lease of a few calls at
  a time and spends it locally; leases never add up to more than the limit, so the limit
  holds across every edge process, at the price of leased calls a worker leaves unused
  when its window ends.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from services.domain.catalog.rate_limits import RateLimit

HOLD_PREFIX = "ampmesh:proxy:hold:"
RATE_PREFIX = "ampmesh:proxy:rate:"
# A 429 without a usable Retry-After holds calls this long.
DEFAULT_HOLD_SECONDS = 10
# Longest hold: past it, the caller is told not to just retry (X-Amp-Retryable: false).
MAX_HOLD_SECONDS = 3600
# A lease is this share of the limit (at least 1 call): small enough that several edge
# workers share a window fairly, large enough that most calls are decided in memory.
LEASE_SHARE = 10

# Grants up to ARGV[2] calls of a window allowing ARGV[1]; returns the calls granted.
_LEASE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used)
if grant <= 0 then return 0 end
redis.call('INCRBY', KEYS[1], grant)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return grant
"""


@dataclass(frozen=True)
class HoldTime:
    until: float  # epoch seconds
    retryable: bool

    def seconds_left(self, now: float | None = None) -> int:
        return max(1, math.ceil(self.until - (time.time() if now is None else now)))

    @property
    def rfc3339(self) -> str:
        moment = datetime.fromtimestamp(self.until, UTC).replace(microsecond=0)
        return moment.isoformat().replace("+00:00", "Z")


def hold_from_retry_after(value: str, now: float | None = None) -> HoldTime:
    """When a provider's Retry-After (seconds or an HTTP date) lets calls go again."""
    now = time.time() if now is None else now
    seconds: float = DEFAULT_HOLD_SECONDS
    text = value.strip()
    if text.isdigit():
        seconds = int(text)
    elif text:
        try:
            seconds = email.utils.parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError):
            seconds = DEFAULT_HOLD_SECONDS
    seconds = max(1.0, seconds)
    return HoldTime(
        until=now + min(seconds, MAX_HOLD_SECONDS), retryable=seconds <= MAX_HOLD_SECONDS
    )


@dataclass(frozen=True)
class Lease:
    calls: int  # 0: the window is spent
    seconds_left: float  # until the window ends (when a spent window allows calls again)


def limits_client(url: str) -> redis.asyncio.Redis:
    """The Redis client the proxy's limits use. A pooled connection Redis dropped (Redis
    restarted, a failover) fails its next command; redis-py then reconnects and sends it
    again, twice at most, so a call after Redis is back does not get the 503 meant for
    Redis being down. A lease sent again may have counted once already: that errs on the
    side of the provider's limit."""
    return redis.asyncio.Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        retry_on_error=[RedisConnectionError],
        socket_connect_timeout=2.0,
        socket_timeout=2.0,
    )


class ProxyLimits:
    """Holds and leases over one Redis."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.redis = client
        self._lease = client.register_script(_LEASE)

    async def hold(self, connection_id: str) -> HoldTime | None:
        """The connection's hold, if one is in force."""
        stored = await self.redis.get(HOLD_PREFIX + connection_id)
        if stored is None:
            return None
        until_text, _, retryable = (
            stored.decode() if isinstance(stored, bytes) else str(stored)
        ).partition(":")
        until = float(until_text)
        if until <= time.time():
            return None
        return HoldTime(until=until, retryable=retryable != "0")

    async def record_hold(self, connection_id: str, hold: HoldTime) -> HoldTime:
        """Hold the connection's throttled calls until hold.until (a later hold already
        recorded stays: two 429s never shorten a wait)."""
        current = await self.hold(connection_id)
        if current is not None and current.until >= hold.until:
            return current
        milliseconds = max(1, math.ceil((hold.until - time.time()) * 1000))
        await self.redis.set(
            HOLD_PREFIX + connection_id,
            f"{hold.until:.3f}:{int(hold.retryable)}",
            px=milliseconds,
        )
        return hold

    async def lease(self, connection_id: str, limit: RateLimit, *, single: bool = False) -> Lease:
        """Calls an edge worker may make now under the connection's limit: a
        LEASE_SHARE-th of the limit (at least 1), or one call when `single` (a call
        decided alone, which leaves nothing to spend later)."""
        now = time.time()
        window = int(now // limit.seconds)
        left = (window + 1) * limit.seconds - now
        granted = await self._lease(
            keys=[f"{RATE_PREFIX}{connection_id}:{window}"],
            args=[
                limit.calls,
                1 if single else max(1, limit.calls // LEASE_SHARE),
                math.ceil(left * 1000) + 1000,
            ],
        )
        return Lease(calls=int(granted), seconds_left=left)
