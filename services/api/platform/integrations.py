"""Integrations and their revisions, deployed from amp.yaml.

`PUT .../integrations:batch` deploys a whole manifest (`sourceYaml`; zips are not
supported, there is no object store to upload them to). Everything is checked before
anything is written (services/domain/manifest.py: the typed parse, then the provider,
module, names, destinations, schedules and backfill periods); any problem refuses the
whole deploy with one issue per problem, named by its field path in the manifest
(`integrations[0].read.objects[1].schedule`) with the line in its detail. Then, in one
transaction, each integration is created or updated by name, with a new revision when its
content changed. A revision's content is the manifest's integration in the reference's
JSON (camelCase, as written in amp.yaml).

Removing a read object that installations read is destructive. Without `destructive=true`
the deploy is refused naming the object and the groups reading it; with it, each such
installation gets a new config, tied to the new revision, whose
`read.objects.<object>.disabled` is true: the reference's own switch that pauses scheduled
reads of an object and refuses reads of it on request, which the reads (issue #6) honour.
An installation reads an object when its latest config selects it (and has not disabled
it), or when the old revision read it for everyone (`enabled: always`).

Deploying and deleting are builder-only (`full` keys); listing and getting are open to
every principal of the project, as the install UI (frontend keys, customer JWTs) needs
the integration to build its forms, and so is a revision hydrated with a connection's
live field metadata (hydrate.py), for a caller that may see the connection.

This module is the servicer (auth, checking the manifest, answers); the deploy's writes
(revisions, refusals that protect installations, the destructive pause) are in
integration_deploys.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any, NoReturn

import asyncpg
import grpc
from ampmesh.manifest.v1 import manifest_pb2
from ampmesh.platform.v1 import integrations_pb2, integrations_pb2_grpc
from google.protobuf import empty_pb2

from services.api.auth import ProjectRow
from services.api.common import (
    abort_conflict,
    abort_invalid,
    abort_missing,
    timestamp,
    with_times,
)
from services.api.context import ApiContext
from services.api.manifest_parsing import ManifestCheckersBusy, check_manifest
from services.api.platform.hydrate import hydrated_revision
from services.api.platform.integration_deploys import Deployer, DeployRefused, add_revision
from services.api.reads import ReadsUnavailable, abort_reads_unavailable
from services.api.stored import (
    INTEGRATION_KIND,
    INTEGRATION_SELECT,
    find_integration,
    integration_content,
)
from services.domain.manifest import (
    SUPPORTED_SPEC_VERSIONS,
    ManifestError,
    ManifestIssue,
    ParsedManifest,
    validate_integration,
)
from services.runtime.errors import abort_invalid_argument, abort_with_reason
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built


def revision_message(
    revision_id: Any, spec_version: str, created_at: Any, content: str
) -> integrations_pb2.Revision:
    return integrations_pb2.Revision(
        id=str(revision_id),
        spec_version=spec_version,
        create_time=timestamp(created_at),
        content=integration_content(content),
    )


def to_message(row: asyncpg.Record) -> integrations_pb2.Integration:
    integration = with_times(
        integrations_pb2.Integration(
            id=str(row["id"]),
            project_id=str(row["project_id"]),
            name=row["name"],
            provider=row["provider"],
        ),
        row["created_at"],
        row["updated_at"],
    )
    if row["revision_id"] is not None:
        integration.latest_revision.CopyFrom(
            revision_message(
                row["revision_id"], row["spec_version"], row["revision_created_at"], row["content"]
            )
        )
    return integration


async def abort_manifest(
    context: Any, issues: Sequence[ManifestIssue], at: str = "body."
) -> NoReturn:
    """INVALID_ARGUMENT with one issue per manifest problem: named by its field path in the
    manifest (the whole source when it has none), the line and integration in the detail."""
    violations = [(f"{at}{i.path}" if i.path else f"{at}sourceYaml", i.detail) for i in issues]
    await abort_invalid_argument(
        context,
        "the manifest cannot be deployed: " + "; ".join(str(i) for i in issues),
        violations,
        reason="INVALID_MANIFEST",
    )


async def destination_names(conn: asyncpg.Connection | asyncpg.Pool, project_id: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT name FROM destinations WHERE project_id = $1", uuid.UUID(project_id)
    )
    return {r["name"] for r in rows}


class Integrations(integrations_pb2_grpc.IntegrationServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _existing(self, context: Any, project: ProjectRow, id_or_name: str) -> asyncpg.Record:
        row = await find_integration(self.ctx.pool, project.id, id_or_name)
        if row is None:
            await abort_missing(context, INTEGRATION_KIND, id_or_name)
        return row

    # --- reading ---------------------------------------------------------------------

    async def ListIntegrations(
        self, request: integrations_pb2.ListIntegrationsRequest, context: grpc.aio.ServicerContext
    ) -> integrations_pb2.ListIntegrationsResponse:
        _, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        rows = await self.ctx.pool.fetch(
            f"{INTEGRATION_SELECT} WHERE g.project_id = $1 ORDER BY g.created_at, g.id",
            uuid.UUID(project.id),
        )
        return integrations_pb2.ListIntegrationsResponse(integrations=[to_message(r) for r in rows])

    async def GetIntegration(
        self, request: integrations_pb2.GetIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> integrations_pb2.Integration:
        _, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        return to_message(await self._existing(context, project, request.integration_id_or_name))

    async def GetHydratedRevision(
        self,
        request: integrations_pb2.GetHydratedRevisionRequest,
        context: grpc.aio.ServicerContext,
    ) -> integrations_pb2.HydratedRevision:
        # Open to every principal that may see the connection (hydrate.py).
        return await hydrated_revision(self.ctx, request, context)

    # --- changing --------------------------------------------------------------------

    async def DeleteIntegration(
        self, request: integrations_pb2.DeleteIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        row = await self._existing(context, project, request.integration_id_or_name)
        # Installations, their configs and the revisions go with it (ON DELETE CASCADE).
        await self.ctx.pool.execute("DELETE FROM integrations WHERE id = $1", row["id"])
        return empty_pb2.Empty()

    async def CreateIntegration(
        self, request: integrations_pb2.CreateIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> integrations_pb2.Integration:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        given = request.integration
        revision = given.latest_revision
        content = manifest_pb2.Integration()
        content.CopyFrom(revision.content)
        problems: dict[str, str] = {}
        if not given.name:
            problems["body.name"] = "is required"
        if not given.provider:
            problems["body.provider"] = "is required: a provider name of the catalog"
        for field, value in (("name", given.name), ("provider", given.provider)):
            inner = getattr(content, field)
            if inner and value and inner != value:
                problems[f"body.latestRevision.content.{field}"] = (
                    f"is {inner!r} but the integration's {field} is {value!r}; they must match"
                )
            setattr(content, field, inner or value)
        if revision.spec_version not in SUPPORTED_SPEC_VERSIONS:
            problems["body.latestRevision.specVersion"] = (
                f"unsupported spec version {revision.spec_version!r}; supported: "
                f"{', '.join(SUPPORTED_SPEC_VERSIONS)}"
            )
        if problems:
            await abort_invalid(context, problems)
        destinations = await destination_names(self.ctx.pool, project.id)
        issues = validate_integration(
            content, self.ctx.catalog, destinations, at="latestRevision.content"
        )
        # A name or provider the body gave only at its top level is named there.
        given_at = {
            f"latestRevision.content.{f}": f
            for f in ("name", "provider")
            if not getattr(revision.content, f)
        }
        issues = [replace(i, path=given_at.get(i.path, i.path)) for i in issues]
        if issues:
            await abort_manifest(context, issues)
        try:
            async with self.ctx.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "INSERT INTO integrations (project_id, name, provider) VALUES ($1, $2, $3) "
                    "RETURNING id",
                    uuid.UUID(project.id),
                    content.name,
                    content.provider,
                )
                await add_revision(conn, row["id"], revision.spec_version, content)
        except asyncpg.UniqueViolationError:
            await abort_conflict(context, f"an integration named {content.name!r} already exists")
        return to_message(await self._existing(context, project, str(row["id"])))

    async def BatchUpsertIntegrations(
        self,
        request: integrations_pb2.BatchUpsertIntegrationsRequest,
        context: grpc.aio.ServicerContext,
    ) -> integrations_pb2.BatchUpsertIntegrationsResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        destinations = await destination_names(self.ctx.pool, project.id)
        parsed, issues = await self._check_source(context, request.source, destinations)
        if issues:
            await abort_manifest(context, issues)
        targets = list(enumerate(parsed.manifest.integrations))
        ids = await self._deploy(
            context, project, parsed, targets, request.destructive, always_new_revision=False
        )
        rows = [await self._existing(context, project, str(i)) for i in ids]
        return integrations_pb2.BatchUpsertIntegrationsResponse(
            integrations=[to_message(r) for r in rows]
        )

    async def CreateRevision(
        self, request: integrations_pb2.CreateRevisionRequest, context: grpc.aio.ServicerContext
    ) -> integrations_pb2.Revision:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        current = await self._existing(context, project, request.integration_id)
        destinations = await destination_names(self.ctx.pool, project.id)
        parsed, problems = await self._check_source(context, request.source, destinations)
        targets = [
            (index, integration)
            for index, integration in enumerate(parsed.manifest.integrations)
            if integration.name == current["name"]
        ]
        if not targets:
            declared = ", ".join(repr(i.name) for i in parsed.manifest.integrations)
            await abort_invalid(
                context,
                {
                    "body.sourceYaml": f"declares no integration named {current['name']!r} "
                    f"(it declares {declared})"
                },
            )
        issues = [i for i in problems if i.integration in (None, current["name"])]
        if issues:
            await abort_manifest(context, issues)
        await self._deploy(
            context, project, parsed, targets[:1], request.destructive, always_new_revision=True
        )
        row = await self._existing(context, project, str(current["id"]))
        return to_message(row).latest_revision

    # --- deploying -------------------------------------------------------------------

    async def _check_source(
        self,
        context: Any,
        source: integrations_pb2.IntegrationSource,
        destinations: Collection[str],
    ) -> tuple[ParsedManifest, list[ManifestIssue]]:
        """The parsed manifest and what validation finds wrong with it, worked out off the
        event loop (services/api/manifest_parsing.py); a source that cannot be parsed ends
        the call."""
        if source.source_zip_url:
            await abort_invalid(context, {"body.sourceZipUrl": "not supported; send sourceYaml"})
        if not source.source_yaml.strip():
            await abort_invalid(context, {"body.sourceYaml": "is required: the amp.yaml text"})
        try:
            return await check_manifest(source.source_yaml, self.ctx.catalog, destinations)
        except ManifestError as error:
            await abort_manifest(context, error.issues)
        except ManifestCheckersBusy:
            await abort_with_reason(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "manifests cannot be checked right now (every checker is busy); "
                "nothing was changed, try again in a few seconds",
                "MANIFEST_CHECKERS_BUSY",
            )

    async def _deploy(
        self,
        context: Any,
        project: ProjectRow,
        parsed: ParsedManifest,
        targets: Sequence[tuple[int, manifest_pb2.Integration]],
        destructive: bool,
        *,
        always_new_revision: bool,
    ) -> list[uuid.UUID]:
        """Creates or updates each target integration (integration_deploys.py); their ids.
        Refuses (nothing written) when a change would break installations."""
        try:
            return await Deployer(self.ctx.pool, self.ctx.reads).deploy(
                project.id,
                parsed,
                targets,
                destructive,
                always_new_revision=always_new_revision,
            )
        except DeployRefused as refused:
            await abort_manifest(context, refused.issues)
        except ReadsUnavailable as error:
            await abort_reads_unavailable(context, error)


def service(ctx: ApiContext) -> Service:
    return partially_built(
        integrations_pb2.DESCRIPTOR.services_by_name["IntegrationService"],
        integrations_pb2_grpc.add_IntegrationServiceServicer_to_server,
        Integrations(ctx),
        "",
    )
