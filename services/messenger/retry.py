"""The retry decision: what becomes of a delivery after one attempt. Pure, no I/O.

Given the attempt's number and outcome, the receiver's Retry-After, the delivery's retry
deadline, the retry policy and the time now, `decide` says: SUCCEEDED; RETRYING at a
time; or FAILED (given up, kept for replay: our dead letters). The delivery engine applies
the decisions of a whole batch in one transaction (outcomes.py).

- 2xx: SUCCEEDED.
- Network errors, timeouts, 5xx and 429: RETRYING after the receiver's Retry-After (on
  429/503, capped) or an exponential backoff with jitter, unless that time falls after
  the retry deadline (the delivery's max age): then FAILED.
- Other statuses (3xx, 4xx): FAILED at once; the receiver answered, and the same request
  would get the same answer (a 410 Gone is the classic "stop").
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from ampmesh.messenger.v1 import messenger_pb2 as pb

from services.messenger.rows import FAILED, RETRYING, SUCCEEDED
from services.messenger.settings import MessengerSettings

RETRYABLE = frozenset(
    {
        pb.ATTEMPT_OUTCOME_RATE_LIMITED,
        pb.ATTEMPT_OUTCOME_SERVER_ERROR,
        pb.ATTEMPT_OUTCOME_TIMEOUT,
        pb.ATTEMPT_OUTCOME_NETWORK_ERROR,
    }
)
# A random number between two bounds (random.uniform; tests pass their own).
Jitter = Callable[[float, float], float]


@dataclass(frozen=True)
class RetryPolicy:
    """How a destination is retried (the same for every destination of a deployment)."""

    backoff_first: float  # seconds before the first retry (before jitter)
    backoff_cap: float  # longest wait between retries
    retry_after_cap: float  # longest Retry-After honoured

    @classmethod
    def of(cls, settings: MessengerSettings) -> RetryPolicy:
        return cls(settings.backoff_first, settings.backoff_cap, settings.retry_after_cap)


@dataclass(frozen=True)
class Decision:
    """A delivery's status after an attempt, with when it is tried next (RETRYING) or
    when it ended (SUCCEEDED, FAILED)."""

    status: str
    next_attempt_at: datetime | None = None
    completed_at: datetime | None = None


def outcome_of(status: int) -> int:
    """The AttemptOutcome of an HTTP status."""
    if 200 <= status < 300:
        return pb.ATTEMPT_OUTCOME_SUCCESS
    if status == 429:
        return pb.ATTEMPT_OUTCOME_RATE_LIMITED
    if status >= 500:
        return pb.ATTEMPT_OUTCOME_SERVER_ERROR
    return pb.ATTEMPT_OUTCOME_CLIENT_ERROR


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (delay-seconds or an HTTP date) in seconds; None when absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff(attempt_number: int, policy: RetryPolicy, jitter: Jitter = random.uniform) -> float:
    """Seconds before retrying after attempt_number: a random wait between half and all
    of first * 2^(n-1), capped, so that retries of many deliveries spread out instead of
    hitting a recovering receiver together."""
    ceiling = min(policy.backoff_cap, policy.backoff_first * 2 ** (attempt_number - 1))
    return jitter(ceiling / 2, ceiling)


def decide(
    attempt_number: int,
    outcome: int,
    retry_after: float | None,
    retry_deadline: datetime,
    policy: RetryPolicy,
    now: datetime,
    jitter: Jitter = random.uniform,
) -> Decision:
    """What becomes of a delivery whose attempt number attempt_number (1 for the first)
    ended with outcome (an AttemptOutcome) at now."""
    if outcome == pb.ATTEMPT_OUTCOME_SUCCESS:
        return Decision(SUCCEEDED, completed_at=now)
    if outcome in RETRYABLE:
        if retry_after is not None:
            delay = min(retry_after, policy.retry_after_cap)
        else:
            delay = backoff(attempt_number, policy, jitter)
        next_at = now + timedelta(seconds=delay)
        if next_at <= retry_deadline:
            return Decision(RETRYING, next_attempt_at=next_at)
    return Decision(FAILED, completed_at=now)
