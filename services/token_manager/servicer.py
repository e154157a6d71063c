"""TokenManagerService: what one shard answers (token_manager.proto).

Each RPC checks its request (errors.py), then works through the credential store
(store.py: memory, Redis, PostgreSQL), the refresher (refresh.py: one refresh per
connection across all shards) and the provider client (provider.py), and stages its
connection event in the same transaction as the change (announce.py). GetToken's cache
hit is the hot path: it answers a response built once per cached entry. One unit of
about 500 lines: the servicer class and the small helpers its answers share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
from ampmesh.events.v1 import connection_events_pb2 as ce
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from google.protobuf import empty_pb2

from services.runtime.errors import (
    abort_invalid_argument,
    abort_with_details,
    error_info,
    resource_info,
)
from services.runtime.events import EventBus
from services.runtime.identity import current_caller
from services.runtime.logs import get_logger
from services.runtime.request_id import current_request_id as _current_request_id
from services.token_manager import announce
from services.token_manager import credentials as creds
from services.token_manager.errors import (
    CREDENTIALS_NOT_ALLOWED,
    DOMAIN,
    NOT_REFRESHABLE,
    abort_bad_credentials,
    abort_no_credentials,
    abort_unavailable,
    require_hash_header,
    require_project,
)
from services.token_manager.provider import (
    ProviderClient,
    ProviderRefused,
    ProviderUnavailable,
    app_of,
    token_url,
    with_grant,
)
from services.token_manager.refresh import (
    AppLookup,
    BadCredentials,
    Outcome,
    Refresher,
    Unavailable,
    Want,
    want_for,
)
from services.token_manager.store import (
    AlreadyExists,
    CredentialStore,
    NotFound,
    Opened,
    Row,
    Stage,
)
from services.token_manager.telemetry import token_metrics

tm = token_manager_pb2

# DeleteCredentials' initial metadata: whether the credentials were revoked at the
# provider, and why not.
REVOKED_HEADER = "x-ampmesh-revoked-at-provider"
REVOCATION_DETAIL_HEADER = "x-ampmesh-revocation-detail"


def current_request_id() -> str:
    return _current_request_id() or ""


_log = get_logger("ampmesh.token_manager")


class TokenManager(token_manager_pb2_grpc.TokenManagerServiceServicer):
    def __init__(
        self,
        shard: str,
        store: CredentialStore,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        refresh_margin: timedelta,
        provider: ProviderClient,
        apps: AppLookup,
        bus: EventBus,
    ) -> None:
        self.shard = shard
        self.store = store
        self.catalog = catalog
        self.refresh_margin = refresh_margin
        self.provider = provider
        self.apps = apps
        self.bus = bus
        self.refresher = Refresher(
            store, provider, catalog, apps, self._stage, after_commit=bus.kick
        )

    async def _stage(self, connection: asyncpg.Connection, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            await self.bus.stage(connection, envelope)

    def _stager(self, announce_row: Callable[[Row], list[Envelope]]) -> Stage:
        async def stage(connection: asyncpg.Connection, row: Row) -> None:
            await self._stage(connection, announce_row(row))

        return stage

    async def StoreCredentials(
        self, request: tm.StoreCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> tm.StoredCredentials:
        violations = creds.store_violations(request, self.catalog)
        if violations:
            await abort_invalid_argument(
                context, "the credentials request is incomplete or malformed", violations
            )
        connection_id = request.connection.connection_id
        await require_hash_header(connection_id, context)
        credentials = request.credentials
        if request.obtain_token and credentials.WhichOneof("kind") in (
            "oauth2_client_credentials",
            "oauth2_password",
        ):
            credentials = await self._first_token(request.connection, credentials, context)
        request_id = current_request_id()
        try:
            if request.replace:
                fields = list(request.updated_fields)
                opened = await self.store.replace(
                    request.connection,
                    credentials,
                    self._stager(lambda row: announce.updated(row, fields, request_id)),
                )
            else:
                opened = await self.store.create(
                    request.connection,
                    credentials,
                    self._stager(lambda row: announce.created(row, request_id)),
                )
        except AlreadyExists:
            await abort_with_details(
                context,
                grpc.StatusCode.ALREADY_EXISTS,
                f"connection {connection_id!r} already has credentials; set replace to rotate them",
                resource_info("connection", connection_id),
            )
        except NotFound:
            await abort_no_credentials(context, connection_id)
        self.bus.kick()
        _log.info(
            "credentials stored",
            connection_id=connection_id,
            replaced=request.replace,
            key_id=opened.row.sealed.key_id,
        )
        return stored_credentials(opened)

    async def _first_token(
        self,
        connection: tm.ConnectionContext,
        credentials: tm.Credentials,
        context: grpc.aio.ServicerContext,
    ) -> tm.Credentials:
        """Client-credentials and password connections fetch a token before they are
        stored, so credentials the provider refuses are refused at connect time."""
        provider = self.catalog[connection.provider]
        if not provider.oauth2_opts.token_url:
            await abort_invalid_argument(
                context,
                f"{connection.provider} has no OAuth token endpoint in the catalog",
                {"body.connection.provider": "has no OAuth token endpoint"},
            )
        try:
            grant = await self.provider.stored_client_grant(
                token_url(provider, connection), credentials, list(provider.oauth2_opts.audience)
            )
        except ProviderRefused as error:
            await abort_bad_credentials(context, connection.connection_id, str(error))
        except ProviderUnavailable as error:
            await abort_unavailable(
                context, connection.connection_id, str(error), error.retry_after, error.rate_limited
            )
        return with_grant(credentials, grant)

    async def ExchangeAuthorizationCode(
        self, request: tm.ExchangeAuthorizationCodeRequest, context: grpc.aio.ServicerContext
    ) -> tm.ExchangeAuthorizationCodeResponse:
        violations = creds.exchange_violations(request, self.catalog)
        if violations:
            await abort_invalid_argument(
                context, "the code exchange request is incomplete or malformed", violations
            )
        connection = request.connection
        await require_hash_header(connection.connection_id, context)
        app = await self.apps(connection.provider_app_id, connection.project_id)
        if app is None:
            await abort_invalid_argument(
                context,
                f"provider app {connection.provider_app_id!r} does not exist in the project",
                {"body.connection.provider_app_id": "is not a provider app of the project"},
            )
        try:
            grant = await self.provider.exchange_code(
                token_url(self.catalog[connection.provider], connection),
                app,
                code=request.code,
                redirect_uri=request.redirect_uri,
                code_verifier=request.code_verifier,
                requested_scopes=list(request.requested_scopes),
            )
        except ProviderRefused as error:
            await abort_bad_credentials(context, connection.connection_id, str(error))
        except ProviderUnavailable as error:
            await abort_unavailable(
                context, connection.connection_id, str(error), error.retry_after, error.rate_limited
            )
        credentials = tm.Credentials(
            oauth2_authorization_code=tm.OAuth2AuthorizationCodeCredentials(
                access_token=grant.access_token,
                refresh_token=grant.refresh_token,
                scopes=grant.scopes,
                token_type=grant.token_type,
                pkce=bool(request.code_verifier),
            )
        )
        request_id = current_request_id()
        opened = await self.store.create(
            connection,
            credentials,
            self._stager(
                lambda row: (
                    announce.created(row, request_id)
                    if row.version == 1
                    else announce.updated(row, ["oauth2AuthorizationCode"], request_id)
                )
            ),
            replace_existing=True,
        )
        self.bus.kick()
        _log.info(
            "authorization code exchanged",
            connection_id=connection.connection_id,
            provider=connection.provider,
            version=opened.row.version,
        )
        response = tm.ExchangeAuthorizationCodeResponse(credentials=stored_credentials(opened))
        response.token_response_metadata.update(grant.metadata)
        return response

    async def GetToken(
        self, request: tm.GetTokenRequest, context: grpc.aio.ServicerContext
    ) -> tm.GetTokenResponse:
        await require_hash_header(request.connection_id, context)
        await require_project(request.project_id, context)
        if request.include_credentials and current_caller() != "api":
            await abort_with_details(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                "only the api identity may ask for the credentials themselves",
                error_info(CREDENTIALS_NOT_ALLOWED, domain=DOMAIN),
            )
        opened = await self._opened(request.connection_id, request.project_id, context)
        refreshed = False
        mode = request.refresh or tm.REFRESH_MODE_AHEAD_OF_EXPIRY
        if mode != tm.REFRESH_MODE_NEVER and is_oauth(opened):
            want = want_for(
                mode,
                margin=self.refresh_margin,
                min_validity=request.min_validity.ToTimedelta(),
                trigger=ce.REFRESH_TRIGGER_FORCED
                if mode == tm.REFRESH_MODE_FORCE
                else ce.REFRESH_TRIGGER_AHEAD_OF_EXPIRY,
                request_id=current_request_id(),
            )
            if not want.satisfied_by(opened.row.last_refreshed_at, opened.credentials):
                outcome = await self._refresh(request.connection_id, want, context)
                opened, refreshed = outcome.opened, outcome.refreshed
        token_metrics().served_from(opened.source)
        if refreshed or request.include_credentials:
            response = self._token_response(opened)
            response.refreshed = refreshed
            if request.include_credentials:
                response.credentials.CopyFrom(opened.credentials)
            return response
        # The hot path, a cache hit: the same answer for as long as the entry lives (it is
        # never modified once built).
        cached: tm.GetTokenResponse | None = opened.derived.get("get_token")
        if cached is None:
            cached = opened.derived["get_token"] = self._token_response(opened)
        return cached

    def _token_response(self, opened: Opened) -> tm.GetTokenResponse:
        return tm.GetTokenResponse(
            token=creds.access_token(
                opened.row.connection_id, opened.credentials, self.catalog.get(opened.row.provider)
            ),
            source=opened.source,
            stored=stored_credentials(opened),
        )

    async def RefreshToken(
        self, request: tm.RefreshTokenRequest, context: grpc.aio.ServicerContext
    ) -> tm.RefreshTokenResponse:
        await require_hash_header(request.connection_id, context)
        await require_project(request.project_id, context)
        opened = await self._opened(request.connection_id, request.project_id, context)
        if not is_oauth(opened):
            await abort_with_details(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"connection {request.connection_id!r} does not use OAuth: nothing to refresh",
                error_info(NOT_REFRESHABLE, domain=DOMAIN),
            )
        if request.HasField("skip_if_refreshed_within"):
            window = request.skip_if_refreshed_within.ToTimedelta()
            last = opened.row.last_refreshed_at or opened.row.created_at
            if last > datetime.now(UTC) - window:
                return tm.RefreshTokenResponse(
                    token=creds.access_token(
                        request.connection_id,
                        opened.credentials,
                        self.catalog.get(opened.row.provider),
                    ),
                    refreshed=False,
                    stored=stored_credentials(opened),
                )
        trigger = (
            ce.REFRESH_TRIGGER_KEEP_ALIVE
            if request.reason == tm.REFRESH_REASON_KEEP_ALIVE
            else ce.REFRESH_TRIGGER_FORCED
        )
        want = want_for(
            tm.REFRESH_MODE_FORCE,
            margin=self.refresh_margin,
            min_validity=timedelta(),
            trigger=trigger,
            request_id=current_request_id(),
        )
        outcome = await self._refresh(request.connection_id, want, context)
        return tm.RefreshTokenResponse(
            token=creds.access_token(
                request.connection_id,
                outcome.opened.credentials,
                self.catalog.get(outcome.opened.row.provider),
            ),
            refreshed=outcome.refreshed,
            stored=stored_credentials(outcome.opened),
        )

    async def RevokeCredentials(
        self, request: tm.RevokeCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> tm.RevokeCredentialsResponse:
        await require_hash_header(request.connection_id, context)
        await require_project(request.project_id, context)
        opened = await self._opened(request.connection_id, request.project_id, context)
        revoked, detail = await self._revoke_at_provider(opened, context)
        marked = await self.refresher.mark_revoked(
            request.connection_id, revoked, detail, current_request_id()
        )
        return tm.RevokeCredentialsResponse(
            revoked_at_provider=revoked, detail=detail, stored=stored_credentials(marked)
        )

    async def DeleteCredentials(
        self, request: tm.DeleteCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await require_hash_header(request.connection_id, context)
        await require_project(request.project_id, context)
        revoked, detail = False, ""
        if request.revoke_at_provider:
            opened = await self._opened(request.connection_id, request.project_id, context)
            # Whatever happens at the provider, the credentials are deleted below: a
            # provider that cannot be reached must not keep a connection alive for ever.
            revoked, detail = await self._revoke_at_provider(opened, context)
            if not revoked:
                _log.warning(
                    "credentials not revoked at the provider; deleting them anyway",
                    connection_id=request.connection_id,
                    provider=opened.row.provider,
                    detail=detail,
                )
        request_id = current_request_id()
        try:
            await self.store.delete(
                request.connection_id,
                request.project_id,
                self._stager(lambda row: announce.deleted(row, revoked, detail, request_id)),
            )
        except NotFound:
            await abort_no_credentials(context, request.connection_id)
        self.bus.kick()
        _log.info("credentials deleted", connection_id=request.connection_id, revoked=revoked)
        if request.revoke_at_provider:
            await context.send_initial_metadata(revocation_metadata(revoked, detail))
        return empty_pb2.Empty()

    async def _revoke_at_provider(
        self, opened: Opened, call: grpc.aio.ServicerContext
    ) -> tuple[bool, str]:
        """Revokes the refresh token (or else the access token) where the provider can;
        never raises: a failed revocation is reported, not fatal. A provider that does
        not answer gets at most half the caller's time: the rest is the deletion's, which
        must not die with the caller's deadline."""
        credentials = opened.credentials
        refresh = creds.refresh_token_of(credentials)
        access = creds.access_token_of(credentials)
        token = (refresh.token if refresh is not None else "") or (
            access.token if access is not None else ""
        )
        provider = self.catalog.get(opened.row.provider)
        if not token or provider is None or not provider.oauth2_opts.token_url:
            return False, "the connection holds no OAuth token to revoke"
        connection = announce.context_of(opened.row)
        app = app_of(
            credentials,
            await self.apps(connection.provider_app_id, opened.row.project_id)
            if connection.provider_app_id
            else None,
        )
        if app is None:
            return False, "the connection's provider app is gone, so it cannot revoke"
        remaining = call.time_remaining()
        return await self.provider.revoke(
            opened.row.provider,
            token_url(provider, connection),
            app,
            token,
            within=max(0.1, remaining / 2) if remaining is not None else None,
        )

    async def _opened(
        self, connection_id: str, project_id: str, context: grpc.aio.ServicerContext
    ) -> Opened:
        try:
            return await self.store.get(connection_id, project_id)
        except NotFound:
            await abort_no_credentials(context, connection_id)

    async def _refresh(
        self, connection_id: str, want: Want, context: grpc.aio.ServicerContext
    ) -> Outcome:
        try:
            return await self.refresher.refresh(connection_id, want)
        except NotFound:
            await abort_no_credentials(context, connection_id)
        except BadCredentials as error:
            await abort_bad_credentials(context, connection_id, str(error))
        except Unavailable as error:
            await abort_unavailable(
                context, connection_id, str(error), error.retry_after, error.rate_limited
            )
        except asyncpg.exceptions.LockNotAvailableError:
            await abort_unavailable(
                context,
                connection_id,
                "another refresh of this connection is taking long; try again shortly",
                1.0,
                False,
            )

    async def DescribeShard(
        self, request: token_manager_pb2.DescribeShardRequest, context: grpc.aio.ServicerContext
    ) -> token_manager_pb2.DescribeShardResponse:
        await require_hash_header(request.connection_id, context)
        return token_manager_pb2.DescribeShardResponse(
            shard=self.shard, connection_id=request.connection_id, caller=current_caller() or ""
        )


