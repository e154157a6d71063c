"""The retry decision (services/messenger/retry.py): what becomes of a delivery after
one attempt, without a database, a receiver or a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ampmesh.messenger.v1 import messenger_pb2 as pb

from services.messenger.retry import (
    Decision,
    RetryPolicy,
    backoff,
    decide,
    outcome_of,
    retry_after_seconds,
)
from services.messenger.rows import FAILED, RETRYING, SUCCEEDED
from services.messenger.settings import MessengerSettings

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
DAY_LEFT = NOW + timedelta(days=1)
POLICY = RetryPolicy(backoff_first=1.0, backoff_cap=60.0, retry_after_cap=3600.0)


def highest(low: float, high: float) -> float:
    return high


def lowest(low: float, high: float) -> float:
    return low


def test_success_ends_the_delivery() -> None:
    assert decide(1, pb.ATTEMPT_OUTCOME_SUCCESS, None, DAY_LEFT, POLICY, NOW) == Decision(
        SUCCEEDED, completed_at=NOW
    )


@pytest.mark.parametrize(
    "outcome",
    [
        pb.ATTEMPT_OUTCOME_RATE_LIMITED,
        pb.ATTEMPT_OUTCOME_SERVER_ERROR,
        pb.ATTEMPT_OUTCOME_TIMEOUT,
        pb.ATTEMPT_OUTCOME_NETWORK_ERROR,
    ],
)
def test_retryable_failures_are_retried_after_a_backoff(outcome: int) -> None:
    decided = decide(3, outcome, None, DAY_LEFT, POLICY, NOW, jitter=highest)
    assert decided == Decision(RETRYING, next_attempt_at=NOW + timedelta(seconds=4))


@pytest.mark.parametrize(
    "outcome", [pb.ATTEMPT_OUTCOME_CLIENT_ERROR, pb.ATTEMPT_OUTCOME_UNSPECIFIED]
)
def test_other_answers_fail_at_once(outcome: int) -> None:
    # The receiver answered; the same request would get the same answer.
    assert decide(1, outcome, 5.0, DAY_LEFT, POLICY, NOW) == Decision(FAILED, completed_at=NOW)


def test_retry_after_replaces_the_backoff_up_to_its_cap() -> None:
    rate_limited = pb.ATTEMPT_OUTCOME_RATE_LIMITED
    assert decide(1, rate_limited, 120.0, DAY_LEFT, POLICY, NOW).next_attempt_at == (
        NOW + timedelta(seconds=120)
    )
    assert decide(1, rate_limited, 0.0, DAY_LEFT, POLICY, NOW).next_attempt_at == NOW
    capped = decide(1, rate_limited, 86_400.0, DAY_LEFT, POLICY, NOW)
    assert capped.next_attempt_at == NOW + timedelta(hours=1)


def test_a_retry_past_the_deadline_is_given_up() -> None:
    server_error = pb.ATTEMPT_OUTCOME_SERVER_ERROR
    deadline = NOW + timedelta(seconds=10)
    assert decide(1, server_error, 10.0, deadline, POLICY, NOW).status == RETRYING
    assert decide(1, server_error, 10.5, deadline, POLICY, NOW) == Decision(
        FAILED, completed_at=NOW
    )
    # An attempt after the deadline has passed is the last one.
    assert decide(9, server_error, None, NOW, POLICY, NOW, jitter=lowest).status == FAILED


def test_backoff_doubles_up_to_its_cap_with_jitter_over_its_upper_half() -> None:
    ceilings = [backoff(n, POLICY, highest) for n in range(1, 9)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert [backoff(n, POLICY, lowest) for n in (1, 4, 8)] == [0.5, 4.0, 30.0]
    for n in range(1, 12):
        assert 0.5 * min(60.0, 2 ** (n - 1)) <= backoff(n, POLICY) <= min(60.0, 2 ** (n - 1))


def test_the_policy_comes_from_the_settings() -> None:
    settings = MessengerSettings.model_validate(
        {"backoff_first": 0.2, "backoff_cap": 0.5, "retry_after_cap": 7.0}
    )
    assert RetryPolicy.of(settings) == RetryPolicy(0.2, 0.5, 7.0)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, pb.ATTEMPT_OUTCOME_SUCCESS),
        (204, pb.ATTEMPT_OUTCOME_SUCCESS),
        (301, pb.ATTEMPT_OUTCOME_CLIENT_ERROR),
        (410, pb.ATTEMPT_OUTCOME_CLIENT_ERROR),
        (429, pb.ATTEMPT_OUTCOME_RATE_LIMITED),
        (500, pb.ATTEMPT_OUTCOME_SERVER_ERROR),
        (503, pb.ATTEMPT_OUTCOME_SERVER_ERROR),
    ],
)
def test_outcome_of_a_status(status: int, outcome: int) -> None:
    assert outcome_of(status) == outcome


def test_retry_after_header() -> None:
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds(" 120 ", NOW) == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:02:00 GMT", NOW) == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", NOW) == 0.0
    assert retry_after_seconds("soon", NOW) is None
