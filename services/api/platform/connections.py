"""Connections: one customer's credential for one SaaS provider.

The `connections` table says whose a connection is (group, consumer, provider, workspace)
and how it authenticates; the credential itself lives only in the token-manager, which
seals it at rest. This module builds generate (import credentials the caller already
holds), the OAuth authorization-code flow (oauth-connect and oauth-update hand out an
authorization URL, the callback exchanges the code through the token-manager and records
the connection; the flow's own logic is in oauth_flow.py), list, get (optionally with the
credentials, after a refresh), update (rotate credentials, change workspace or metadata)
and delete (revoking at the provider where it can). Custom multi-step auth is not built.

A connection's row and its credentials share the connection's id, which is also what the
edge hashes on to pick the token-manager shard (services/runtime/channels.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

import asyncpg
import grpc
from ampmesh.platform.v1 import connections_pb2, connections_pb2_grpc, providers_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import duration_pb2, empty_pb2, json_format
from google.rpc import error_details_pb2

from services.api.auth import Principal, ProjectRow, abort_forbidden
from services.api.common import (
    abort_invalid,
    abort_missing,
    check_update_mask,
    fetch_in_project,
    timestamp,
    with_times,
)
from services.api.context import ApiContext
from services.api.platform import oauth_flow
from services.api.platform.oauth_flow import PendingFlow
from services.api.platform.provider_apps import provider_problem
from services.runtime.errors import (
    abort_with_details,
    error_info,
    status_from_error,
    unpack_details,
)
from services.runtime.logs import get_logger
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

KIND = "connection"
APP_KIND = "provider app"
NOT_BUILT = (
    "no provider of the catalog needs a multi-step custom auth flow (none sets "
    "customOpts.multiStep): connect custom-auth providers with connections:generate"
)
METADATA_SOURCES = ("input", "token", "provider")
HTML = "text/html; charset=utf-8"
# Response metadata an HttpBody answer sets to choose its HTTP status (envoy/problem.lua
# turns it into the status; gRPC clients see it as metadata).
HTTP_STATUS_HEADER = "x-ampmesh-http-status"
TEXT = "text/plain; charset=utf-8"
# RFC 9110's advice to a client told to come back later (gRPC initial metadata, which the
# edge passes on as a response header).
RETRY_AFTER_HEADER = "retry-after"
# DeleteCredentials' answer about revocation (token_manager.proto), passed on to the
# caller of DELETE .../connections/{id} as response headers of the same names.
REVOCATION_HEADERS = ("x-ampmesh-revoked-at-provider", "x-ampmesh-revocation-detail")

# ConnectionInput credential field -> (its JSON name, the token-manager Credentials kind).
_CREDENTIAL_FIELDS: Mapping[str, tuple[str, str]] = {
    "api_key": ("apiKey", "api_key"),
    "basic_auth": ("basicAuth", "basic"),
    "oauth2_client_credentials": ("oauth2ClientCredentials", "oauth2_client_credentials"),
    "oauth2_password_credentials": ("oauth2PasswordCredentials", "oauth2_password"),
    "oauth2_authorization_code": ("oauth2AuthorizationCode", "oauth2_authorization_code"),
    "custom_auth": ("customAuth", "custom"),
}

# Which credential field each catalog auth type (and OAuth2 grant type) takes, and the
# auth scheme the connection then has.
_BY_AUTH_TYPE: Mapping[str, tuple[str, str]] = {
    "apiKey": ("api_key", "apiKey"),
    "basic": ("basic_auth", "basic"),
}
_BY_GRANT_TYPE: Mapping[str, tuple[str, str]] = {
    "clientCredentials": ("oauth2_client_credentials", "oauth2/clientCredentials"),
    "password": ("oauth2_password_credentials", "oauth2/password"),
    "authorizationCode": ("oauth2_authorization_code", "oauth2/authorizationCode"),
    "authorizationCodePKCE": ("oauth2_authorization_code", "oauth2/authorizationCodePKCE"),
}

# UpdateConnection's mask paths: the two that describe the connection, and the credential
# paths, each with the ConnectionInput field carrying it and the auth scheme it rotates.
_DESCRIPTIVE_PATHS = ("providerWorkspaceRef", "providerMetadata")
_CREDENTIAL_PATHS: Mapping[str, tuple[str, str]] = {
    "apiKey": ("api_key", "apiKey"),
    "basicAuth": ("basic_auth", "basic"),
    "oauth2ClientCredentials": ("oauth2_client_credentials", "oauth2/clientCredentials"),
    "oauth2PasswordCredentials": ("oauth2_password_credentials", "oauth2/password"),
}
UPDATABLE = (*_DESCRIPTIVE_PATHS, *_CREDENTIAL_PATHS)
# Schemes whose token the token-manager fetches itself: a rotation checks the new
# credentials at the provider at once.
_FETCHED_TOKEN_SCHEMES = ("oauth2/clientCredentials", "oauth2/password")
_AUTHORIZATION_CODE_SCHEMES = ("oauth2/authorizationCode", "oauth2/authorizationCodePKCE")

_REFRESH_MODES: Mapping[str, tm.RefreshMode] = {
    "force": tm.REFRESH_MODE_FORCE,
    "ifExpired": tm.REFRESH_MODE_IF_EXPIRED,
}

_log = get_logger("ampmesh.api.connections")


def expected_credential(info: providers_pb2.ProviderInfo) -> tuple[str, str] | None:
    """(ConnectionInput credential field, auth scheme) a provider's connections take, or
    None when generate cannot make one (custom auth has its own flow)."""
    if info.auth_type == "oauth2":
        return _BY_GRANT_TYPE.get(info.oauth2_opts.grant_type)
    return _BY_AUTH_TYPE.get(info.auth_type)


def _missing(values: Mapping[str, str], at: str) -> dict[str, str]:
    return {f"{at}.{name}": "is required" for name, value in values.items() if not value.strip()}


def credential_problems(connection: connections_pb2.ConnectionInput) -> dict[str, str]:
    """The required fields of the credential the input carries, named as the client sent
    them (body.<jsonName>...)."""
    kind = connection.WhichOneof("credentials")
    if kind == "api_key":
        return {"body.apiKey": "must not be empty"} if not connection.api_key.strip() else {}
    if kind == "basic_auth":
        basic = connection.basic_auth
        return _missing({"username": basic.username, "password": basic.password}, "body.basicAuth")
    if kind == "oauth2_client_credentials":
        client = connection.oauth2_client_credentials
        return _missing(
            {"clientId": client.client_id, "clientSecret": client.client_secret},
            "body.oauth2ClientCredentials",
        )
    if kind == "oauth2_password_credentials":
        grant = connection.oauth2_password_credentials
        return _missing(
            {
                "username": grant.username,
                "password": grant.password,
                "clientId": grant.client_id,
                "clientSecret": grant.client_secret,
            },
            "body.oauth2PasswordCredentials",
        )
    if kind == "oauth2_authorization_code":
        tokens = connection.oauth2_authorization_code
        return _missing(
            {"token": tokens.access_token.token}, "body.oauth2AuthorizationCode.accessToken"
        )
    return {}


def metadata_problems(
    metadata: Mapping[str, connections_pb2.ProviderMetadataInfo], at: str
) -> dict[str, str]:
    problems: dict[str, str] = {}
    for name, value in metadata.items():
        if not value.value:
            problems[f"{at}.{name}.value"] = "is required"
        if value.source not in METADATA_SOURCES:
            problems[f"{at}.{name}.source"] = f"must be one of {', '.join(METADATA_SOURCES)}"
    return problems


def generate_problems(
    connection: connections_pb2.ConnectionInput,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not connection.group_ref.strip():
        problems["body.groupRef"] = "is required: your identifier of the customer organisation"
    if not connection.consumer_ref.strip():
        problems["body.consumerRef"] = "is required: your identifier of the end user"
    problems.update(metadata_problems(connection.provider_metadata, "body.providerMetadata"))
    # Any catalog provider may be named here; provider_problem's OAuth2-only rule is for
    # provider apps, so only its "not in the catalog" answer applies.
    info = catalog.get(connection.provider)
    if info is None:
        problems["body.provider"] = provider_problem(connection.provider, catalog) or (
            f"{connection.provider!r} is not a provider of the catalog"
        )
        return problems
    given = connection.WhichOneof("credentials")
    expected = expected_credential(info)
    if expected is None:
        problems["body.provider"] = (
            f"{connection.provider!r} uses {info.auth_type} auth, which generate does not "
            "accept: connect it through its own flow"
        )
    elif given is None:
        problems[f"body.{_CREDENTIAL_FIELDS[expected[0]][0]}"] = (
            f"is required: {connection.provider!r} authenticates with {expected[1]}"
        )
    elif given != expected[0]:
        problems[f"body.{_CREDENTIAL_FIELDS[given][0]}"] = (
            f"{connection.provider!r} authenticates with {expected[1]}: send "
            f"{_CREDENTIAL_FIELDS[expected[0]][0]} instead"
        )
    else:
        problems.update(credential_problems(connection))
    return problems


def _token(given: connections_pb2.Oauth2Token) -> tm.OAuth2Token:
    token = tm.OAuth2Token(token=given.token)
    if given.HasField("issued_at"):
        token.issue_time.CopyFrom(given.issued_at)
    if given.HasField("expires_at"):
        token.expire_time.CopyFrom(given.expires_at)
    return token


def to_credentials(connection: connections_pb2.ConnectionInput, auth_scheme: str) -> tm.Credentials:
    """The token-manager's Credentials for a validated ConnectionInput."""
    kind = connection.WhichOneof("credentials")
    if kind == "api_key":
        return tm.Credentials(api_key=tm.ApiKeyCredentials(key=connection.api_key))
    if kind == "basic_auth":
        basic = connection.basic_auth
        return tm.Credentials(
            basic=tm.BasicCredentials(username=basic.username, password=basic.password)
        )
    if kind == "oauth2_client_credentials":
        client = connection.oauth2_client_credentials
        return tm.Credentials(
            oauth2_client_credentials=tm.OAuth2ClientCredentials(
                client_id=client.client_id,
                client_secret=client.client_secret,
                scopes=client.scopes,
            )
        )
    if kind == "oauth2_password_credentials":
        grant = connection.oauth2_password_credentials
        return tm.Credentials(
            oauth2_password=tm.OAuth2PasswordCredentials(
                username=grant.username,
                password=grant.password,
                client_id=grant.client_id,
                client_secret=grant.client_secret,
                scopes=grant.scopes,
            )
        )
    if kind == "oauth2_authorization_code":
        tokens = connection.oauth2_authorization_code
        code = tm.OAuth2AuthorizationCodeCredentials(
            access_token=_token(tokens.access_token),
            scopes=tokens.scopes,
            pkce=auth_scheme == "oauth2/authorizationCodePKCE",
        )
        if tokens.refresh_token.token:
            code.refresh_token.CopyFrom(_token(tokens.refresh_token))
        return tm.Credentials(oauth2_authorization_code=code)
    raise ValueError(f"no credentials for {kind!r}")  # validated before


