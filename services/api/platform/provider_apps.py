"""Provider apps: a builder's own OAuth client at a SaaS provider, used whenever one of
the builder's customers connects that provider.

The provider must be in the catalog and authenticate with OAuth2 (an app is an OAuth
client). The client secret is write-only: sealed at rest (bound to the app's row) and never
returned (services.domain.client_secrets: the token-manager opens it to exchange codes
and refresh tokens). Listing is open to frontend callers (the connect UI asks); creating,
changing and deleting apps is for builders.
`provider_apps.metadata` holds ProviderAppMetadata in its JSON mapping.
"""

from __future__ import annotations

import difflib
import json
import uuid
from collections.abc import Iterable, Mapping

import asyncpg
import grpc
from ampmesh.platform.v1 import provider_apps_pb2, provider_apps_pb2_grpc, providers_pb2
from google.protobuf import empty_pb2, json_format

from services.api.common import (
    abort_invalid,
    abort_missing,
    check_update_mask,
    delete_in_project,
    find_in_project,
    list_in_project,
    with_times,
)
from services.api.context import ApiContext
from services.domain.client_secrets import seal_client_secret
from services.runtime.secretbox import Sealed
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

OAUTH2 = "oauth2"
KIND = "provider app"
UPDATABLE = ("externalRef", "clientId", "clientSecret", "provider", "scopes", "metadata")


def provider_problem(
    provider: str, catalog: Mapping[str, providers_pb2.ProviderInfo]
) -> str | None:
    """Why provider cannot hold a provider app, or None."""
    if not provider:
        return "is required: a provider name from GET /v1/providers"
    info = catalog.get(provider)
    if info is None:
        by_lower = {name.lower(): name for name in catalog}
        close = difflib.get_close_matches(provider.lower(), list(by_lower), n=1, cutoff=0.75)
        hint = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
        return f"{provider!r} is not a provider of the catalog{hint}"
    if info.auth_type != OAUTH2:
        return (
            f"{provider!r} authenticates with {info.auth_type}, not OAuth2: provider apps "
            "hold OAuth clients"
        )
    return None


def _scope_problems(scopes: Iterable[str], at: str) -> dict[str, str]:
    return {
        f"{at}[{index}]": "must be a non-empty scope without spaces"
        for index, scope in enumerate(scopes)
        if not scope or any(c.isspace() for c in scope)
    }


def metadata_problems(metadata: provider_apps_pb2.ProviderAppMetadata, at: str) -> dict[str, str]:
    # The contract types each authQueryParams value as a list of anything; the reference
    # as a list of strings.
    problems: dict[str, str] = {}
    for name, values in metadata.auth_query_params.items():
        if not all(v.WhichOneof("kind") == "string_value" for v in values.values):
            problems[f"{at}.authQueryParams.{name}"] = "must be a list of strings"
    return problems


def _problems(
    app: provider_apps_pb2.ProviderApp,
    fields: Iterable[str],
    at: str,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
) -> dict[str, str]:
    """Problems with the given fields (JSON names) of app, named `at` + field."""
    problems: dict[str, str] = {}
    if "provider" in fields and (why := provider_problem(app.provider, catalog)):
        problems[f"{at}provider"] = why
    if "clientId" in fields and not app.client_id.strip():
        problems[f"{at}clientId"] = "is required: the OAuth client id the provider issued"
    if "clientSecret" in fields and not app.client_secret:
        problems[f"{at}clientSecret"] = "is required: the OAuth client secret the provider issued"
    if "scopes" in fields:
        problems.update(_scope_problems(app.scopes, f"{at}scopes"))
    if "metadata" in fields:
        problems.update(metadata_problems(app.metadata, f"{at}metadata"))
    return problems


def to_message(row: asyncpg.Record) -> provider_apps_pb2.ProviderApp:
    app = with_times(
        provider_apps_pb2.ProviderApp(
            id=str(row["id"]),
            project_id=str(row["project_id"]),
            provider=row["provider"],
            client_id=row["client_id"],
            scopes=row["scopes"],
        ),
        row["created_at"],
        row["updated_at"],
    )
    if row["external_ref"]:
        app.external_ref = row["external_ref"]
    metadata = json.loads(row["metadata"])
    if metadata:
        json_format.ParseDict(metadata, app.metadata, ignore_unknown_fields=True)
    return app


