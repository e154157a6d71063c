"""The keep-alive batch activity: refresh the next batch of idle OAuth connections.

It reads the next `batch_size` OAuth connections (by id, after the last batch's) from
PostgreSQL and asks the token-manager to refresh each one, at most `concurrency` at a
time, with reason KEEP_ALIVE and `skip_if_refreshed_within` = the idle threshold: the
shard that owns the connection decides whether it is idle (it keeps
last_refreshed_at), so nothing here reads credentials. One connection's failure is
counted, never raised: only the unexpected (the database gone) fails the batch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import grpc
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from ampmesh.workflows.v1 import token_keep_alive_pb2 as keep_alive_pb2
from google.protobuf import duration_pb2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.domain.token_manager_client import failure_reason, reason_text
from services.runtime.logs import get_logger
from services.temporal.keep_alive.workflows import (
    BATCH_ACTIVITY,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    bounded,
)

_log = get_logger("ampmesh.temporal.keep_alive")

# When neither the input nor the provider's catalog entry says how long is idle.
DEFAULT_IDLE_THRESHOLD = timedelta(hours=24)
# One refresh is a token-manager call that makes one provider call; the batch's
# heartbeat timeout must stay well above this.
REFRESH_DEADLINE_SECONDS = 20.0

BAD_CREDENTIALS_STATUS = "bad_credentials"

# Every OAuth scheme: the reference's values are oauth2/authorizationCode,
# oauth2/authorizationCodePKCE, oauth2/clientCredentials and oauth2/password.
_SELECT_BATCH = """
    SELECT id::text AS id, project_id::text AS project_id, provider, status
    FROM connections
    WHERE auth_scheme LIKE 'oauth2/%'
      AND ($1::uuid IS NULL OR id > $1::uuid)
      AND ($2::text = '' OR provider = $2::text)
    ORDER BY id
    LIMIT $3
"""


@dataclass(frozen=True)
class Candidate:
    """A connection the batch looks at."""

    id: str
    project_id: str
    provider: str
    status: str


async def select_batch(
    pool: asyncpg.Pool, *, after: str, provider: str, size: int
) -> list[Candidate]:
    """The next `size` OAuth connections whose id sorts after `after` ("" for the first)."""
    after_id = _connection_uuid(after) if after else None
    rows = await pool.fetch(_SELECT_BATCH, after_id, provider, size)
    return [Candidate(r["id"], r["project_id"], r["provider"], r["status"]) for r in rows]


def idle_threshold(
    given: duration_pb2.Duration | None,
    provider: str,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
) -> timedelta:
    """The input's threshold, else the provider's catalog keepAliveIntervalHours, else 24 h."""
    if given is not None:
        return given.ToTimedelta()
    info = catalog.get(provider)
    if info is not None and info.oauth2_opts.HasField("keep_alive_interval_hours"):
        hours = info.oauth2_opts.keep_alive_interval_hours
        if hours > 0:
            return timedelta(hours=hours)
    return DEFAULT_IDLE_THRESHOLD


class KeepAliveActivities:
    """The connections queue's keep-alive activity, bound to the process's resources."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
    ) -> None:
        self._pool = pool
        self._tokens = tokens
        self._catalog = catalog

    @activity.defn(name=BATCH_ACTIVITY)
    async def keep_alive_batch(
        self, request: keep_alive_pb2.TokenKeepAliveBatchInput
    ) -> keep_alive_pb2.TokenKeepAliveBatchOutput:
        size = bounded(request.batch_size, DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE)
        candidates = await select_batch(
            self._pool,
            after=request.after_connection_id,
            provider=request.provider,
            size=size,
        )
        given = request.idle_threshold if request.HasField("idle_threshold") else None
        counts = keep_alive_pb2.TokenKeepAliveCounts()
        slots = asyncio.Semaphore(
            bounded(request.concurrency, DEFAULT_CONCURRENCY, MAX_CONCURRENCY)
        )

        async def examine(candidate: Candidate) -> None:
            async with slots:
                outcome = await self._keep_alive(
                    candidate, idle_threshold(given, candidate.provider, self._catalog)
                )
            counts.examined += 1
            setattr(counts, outcome, getattr(counts, outcome) + 1)
            activity.heartbeat(candidate.id)

        async with asyncio.TaskGroup() as group:
            for candidate in candidates:
                group.create_task(examine(candidate))
        _log.info(
            "keep-alive batch",
            after=request.after_connection_id,
            provider=request.provider or None,
            examined=counts.examined,
            refreshed=counts.refreshed,
            skipped=counts.skipped,
            failed=counts.failed,
            bad_credentials=counts.bad_credentials,
        )
        return keep_alive_pb2.TokenKeepAliveBatchOutput(
            counts=counts,
            last_connection_id=candidates[-1].id if candidates else request.after_connection_id,
            done=len(candidates) < size,
        )

    async def _keep_alive(self, candidate: Candidate, threshold: timedelta) -> str:
        """Refresh one connection; the name of the count its outcome adds to."""
        if candidate.status == BAD_CREDENTIALS_STATUS:
            # The provider refused it already; only its user reconnecting can mend it.
            return "skipped"
        request = token_manager_pb2.RefreshTokenRequest(
            connection_id=candidate.id,
            project_id=candidate.project_id,
            reason=token_manager_pb2.REFRESH_REASON_KEEP_ALIVE,
        )
        request.skip_if_refreshed_within.FromTimedelta(threshold)
        try:
            response = await self._tokens.RefreshToken(request, timeout=REFRESH_DEADLINE_SECONDS)
        except grpc.aio.AioRpcError as error:
            return _outcome_of(candidate, error)
        return "refreshed" if response.refreshed else "skipped"


def _outcome_of(candidate: Candidate, error: grpc.aio.AioRpcError) -> str:
    reason = failure_reason(error)
    code = error.code()
    if code == grpc.StatusCode.NOT_FOUND:
        # Deleted since the batch read it, or it holds no credentials to refresh.
        return "skipped"
    if (
        code == grpc.StatusCode.FAILED_PRECONDITION
        and reason == token_manager_pb2.TOKEN_FAILURE_REASON_BAD_CREDENTIALS
    ):
        _log.info("keep-alive refused by the provider", connection_id=candidate.id)
        return "bad_credentials"
    # Provider down or rate limiting (UNAVAILABLE), a shard restarting, or anything else:
    # the next scheduled pass tries again. Only the code and reason are logged: a
    # status message is the token-manager's and stays there.
    _log.warning(
        "keep-alive refresh failed",
        connection_id=candidate.id,
        provider=candidate.provider,
        code=code.name,
        reason=reason_text(reason) if reason else None,
    )
    return "failed"


def _connection_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        # Retrying cannot make a bad input good: fail the run at once.
        raise ApplicationError(
            f"after_connection_id {value[:64]!r} is not a connection id (a UUID)",
            non_retryable=True,
        ) from None
