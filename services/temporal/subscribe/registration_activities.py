"""SyncSubscriptions' activities: load_subscriptions, register_subscriptions,
remove_subscriptions and fail_subscriptions.

The provider activities work under two PostgreSQL advisory locks, held on one pooled
connection for the attempt: the installation's (an older run still retrying and a newer
one never interleave; each re-reads the row once it holds the lock) and the provider
scope's (HubSpot: the integration, whose installations share the app's subscriptions;
Salesforce: the org, whose installations share its channel members), so "does another
installation still need it" is answered while nobody else is changing the answer.

`subscriptions.registered` (jsonb), by provider object:
- HubSpot: `{"contacts": {"subscriptions": [{"id": "…", "eventType": "contact.creation",
  "propertyName": ""}, …]}}`: the app-level subscriptions the installation relies on
  (shared: created when missing, deleted on removal only when no other installation of
  the integration that is not being removed lists the same eventType and propertyName);
- Salesforce: `{"Account": {"entity": "AccountChangeEvent", "channelMemberId": "…"}}`,
  plus `"$eventRelay": {"id": "…", "name": "ampmesh_<installation>"}`: the member is the
  org's (reused when it exists, deleted only when no other installation on the org lists
  the entity), the relay the installation's own, created with a fresh 32-byte token whose
  SHA-256 alone is kept (`relay_token_sha256`).

What an attempt changed at the provider is written to `registered` even when the attempt
fails half-way or a newer change has come meanwhile (the row's status then stays as it
is): the provider holds it, so whoever removes it next must know.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import grpc
import orjson
from ampmesh.events.v1 import notifications_pb2
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc
from google.protobuf import json_format
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.domain import subscribe_names
from services.domain.connectors import hubspot_subscriptions as hubspot
from services.domain.connectors import salesforce_subscriptions as salesforce
from services.domain.connectors.base import (
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    TokenRejected,
)
from services.runtime.envelopes import new_envelope
from services.runtime.logs import get_logger
from services.temporal.connection_auth import AuthFor, connection_auth
from services.temporal.reads.publish import Publisher
from services.temporal.subscribe import registration_plan as plan
from services.temporal.subscribe.registration import (
    FAIL_ACTIVITY,
    LOAD_ACTIVITY,
    NOTHING,
    PROVIDER_UNAVAILABLE,
    REGISTER,
    REGISTER_ACTIVITY,
    REGISTRATION_REFUSED,
    REMOVE,
    REMOVE_ACTIVITY,
    RETRY_WINDOW,
    Failure,
    Loaded,
    SyncCall,
    SyncOutcome,
)

_log = get_logger("ampmesh.temporal.subscribe")

# A provider call's own retries (429, 5xx, network) last at most this long in one
# attempt; Temporal's backoff takes over after.
PROVIDER_WAIT = 10.0
HEARTBEAT_EVERY = 5.0
RELAY_KEY = "$eventRelay"
APP_ID_FIELD = "providerApp.metadata.providerParams.appId"
API_KEY_FIELD = "providerApp.metadata.providerParams.developerApiKey"

_SELECT_ROW = """
    SELECT s.installation_id::text AS installation_id, s.project_id::text AS project_id,
           s.integration_id::text AS integration_id, s.provider,
           coalesce(i.connection_id, s.connection_id)::text AS connection_id,
           s.account_id, s.registered, s.relay_token_sha256, s.status, s.change,
           i.id IS NOT NULL AS installed, i.group_ref, i.group_name,
           g.name AS integration_name, cn.id IS NOT NULL AS connected,
           cn.consumer_ref, cn.consumer_name, cn.provider_workspace_ref,
           cn.provider_app_id::text AS provider_app_id,
           c.content AS config_content, r.content AS revision_content
    FROM subscriptions s
    LEFT JOIN installations i ON i.id = s.installation_id
    LEFT JOIN integrations g ON g.id = s.integration_id
    LEFT JOIN connections cn ON cn.id = coalesce(i.connection_id, s.connection_id)
    LEFT JOIN LATERAL (
        SELECT content, revision_id FROM configs
        WHERE installation_id = s.installation_id ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN revisions r ON r.id = coalesce(c.revision_id, g.latest_revision_id)
    WHERE s.installation_id = $1::uuid
"""
# The project's app of the provider: the connection's own first.
_SELECT_APP = """
    SELECT metadata FROM provider_apps WHERE project_id = $1::uuid AND provider = $2
    ORDER BY (id::text = $3) DESC, created_at DESC LIMIT 1
"""
# What the other installations that keep their subscriptions rely on.
_SELECT_OTHERS_OF_INTEGRATION = """
    SELECT registered FROM subscriptions
    WHERE integration_id = $1::uuid AND installation_id <> $2::uuid AND status <> 'removing'
"""
_SELECT_OTHERS_OF_ACCOUNT = """
    SELECT registered FROM subscriptions
    WHERE provider = $1 AND account_id = $2 AND installation_id <> $3::uuid
      AND status <> 'removing'
"""
_SAVE = """
    UPDATE subscriptions SET account_id = $2, registered = $3::jsonb,
           relay_token_sha256 = $4, updated_at = now(),
           status = CASE WHEN $5 AND change = $6 THEN 'active' ELSE status END,
           error = CASE WHEN $5 AND change = $6 THEN '' ELSE error END
    WHERE installation_id = $1::uuid
"""


@dataclass(frozen=True)
class Row:
    """An installation's subscriptions row, and what the run needs about it."""

    installation_id: str
    project_id: str
    integration_id: str
    integration_name: str
    provider: str
    connection_id: str
    connected: bool
    account_id: str
    registered: dict[str, Any]
    relay_token_sha256: bytes | None
    status: str
    change: int
    installed: bool
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    workspace: str
    provider_app_id: str
    config: dict[str, Any]
    revision: dict[str, Any]

    @property
    def removing(self) -> bool:
        return self.status == "removing" or not self.installed


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    loaded = orjson.loads(value) if isinstance(value, (str, bytes)) else value
    return loaded if isinstance(loaded, dict) else {}


async def load_row(db: asyncpg.Pool | asyncpg.Connection, installation_id: str) -> Row | None:
    try:
        found = await db.fetchrow(_SELECT_ROW, installation_id)
    except asyncpg.DataError:
        return None
    if found is None:
        return None
    return Row(
        installation_id=found["installation_id"],
        project_id=found["project_id"],
        integration_id=found["integration_id"],
        integration_name=found["integration_name"] or "",
        provider=found["provider"],
        connection_id=found["connection_id"] or "",
        connected=bool(found["connected"]),
        account_id=found["account_id"],
        registered=_json(found["registered"]),
        relay_token_sha256=found["relay_token_sha256"],
        status=found["status"],
        change=found["change"],
        installed=found["installed"],
        group_ref=found["group_ref"] or "",
        group_name=found["group_name"] or "",
        consumer_ref=found["consumer_ref"] or "",
        consumer_name=found["consumer_name"] or "",
        workspace=found["provider_workspace_ref"] or "",
        provider_app_id=found["provider_app_id"] or "",
        config=_json(found["config_content"]),
        revision=_json(found["revision_content"]),
    )


def wanted_of(row: Row) -> dict[str, plan.WantedObject]:
    """What the row's installation's newest config asks for (ValueError: unusable)."""
    revision = manifest_pb2.Integration()
    content = config_pb2.ConfigContent()
    try:
        json_format.ParseDict(row.revision, revision, ignore_unknown_fields=True)
        json_format.ParseDict(row.config, content, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise ValueError(f"the installation's stored config cannot be read: {error}") from None
    return plan.wanted_objects(revision, content)


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=REGISTRATION_REFUSED, non_retryable=True)


def relay_name(installation_id: str) -> str:
    return "ampmesh_" + installation_id.replace("-", "")


def _sub_entries(registered: Mapping[str, Any], name: str) -> list[dict[str, str]]:
    entry = registered.get(name)
    subs = entry.get("subscriptions") if isinstance(entry, dict) else None
    return [s for s in subs or [] if isinstance(s, dict)]


def hubspot_keys_of(registered: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {
        (str(sub.get("eventType") or ""), str(sub.get("propertyName") or ""))
        for name in registered
        for sub in _sub_entries(registered, name)
    }


def salesforce_entities_of(registered: Mapping[str, Any]) -> dict[str, str]:
    """entity -> channel member id, of the objects a row lists."""
    found = {}
    for name, entry in registered.items():
        if name != RELAY_KEY and isinstance(entry, dict) and entry.get("entity"):
            found[str(entry["entity"])] = str(entry.get("channelMemberId") or "")
    return found


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    """Heartbeat now and every HEARTBEAT_EVERY while the block runs (lock waits and
    provider calls included): a worker that dies is noticed within the timeout."""

    async def tick() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _lock(db: asyncpg.Connection, key: str) -> None:
    # Session locks, released at the end of the attempt (and by the pool's reset of a
    # connection given back with one held, should the attempt be cut off).
    await db.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", f"subscribe/{key}")


class RegistrationActivities:
    """The subscribe queue's registration activities, bound to the process's resources."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        http: aiohttp.ClientSession,
        publisher: Publisher,
        auth_for: AuthFor,
        public_url: str,
        retry_window: timedelta = RETRY_WINDOW,
        provider_wait: float = PROVIDER_WAIT,
    ) -> None:
        """`public_url`: AMPMESH_SUBSCRIBE_WEBHOOK_URL, where providers reach the subscribe
        host. `retry_window`: how long a provider answering 429, 5xx or nothing is retried
        (tests shorten it). `provider_wait`: each call's own retries within an attempt."""
        self._pool = pool
        self._tokens = tokens
        self._catalog = catalog
        self.http = http
        self._publisher = publisher
        self._auth_for = auth_for
        self.public_url = public_url.rstrip("/")
        self._window = retry_window
        self.wait = provider_wait

    # --- activities --------------------------------------------------------------------

    @activity.defn(name=LOAD_ACTIVITY)
    async def load_subscriptions(self, call: SyncCall) -> Loaded:
        row = await load_row(self._pool, call.installation_id)
        if row is None:
            return Loaded(NOTHING, why=f"installation {call.installation_id} has no row")
        if call.change and row.change > call.change:
            return Loaded(NOTHING, row.change, why=f"change {row.change} supersedes this run")
        if row.removing or call.installation_deleted:
            return Loaded(REMOVE, row.change)
        return Loaded(REGISTER, row.change)

    @activity.defn(name=REGISTER_ACTIVITY)
    async def register_subscriptions(self, call: SyncCall) -> SyncOutcome:
        return await self._attempt(call)

    @activity.defn(name=REMOVE_ACTIVITY)
    async def remove_subscriptions(self, call: SyncCall) -> SyncOutcome:
        return await self._attempt(call)

    @activity.defn(name=FAIL_ACTIVITY)
    async def fail_subscriptions(self, failure: Failure) -> None:
        call = failure.call
        if failure.removal:
            # Left `removing`: the sweeper starts the removal again later.
            await self._pool.execute(
                "UPDATE subscriptions SET error = $2, updated_at = now() "
                "WHERE installation_id = $1::uuid AND change = $3",
                call.installation_id,
                failure.error,
                call.change,
            )
            _log.warning(
                "subscriptions not removed; retried later",
                installation_id=call.installation_id,
                error=failure.error,
            )
            return
        await self._pool.execute(
            "UPDATE subscriptions SET status = 'failed', error = $2, updated_at = now() "
            "WHERE installation_id = $1::uuid AND change = $3 AND status IN ('pending', 'failed')",
            call.installation_id,
            failure.error,
            call.change,
        )
        row = await load_row(self._pool, call.installation_id)
        if row is None or row.change != call.change or row.status != "failed":
            return  # moved on: a newer change, or a removal, has the row
        _log.warning(
            "subscriptions failed",
            installation_id=call.installation_id,
            provider=row.provider,
            error=failure.error,
        )
        await self._publisher.publish_all([self.create_error(row, call, failure.error)])

    def create_error(self, row: Row, call: SyncCall, error: str) -> Any:
        data = notifications_pb2.SubscribeCreateErrorData(
            project_id=row.project_id,
            provider=row.provider,
            integration_id=row.integration_id,
            integration_name=row.integration_name,
            installation_id=row.installation_id,
            connection_id=row.connection_id,
            group_ref=row.group_ref,
            group_name=row.group_name,
            consumer_ref=row.consumer_ref,
            consumer_name=row.consumer_name,
            error=error,
        )
        return new_envelope(
            project_id=row.project_id,
            idempotency_key=f"subscribe/{row.installation_id}/{call.change}/create-error",
            source="temporal",
            request_id=call.request_id,
            notification=notifications_pb2.Notification(
                subscribe_create_error=notifications_pb2.SubscribeCreateErrorNotification(
                    notification_type="subscribe.create.error", data=data
                )
            ),
        )

    # --- one attempt -------------------------------------------------------------------

    async def _attempt(self, call: SyncCall) -> SyncOutcome:
        """Register or remove, whichever the row says now; provider failures as the
        ApplicationErrors Temporal retries (until the window has passed) or not."""
        try:
            async with _heartbeating():
                return await self._sync(call)
        except ApplicationError as error:
            if error.non_retryable:
                raise
            raise self._retried(call, error.message, error.type or PROVIDER_UNAVAILABLE) from None
        except ProviderUnavailable as error:
            retried = self._retried(call, str(error), PROVIDER_UNAVAILABLE)
            if not retried.non_retryable and error.retry_after:
                retried = ApplicationError(
                    str(error),
                    type=PROVIDER_UNAVAILABLE,
                    next_retry_delay=timedelta(seconds=error.retry_after),
                )
            raise retried from None
        except TokenRejected as error:
            raise _refused(f"{error} (after a refresh): reconnect the connection") from None
        except ProviderRequestError as error:
            raise _refused(str(error)) from None
        except ValueError as error:
            raise _refused(str(error)) from None

    def _retried(self, call: SyncCall, message: str, kind: str) -> ApplicationError:
        """A retryable failure, made final once the retry window has passed."""
        started = datetime.fromisoformat(call.started_at) if call.started_at else None
        if started is not None and datetime.now(UTC) - started >= self._window:
            minutes = round(self._window.total_seconds() / 60, 1)
            return ApplicationError(
                f"gave up after {minutes:g} minutes of retries: {message}",
                type=kind,
                non_retryable=True,
            )
        return ApplicationError(message, type=kind)

    async def _sync(self, call: SyncCall) -> SyncOutcome:
        async with self._pool.acquire() as db:
            try:
                await _lock(db, f"installation/{call.installation_id}")
                row = await load_row(db, call.installation_id)
                if row is None or (call.change and row.change > call.change):
                    return SyncOutcome(done=False)
                if row.removing or call.installation_deleted:
                    return await self._remove(db, row)
                return await self._register(db, row, call)
            finally:
                with contextlib.suppress(Exception):
                    await db.execute("SELECT pg_advisory_unlock_all()")

    async def _register(self, db: asyncpg.Connection, row: Row, call: SyncCall) -> SyncOutcome:
        wanted = wanted_of(row)
        if row.provider == "hubspot":
            registrar: Registrar = HubSpotRegistrar(self, db, row)
        elif row.provider == "salesforce":
            registrar = SalesforceRegistrar(self, db, row)
        elif not wanted and not row.registered:
            registrar = Registrar(self, db, row)
        else:
            raise _refused(f"subscribing to {row.provider!r} change events is not supported")
        if not wanted:
            # Nothing subscribed any more: what was registered goes, nothing is set up
            # (no app, token or public URL needed for what is not there).
            removed = await registrar.remove() if row.registered else []
            outcome = SyncOutcome(removed_objects=removed)
        else:
            if not self.public_url:
                raise _refused(
                    f"{subscribe_names.PUBLIC_URL_SETTING} is not set: providers would not "
                    "know where to send change events"
                )
            outcome = await registrar.register(wanted)
        await self.save(db, row, registrar, active=True, change=call.change or row.change)
        _log.info(
            "subscriptions registered",
            installation_id=row.installation_id,
            provider=row.provider,
            account_id=registrar.account_id,
            registered=outcome.registered_objects,
            removed=outcome.removed_objects or None,
        )
        return outcome

    async def _remove(self, db: asyncpg.Connection, row: Row) -> SyncOutcome:
        removed: list[str] = []
        if row.registered:
            registrar: Registrar
            if row.provider == "hubspot":
                registrar = HubSpotRegistrar(self, db, row)
            else:
                registrar = SalesforceRegistrar(self, db, row)
            try:
                removed = await registrar.remove()
            except (ApplicationError, ProviderRequestError, TokenRejected) as error:
                if isinstance(error, ApplicationError) and not error.non_retryable:
                    raise
                # Refused for good (a key or a connection no longer accepted): nothing
                # will remove them, and the installation is gone; the row goes too.
                _log.warning(
                    "subscriptions left at the provider",
                    installation_id=row.installation_id,
                    provider=row.provider,
                    why=str(error),
                )
        await db.execute(
            "DELETE FROM subscriptions WHERE installation_id = $1::uuid AND change = $2",
            row.installation_id,
            row.change,
        )
        if not row.installed:
            await self._release_connection(db, row)
        _log.info(
            "subscriptions removed",
            installation_id=row.installation_id,
            provider=row.provider,
            removed=removed,
        )
        return SyncOutcome(removed_objects=removed)

    async def save(
        self, db: asyncpg.Connection, row: Row, registrar: Registrar, *, active: bool, change: int
    ) -> None:
        await db.execute(
            _SAVE,
            row.installation_id,
            registrar.account_id,
            orjson.dumps(registrar.registered).decode(),
            registrar.relay_hash,
            active,
            change,
        )

    async def _release_connection(self, db: asyncpg.Connection, row: Row) -> None:
        """The connection an uninstall left for the removal (the api keeps it while the
        provider-side subscriptions need its token): deleted, credentials revoked through
        the token-manager, as the api's own uninstall does, unless an installation uses
        it again."""
        if not row.connection_id or not row.connected:
            return
        used = await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM installations WHERE connection_id = $1::uuid)",
            row.connection_id,
        )
        if used:
            return
        try:
            await self._tokens.DeleteCredentials(
                tm.DeleteCredentialsRequest(
                    connection_id=row.connection_id,
                    project_id=row.project_id,
                    revoke_at_provider=True,
                ),
                timeout=30.0,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                _log.warning(
                    "the connection an uninstall left is kept: its credentials could not "
                    "be deleted",
                    connection_id=row.connection_id,
                    code=error.code().name,
                )
                return
        await db.execute(
            "DELETE FROM connections WHERE project_id = $1::uuid AND id = $2::uuid "
            "AND NOT EXISTS (SELECT 1 FROM installations WHERE connection_id = $2::uuid)",
            row.project_id,
            row.connection_id,
        )

    # --- what registrars share ----------------------------------------------------------

    async def auth(self, row: Row, *, force: bool = False) -> ProviderAuth:
        return await connection_auth(
            self._tokens,
            self._catalog,
            self._auth_for,
            connection_id=row.connection_id,
            project_id=row.project_id,
            provider=row.provider,
            workspace=row.workspace,
            unusable=REGISTRATION_REFUSED,
            force=force,
        )

    async def with_refresh(
        self, row: Row, call: Callable[[ProviderAuth], Awaitable[Any]]
    ) -> tuple[Any, ProviderAuth]:
        """call(auth), once more with a refreshed token when the provider refuses it."""
        auth = await self.auth(row)
        try:
            return await call(auth), auth
        except TokenRejected:
            auth = await self.auth(row, force=True)
            return await call(auth), auth

    def base_url(self, provider: str) -> str:
        info = self._catalog.get(provider)
        if info is None:
            raise _refused(f"provider {provider!r} is not in the catalog")
        return info.base_url.rstrip("/")


class Registrar:
    """One provider's registration of one row, within the attempt's locks."""

    def __init__(self, owner: RegistrationActivities, db: asyncpg.Connection, row: Row) -> None:
        self.owner = owner
        self.db = db
        self.row = row
        self.http = owner.http
        self.wait = owner.wait
        self.account_id = row.account_id
        # What the provider holds for the installation, kept current call by call.
        self.registered: dict[str, Any] = dict(row.registered)
        self.relay_hash = row.relay_token_sha256

    async def register(self, wanted: Mapping[str, plan.WantedObject]) -> SyncOutcome:
        try:
            return await self._register(wanted)
        except BaseException:
            # The provider holds what was done before the failure: record it.
            with contextlib.suppress(Exception):
                await self.owner.save(self.db, self.row, self, active=False, change=0)
            raise

    async def remove(self) -> list[str]:
        try:
            return await self._remove()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.owner.save(self.db, self.row, self, active=False, change=0)
            raise

    async def _register(self, wanted: Mapping[str, plan.WantedObject]) -> SyncOutcome:
        raise NotImplementedError

    async def _remove(self) -> list[str]:
        raise NotImplementedError

    async def others(self, query: str, *args: Any) -> list[dict[str, Any]]:
        return [_json(found["registered"]) for found in await self.db.fetch(query, *args)]


class HubSpotRegistrar(Registrar):
    def app(self, provider_app: dict[str, Any]) -> hubspot.HubSpotApp:
        params = (provider_app.get("providerParams") or {}) if provider_app else {}
        app_id, key = str(params.get("appId") or ""), str(params.get("developerApiKey") or "")
        if not app_id:
            raise _refused(f"{APP_ID_FIELD} is missing: HubSpot webhooks belong to an app")
        if not key:
            raise _refused(f"{API_KEY_FIELD} is missing: HubSpot's webhooks API needs it")
        return hubspot.HubSpotApp(app_id=app_id, developer_api_key=key)

    async def _app(self) -> hubspot.HubSpotApp:
        found = await self.db.fetchval(
            _SELECT_APP, self.row.project_id, "hubspot", self.row.provider_app_id
        )
        return self.app(_json(found))

    async def _register(self, wanted: Mapping[str, plan.WantedObject]) -> SyncOutcome:
        row = self.row
        keys = plan.hubspot_keys(wanted)
        app = await self._app()
        base = self.owner.base_url("hubspot")

        async def introspect(auth: ProviderAuth) -> str:
            token = auth.headers.get("Authorization", "").rpartition(" ")[2]
            return await hubspot.hub_id(self.http, base, token, max_wait=self.wait)

        self.account_id, _ = await self.owner.with_refresh(row, introspect)
        try:
            return await self._register_app(keys, app, base)
        except TokenRejected:
            raise _refused(f"HubSpot refused the app's key ({API_KEY_FIELD})") from None

    async def _register_app(
        self, keys: dict[str, set[tuple[str, str]]], app: hubspot.HubSpotApp, base: str
    ) -> SyncOutcome:
        row = self.row
        await _lock(self.db, f"hubspot/{row.integration_id}")
        target = self.owner.public_url + subscribe_names.integration_webhook_path(
            row.project_id, row.integration_id
        )
        await hubspot.put_settings(self.http, base, app, target, max_wait=self.wait)
        existing = {
            s.key: s
            for s in await hubspot.list_subscriptions(self.http, base, app, max_wait=self.wait)
        }
        changed: list[str] = []
        for name in sorted(keys):
            entries = []
            for event_type, prop in sorted(keys[name]):
                sub = existing.get((event_type, prop))
                if sub is None:
                    sub = await self._create(base, app, event_type, prop)
                    existing[sub.key] = sub
                    if name not in changed:
                        changed.append(name)
                entries.append({"id": sub.id, "eventType": event_type, "propertyName": prop})
                self._note(name, entries)
        wanted_keys = {key for needed in keys.values() for key in needed}
        removed = [name for name in self.registered if name not in keys]
        dropped = hubspot_keys_of(self.registered) - wanted_keys
        await self._delete(base, app, dropped, existing)
        self.registered = {
            name: {"subscriptions": _sub_entries(self.registered, name)} for name in keys
        }
        return SyncOutcome(registered_objects=changed, removed_objects=removed)

    def _note(self, name: str, entries: list[dict[str, str]]) -> None:
        kept = {(e["eventType"], e["propertyName"]) for e in entries}
        older = [
            s
            for s in _sub_entries(self.registered, name)
            if (s.get("eventType"), s.get("propertyName") or "") not in kept
        ]
        self.registered[name] = {"subscriptions": [*entries, *older]}

    async def _create(
        self, base: str, app: hubspot.HubSpotApp, event_type: str, prop: str
    ) -> hubspot.HubSpotSubscription:
        try:
            return await hubspot.create_subscription(
                self.http, base, app, event_type, prop, max_wait=self.wait
            )
        except ProviderRequestError as error:
            if error.status != 409:
                raise
        # Made meanwhile by another app user (HubSpot allows one per key): use it.
        for sub in await hubspot.list_subscriptions(self.http, base, app, max_wait=self.wait):
            if sub.key == (event_type, prop):
                return sub
        raise ProviderRequestError(f"HubSpot refused subscribing to {event_type} {prop}")

    async def _delete(
        self,
        base: str,
        app: hubspot.HubSpotApp,
        keys: set[tuple[str, str]],
        existing: Mapping[tuple[str, str], hubspot.HubSpotSubscription],
    ) -> None:
        if not keys:
            return
        needed: set[tuple[str, str]] = set()
        for other in await self.others(
            _SELECT_OTHERS_OF_INTEGRATION, self.row.integration_id, self.row.installation_id
        ):
            needed |= hubspot_keys_of(other)
        for key in sorted(keys):
            sub = existing.get(key)
            if sub is not None and key not in needed:
                await hubspot.delete_subscription(self.http, base, app, sub.id, max_wait=self.wait)
            # Another installation's need keeps it at HubSpot, but not in this row.
            for name in list(self.registered):
                entries = [
                    s
                    for s in _sub_entries(self.registered, name)
                    if (s.get("eventType"), s.get("propertyName") or "") != key
                ]
                self.registered[name] = {"subscriptions": entries}

    async def _remove(self) -> list[str]:
        try:
            app = await self._app()
        except ApplicationError as error:
            _log.warning(
                "HubSpot subscriptions left at the provider",
                installation_id=self.row.installation_id,
                why=error.message,
            )
            return []
        base = self.owner.base_url("hubspot")
        await _lock(self.db, f"hubspot/{self.row.integration_id}")
        try:
            existing = {
                s.key: s
                for s in await hubspot.list_subscriptions(self.http, base, app, max_wait=self.wait)
            }
            removed = list(self.registered)
            await self._delete(base, app, hubspot_keys_of(self.registered), existing)
        except TokenRejected:
            raise _refused(f"HubSpot refused the app's key ({API_KEY_FIELD})") from None
        self.registered = {}
        return removed


class SalesforceRegistrar(Registrar):
    async def _register(self, wanted: Mapping[str, plan.WantedObject]) -> SyncOutcome:
        row = self.row
        entities = plan.salesforce_entities(wanted)

        async def org(auth: ProviderAuth) -> str:
            return await salesforce.organization_id(self.http, auth, max_wait=self.wait)

        self.account_id, auth = await self.owner.with_refresh(row, org)
        await _lock(self.db, f"salesforce/{self.account_id}")
        members = {
            m.entity: m
            for m in await salesforce.list_channel_members(self.http, auth, max_wait=self.wait)
        }
        changed: list[str] = []
        for name, entity in sorted(entities.items()):
            member = members.get(entity)
            if member is None:
                member_id = await self._create_member(auth, entity)
                members[entity] = salesforce.ChannelMember(
                    member_id, salesforce.member_name(entity), entity
                )
                changed.append(name)
            else:
                member_id = member.id
            self.registered[name] = {"entity": entity, "channelMemberId": member_id}
        removed = [n for n in self.registered if n != RELAY_KEY and n not in entities]
        await self._drop_members(auth, removed, members)
        await self._relay(auth, bool(entities))
        return SyncOutcome(registered_objects=changed, removed_objects=removed)

    async def _create_member(self, auth: ProviderAuth, entity: str) -> str:
        try:
            return await salesforce.create_channel_member(
                self.http, auth, entity, max_wait=self.wait
            )
        except ProviderRequestError as error:
            if error.status not in (400, 409):
                raise
            # A duplicate (another installation on the org made it meanwhile): reuse it.
            for member in await salesforce.list_channel_members(
                self.http, auth, max_wait=self.wait
            ):
                if member.entity == entity:
                    return member.id
            raise

    async def _drop_members(
        self,
        auth: ProviderAuth,
        names: list[str],
        members: Mapping[str, salesforce.ChannelMember],
    ) -> None:
        if not names:
            return
        needed: set[str] = set()
        for other in await self.others(
            _SELECT_OTHERS_OF_ACCOUNT, "salesforce", self.account_id, self.row.installation_id
        ):
            needed |= set(salesforce_entities_of(other))
        for name in names:
            entry = self.registered.get(name) or {}
            entity = str(entry.get("entity") or "")
            member = members.get(entity)
            member_id = member.id if member else str(entry.get("channelMemberId") or "")
            if entity and entity not in needed and member_id:
                await salesforce.delete_channel_member(
                    self.http, auth, member_id, max_wait=self.wait
                )
            self.registered.pop(name, None)

    async def _relay(self, auth: ProviderAuth, wanted: bool) -> None:
        """The installation's own event relay: kept while it is there and ours (we hold
        its token's hash), else made anew with a fresh token; removed when unwanted."""
        row = self.row
        name = relay_name(row.installation_id)
        destination = self.owner.public_url + subscribe_names.installation_webhook_path(
            row.project_id, row.integration_id, row.installation_id
        )
        relays = [
            r
            for r in await salesforce.list_event_relays(self.http, auth, max_wait=self.wait)
            if r.name == name
        ]
        mine = self.registered.get(RELAY_KEY) or {}
        if (
            wanted
            and self.relay_hash
            and any(r.id == mine.get("id") and r.destination in ("", destination) for r in relays)
        ):
            return
        for relay in relays:
            await salesforce.delete_event_relay(self.http, auth, relay.id, max_wait=self.wait)
        self.registered.pop(RELAY_KEY, None)
        self.relay_hash = None
        if not wanted:
            return
        token = secrets.token_urlsafe(32)
        relay_id = await salesforce.create_event_relay(
            self.http, auth, name, destination, token, max_wait=self.wait
        )
        self.registered[RELAY_KEY] = {"id": relay_id, "name": name}
        self.relay_hash = subscribe_names.relay_token_digest(token)

    async def _remove(self) -> list[str]:
        row = self.row
        try:
            auth = await self.owner.auth(row)
            await _lock(self.db, f"salesforce/{row.account_id}")
            names = [n for n in self.registered if n != RELAY_KEY]
            members = {
                m.entity: m
                for m in await salesforce.list_channel_members(self.http, auth, max_wait=self.wait)
            }
            await self._relay(auth, wanted=False)
            await self._drop_members(auth, names, members)
        except (ApplicationError, TokenRejected) as error:
            if isinstance(error, ApplicationError) and not error.non_retryable:
                raise
            # The connection is gone or refused: nothing can remove them now (the relay
            # keeps posting to a URL that answers 404 once the row is gone).
            _log.warning(
                "Salesforce subscriptions left at the provider",
                installation_id=row.installation_id,
                why=str(error),
            )
            return []
        return names
