"""Connections: one customer's credential for one SaaS provider.

The `connections` table says whose a connection is (group, consumer, provider, workspace)
and how it authenticates; the credential itself lives only in the token-manager, which
seals it at rest. This module builds generate (import credentials the caller already
holds), list, get (optionally with the credentials) and delete. The OAuth flows, custom
auth, credential rotation and token refresh arrive with the rest of issue #5.

A connection's row and its credentials share the connection's id, which is also what the
edge hashes on to pick the token-manager shard (services/runtime/channels.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

import asyncpg
import grpc
from ampmesh.platform.v1 import connections_pb2, connections_pb2_grpc, providers_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc
from google.protobuf import empty_pb2, json_format

from services.api.auth import Principal, ProjectRow
from services.api.context import ApiContext
from services.api.platform.common import abort_invalid, abort_missing, timestamp, with_times
from services.api.platform.provider_apps import provider_problem
from services.runtime.errors import abort_with_details, error_info
from services.runtime.logs import get_logger
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

KIND = "connection"
NOT_BUILT = "OAuth connect, callback and credential rotation are built by the rest of issue #5"
REFRESH_NOT_BUILT = "refresh is built by the rest of issue #5"
METADATA_SOURCES = ("input", "token", "provider")

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


def generate_problems(
    connection: connections_pb2.ConnectionInput,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not connection.group_ref.strip():
        problems["body.groupRef"] = "is required: your identifier of the customer organisation"
    if not connection.consumer_ref.strip():
        problems["body.consumerRef"] = "is required: your identifier of the end user"
    for name, value in connection.provider_metadata.items():
        if not value.value:
            problems[f"body.providerMetadata.{name}.value"] = "is required"
        if value.source not in METADATA_SOURCES:
            problems[f"body.providerMetadata.{name}.source"] = (
                f"must be one of {', '.join(METADATA_SOURCES)}"
            )
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


def to_message(row: asyncpg.Record) -> connections_pb2.Connection:
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


async def abort_token_manager(context: Any, error: grpc.aio.AioRpcError, doing: str) -> NoReturn:
    """The token-manager failed in a way the caller cannot fix: UNAVAILABLE when it could
    not be reached (worth a retry), INTERNAL otherwise. Its message names no secret."""
    code = error.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        await abort_with_details(
            context,
            grpc.StatusCode.UNAVAILABLE,
            f"the token-manager could not be reached to {doing}; try again shortly",
            error_info("TOKEN_MANAGER_UNAVAILABLE"),
        )
    _log.error("token-manager call failed", doing=doing, code=code.name, detail=error.details())
    await abort_with_details(
        context,
        grpc.StatusCode.INTERNAL,
        f"the token-manager could not {doing} ({code.name})",
        error_info("TOKEN_MANAGER_FAILED"),
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
        row = await self.ctx.pool.fetchrow(
            "INSERT INTO connections (id, project_id, provider, group_ref, group_name, "
            "consumer_ref, consumer_name, provider_workspace_ref, provider_metadata, "
            "auth_scheme) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10) RETURNING *",
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
        )
        store = tm.StoreCredentialsRequest(
            connection=tm.ConnectionContext(
                project_id=project.id,
                connection_id=connection_id,
                provider=given.provider,
                provider_workspace_ref=row["provider_workspace_ref"] or "",
                provider_metadata={k: v.value for k, v in given.provider_metadata.items()},
                group_ref=row["group_ref"],
                group_name=row["group_name"],
                consumer_ref=row["consumer_ref"],
                consumer_name=row["consumer_name"],
            ),
            credentials=to_credentials(given, auth_scheme),
        )
        try:
            await tokens.StoreCredentials(store)
        except grpc.aio.AioRpcError as error:
            # No half-made connections: a row without credentials could never be used.
            await self.ctx.pool.execute("DELETE FROM connections WHERE id = $1", row["id"])
            await abort_token_manager(context, error, "store the connection's credentials")
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
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                await abort_with_details(
                    context,
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{REFRESH_NOT_BUILT}; leave refresh out to get the stored credentials",
                    error_info("REFRESH_NOT_BUILT"),
                )
            await abort_token_manager(context, error, "read the connection's credentials")
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
        try:
            await tokens.DeleteCredentials(
                tm.DeleteCredentialsRequest(connection_id=str(row["id"]), project_id=project.id)
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
        return empty_pb2.Empty()


def service(ctx: ApiContext) -> Service:
    return partially_built(
        connections_pb2.DESCRIPTOR.services_by_name["ConnectionService"],
        connections_pb2_grpc.add_ConnectionServiceServicer_to_server,
        Connections(ctx),
        NOT_BUILT,
    )
