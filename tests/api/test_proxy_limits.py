"""Throttle holds and rate limits: a provider's Retry-After read as it may come, the
deployment's limits setting read strictly, and leases from a real Redis never adding up
to more than the limit (services/api/proxy/limits.py, services/domain/catalog/rate_limits.py)."""

from __future__ import annotations

import email.utils
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from services.api.proxy.limits import (
    DEFAULT_HOLD_SECONDS,
    MAX_HOLD_SECONDS,
    HoldTime,
    ProxyLimits,
    hold_from_retry_after,
    limits_client,
)
from services.domain.catalog.rate_limits import (
    DOCUMENTED,
    RateLimit,
    RateLimitSettingError,
    parse_rate_limits,
    rate_limits,
)
from tests.support.stack import Stack, component

NOW = 1_800_000_000.0


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert hold_from_retry_after("30", NOW) == HoldTime(NOW + 30, True)
    date = email.utils.formatdate(NOW + 120, usegmt=True)
    assert hold_from_retry_after(date, NOW) == HoldTime(NOW + 120, True)


def test_a_missing_or_unreadable_retry_after_holds_the_default() -> None:
    for value in ("", "soon", "-5"):
        assert hold_from_retry_after(value, NOW).until == NOW + DEFAULT_HOLD_SECONDS


def test_a_very_long_retry_after_is_capped_and_not_retryable() -> None:
    hold = hold_from_retry_after(str(86400), NOW)
    assert hold == HoldTime(NOW + MAX_HOLD_SECONDS, False)
    assert HoldTime(NOW + 61.2, True).seconds_left(NOW) == 62
    assert HoldTime(NOW, True).rfc3339 == "2027-01-15T08:00:00Z"


def test_the_limits_setting() -> None:
    assert parse_rate_limits(" hubspot = 110/10s , pipedrive=0") == {
        "hubspot": RateLimit(110, 10),
        "pipedrive": None,
    }
    assert rate_limits("") == DOCUMENTED
    assert "hubspot" not in rate_limits("hubspot=0")
    for bad in ("hubspot", "hubspot=10", "hubspot=0/10", "hubspot=10/0", "x=1/90000"):
        with pytest.raises(RateLimitSettingError) as refused:
            parse_rate_limits(bad)
        assert "AMPMESH_PROXY_RATE_LIMITS" in str(refused.value)


@pytest.fixture
async def limits(stack: Stack) -> AsyncIterator[ProxyLimits]:
    """Over the session stack's Redis (keys of connection ids no test makes)."""
    url = component(stack, "redis").service_env()["AMPMESH_REDIS_URL"]
    client = limits_client(url)
    try:
        yield ProxyLimits(client)
    finally:
        await client.aclose()


async def test_leases_never_add_up_to_more_than_the_limit(limits: ProxyLimits) -> None:
    limit = RateLimit(25, 3600)
    key = f"conn-{uuid.uuid4().hex}"
    granted = []
    for _ in range(12):
        lease = await limits.lease(key, limit)
        granted.append(lease.calls)
        assert 0 < lease.seconds_left <= 3600
    # Leases of a tenth of the limit (at least 1), until the window is spent.
    assert granted == [2] * 12
    assert (await limits.lease(key, limit)).calls == 1
    assert (await limits.lease(key, limit)).calls == 0
    assert (await limits.lease(f"{key}-other", limit)).calls == 2
    assert (await limits.lease(f"{key}-other", limit, single=True)).calls == 1


async def test_a_hold_is_kept_and_never_shortened(limits: ProxyLimits) -> None:
    key = f"conn-{uuid.uuid4().hex}"
    assert await limits.hold(key) is None
    later = HoldTime(time.time() + 60, True)
    assert await limits.record_hold(key, later) == later
    sooner = HoldTime(time.time() + 5, True)
    kept = await limits.record_hold(key, sooner)
    assert abs(kept.until - later.until) < 0.01
    held = await limits.hold(key)
    assert held is not None and abs(held.until - later.until) < 0.01


async def test_connections_redis_dropped_are_made_again_without_failing_a_call(
    stack: Stack, limits: ProxyLimits
) -> None:
    """Redis restarted (here: every client connection killed) while the api kept its
    pooled connections: the next calls reconnect, they do not fail."""
    connection_id = f"test-{uuid.uuid4()}"
    assert await limits.hold(connection_id) is None  # a pooled connection now exists
    url = component(stack, "redis").service_env()["AMPMESH_REDIS_URL"]
    admin = redis.asyncio.Redis.from_url(url)
    try:
        killed = await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert killed >= 1
    finally:
        await admin.aclose()
    assert await limits.hold(connection_id) is None
    lease = await limits.lease(connection_id, RateLimit(10, 60))
    assert lease.calls >= 1
