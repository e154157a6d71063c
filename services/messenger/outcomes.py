"""Recording what became of attempts, a batch per transaction: the attempt rows, each
delivery's new status (retry.py decides it), and each endpoint's run of failures.

An endpoint failing continuously for `disable_after` with at least
`disable_min_failures` failures in a row is disabled: its waiting deliveries become HELD,
and `destination.webhook.disabled` is staged in the event outbox in the same transaction.
A batch costs a fixed number of statements (two executemany, and one or two per endpoint
it touched), whatever its size: this is the delivery hot path.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from ampmesh.events.v1 import notifications_pb2
from ampmesh.messenger.v1 import messenger_pb2 as pb

from services.messenger.retry import RetryPolicy, decide
from services.messenger.rows import DISABLED, HELD, READ_RESULT, SUCCEEDED, Job
from services.messenger.sending import Attempt
from services.messenger.settings import MessengerSettings
from services.messenger.telemetry import MessengerMetrics
from services.runtime.envelopes import new_envelope
from services.runtime.events import EventBus
from services.runtime.logs import get_logger

_log = get_logger("ampmesh.messenger")
_OUTCOME_NAMES = {
    value.number: value.name.removeprefix("ATTEMPT_OUTCOME_").lower()
    for value in pb.AttemptOutcome.DESCRIPTOR.values
}


@dataclass(frozen=True)
class Completion:
    """A claimed delivery and how its attempt went."""

    job: Job
    attempt: Attempt | None  # None: held, not attempted


class Outcomes:
    """Writes attempts' outcomes (one per process, fed by a Batcher)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: EventBus,
        settings: MessengerSettings,
        metrics: MessengerMetrics,
    ) -> None:
        self.pool = pool
        self.bus = bus
        self.settings = settings
        self.metrics = metrics
        self.policy = RetryPolicy.of(settings)

    async def record(self, batch: list[Completion]) -> list[None]:
        """Write a batch of attempts in one transaction: each attempt's row, each
        delivery's new status (as retry.decide says), each endpoint's failure run."""
        now = datetime.now(UTC)
        updates: list[tuple[Any, ...]] = []
        attempts: list[tuple[Any, ...]] = []
        # destination -> (project, failures after its last success in the batch, success?)
        endpoints: dict[str, tuple[str, int, bool]] = {}
        for done in batch:
            job, attempt = done.job, done.attempt
            if attempt is None:
                updates.append((job.id, HELD, job.attempt_count, None, None, None, 0, "", None))
                continue
            number = job.attempt_count + 1
            kind_outcome = _OUTCOME_NAMES.get(attempt.outcome, "unknown")
            self.metrics.deliveries.labels(job.kind, kind_outcome).inc()
            attempts.append(
                (
                    job.id,
                    number,
                    job.trigger,
                    attempt.started,
                    attempt.duration,
                    attempt.outcome,
                    attempt.status_code,
                    attempt.response_body,
                    attempt.retry_after,
                    attempt.error,
                )
            )
            decided = decide(
                number, attempt.outcome, attempt.retry_after, job.retry_deadline, self.policy, now
            )
            if decided.status == SUCCEEDED and job.kind == READ_RESULT:
                self.metrics.records.inc(job.record_count)
            updates.append(
                (
                    job.id,
                    decided.status,
                    number,
                    decided.next_attempt_at,
                    attempt.url,
                    attempt.started,
                    attempt.status_code,
                    attempt.error
                    or ("" if decided.status == SUCCEEDED else f"HTTP {attempt.status_code}"),
                    decided.completed_at,
                )
            )
            project, failures, _ = endpoints.get(job.destination_id, (job.project_id, 0, False))
            if attempt.outcome == pb.ATTEMPT_OUTCOME_SUCCESS:
                endpoints[job.destination_id] = (project, 0, True)
            else:
                succeeded = endpoints.get(job.destination_id, (project, 0, False))[2]
                endpoints[job.destination_id] = (project, failures + 1, succeeded)
        async with self.pool.acquire() as connection, connection.transaction():
            if attempts:
                await connection.executemany(
                    """
                    INSERT INTO webhook_delivery_attempts (delivery_id, number, trigger,
                        started_at, duration_seconds, outcome, status_code, response_body,
                        retry_after_seconds, error)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    ON CONFLICT (delivery_id, number) DO NOTHING
                    """,
                    attempts,
                )
            await connection.executemany(
                """
                UPDATE webhook_deliveries SET status = $2, attempt_count = $3,
                    next_attempt_at = $4, url = coalesce($5, url),
                    last_attempt_at = coalesce($6, last_attempt_at),
                    last_status_code = CASE WHEN $6::timestamptz IS NULL
                        THEN last_status_code ELSE $7 END,
                    last_error = CASE WHEN $6::timestamptz IS NULL THEN last_error ELSE $8 END,
                    completed_at = $9, lease_until = NULL, next_trigger = 1
                WHERE id = $1
                """,
                updates,
            )
            for destination_id, (project, failures, succeeded) in endpoints.items():
                await self._endpoint_outcome(
                    connection, destination_id, project, failures, succeeded
                )
        return [None] * len(batch)

    async def _endpoint_outcome(
        self,
        connection: asyncpg.Connection,
        destination_id: str,
        project_id: str,
        failures: int,
        succeeded: bool,
    ) -> None:
        """Apply a batch's attempts to the endpoint: `failures` failed attempts after its
        last success in the batch (if any)."""
        if succeeded:
            # Most batches of a healthy endpoint change nothing: write only when they do,
            # or when last_success_at is a second stale.
            await connection.execute(
                """
                INSERT INTO webhook_endpoints (destination_id, project_id, last_success_at)
                VALUES ($1::uuid, $2::uuid, now())
                ON CONFLICT (destination_id) DO UPDATE SET last_success_at = now(),
                    consecutive_failures = 0, failing_since = NULL, updated_at = now(),
                    state = CASE WHEN webhook_endpoints.state = 'failing' THEN 'enabled'
                        ELSE webhook_endpoints.state END
                WHERE webhook_endpoints.consecutive_failures > 0
                   OR webhook_endpoints.state = 'failing'
                   OR webhook_endpoints.last_success_at IS NULL
                   OR webhook_endpoints.last_success_at < now() - interval '1 second'
                """,
                destination_id,
                project_id,
            )
        if not failures:
            return
        row = await connection.fetchrow(
            """
            INSERT INTO webhook_endpoints AS e (destination_id, project_id, state,
                consecutive_failures, failing_since, last_failure_at)
            VALUES ($1::uuid, $2::uuid, 'failing', $3, now(), now())
            ON CONFLICT (destination_id) DO UPDATE SET
                consecutive_failures = e.consecutive_failures + $3,
                failing_since = coalesce(e.failing_since, now()),
                last_failure_at = now(), updated_at = now(),
                state = CASE WHEN e.state = 'disabled' THEN 'disabled' ELSE 'failing' END
            RETURNING state, consecutive_failures, failing_since
            """,
            destination_id,
            project_id,
            failures,
        )
        assert row is not None
        failing_for = (datetime.now(UTC) - row["failing_since"]).total_seconds()
        if (
            row["state"] != DISABLED
            and row["consecutive_failures"] >= self.settings.disable_min_failures
            and failing_for >= self.settings.disable_after
        ):
            await self._disable(
                connection,
                destination_id,
                f"failing for {_human(failing_for)} "
                f"({row['consecutive_failures']} failed attempts in a row)",
            )

    async def _disable(
        self, connection: asyncpg.Connection, destination_id: str, reason: str
    ) -> None:
        disabled = await connection.fetchrow(
            """
            UPDATE webhook_endpoints SET state = 'disabled', disabled_at = now(),
                disable_reason = $2, updated_at = now()
            WHERE destination_id = $1::uuid AND state <> 'disabled'
            RETURNING project_id, disabled_at
            """,
            destination_id,
            reason,
        )
        if disabled is None:
            return
        await connection.execute(
            "UPDATE webhook_deliveries SET status = 'held', next_attempt_at = NULL "
            "WHERE destination_id = $1::uuid AND status IN ('pending', 'retrying')",
            destination_id,
        )
        destination = await connection.fetchrow(
            "SELECT name, metadata FROM destinations WHERE id = $1::uuid", destination_id
        )
        name = destination["name"] if destination else ""
        url = json.loads(destination["metadata"]).get("url", "") if destination else ""
        project_id = str(disabled["project_id"])
        notification = notifications_pb2.Notification(
            destination_webhook_disabled=notifications_pb2.DestinationWebhookDisabledNotification(
                notification_type="destination.webhook.disabled",
                data=notifications_pb2.DestinationWebhookDisabledData(
                    project_id=project_id,
                    destination_id=destination_id,
                    destination_name=name,
                    url=url,
                ),
            )
        )
        await self.bus.stage(
            connection,
            new_envelope(
                project_id=project_id,
                idempotency_key=(
                    f"destination.webhook.disabled/{destination_id}/"
                    f"{disabled['disabled_at'].isoformat()}"
                ),
                source="messenger",
                notification=notification,
            ),
        )
        # Published once this transaction commits (the relay also polls).
        asyncio.get_running_loop().call_soon(self.bus.kick)
        _log.warning("webhook endpoint disabled", destination_id=destination_id, reason=reason)


def _human(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.0f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"