def _metadata_json(metadata: Mapping[str, connections_pb2.ProviderMetadataInfo]) -> str:
    return json.dumps({name: json_format.MessageToDict(info) for name, info in metadata.items()})


def to_message(row: Mapping[str, Any]) -> connections_pb2.Connection:
    project_id = str(row["project_id"])
    created = timestamp(row["created_at"])
    connection = with_times(
        connections_pb2.Connection(
            id=str(row["id"]),
            project_id=project_id,
            provider=row["provider"],
            group=connections_pb2.Group(
                group_ref=row["group_ref"],
                group_name=row["group_name"],
                project_id=project_id,
                create_time=created,
            ),
            consumer=connections_pb2.Consumer(
                consumer_ref=row["consumer_ref"],
                consumer_name=row["consumer_name"],
                project_id=project_id,
                create_time=created,
            ),
            auth_scheme=row["auth_scheme"],
            status=row["status"],
        ),
        row["created_at"],
        row["updated_at"],
    )
    if row["provider_workspace_ref"]:
        connection.provider_workspace_ref = row["provider_workspace_ref"]
    for name, info in json.loads(row["provider_metadata"]).items():
        json_format.ParseDict(info, connection.provider_metadata[name], ignore_unknown_fields=True)
    return connection


def add_credentials(
    connection: connections_pb2.Connection, credentials: tm.Credentials, *, refresh_token: bool
) -> None:
    """The credentials the reference shows with includeCreds: an API key, or the OAuth
    access token and scopes (and the refresh token only when asked for). Other schemes
    have no place for theirs in a Connection."""
    kind = credentials.WhichOneof("kind")
    if kind == "api_key":
        connection.api_key = credentials.api_key.key
    elif kind == "oauth2_authorization_code":
        stored = credentials.oauth2_authorization_code
        shown = connection.oauth2_authorization_code
        shown.scopes.extend(stored.scopes)
        _show_token(stored.access_token, shown.access_token)
        if refresh_token and stored.refresh_token.token:
            _show_token(stored.refresh_token, shown.refresh_token)


