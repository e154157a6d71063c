"""One write_records attempt's provider call: the connection's token from the
token-manager, the writer's call with a forced refresh when the provider rejects the
token, the heartbeats that say whether the attempt may have reached the provider, and the
provider's failures as the ApplicationErrors Temporal retries (or not).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.domain.connectors.base import (
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    TokenRejected,
)
from services.domain.connectors.writes import ItemOutcome, WriteBatch, WriteOutcome, Writer
from services.temporal.connection_auth import connection_auth
from services.temporal.writes.context import WriteContext
from services.temporal.writes.workflows import (
    PROVIDER_UNAVAILABLE,
    WRITE_NOT_POSSIBLE,
)

WriterFor = Callable[[str], Writer]
AuthFor = Callable[
    [providers_pb2.ProviderInfo, str, token_manager_pb2.GetTokenResponse], ProviderAuth
]

# How often the attempt heartbeats, also while the provider call runs: well inside the
# workflow's 15 s heartbeat timeout.
HEARTBEAT_EVERY = 2.0
# The writer's own retries (429, 5xx, network) last at most this long in one attempt;
# Temporal's backoff takes over after.
WRITER_MAX_WAIT = 20.0
# An attempt near the retry deadline retries inside the writer only until this long
# before it, so its last provider error, not the deadline cutting the call, is reported.
DEADLINE_MARGIN = 5.0


def earlier_may_have_written(attempt: int, details: Sequence[Any]) -> bool:
    """Whether an earlier attempt of this call may have written records: its last
    heartbeat says a provider call may have been in flight, or that an attempt before it
    may have written, or it left no heartbeat at all (it died before reporting)."""
    if attempt <= 1:
        return False
    if not details or not isinstance(details[0], Mapping):
        return True
    last = details[0]
    return bool(last.get("in_flight", True)) or bool(last.get("may_have_written", True))


def definitely_unwritten(error: ProviderUnavailable) -> bool:
    """The provider's last answer was a 429: it turned the request away, wrote nothing.
    (A 5xx or a network failure may have come after the provider wrote.) The status is
    read from the message connectors.http words ("... answered 429 ...")."""
    return " answered 429" in str(error)


def writer_wait(deadline: datetime, now: datetime, most: float = WRITER_MAX_WAIT) -> float:
    """The writer's max_wait: `most`, less near the deadline (0: one request)."""
    left = (deadline - now).total_seconds() - DEADLINE_MARGIN
    return max(0.0, min(most, left))


class Attempt:
    """What this attempt tells the next one through its heartbeat details: whether a
    provider call may be in flight, and whether an earlier attempt may have written.

    `in_flight` starts true and turns false only as the attempt fails knowing the
    provider wrote nothing (a 429, a 401 after the refresh, no token): the first heartbeat
    is sent at once, later ones the SDK may hold back (throttling) and lose when the
    process dies, so a later heartbeat never turns the pessimistic state back on."""

    def __init__(self, earlier: bool) -> None:
        self.earlier = earlier
        self.in_flight = True

    @classmethod
    def current(cls) -> Attempt:
        info = activity.info()
        return cls(earlier_may_have_written(info.attempt, info.heartbeat_details))

    def details(self) -> dict[str, bool]:
        return {"in_flight": self.in_flight, "may_have_written": self.earlier}

    def beat(self) -> None:
        activity.heartbeat(self.details())

    def wrote_nothing(self) -> None:
        if self.in_flight:
            self.in_flight = False
            self.beat()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Heartbeat now and every HEARTBEAT_EVERY until the block ends."""

        async def tick() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_EVERY)
                self.beat()

        self.beat()
        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ProviderWrites:
    """Writes through the providers' writers, bound to the process's resources."""

    def __init__(
        self,
        *,
        tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        http: aiohttp.ClientSession,
        writer_for: WriterFor,
        auth_for: AuthFor,
    ) -> None:
        self._tokens = tokens
        self._catalog = catalog
        self._http = http
        self._writer_for = writer_for
        self._auth_for = auth_for

    def writer(self, provider: str) -> Writer:
        try:
            return self._writer_for(provider)
        except KeyError as error:
            raise ApplicationError(
                str(error.args[0]) if error.args else f"no writer for {provider!r}",
                type=WRITE_NOT_POSSIBLE,
                non_retryable=True,
            ) from None

    async def auth(self, context: WriteContext, *, force: bool = False) -> ProviderAuth:
        """The provider auth of the connection, from a token-manager token."""
        return await connection_auth(
            self._tokens,
            self._catalog,
            self._auth_for,
            connection_id=context.connection_id,
            project_id=context.project_id,
            provider=context.provider,
            workspace=context.workspace,
            unusable=WRITE_NOT_POSSIBLE,
            force=force,
        )

    async def write(
        self,
        context: WriteContext,
        writer: Writer,
        batch: WriteBatch,
        attempt: Attempt,
        *,
        max_wait: float,
    ) -> WriteOutcome:
        """The writer's outcome for the batch; a TokenRejected gets one forced refresh
        and a second call, then counts as the provider being unavailable."""
        try:
            auth = await self.auth(context)
        except ApplicationError:
            attempt.wrote_nothing()
            raise
        try:
            try:
                return await writer.write(self._http, auth, batch, max_wait=max_wait)
            except TokenRejected:
                # Nothing written, but the call after the refresh is in flight in turn:
                # the heartbeat keeps saying so (a later one might not get out).
                auth = await self.auth(context, force=True)
                return await writer.write(self._http, auth, batch, max_wait=max_wait)
        except TokenRejected:
            attempt.wrote_nothing()
            raise ApplicationError(
                f"{context.provider} rejected the refreshed token of connection "
                f"{context.connection_id}",
                type=PROVIDER_UNAVAILABLE,
            ) from None
        except ProviderUnavailable as error:
            if definitely_unwritten(error):
                attempt.wrote_nothing()
            raise ApplicationError(
                str(error),
                type=PROVIDER_UNAVAILABLE,
                next_retry_delay=timedelta(seconds=error.retry_after)
                if error.retry_after
                else None,
            ) from None
        except ProviderRequestError as error:
            # Writers report refusals per record; one refusing the whole request refuses
            # every record of it, and retrying will not change its mind.
            return WriteOutcome(
                items=[ItemOutcome(success=False, errors=[str(error)]) for _ in batch.items]
            )
        except ValueError as error:
            # A batch the writer cannot send (its checks before any call).
            attempt.wrote_nothing()
            raise ApplicationError(
                str(error), type=WRITE_NOT_POSSIBLE, non_retryable=True
            ) from None
