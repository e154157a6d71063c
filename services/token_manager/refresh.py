"""Refreshing a connection's access token: once per connection at a time, across every
process and shard.

Two layers keep a refresh storm to one provider call:

1. Within a shard, concurrent callers for one connection share one flight (an asyncio
   future): the first becomes the leader, the rest await its outcome.
2. Across shards, the leader takes the connection's row lock in PostgreSQL
   (`SELECT … FOR UPDATE`, CredentialStore.locked) and re-reads the credentials under it.
   If another shard refreshed while this one waited, the re-read shows it and no second
   provider call is made. The lock belongs to a database session, not to a shard, so it
   still holds when the edge moves the connection to another shard mid-refresh, and it
   is released the moment its holder commits or dies.

Outcomes, all decided and written under the lock, with their events staged in the same
transaction:
- success: the new tokens (the old refresh token kept when the provider sent none), status
  `created`, connection.refreshed;
- the provider refused (invalid_grant, revoked, invalid_client): status `bad_credentials`,
  connection.error; the caller gets BadCredentials;
- the provider unavailable (5xx, 429, timeouts), after the client's own retries: the
  status is untouched, the failure counted, connection.error with will_retry; the caller
  gets Unavailable.

The one window no client can close: if a shard dies after the provider issued new tokens
but before the commit, a provider that rotates refresh tokens has invalidated the stored
one. The shard that takes over refreshes with it and the provider decides (providers
that rotate usually allow a grace period for exactly this).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from ampmesh.events.v1 import connection_events_pb2 as ce
from ampmesh.events.v1 import envelope_pb2
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm

from services.runtime.logs import get_logger
from services.token_manager import announce
from services.token_manager import credentials as creds
from services.token_manager.provider import (
    ClientApp,
    Grant,
    ProviderClient,
    ProviderError,
    ProviderRefused,
    ProviderUnavailable,
    app_of,
    token_url,
    with_grant,
)
from services.token_manager.store import CredentialStore, Locked, Opened
from services.token_manager.telemetry import token_metrics

_log = get_logger("ampmesh.token_manager.refresh")

BAD = ce.CONNECTION_STATUS_BAD_CREDENTIALS
CREATED = ce.CONNECTION_STATUS_CREATED

# Publishes staged events after commit (services.runtime.events.EventBus.stage / kick).
StageEvents = Callable[[asyncpg.Connection, list[envelope_pb2.Envelope]], Awaitable[None]]
# Reads a builder's provider app (client id and secret) by id and project.
AppLookup = Callable[[str, str], Awaitable[ClientApp | None]]


class BadCredentials(Exception):
    """The provider refused; the connection is (now or already) bad_credentials."""


class Unavailable(Exception):
    """The provider could not refresh now; nothing changed but a failure count."""

    def __init__(self, message: str, *, retry_after: float | None, rate_limited: bool) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class CannotRefresh(Exception):
    """Nothing to refresh with (no refresh token, no provider app): a person must
    reconnect, but the provider did not refuse anything, so the status stays."""


@dataclass(frozen=True)
class Outcome:
    opened: Opened
    refreshed: bool  # this flight called the provider (False: another refresh sufficed)
    provider_seconds: float = 0.0  # how long the provider's token endpoint took


@dataclass(frozen=True)
class Want:
    """What a caller needs from a connection's token.

    Forced: a token refreshed at or after `asked_at`. Otherwise: a token still valid at
    `asked_at + max(margin, min_validity)`, where the margin shrinks to half the token's
    lifetime for tokens shorter than twice the margin (or every call would refresh).
    """

    asked_at: datetime
    force: bool = False
    margin: timedelta = timedelta()
    min_validity: timedelta = timedelta()
    trigger: int = ce.REFRESH_TRIGGER_AHEAD_OF_EXPIRY
    request_id: str = ""

    def satisfied_by(self, row_refreshed: datetime | None, credentials: tm.Credentials) -> bool:
        if self.force:
            return row_refreshed is not None and row_refreshed >= self.asked_at
        token = creds.access_token_of(credentials)
        if token is None or not token.token:
            return False
        if not token.HasField("expire_time"):
            return True
        expiry = token.expire_time.ToDatetime(tzinfo=UTC)
        margin = self.margin
        if token.HasField("issue_time"):
            lifetime = expiry - token.issue_time.ToDatetime(tzinfo=UTC)
            margin = min(margin, lifetime / 2)
        return expiry > self.asked_at + max(margin, self.min_validity)


class Refresher:
    def __init__(
        self,
        store: CredentialStore,
        provider: ProviderClient,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        apps: AppLookup,
        stage_events: StageEvents,
        after_commit: Callable[[], None],
    ) -> None:
        self.store = store
        self.provider = provider
        self.catalog = catalog
        self.apps = apps
        self.stage_events = stage_events
        self.after_commit = after_commit
        # Keyed by connection and whether the flight forces: a forced call must not settle
        # for a flight that found the token fresh enough and refreshed nothing.
        self._flights: dict[tuple[str, bool], asyncio.Future[Outcome]] = {}

    async def refresh(self, connection_id: str, want: Want) -> Outcome:
        """The connection's credentials once they satisfy `want`, refreshing at most once
        for every caller of this shard waiting at the same time."""
        key = (connection_id, want.force)
        flight = self._flights.get(key)
        if flight is not None:
            # Another caller is already refreshing it here: its token is ours too, though
            # this call refreshed nothing itself (shielded, so one waiter cancelled by its
            # deadline does not cancel the rest).
            shared = await asyncio.shield(flight)
            return Outcome(shared.opened, refreshed=False)
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            outcome = await self._refresh_under_lock(connection_id, want)
        except BaseException as error:
            flight.set_exception(error)
            # Retrieved here so an unawaited flight logs no "exception never retrieved".
            flight.exception()
            raise
        else:
            flight.set_result(outcome)
            return outcome
        finally:
            del self._flights[key]

    async def _refresh_under_lock(self, connection_id: str, want: Want) -> Outcome:
        failure: Exception | None = None
        started = time.monotonic()
        async with self.store.locked(connection_id) as locked:
            locked_at = time.monotonic()
            if want.satisfied_by(locked.row.last_refreshed_at, locked.credentials):
                # Refreshed by another shard (or flight) while this one waited for the lock,
                # or before it, when this shard's cache was older than PostgreSQL.
                refreshed = locked.row.last_refreshed_at
                waited = refreshed is not None and refreshed >= want.asked_at
                source = tm.TOKEN_SOURCE_PROVIDER if waited else tm.TOKEN_SOURCE_POSTGRES
                outcome = Outcome(Opened(locked.row, locked.credentials, source), False)
                token_metrics().refresh(locked.row.provider, "already_fresh")
            elif locked.row.status == BAD:
                failure = BadCredentials(
                    "the provider refused this connection's credentials earlier; "
                    "reconnect it (or rotate its credentials) to use it again"
                )
                outcome = Outcome(
                    Opened(locked.row, locked.credentials, tm.TOKEN_SOURCE_POSTGRES), False
                )
            else:
                outcome, failure = await self._call_provider(locked, want)
        committed, provider = time.monotonic(), outcome.provider_seconds
        # Committed: every tier serves what the row now holds, and the staged events go.
        outcome = Outcome(await self._cache(outcome.opened), outcome.refreshed, provider)
        self.after_commit()
        if outcome.refreshed:
            # Where a refresh's time went, for the slow ones: waiting for the lock, the
            # provider, the writes and commit, the caches.
            _log.info(
                "token refreshed",
                connection_id=connection_id,
                provider=outcome.opened.row.provider,
                lock_seconds=round(locked_at - started, 4),
                provider_seconds=round(provider, 4),
                commit_seconds=round(committed - locked_at - provider, 4),
                cache_seconds=round(time.monotonic() - committed, 4),
            )
        if failure is not None:
            raise failure
        return outcome

    async def mark_revoked(
        self, connection_id: str, revoked: bool, detail: str, request_id: str
    ) -> Opened:
        """After a revocation: the connection is bad_credentials until reconnected."""
        async with self.store.locked(connection_id) as locked:
            previous = locked.row.status
            row = await locked.write(
                locked.credentials,
                status=BAD,
                refreshed=False,
                retried_failures=locked.row.retried_refresh_failures,
            )
            message = "the credentials were revoked on request" + (
                "" if revoked else f" (not at the provider: {detail})"
            )
            await self.stage_events(
                locked.connection,
                announce.error(
                    row,
                    kind=ce.CONNECTION_ERROR_KIND_REVOKED,
                    message=message,
                    previous_status=previous,
                    status_code=0,
                    oauth_error="",
                    will_retry=False,
                    request_id=request_id,
                ),
            )
            opened = Opened(row, locked.credentials, tm.TOKEN_SOURCE_POSTGRES)
        opened = await self._cache(opened)
        self.after_commit()
        return opened

    async def _cache(self, opened: Opened) -> Opened:
        cached = await self.store.cache(opened.row, opened.credentials)
        return Opened(cached.row, cached.credentials, opened.source)

    async def _call_provider(self, locked: Locked, want: Want) -> tuple[Outcome, Exception | None]:
        """Calls the provider under the lock and writes what happened; returns the outcome
        and, for a failure, the exception to raise once the transaction has committed."""
        row, credentials = locked.row, locked.credentials
        context = announce.context_of(row)
        provider = self.catalog.get(row.provider)
        try:
            if provider is None or not provider.oauth2_opts.token_url:
                raise CannotRefresh(f"the catalog has no token URL for {row.provider!r}")
            grant = await self._grant(provider, context, credentials, row.project_id)
        except CannotRefresh as error:
            # Nothing can renew the token: as bad as a refusal, though nobody refused.
            return await self._refused(locked, ProviderRefused(str(error)), want)
        except ProviderRefused as error:
            return await self._refused(locked, error, want)
        except ProviderUnavailable as error:
            return await self._unavailable(locked, error, want)
        previous = creds.refresh_token_of(credentials)
        updated = with_grant(credentials, grant)
        recovered = row.retried_refresh_failures > 0
        new_row = await locked.write(updated, status=CREATED, refreshed=True, retried_failures=0)
        await self.stage_events(
            locked.connection,
            announce.refreshed(
                new_row,
                trigger=want.trigger,
                rotated=grant.refresh_token is not None
                and (previous is None or grant.refresh_token.token != previous.token),
                recovered=recovered,
                latency=grant.latency,
                expires=creds.access_token_expiry(updated),
                request_id=want.request_id,
            ),
        )
        token_metrics().refresh(row.provider, "refreshed")
        token_metrics().provider_seconds.labels(row.provider).observe(grant.latency)
        opened = Opened(new_row, updated, tm.TOKEN_SOURCE_PROVIDER)
        return Outcome(opened, True, provider_seconds=grant.latency), None

    async def _grant(
        self,
        provider: providers_pb2.ProviderInfo,
        context: tm.ConnectionContext,
        credentials: tm.Credentials,
        project_id: str,
    ) -> Grant:
        url = token_url(provider, context)
        kind = credentials.WhichOneof("kind")
        provider_app = (
            await self.apps(context.provider_app_id, project_id)
            if kind == "oauth2_authorization_code" and context.provider_app_id
            else None
        )
        refresh_token = creds.refresh_token_of(credentials)
        if refresh_token is None or not refresh_token.token:
            if kind in ("oauth2_client_credentials", "oauth2_password"):
                # They hold their own client: a new token is one grant away.
                return await self.provider.stored_client_grant(
                    url, credentials, list(provider.oauth2_opts.audience)
                )
            raise CannotRefresh(
                "this connection has no refresh token, so its expired access token cannot "
                "be renewed; reconnect it"
            )
        app = app_of(credentials, provider_app)
        if app is None:
            raise CannotRefresh(
                "this connection's provider app is gone, so its token cannot be refreshed; "
                "reconnect it through a provider app"
            )
        return await self.provider.refresh(
            url, app, refresh_token.token, creds.scopes_of(credentials)
        )

    async def _refused(
        self, locked: Locked, error: ProviderRefused, want: Want
    ) -> tuple[Outcome, Exception]:
        previous = locked.row.status
        row = await locked.write(
            locked.credentials, status=BAD, refreshed=False, retried_failures=0
        )
        kind = refusal_kind(error)
        token_metrics().refresh(row.provider, "refused")
        await self._stage_error(locked, error, kind, previous, False, want)
        _log.warning(
            "refresh refused; connection is bad_credentials",
            connection_id=row.connection_id,
            provider=row.provider,
            status_code=error.status_code,
            oauth_error=error.oauth_error,
        )
        opened = Opened(row, locked.credentials, tm.TOKEN_SOURCE_POSTGRES)
        return Outcome(opened, False), BadCredentials(str(error))

    async def _unavailable(
        self, locked: Locked, error: ProviderUnavailable, want: Want
    ) -> tuple[Outcome, Exception]:
        previous = locked.row.status
        row = await locked.write(
            locked.credentials,
            status=previous,
            refreshed=False,
            retried_failures=locked.row.retried_refresh_failures + 1,
        )
        token_metrics().refresh(row.provider, "unavailable")
        kind = (
            ce.CONNECTION_ERROR_KIND_RATE_LIMITED
            if error.rate_limited
            else ce.CONNECTION_ERROR_KIND_PROVIDER_UNAVAILABLE
        )
        await self._stage_error(locked, error, kind, previous, True, want)
        _log.warning(
            "refresh failed; will retry",
            connection_id=row.connection_id,
            provider=row.provider,
            status_code=error.status_code,
            failures=row.retried_refresh_failures,
        )
        opened = Opened(row, locked.credentials, tm.TOKEN_SOURCE_POSTGRES)
        return Outcome(opened, False), Unavailable(
            str(error), retry_after=error.retry_after, rate_limited=error.rate_limited
        )

    async def _stage_error(
        self,
        locked: Locked,
        error: ProviderError,
        kind: int,
        previous: int,
        will_retry: bool,
        want: Want,
    ) -> None:
        await self.stage_events(
            locked.connection,
            announce.error(
                locked.row,
                kind=kind,
                message=str(error),
                previous_status=previous,
                status_code=error.status_code,
                oauth_error=error.oauth_error,
                will_retry=will_retry,
                request_id=want.request_id,
            ),
        )


def refusal_kind(error: ProviderRefused) -> int:
    if error.oauth_error in ("invalid_client", "unauthorized_client"):
        return ce.CONNECTION_ERROR_KIND_INVALID_CLIENT
    if error.oauth_error == "invalid_grant":
        return ce.CONNECTION_ERROR_KIND_INVALID_GRANT
    if error.status_code in (401, 403):
        return ce.CONNECTION_ERROR_KIND_REVOKED
    return ce.CONNECTION_ERROR_KIND_OTHER


def want_for(
    mode: int,
    *,
    margin: timedelta,
    min_validity: timedelta,
    trigger: int,
    request_id: str = "",
) -> Want:
    """What a GetToken or RefreshToken in this refresh mode needs from the token."""
    now = datetime.now(UTC)
    if mode == tm.REFRESH_MODE_FORCE:
        return Want(now, force=True, trigger=trigger, request_id=request_id)
    if mode == tm.REFRESH_MODE_IF_EXPIRED:
        margin, min_validity = timedelta(), timedelta()
    return Want(
        now, margin=margin, min_validity=min_validity, trigger=trigger, request_id=request_id
    )