def revocation_metadata(revoked: bool, detail: str) -> tuple[tuple[str, str], ...]:
    """DeleteCredentials' answer to "was it revoked at the provider?" (the contract's
    initial metadata; gRPC metadata values are printable ASCII)."""
    if revoked:
        return ((REVOKED_HEADER, "true"),)
    printable = "".join(c if " " <= c <= "~" else "?" for c in detail)
    return ((REVOKED_HEADER, "false"), (REVOCATION_DETAIL_HEADER, printable))


def is_oauth(opened: Opened) -> bool:
    return opened.credentials.WhichOneof("kind") in creds.OAUTH_KINDS


def stored_credentials(opened: Opened) -> tm.StoredCredentials:
    """What is stored for a connection, without a secret."""
    row, credentials = opened.row, opened.credentials
    stored = tm.StoredCredentials(
        connection_id=row.connection_id,
        project_id=row.project_id,
        provider=row.provider,
        auth_scheme=row.auth_scheme,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        scopes=creds.scopes_of(credentials),
        encryption_key_id=row.sealed.key_id,
    )
    access = creds.access_token_of(credentials)
    if access is not None and access.HasField("expire_time"):
        stored.access_token_expire_time.CopyFrom(access.expire_time)
    refresh = creds.refresh_token_of(credentials)
    if refresh is not None and refresh.token:
        stored.has_refresh_token = True
        if refresh.HasField("expire_time"):
            stored.refresh_token_expire_time.CopyFrom(refresh.expire_time)
    stored.create_time.FromDatetime(row.created_at)
    stored.update_time.FromDatetime(row.updated_at)
    return stored