def _show_token(stored: tm.OAuth2Token, shown: connections_pb2.Oauth2Token) -> None:
    shown.token = stored.token
    if stored.HasField("issue_time"):
        shown.issued_at.CopyFrom(stored.issue_time)
    if stored.HasField("expire_time"):
        shown.expires_at.CopyFrom(stored.expire_time)


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


# How long a caller is told to wait when the token-manager gave no RetryInfo of its own.
DEFAULT_RETRY_SECONDS = 5


def retry_delay(error: grpc.aio.AioRpcError) -> int:
    """Whole seconds to wait before retrying, from the token-manager's RetryInfo."""
    status = status_from_error(error)
    for detail in unpack_details(status) if status is not None else ():
        if isinstance(detail, error_details_pb2.RetryInfo):
            return max(1, math.ceil(detail.retry_delay.ToTimedelta().total_seconds()))
    return DEFAULT_RETRY_SECONDS


async def abort_retry_later(context: Any, message: str, reason: str, seconds: int) -> NoReturn:
    """UNAVAILABLE with google.rpc.RetryInfo, and the delay as a Retry-After response
    header too, which REST clients see on the 503."""
    with contextlib.suppress(grpc.aio.UsageError, RuntimeError):  # headers already sent
        await context.send_initial_metadata(((RETRY_AFTER_HEADER, str(seconds)),))
    await abort_with_details(
        context,
        grpc.StatusCode.UNAVAILABLE,
        f"{message}; try again in {seconds} s",
        error_info(reason),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)),
    )


async def abort_token_manager(context: Any, error: grpc.aio.AioRpcError, doing: str) -> NoReturn:
    """The token-manager failed in a way the caller cannot fix: UNAVAILABLE when it could
    not be reached (worth a retry), INTERNAL otherwise. Its message names no secret."""
    code = error.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        await abort_retry_later(
            context,
            f"the token-manager could not be reached to {doing}",
            "TOKEN_MANAGER_UNAVAILABLE",
            DEFAULT_RETRY_SECONDS,
        )
    _log.error("token-manager call failed", doing=doing, code=code.name, detail=error.details())
    await abort_with_details(
        context,
        grpc.StatusCode.INTERNAL,
        f"the token-manager could not {doing} ({code.name})",
        error_info("TOKEN_MANAGER_FAILED"),
    )


