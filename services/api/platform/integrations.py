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
the integration to build its forms.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import asyncpg
import grpc
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.platform.v1 import integrations_pb2, integrations_pb2_grpc
from google.protobuf import empty_pb2, json_format

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
from services.api.reads import PAUSED_BY_DEPLOY, ReadsUnavailable, abort_reads_unavailable
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

KIND = INTEGRATION_KIND
# Who saved a config that a destructive deploy wrote (Config.created_by).
DEPLOY_AUTHOR = "api:deploy"
_SELECT = INTEGRATION_SELECT


def content_json(integration: manifest_pb2.Integration) -> str:
    """A revision's content as stored: the reference's JSON of the manifest entry."""
    return json.dumps(json_format.MessageToDict(integration), sort_keys=True)


content_message = integration_content


def revision_message(
    revision_id: Any, spec_version: str, created_at: Any, content: str
) -> integrations_pb2.Revision:
    return integrations_pb2.Revision(
        id=str(revision_id),
        spec_version=spec_version,
        create_time=timestamp(created_at),
        content=content_message(content),
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


find = find_integration


async def destination_names(conn: asyncpg.Connection | asyncpg.Pool, project_id: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT name FROM destinations WHERE project_id = $1", uuid.UUID(project_id)
    )
    return {r["name"] for r in rows}


class _Refused(Exception):
    """Problems found inside the deploy transaction: raised to roll it back."""

    def __init__(self, issues: list[ManifestIssue]) -> None:
        super().__init__("deploy refused")
        self.issues = issues


@dataclass(frozen=True)
class _Reader:
    """An installation that reads an object the new revision removes."""

    installation_id: uuid.UUID
    group_ref: str
    created_by: str
    content: dict[str, Any]


def _reads(content: dict[str, Any], object_name: str) -> bool:
    read = (content.get("read") or {}).get("objects") or {}
    entry = read.get(object_name)
    return isinstance(entry, dict) and not entry.get("disabled", False)


class Integrations(integrations_pb2_grpc.IntegrationServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _existing(self, context: Any, project: ProjectRow, id_or_name: str) -> asyncpg.Record:
        row = await find(self.ctx.pool, project.id, id_or_name)
        if row is None:
            await abort_missing(context, KIND, id_or_name)
        return row

    # --- reading ---------------------------------------------------------------------

    async def ListIntegrations(
        self, request: integrations_pb2.ListIntegrationsRequest, context: grpc.aio.ServicerContext
    ) -> integrations_pb2.ListIntegrationsResponse:
        _, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        rows = await self.ctx.pool.fetch(
            f"{_SELECT} WHERE g.project_id = $1 ORDER BY g.created_at, g.id",
            uuid.UUID(project.id),
        )
        return integrations_pb2.ListIntegrationsResponse(integrations=[to_message(r) for r in rows])

    async def GetIntegration(
        self, request: integrations_pb2.GetIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> integrations_pb2.Integration:
        _, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        return to_message(await self._existing(context, project, request.integration_id_or_name))

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
                await self._add_revision(conn, row["id"], revision.spec_version, content)
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
        """Creates or updates each target integration in one transaction; their ids.
        Refuses (nothing written) when a change would break installations."""
        spec_version = parsed.manifest.spec_version
        try:
            async with self.ctx.pool.acquire() as conn, conn.transaction():
                ids: list[uuid.UUID] = []
                issues: list[ManifestIssue] = []
                for index, integration in targets:
                    at = f"integrations[{index}]"
                    integration_id, problems = await self._upsert(
                        conn,
                        project,
                        integration,
                        spec_version,
                        destructive,
                        always_new_revision,
                        at,
                        parsed,
                    )
                    ids.append(integration_id)
                    issues += problems
                if issues:
                    raise _Refused(issues)
        except _Refused as refused:
            await abort_manifest(context, refused.issues)
        except ReadsUnavailable as error:
            await abort_reads_unavailable(context, error)
        return ids

    async def _upsert(
        self,
        conn: asyncpg.Connection,
        project: ProjectRow,
        integration: manifest_pb2.Integration,
        spec_version: str,
        destructive: bool,
        always_new_revision: bool,
        at: str,
        parsed: ParsedManifest,
    ) -> tuple[uuid.UUID, list[ManifestIssue]]:
        def issue(path: str, message: str) -> ManifestIssue:
            return ManifestIssue(integration.name, path, parsed.lines.line(path), message)

        row = await find(conn, project.id, integration.name, for_update=True)
        if row is None:
            created = await conn.fetchrow(
                # clock_timestamp: lists follow creation order, even within one deploy.
                "INSERT INTO integrations (project_id, name, provider, created_at) "
                "VALUES ($1, $2, $3, clock_timestamp()) "
                "ON CONFLICT (project_id, name) DO NOTHING RETURNING id",
                uuid.UUID(project.id),
                integration.name,
                integration.provider,
            )
            if created is not None:
                await self._add_revision(conn, created["id"], spec_version, integration)
                return created["id"], []
            # Created by a concurrent deploy since we looked: update it like any other.
            row = await find(conn, project.id, integration.name, for_update=True)
            assert row is not None
        integration_id: uuid.UUID = row["id"]
        old = content_message(row["content"]) if row["content"] is not None else None
        unchanged = (
            old is not None
            and row["spec_version"] == spec_version
            and content_json(old) == content_json(integration)
        )
        if unchanged and not always_new_revision:
            return integration_id, []
        readers = await self._readers(conn, integration_id)
        problems: list[ManifestIssue] = []
        if row["provider"] != integration.provider and readers:
            problems.append(
                issue(
                    f"{at}.provider",
                    f"integration {integration.name!r} is installed with provider "
                    f"{row['provider']!r}; delete the integration (and its installations) "
                    "before changing its provider",
                )
            )
        paused = self._removed_reads(old, integration, readers)
        if paused and not destructive:
            for object_name, groups in paused.items():
                problems.append(
                    issue(
                        f"{at}.read.objects",
                        f"object {object_name!r} is no longer declared but installations "
                        f"read it (groups {', '.join(sorted(g.group_ref for g in groups))}); "
                        "deploy with destructive=true to pause those reads",
                    )
                )
        if problems:
            return integration_id, problems
        revision_id = await self._add_revision(conn, integration_id, spec_version, integration)
        if integration.provider != row["provider"]:
            await conn.execute(
                "UPDATE integrations SET provider = $2 WHERE id = $1",
                integration_id,
                integration.provider,
            )
        await self._pause(conn, revision_id, paused)
        return integration_id, []

    @staticmethod
    async def _add_revision(
        conn: asyncpg.Connection,
        integration_id: uuid.UUID,
        spec_version: str,
        content: manifest_pb2.Integration,
    ) -> uuid.UUID:
        revision_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO revisions (integration_id, spec_version, content, created_at) "
            "VALUES ($1, $2, $3::jsonb, clock_timestamp()) RETURNING id",
            integration_id,
            spec_version,
            content_json(content),
        )
        await conn.execute(
            "UPDATE integrations SET latest_revision_id = $2, updated_at = clock_timestamp() "
            "WHERE id = $1",
            integration_id,
            revision_id,
        )
        return revision_id

    @staticmethod
    async def _readers(conn: asyncpg.Connection, integration_id: uuid.UUID) -> list[_Reader]:
        """Every installation of the integration with its latest config, locked so that
        no config is saved beside the one a destructive deploy writes."""
        rows = await conn.fetch(
            """
            SELECT i.id, i.group_ref, c.created_by, c.content
            FROM installations i
            JOIN LATERAL (
                SELECT created_by, content FROM configs WHERE installation_id = i.id
                ORDER BY created_at DESC, id DESC LIMIT 1
            ) c ON true
            WHERE i.integration_id = $1
            ORDER BY i.created_at, i.id
            FOR UPDATE OF i
            """,
            integration_id,
        )
        return [
            _Reader(r["id"], r["group_ref"], r["created_by"], json.loads(r["content"]))
            for r in rows
        ]

    @staticmethod
    def _removed_reads(
        old: manifest_pb2.Integration | None,
        new: manifest_pb2.Integration,
        readers: Collection[_Reader],
    ) -> dict[str, list[_Reader]]:
        """The read objects old declares and new does not, with the installations that
        read each."""
        if old is None:
            return {}
        kept = {o.object_name for o in new.read.objects}
        removed: dict[str, list[_Reader]] = {}
        for read in old.read.objects:
            if read.object_name in kept:
                continue
            for_everyone = read.enabled == "always"
            who = [
                r
                for r in readers
                if _reads(r.content, read.object_name)
                or (for_everyone and not _disabled(r.content, read.object_name))
            ]
            if who:
                removed[read.object_name] = who
        return removed

    async def _pause(
        self, conn: asyncpg.Connection, revision_id: uuid.UUID, paused: dict[str, list[_Reader]]
    ) -> None:
        """A new config per installation, with the removed objects' reads disabled and
        their schedules paused."""
        contents: dict[uuid.UUID, dict[str, Any]] = {}
        for object_name, readers in paused.items():
            for reader in readers:
                if self.ctx.reads is not None:
                    await self.ctx.reads.pause(
                        conn,
                        str(reader.installation_id),
                        [object_name],
                        f"object {object_name!r} is no longer declared (destructive deploy)",
                        reason=PAUSED_BY_DEPLOY,
                    )
                content = contents.setdefault(reader.installation_id, reader.content)
                objects = content.setdefault("read", {}).setdefault("objects", {})
                entry = objects.setdefault(object_name, {"objectName": object_name})
                entry["disabled"] = True
        for installation_id, content in contents.items():
            # Parse through the contract so that what is stored stays a valid ConfigContent.
            checked = json_format.ParseDict(content, config_pb2.ConfigContent())
            await conn.execute(
                "INSERT INTO configs (installation_id, revision_id, created_by, content, "
                "created_at) VALUES ($1, $2, $3, $4::jsonb, clock_timestamp())",
                installation_id,
                revision_id,
                DEPLOY_AUTHOR,
                json.dumps(json_format.MessageToDict(checked)),
            )
            await conn.execute(
                "UPDATE installations SET updated_at = clock_timestamp() WHERE id = $1",
                installation_id,
            )


def _disabled(content: dict[str, Any], object_name: str) -> bool:
    entry = ((content.get("read") or {}).get("objects") or {}).get(object_name)
    return isinstance(entry, dict) and bool(entry.get("disabled", False))


def service(ctx: ApiContext) -> Service:
    return partially_built(
        integrations_pb2.DESCRIPTOR.services_by_name["IntegrationService"],
        integrations_pb2_grpc.add_IntegrationServiceServicer_to_server,
        Integrations(ctx),
        "hydrated revisions need live provider metadata (object and field descriptions) "
        "through a connection; no issue is filed for them yet",
        gate=ctx.auth.authenticate,
    )
