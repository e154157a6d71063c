"""ConnectionService's OAuth authorization-code RPCs: oauth-connect and oauth-update hand
out an authorization URL, and the callback the provider sends the browser to exchanges
the code through the token-manager and records the connection.

`OauthRpcs` is mixed into the servicer (connections.py); the flow's own logic (pending
flows, the URL, what a token response says, the page) is in oauth_flow.py, and what a
failed exchange means in services/api/token_errors.py.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import asyncpg
import grpc
from ampmesh.platform.v1 import connections_pb2, providers_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.api import httpbody_pb2
from google.protobuf import json_format

from services.api.auth import ProjectRow, abort_forbidden
from services.api.common import abort_invalid, abort_missing, fetch_in_project
from services.api.context import ApiContext
from services.api.platform import oauth_flow
from services.api.platform.connection_credentials import (
    AUTHORIZATION_CODE_SCHEMES,
    connection_context,
    expected_credential,
    metadata_problems,
    provider_metadata_json,
)
from services.api.platform.connection_metadata import FROM_INPUT, FROM_TOKEN, with_workspace
from services.api.platform.connection_rows import find_connection
from services.api.platform.oauth_flow import PendingFlow
from services.api.platform.provider_apps import provider_problem
from services.api.token_errors import (
    RETRY_AFTER_HEADER,
    FlowFailure,
    exchange_failure,
)
from services.runtime.errors import abort_with_details, error_info
from services.runtime.logs import get_logger

APP_KIND = "provider app"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
# Response metadata an HttpBody answer sets to choose its HTTP status (envoy/problem.lua
# turns it into the status; gRPC clients see it as metadata).
HTTP_STATUS_HEADER = "x-ampmesh-http-status"

_log = get_logger("ampmesh.api.connections")


class OauthRpcs:
    """OauthConnect, OauthUpdate and OauthCallback of ConnectionService."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

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
            provider_metadata=json.loads(provider_metadata_json(request.provider_metadata)),
            redirect_uri=self.ctx.policy.oauth_callback_url,
            scopes=list(app["scopes"]),
        )
        return await self._authorization_url(context, info, app, flow)

    async def OauthUpdate(
        self, request: connections_pb2.OauthUpdateRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        # Builders, frontend keys (the embeddable UI's Manage tab re-authenticates with
        # one, as it may delete the connection) and customer JWTs of the group (another
        # group's connection is not found).
        row = await find_connection(self.ctx, context, principal, project, request.connection_id)
        info = self.ctx.catalog.get(row["provider"])
        if (
            info is None
            or not oauth_flow.is_browser_oauth(info)
            or row["auth_scheme"] not in AUTHORIZATION_CODE_SCHEMES
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
                    connection=connection_context(
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
        metadata = json.dumps(
            with_workspace(
                info,
                {**flow.provider_metadata, **facts.metadata},
                workspace,
                FROM_TOKEN if facts.workspace else FROM_INPUT,
            )
        )
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