def _metadata_json(metadata: provider_apps_pb2.ProviderAppMetadata) -> str:
    return json.dumps(json_format.MessageToDict(metadata))


class ProviderApps(provider_apps_pb2_grpc.ProviderAppServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def ListProviderApps(
        self, request: provider_apps_pb2.ListProviderAppsRequest, context: grpc.aio.ServicerContext
    ) -> provider_apps_pb2.ListProviderAppsResponse:
        # Open to frontend callers: the connect UI lists the apps on its Salesforce screen
        # (to send customers to the builder's package install URL). What it reads is public
        # at any OAuth authorize URL anyway, and the secret is never in the message.
        _, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        rows = await list_in_project(self.ctx.pool, "provider_apps", project)
        return provider_apps_pb2.ListProviderAppsResponse(
            provider_apps=[to_message(r) for r in rows]
        )

    async def CreateProviderApp(
        self, request: provider_apps_pb2.CreateProviderAppRequest, context: grpc.aio.ServicerContext
    ) -> provider_apps_pb2.ProviderApp:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        app = request.provider_app
        problems = _problems(app, UPDATABLE, "body.", self.ctx.catalog)
        if problems:
            await abort_invalid(context, problems)
        app_id = str(uuid.uuid4())
        sealed = seal_client_secret(self.ctx.secrets, app_id, app.client_secret)
        row = await self.ctx.pool.fetchrow(
            "INSERT INTO provider_apps (id, project_id, provider, client_id, "
            "client_secret_sealed, client_secret_key_id, scopes, external_ref, metadata) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) RETURNING *",
            uuid.UUID(app_id),
            uuid.UUID(project.id),
            app.provider,
            app.client_id.strip(),
            sealed.data,
            sealed.key_id,
            list(app.scopes),
            app.external_ref,
            _metadata_json(app.metadata),
        )
        return to_message(row)

    async def UpdateProviderApp(
        self, request: provider_apps_pb2.UpdateProviderAppRequest, context: grpc.aio.ServicerContext
    ) -> provider_apps_pb2.ProviderApp:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        fields = await check_update_mask(context, request.update_mask, UPDATABLE)
        current = await find_in_project(
            context, self.ctx.pool, "provider_apps", project, request.provider_app_id, KIND
        )
        app = request.provider_app
        problems = _problems(app, fields, "body.providerApp.", self.ctx.catalog)
        if problems:
            await abort_invalid(context, problems)
        sealed = (
            seal_client_secret(self.ctx.secrets, str(current["id"]), app.client_secret)
            if "clientSecret" in fields
            else Sealed(current["client_secret_key_id"], current["client_secret_sealed"])
        )
        row = await self.ctx.pool.fetchrow(
            "UPDATE provider_apps SET provider = $3, client_id = $4, client_secret_sealed = $5, "
            "client_secret_key_id = $6, scopes = $7, external_ref = $8, metadata = $9::jsonb, "
            "updated_at = now() WHERE project_id = $1 AND id = $2 RETURNING *",
            uuid.UUID(project.id),
            current["id"],
            app.provider if "provider" in fields else current["provider"],
            app.client_id.strip() if "clientId" in fields else current["client_id"],
            sealed.data,
            sealed.key_id,
            list(app.scopes) if "scopes" in fields else current["scopes"],
            app.external_ref if "externalRef" in fields else current["external_ref"],
            _metadata_json(app.metadata) if "metadata" in fields else current["metadata"],
        )
        if row is None:  # deleted meanwhile
            await abort_missing(context, KIND, request.provider_app_id)
        return to_message(row)

    async def DeleteProviderApp(
        self, request: provider_apps_pb2.DeleteProviderAppRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        await delete_in_project(
            context, self.ctx.pool, "provider_apps", project, request.provider_app_id, KIND
        )
        return empty_pb2.Empty()


def service(ctx: ApiContext) -> Service:
    return partially_built(
        provider_apps_pb2.DESCRIPTOR.services_by_name["ProviderAppService"],
        provider_apps_pb2_grpc.add_ProviderAppServiceServicer_to_server,
        ProviderApps(ctx),
        "",
    )
