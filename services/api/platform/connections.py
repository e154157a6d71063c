"""Connections: one customer's credential for one SaaS provider (ConnectionService).

The `connections` table says whose a connection is (group, consumer, provider, workspace)
and how it authenticates; the credential itself lives only in the token-manager, which
seals it at rest. This module is the servicer and its CRUD RPCs: generate (import
credentials the caller already holds), list, get (optionally with the credentials, after
a refresh), update (rotate credentials, change workspace or metadata) and delete
(revoking at the provider where it can). Custom multi-step auth is not built.

Beside it: connection_credentials.py (what a client may send and how it maps to the
token-manager's contract), connection_rows.py (finding a row, the message it reads as),
services/api/token_errors.py (what a token-manager failure becomes), connection_oauth.py
(the OAuth authorization-code RPCs, mixed in here) and oauth_flow.py (that flow's logic).

A connection's row and its credentials share the connection's id, which is also what the
edge hashes on to pick the token-manager shard (services/runtime/channels.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import grpc
from ampmesh.platform.v1 import connections_pb2, connections_pb2_grpc
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.protobuf import empty_pb2

from services.api.common import abort_invalid, abort_missing, check_update_mask
from services.api.context import ApiContext
from services.api.platform.connection_credentials import (
    CREDENTIAL_FIELDS,
    CREDENTIAL_PATHS,
    FETCHED_TOKEN_SCHEMES,
    UPDATABLE,
    add_credentials,
    connection_context,
    expected_credential,
    generate_problems,
    provider_metadata_json,
    to_credentials,
    update_problems,
)
from services.api.platform.connection_metadata import FROM_INPUT, WORKSPACE, with_workspace
from services.api.platform.connection_oauth import OauthRpcs
from services.api.platform.connection_removal import delete_credentials, refuse_if_used
from services.api.platform.connection_rows import KIND, find_connection, to_message
from services.api.token_errors import (
    abort_token_error,
    require_token_manager,
)
from services.domain.token_manager_client import failure_reason
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

__all__ = ["Connections", "service"]

NOT_BUILT = (
    "no provider of the catalog needs a multi-step custom auth flow (none sets "
    "customOpts.multiStep): connect custom-auth providers with connections:generate"
)

_REFRESH_MODES: Mapping[str, tm.RefreshMode] = {
    "force": tm.REFRESH_MODE_FORCE,
    "ifExpired": tm.REFRESH_MODE_IF_EXPIRED,
}


class Connections(OauthRpcs, connections_pb2_grpc.ConnectionServiceServicer):
    """ConnectionService: the CRUD RPCs here, the OAuth ones (and `__init__(ctx)`) from
    OauthRpcs."""

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
        tokens = await require_token_manager(self.ctx, context)
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
            json.dumps(
                with_workspace(
                    self.ctx.catalog[given.provider],
                    json.loads(provider_metadata_json(given.provider_metadata)),
                    given.provider_workspace_ref.strip(),
                    FROM_INPUT,
                )
            ),
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
            obtain_token=auth_scheme in FETCHED_TOKEN_SCHEMES,
        )
        try:
            await tokens.StoreCredentials(store)
        except grpc.aio.AioRpcError as error:
            # No half-made connections: a row without credentials could never be used.
            await self.ctx.pool.execute("DELETE FROM connections WHERE id = $1", row["id"])
            if failure_reason(error) == tm.TOKEN_FAILURE_REASON_BAD_CREDENTIALS:
                # Refused at their first token: the caller's input, named.
                field = CREDENTIAL_FIELDS[given.WhichOneof("credentials") or ""][0]
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
        row = await find_connection(self.ctx, context, principal, project, request.connection_id)
        connection = to_message(row)
        include_creds = request.include_creds or request.include_refresh_token
        if not include_creds and refresh == tm.REFRESH_MODE_NEVER:
            return connection
        tokens = await require_token_manager(self.ctx, context)
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
        row = await find_connection(self.ctx, context, principal, project, request.connection_id)
        await refuse_if_used(self.ctx, context, row["id"])
        revocation = await delete_credentials(self.ctx, context, project.id, row["id"])
        # Unless an installation took the connection up meanwhile: the row stays then, its
        # credentials gone, and that installation's next call says to reconnect, as after
        # an uninstall's removal (connection_removal.remove_if_unused).
        await self.ctx.pool.execute(
            "DELETE FROM connections WHERE project_id = $1 AND id = $2 "
            "AND NOT EXISTS (SELECT 1 FROM installations WHERE connection_id = $2)",
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
        row = await find_connection(self.ctx, context, principal, project, request.connection_id)
        given = request.connection
        problems = update_problems(row["auth_scheme"], paths, given)
        if problems:
            await abort_invalid(context, problems)
        workspace = row["provider_workspace_ref"]
        if "providerWorkspaceRef" in paths:
            workspace = given.provider_workspace_ref.strip()
        metadata_json: str = row["provider_metadata"]
        if "providerMetadata" in paths:
            metadata_json = provider_metadata_json(given.provider_metadata)
            # The connect UI sends a workspace it asked for as providerMetadata.workspace
            # alone: the connection's workspace is that one when it has none yet.
            typed = given.provider_metadata.get(WORKSPACE)
            if not workspace and typed is not None and typed.value.strip():
                workspace = typed.value.strip()
        rotated = any(p in CREDENTIAL_PATHS for p in paths)
        if rotated:
            # New credentials go to the token-manager first, which checks them; the
            # connection is `created` again. (Without them, the workspace and metadata the
            # token-manager recorded stay as they were: it reads them only for templated
            # token URLs, and storing them anew would need the credentials, which the api
            # cannot read back.)
            tokens = await require_token_manager(self.ctx, context)
            store = tm.StoreCredentialsRequest(
                connection=connection_context(
                    project.id, str(row["id"]), row, workspace, json.loads(metadata_json)
                ),
                credentials=to_credentials(given, row["auth_scheme"]),
                replace=True,
                obtain_token=row["auth_scheme"] in FETCHED_TOKEN_SCHEMES,
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


def service(ctx: ApiContext) -> Service:
    return partially_built(
        connections_pb2.DESCRIPTOR.services_by_name["ConnectionService"],
        connections_pb2_grpc.add_ConnectionServiceServicer_to_server,
        Connections(ctx),
        NOT_BUILT,
        gate=ctx.auth.authenticate,
    )