def token_manager_reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason the token-manager gave (BAD_CREDENTIALS, ...), or ""."""
    status = status_from_error(error)
    for detail in unpack_details(status) if status is not None else ():
        if isinstance(detail, error_details_pb2.ErrorInfo):
            return detail.reason
    return ""


_PROVIDER_REASONS = ("PROVIDER_UNAVAILABLE", "RATE_LIMITED")


def provider_unavailable(error: grpc.aio.AioRpcError) -> bool:
    """The token-manager is fine, the provider could not answer (or limits the rate)."""
    return (
        error.code() == grpc.StatusCode.UNAVAILABLE
        and token_manager_reason(error) in _PROVIDER_REASONS
    )


async def abort_token_error(context: Any, error: grpc.aio.AioRpcError, doing: str) -> NoReturn:
    """A token-manager failure the caller can act on, passed on with the token-manager's
    message (its contract keeps secrets out of it): refused credentials are
    FAILED_PRECONDITION (a person must reconnect or rotate them), an unreachable or
    rate-limiting provider UNAVAILABLE with the token-manager's retry delay; anything
    else as abort_token_manager."""
    code, reason = error.code(), token_manager_reason(error)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        message = error.details() or f"the token-manager could not {doing}"
        if reason == "BAD_CREDENTIALS":
            message = (
                f"the provider refused the connection's credentials ({message}); reconnect "
                "it (oauth-update) or rotate them (PATCH)"
            )
        await abort_with_details(
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            message,
            error_info(reason or "FAILED_PRECONDITION"),
        )
    if provider_unavailable(error):
        await abort_retry_later(
            context,
            f"could not {doing}: {error.details() or 'the provider could not be reached'}",
            reason,
            retry_delay(error),
        )
    await abort_token_manager(context, error, doing)


@dataclasses.dataclass(frozen=True)
class FlowFailure:
    """Why an OAuth flow could not finish, in one line for the page, and the HTTP status
    of that page (503 with a Retry-After when a later attempt may succeed)."""

    message: str
    status: int = 400
    retry_after: int = 0


def exchange_failure(error: grpc.aio.AioRpcError) -> FlowFailure:
    """Why an authorization code could not be exchanged."""
    code, reason = error.code(), token_manager_reason(error)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FlowFailure("the provider refused the authorization code; start connecting again")
    if provider_unavailable(error):
        return FlowFailure(
            "the provider could not be reached to finish connecting; start connecting "
            "again shortly",
            503,
            retry_delay(error),
        )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return FlowFailure(
            "ampmesh could not reach its token service; start connecting again shortly",
            503,
            DEFAULT_RETRY_SECONDS,
        )
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return FlowFailure("this deployment cannot exchange authorization codes yet")
    _log.error("authorization code exchange failed", code=code.name, reason=reason)
    return FlowFailure("the connection could not be stored; try again")


def _connection_context(
    project_id: str,
    connection_id: str,
    row: Mapping[str, Any],
    workspace: str | None,
    metadata: Mapping[str, Any],
) -> tm.ConnectionContext:
    """What the token-manager records with a connection's credentials; row holds the
    provider, the app and the group and consumer (a connections or oauth_states row)."""
    return tm.ConnectionContext(
        project_id=project_id,
        connection_id=connection_id,
        provider=row["provider"],
        provider_app_id=str(row["provider_app_id"] or ""),
        provider_workspace_ref=workspace or "",
        provider_metadata={name: str(info.get("value", "")) for name, info in metadata.items()},
        group_ref=row["group_ref"],
        group_name=row["group_name"],
        consumer_ref=row["consumer_ref"],
        consumer_name=row["consumer_name"],
    )


class Connections(connections_pb2_grpc.ConnectionServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _tokens(self, context: Any) -> token_manager_pb2_grpc.TokenManagerServiceStub:
        if self.ctx.tokens is None:
            await abort_with_details(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "this deployment has no token-manager (AMPMESH_TOKEN_MANAGER_ADDRESS is unset)",
                error_info("TOKEN_MANAGER_NOT_CONFIGURED"),
            )
        return self.ctx.tokens

    async def _find(
        self, context: Any, principal: Principal, project: ProjectRow, connection_id: str
    ) -> asyncpg.Record:
        """The connection of project with that id, if the principal may see its group;
        NOT_FOUND otherwise (the same answer whether or not it exists)."""
        parsed = _as_uuid(connection_id)
        row = None
        if parsed is not None:
            row = await self.ctx.pool.fetchrow(
                "SELECT * FROM connections WHERE project_id = $1 AND id = $2",
                uuid.UUID(project.id),
                parsed,
            )
        if row is None or not self.ctx.auth.sees_group(principal, row["group_ref"]):
            await abort_missing(context, KIND, connection_id)
        return row

    async def ListConnections(
        self, request: connections_pb2.ListConnectionsRequest, context: grpc.aio.ServicerContext
    ) -> connections_pb2.ListConnectionsResponse:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        rows = await self.ctx.pool.fetch(
            "SELECT * FROM connections WHERE project_id = $1"
            " AND ($2::text IS NULL OR provider = $2)"
            " AND ($3::text IS NULL OR group_ref = $3)"
            " AND ($4::text IS NULL OR consumer_ref = $4)"
            " ORDER BY created_at, id",
            uuid.UUID(project.id),
            request.provider if request.HasField("provider") else None,
            request.group_ref if request.HasField("group_ref") else None,
            request.consumer_ref if request.HasField("consumer_ref") else None,
        )
        return connections_pb2.ListConnectionsResponse(
            connections=[
                to_message(row)
                for row in rows
                if self.ctx.auth.sees_group(principal, row["group_ref"])
            ]
        )

    async def GenerateConnection(
        self, request: connections_pb2.GenerateConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connections_pb2.Connection:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        given = request.connection
        problems = generate_problems(given, self.ctx.catalog)
        if problems:
            await abort_invalid(context, problems)
        await self.ctx.auth.require_group(context, principal, given.group_ref.strip())
        tokens = await self._tokens(context)
        expected = expected_credential(self.ctx.catalog[given.provider])
        assert expected is not None  # validated above
        auth_scheme = expected[1]
        connection_id = str(uuid.uuid4())
        group_ref, consumer_ref = given.group_ref.strip(), given.consumer_ref.strip()
        # Imported authorization-code tokens are refreshed with the project's (default,
        # i.e. first) provider app for the provider, as if it had made them; without one
        # they are used as they are until they expire.
        app_id = (
            await self.ctx.pool.fetchval(
                "SELECT id FROM provider_apps WHERE project_id = $1 AND provider = $2 "
                "ORDER BY created_at, id LIMIT 1",
                uuid.UUID(project.id),
                given.provider,
            )
            if auth_scheme.startswith("oauth2/authorizationCode")
            else None
        )
        row = await self.ctx.pool.fetchrow(
            "INSERT INTO connections (id, project_id, provider, group_ref, group_name, "
            "consumer_ref, consumer_name, provider_workspace_ref, provider_metadata, "
            "auth_scheme, provider_app_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11) RETURNING *",
            uuid.UUID(connection_id),
            uuid.UUID(project.id),
            given.provider,
            group_ref,
            given.group_name.strip() or group_ref,
            consumer_ref,
            given.consumer_name.strip() or consumer_ref,
            given.provider_workspace_ref.strip() or None,
            _metadata_json(given.provider_metadata),
            auth_scheme,
            app_id,
        )
        store = tm.StoreCredentialsRequest(
            connection=tm.ConnectionContext(
                project_id=project.id,
                connection_id=connection_id,
                provider=given.provider,
                provider_app_id=str(app_id or ""),
                provider_workspace_ref=row["provider_workspace_ref"] or "",
                provider_metadata={k: v.value for k, v in given.provider_metadata.items()},
                group_ref=row["group_ref"],
                group_name=row["group_name"],
                consumer_ref=row["consumer_ref"],
                consumer_name=row["consumer_name"],
            ),
            credentials=to_credentials(given, auth_scheme),
            # Client-credentials and password grants fetch a first token now, so
            # credentials the provider refuses are refused at connect time.
            obtain_token=auth_scheme in _FETCHED_TOKEN_SCHEMES,
        )
        try:
            await tokens.StoreCredentials(store)
        except grpc.aio.AioRpcError as error:
            # No half-made connections: a row without credentials could never be used.
            await self.ctx.pool.execute("DELETE FROM connections WHERE id = $1", row["id"])
            if token_manager_reason(error) == "BAD_CREDENTIALS":
                # Refused at their first token: the caller's input, named.
                field = _CREDENTIAL_FIELDS[given.WhichOneof("credentials") or ""][0]
                await abort_invalid(
                    context,
                    {f"body.connection.{field}": error.details() or "the provider refused them"},
                )
            await abort_token_error(context, error, "check the credentials at the provider")
        except BaseException:
            await self.ctx.pool.execute("DELETE FROM connections WHERE id = $1", row["id"])
            raise
        return to_message(row)

    async def GetConnection(
        self, request: connections_pb2.GetConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connections_pb2.Connection:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        refresh = tm.REFRESH_MODE_NEVER
        if request.HasField("refresh") and request.refresh:
            if request.refresh not in _REFRESH_MODES:
                await abort_invalid(context, {"query.refresh": "must be force or ifExpired"})
            refresh = _REFRESH_MODES[request.refresh]
        row = await self._find(context, principal, project, request.connection_id)
        connection = to_message(row)
        include_creds = request.include_creds or request.include_refresh_token
        if not include_creds and refresh == tm.REFRESH_MODE_NEVER:
            return connection
        tokens = await self._tokens(context)
        try:
            answer = await tokens.GetToken(
                tm.GetTokenRequest(
                    connection_id=str(row["id"]),
                    project_id=project.id,
                    refresh=refresh,
                    include_credentials=include_creds,
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:  # deleted meanwhile
                await abort_missing(context, KIND, request.connection_id)
            await abort_token_error(context, error, "refresh the connection's token")
        if include_creds:
            add_credentials(
                connection, answer.credentials, refresh_token=request.include_refresh_token
            )
        return connection

    async def DeleteConnection(
        self, request: connections_pb2.DeleteConnectionRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        row = await self._find(context, principal, project, request.connection_id)
        tokens = await self._tokens(context)
        revocation: tuple[tuple[str, str], ...] = ()
        try:
            call = tokens.DeleteCredentials(
                tm.DeleteCredentialsRequest(
                    connection_id=str(row["id"]), project_id=project.id, revoke_at_provider=True
                )
            )
            await call
            # Whether the provider revoked them: the connection goes either way (a
            # provider that cannot be reached must not keep it for ever), and the caller
            # is told (these headers, and the connection.deleted notification).
            revocation = tuple(
                (key, str(value))
                for key, value in (await call.initial_metadata() or ())
                if key in REVOCATION_HEADERS
            )
        except grpc.aio.AioRpcError as error:
            # Credentials already gone (an earlier delete stopped half-way): finish it.
            if error.code() != grpc.StatusCode.NOT_FOUND:
                await abort_token_manager(context, error, "delete the connection's credentials")
        await self.ctx.pool.execute(
            "DELETE FROM connections WHERE project_id = $1 AND id = $2",
            uuid.UUID(project.id),
            row["id"],
        )
        if revocation:
            await context.send_initial_metadata(revocation)
        return empty_pb2.Empty()

    async def UpdateConnection(
        self, request: connections_pb2.UpdateConnectionRequest, context: grpc.aio.ServicerContext
    ) -> connections_pb2.Connection:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        paths = await check_update_mask(context, request.update_mask, UPDATABLE)
        row = await self._find(context, principal, project, request.connection_id)
        given = request.connection
        problems = self._update_problems(row["auth_scheme"], paths, given)
        if problems:
            await abort_invalid(context, problems)
        workspace = row["provider_workspace_ref"]
        if "providerWorkspaceRef" in paths:
            workspace = given.provider_workspace_ref.strip()
        metadata_json: str = row["provider_metadata"]
        if "providerMetadata" in paths:
            metadata_json = _metadata_json(given.provider_metadata)
        rotated = any(p in _CREDENTIAL_PATHS for p in paths)
        if rotated:
            # New credentials go to the token-manager first, which checks them; the
            # connection is `created` again. (Without them, the workspace and metadata the
            # token-manager recorded stay as they were: it reads them only for templated
            # token URLs, and storing them anew would need the credentials, which the api
            # cannot read back.)
            tokens = await self._tokens(context)
            store = tm.StoreCredentialsRequest(
                connection=_connection_context(
                    project.id, str(row["id"]), row, workspace, json.loads(metadata_json)
                ),
                credentials=to_credentials(given, row["auth_scheme"]),
                replace=True,
                obtain_token=row["auth_scheme"] in _FETCHED_TOKEN_SCHEMES,
                updated_fields=paths,
            )
            try:
                await tokens.StoreCredentials(store)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    await abort_missing(context, KIND, request.connection_id)
                await abort_token_error(context, error, "check the new credentials")
        updated = await self.ctx.pool.fetchrow(
            "UPDATE connections SET provider_workspace_ref = $3, provider_metadata = $4::jsonb, "
            "status = CASE WHEN $5 THEN 'created' ELSE status END, "
            "status_time = CASE WHEN $5 THEN now() ELSE status_time END, updated_at = now() "
            "WHERE project_id = $1 AND id = $2 RETURNING *",
            uuid.UUID(project.id),
            row["id"],
            workspace,
            metadata_json,
            rotated,
        )
        if updated is None:
            await abort_missing(context, KIND, request.connection_id)
        return to_message(updated)

    @staticmethod
    def _update_problems(
        auth_scheme: str, paths: tuple[str, ...], given: connections_pb2.ConnectionInput
    ) -> dict[str, str]:
        problems: dict[str, str] = {}
        at = "body.connection."
        rotated = [p for p in paths if p in _CREDENTIAL_PATHS]
        if len(rotated) > 1:
            problems["body.updateMask"] = (
                f"names {', '.join(rotated)}: a connection has one credential, name one path"
            )
        for path in rotated:
            field, scheme = _CREDENTIAL_PATHS[path]
            if auth_scheme != scheme:
                problems[f"{at}{path}"] = (
                    f"the connection authenticates with {auth_scheme}, not {scheme}"
                    + (
                        ": reconnect it with oauth-update instead"
                        if auth_scheme in _AUTHORIZATION_CODE_SCHEMES
                        else ""
                    )
                )
            elif given.WhichOneof("credentials") != field:
                problems[f"{at}{path}"] = "is required by the update mask"
            else:
                problems.update(
                    {
                        at + name.removeprefix("body."): why
                        for name, why in credential_problems(given).items()
                    }
                )
        if "providerWorkspaceRef" in paths and not given.provider_workspace_ref.strip():
            problems[f"{at}providerWorkspaceRef"] = "is required by the update mask"
        if "providerMetadata" in paths:
            if not given.provider_metadata:
                problems[f"{at}providerMetadata"] = "is required by the update mask"
            problems.update(metadata_problems(given.provider_metadata, f"{at}providerMetadata"))
        return problems

    # --- OAuth authorization code ----------------------------------------------------

    async def _provider_app(
        self, context: Any, project: ProjectRow, provider: str, app_id: str, at: str
    ) -> asyncpg.Record:
        """The provider app a flow authorizes with: app_id when given (the project's, for
        provider), else the project's only app for provider."""
        if app_id:
            app = await fetch_in_project(self.ctx.pool, "provider_apps", project, app_id)
            if app is None:
                await abort_missing(context, APP_KIND, app_id)
            if app["provider"] != provider:
                await abort_invalid(
                    context,
                    {at: f"provider app {app_id!r} is for {app['provider']!r}, not {provider!r}"},
                )
            return app
        apps = await self.ctx.pool.fetch(
            "SELECT * FROM provider_apps WHERE project_id = $1 AND provider = $2 "
            "ORDER BY created_at, id",
            uuid.UUID(project.id),
            provider,
        )
        if not apps:
            await abort_invalid(
                context,
                {at: f"create a provider app for {provider!r} first (POST .../provider-apps)"},
            )
        if len(apps) > 1:
            await abort_invalid(
                context,
                {at: f"is required: the project has {len(apps)} provider apps for {provider!r}"},
            )
        only: asyncpg.Record = apps[0]
        return only

    async def _authorization_url(
        self,
        context: Any,
        info: providers_pb2.ProviderInfo,
        app: asyncpg.Record,
        flow: PendingFlow,
    ) -> httpbody_pb2.HttpBody:
        """Records flow under a new state and answers with the URL that starts it."""
        values = oauth_flow.template_values(flow.provider_workspace_ref, flow.metadata_values())
        missing = oauth_flow.missing_values(info, values, flow.scopes)
        if missing:
            await abort_invalid(
                context,
                {
                    (
                        "body.providerWorkspaceRef"
                        if name == oauth_flow.WORKSPACE
                        else f"body.providerMetadata.{name}"
                    ): f"is required: {flow.provider!r} needs it to authorize"
                    for name in missing
                },
            )
        if not flow.redirect_uri:
            await abort_with_details(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                "this deployment has no OAuth callback URL (set AMPMESH_OAUTH_CALLBACK_URL)",
                error_info("OAUTH_CALLBACK_NOT_CONFIGURED"),
            )
        challenge = None
        if oauth_flow.uses_pkce(info):
            verifier, challenge = oauth_flow.pkce_pair()
            flow = dataclasses.replace(flow, code_verifier=verifier)
        state = oauth_flow.new_state()
        await oauth_flow.save_flow(
            self.ctx.pool, self.ctx.secrets, flow, state, self.ctx.policy.oauth_state_seconds
        )
        stored = app["metadata"]
        app_metadata = json.loads(stored) if isinstance(stored, str) else stored
        url = oauth_flow.authorization_url(
            info,
            client_id=app["client_id"],
            redirect_uri=flow.redirect_uri,
            scopes=flow.scopes,
            state=state,
            values=values,
            code_challenge=challenge,
            extra_params={
                name: [str(v) for v in listed]
                for name, listed in (app_metadata or {}).get("authQueryParams", {}).items()
            },
        )
        return httpbody_pb2.HttpBody(content_type=TEXT, data=url.encode())

    async def OauthConnect(
        self, request: connections_pb2.OauthConnectRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        problems: dict[str, str] = {}
        info = self.ctx.catalog.get(request.provider)
        if info is None:
            problems["body.provider"] = provider_problem(request.provider, self.ctx.catalog) or (
                f"{request.provider!r} is not a provider of the catalog"
            )
        elif not oauth_flow.is_browser_oauth(info):
            expected = expected_credential(info)
            problems["body.provider"] = (
                f"{request.provider!r} does not connect through an OAuth authorization "
                f"(it uses {expected[1] if expected else info.auth_type}): use "
                "connections:generate"
            )
        group_ref, consumer_ref = request.group_ref.strip(), request.consumer_ref.strip()
        if not group_ref:
            problems["body.groupRef"] = "is required: your identifier of the customer organisation"
        if not consumer_ref:
            problems["body.consumerRef"] = "is required: your identifier of the end user"
        problems.update(metadata_problems(request.provider_metadata, "body.providerMetadata"))
        if problems:
            await abort_invalid(context, problems)
        assert info is not None  # checked above
        await self.ctx.auth.require_group(context, principal, group_ref)
        if principal.consumer_ref is not None and principal.consumer_ref != consumer_ref:
            await abort_forbidden(
                context, f"a customer JWT may connect only its own consumer ({principal.via})"
            )
        app = await self._provider_app(
            context, project, request.provider, request.provider_app_id, "body.providerAppId"
        )
        flow = PendingFlow(
            project_id=project.id,
            provider=request.provider,
            provider_app_id=str(app["id"]),
            group_ref=group_ref,
            group_name=request.group_name.strip() or group_ref,
            consumer_ref=consumer_ref,
            consumer_name=request.consumer_name.strip() or consumer_ref,
            provider_workspace_ref=request.provider_workspace_ref.strip() or None,
            provider_metadata=json.loads(_metadata_json(request.provider_metadata)),
            redirect_uri=self.ctx.policy.oauth_callback_url,
            scopes=list(app["scopes"]),
        )
        return await self._authorization_url(context, info, app, flow)

    async def OauthUpdate(
        self, request: connections_pb2.OauthUpdateRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        row = await self._find(context, principal, project, request.connection_id)
        if principal.group_ref is None:  # a customer JWT of the group may; keys: builders
            await self.ctx.auth.require_builder(context, principal)
        info = self.ctx.catalog.get(row["provider"])
        if (
            info is None
            or not oauth_flow.is_browser_oauth(info)
            or row["auth_scheme"] not in _AUTHORIZATION_CODE_SCHEMES
        ):
            await abort_invalid(
                context,
                {
                    "path.connectionId": f"the connection authenticates with "
                    f"{row['auth_scheme']}: only OAuth authorization-code connections are "
                    "re-authorized (rotate other credentials with PATCH)"
                },
            )
        app = await self._provider_app(
            context,
            project,
            row["provider"],
            str(row["provider_app_id"] or ""),
            "path.connectionId",
        )
        flow = PendingFlow(
            project_id=project.id,
            provider=row["provider"],
            provider_app_id=str(app["id"]),
            group_ref=row["group_ref"],
            group_name=row["group_name"],
            consumer_ref=row["consumer_ref"],
            consumer_name=row["consumer_name"],
            provider_workspace_ref=row["provider_workspace_ref"],
            provider_metadata=json.loads(row["provider_metadata"]),
            redirect_uri=self.ctx.policy.oauth_callback_url,
            scopes=list(app["scopes"]),
            connection_id=str(row["id"]),
        )
        return await self._authorization_url(context, info, app, flow)

    async def OauthCallback(
        self, request: connections_pb2.OauthCallbackRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        """The page for the browser: the connection made, or why not (HTTP 400, or 503
        with a Retry-After when the provider or the token-manager could not be reached,
        which the edge sets from HTTP_STATUS_HEADER: a failure is still answered by the
        page, since the window that opened the flow waits for its message)."""
        connection_id, failure = await self._complete_flow(request)
        if isinstance(failure, str):
            failure = FlowFailure(failure)
        if failure is not None:
            headers = [(HTTP_STATUS_HEADER, str(failure.status))]
            if failure.retry_after:
                headers.append((RETRY_AFTER_HEADER, str(failure.retry_after)))
            await context.send_initial_metadata(tuple(headers))
        return httpbody_pb2.HttpBody(
            content_type=HTML,
            data=oauth_flow.result_page(
                connection_id=connection_id,
                error=failure.message if failure is not None else None,
            ),
        )

    async def _complete_flow(
        self, request: connections_pb2.OauthCallbackRequest
    ) -> tuple[str | None, str | FlowFailure | None]:
        """(the connection made, None) or (None, why the flow failed)."""
        # No caller to authenticate: the provider sends the customer's browser here. The
        # state, single-use and short-lived, is what authorizes the call.
        flow = await oauth_flow.consume_flow(self.ctx.pool, self.ctx.secrets, request.state)
        if flow is None:
            return None, oauth_flow.STATE_EXPIRED
        if request.error:
            # The redirect's query is form-encoded (RFC 6749 4.1.2.1), and the edge's
            # transcoder decodes percent escapes but leaves "+" as is.
            said = request.error_description.replace("+", " ").strip()
            return None, f"the provider answered {request.error}" + (f": {said}" if said else "")
        if not request.code:
            return None, "the provider sent no authorization code; start connecting again"
        info = self.ctx.catalog.get(flow.provider)
        if info is None or not oauth_flow.is_browser_oauth(info) or self.ctx.tokens is None:
            return None, f"{flow.provider} cannot be connected through OAuth here"
        connection_id = flow.connection_id or str(uuid.uuid4())
        try:
            answer = await self.ctx.tokens.ExchangeAuthorizationCode(
                tm.ExchangeAuthorizationCodeRequest(
                    connection=_connection_context(
                        flow.project_id,
                        connection_id,
                        dataclasses.asdict(flow),
                        flow.provider_workspace_ref,
                        flow.provider_metadata,
                    ),
                    code=request.code,
                    code_verifier=flow.code_verifier or "",
                    redirect_uri=flow.redirect_uri,
                    requested_scopes=flow.scopes,
                )
            )
        except grpc.aio.AioRpcError as error:
            return None, exchange_failure(error)
        facts = oauth_flow.token_facts(
            info, json_format.MessageToDict(answer.token_response_metadata)
        )
        workspace = facts.workspace or flow.provider_workspace_ref
        metadata = json.dumps({**flow.provider_metadata, **facts.metadata})
        try:
            recorded = await self._record_authorized(
                flow, connection_id, oauth_flow.auth_scheme(info), workspace, metadata
            )
        except BaseException:
            if flow.connection_id is None:  # new credentials nothing will ever use
                await self._forget_credentials(flow.project_id, connection_id)
            raise
        if not recorded:  # oauth-update of a connection deleted meanwhile
            await self._forget_credentials(flow.project_id, connection_id)
            return None, "the connection was deleted while it was being re-authorized"
        return connection_id, None

    async def _record_authorized(
        self,
        flow: PendingFlow,
        connection_id: str,
        auth_scheme: str,
        workspace: str | None,
        metadata_json: str,
    ) -> bool:
        """The connections row for a finished flow: a new one, or (oauth-update) the
        existing one, created again. False when the connection to update is gone."""
        if flow.connection_id is None:
            await self.ctx.pool.execute(
                "INSERT INTO connections (id, project_id, provider, provider_app_id, group_ref, "
                "group_name, consumer_ref, consumer_name, provider_workspace_ref, "
                "provider_metadata, auth_scheme, status, status_time) VALUES ($1, $2, $3, $4, "
                "$5, $6, $7, $8, $9, $10::jsonb, $11, 'created', now())",
                uuid.UUID(connection_id),
                uuid.UUID(flow.project_id),
                flow.provider,
                uuid.UUID(flow.provider_app_id),
                flow.group_ref,
                flow.group_name,
                flow.consumer_ref,
                flow.consumer_name,
                workspace,
                metadata_json,
                auth_scheme,
            )
            return True
        updated = await self.ctx.pool.fetchval(
            "UPDATE connections SET provider_app_id = $3, provider_workspace_ref = $4, "
            "provider_metadata = $5::jsonb, auth_scheme = $6, status = 'created', "
            "status_time = now(), updated_at = now() WHERE project_id = $1 AND id = $2 "
            "RETURNING id",
            uuid.UUID(flow.project_id),
            uuid.UUID(connection_id),
            uuid.UUID(flow.provider_app_id),
            workspace,
            metadata_json,
            auth_scheme,
        )
        return updated is not None

    async def _forget_credentials(self, project_id: str, connection_id: str) -> None:
        """Best effort: credentials whose connection could not be recorded are useless."""
        if self.ctx.tokens is None:
            return
        try:
            await self.ctx.tokens.DeleteCredentials(
                tm.DeleteCredentialsRequest(connection_id=connection_id, project_id=project_id)
            )
        except grpc.aio.AioRpcError as error:
            _log.warning(
                "credentials of an unrecorded connection were not deleted",
                connection_id=connection_id,
                code=error.code().name,
            )


def service(ctx: ApiContext) -> Service:
    return partially_built(
        connections_pb2.DESCRIPTOR.services_by_name["ConnectionService"],
        connections_pb2_grpc.add_ConnectionServiceServicer_to_server,
        Connections(ctx),
        NOT_BUILT,
        gate=ctx.auth.authenticate,
    )
