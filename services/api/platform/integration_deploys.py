"""Deploying integrations: creating or updating each by name, with a new revision when
its content changed, and what a destructive deploy does to installations.

One deploy is one transaction. Removing a read object that installations read is
destructive: without `destructive` the deploy is refused (`DeployRefused`, naming the
object and the groups reading it); with it, each such installation gets a new config, tied
to the new revision, whose `read.objects.<object>.disabled` is true, and the reads of those
objects are paused (services/api/reads.py). Changing the provider of an installed
integration is refused. The servicer (integrations.py) checks the manifest first and
turns these refusals into INVALID_ARGUMENT.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from google.protobuf import json_format

from services.api.reads import PAUSED_BY_DEPLOY, Reads
from services.api.stored import find_integration, integration_content
from services.domain.manifest import ManifestIssue, ParsedManifest

# Who saved a config that a destructive deploy wrote (Config.created_by).
DEPLOY_AUTHOR = "api:deploy"


def content_json(integration: manifest_pb2.Integration) -> str:
    """A revision's content as stored: the reference's JSON of the manifest entry."""
    return json.dumps(json_format.MessageToDict(integration), sort_keys=True)


class DeployRefused(Exception):
    """Problems found inside the deploy transaction: raised to roll it back."""

    def __init__(self, issues: list[ManifestIssue]) -> None:
        super().__init__("deploy refused")
        self.issues = issues


async def add_revision(
    conn: asyncpg.Connection,
    integration_id: uuid.UUID,
    spec_version: str,
    content: manifest_pb2.Integration,
) -> uuid.UUID:
    """A new revision of the integration, made its latest."""
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


@dataclass(frozen=True)
class Reader:
    """An installation that reads an object the new revision removes."""

    installation_id: uuid.UUID
    group_ref: str
    created_by: str
    content: dict[str, Any]


def _reads(content: dict[str, Any], object_name: str) -> bool:
    read = (content.get("read") or {}).get("objects") or {}
    entry = read.get(object_name)
    return isinstance(entry, dict) and not entry.get("disabled", False)


class Deployer:
    """Writes deploys. `reads` is None when the api runs without Temporal (then no read
    is paused)."""

    def __init__(self, pool: asyncpg.Pool, reads: Reads | None) -> None:
        self.pool = pool
        self.reads = reads

    async def deploy(
        self,
        project_id: str,
        parsed: ParsedManifest,
        targets: Sequence[tuple[int, manifest_pb2.Integration]],
        destructive: bool,
        *,
        always_new_revision: bool,
    ) -> list[uuid.UUID]:
        """Creates or updates each target integration in one transaction; their ids.
        DeployRefused (nothing written) when a change would break installations;
        ReadsUnavailable when reads to pause cannot be reached."""
        spec_version = parsed.manifest.spec_version
        async with self.pool.acquire() as conn, conn.transaction():
            ids: list[uuid.UUID] = []
            issues: list[ManifestIssue] = []
            for index, integration in targets:
                at = f"integrations[{index}]"
                integration_id, problems = await self._upsert(
                    conn,
                    project_id,
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
                raise DeployRefused(issues)
        return ids

    async def _upsert(
        self,
        conn: asyncpg.Connection,
        project_id: str,
        integration: manifest_pb2.Integration,
        spec_version: str,
        destructive: bool,
        always_new_revision: bool,
        at: str,
        parsed: ParsedManifest,
    ) -> tuple[uuid.UUID, list[ManifestIssue]]:
        def issue(path: str, message: str) -> ManifestIssue:
            return ManifestIssue(integration.name, path, parsed.lines.line(path), message)

        row = await find_integration(conn, project_id, integration.name, for_update=True)
        if row is None:
            created = await conn.fetchrow(
                # clock_timestamp: lists follow creation order, even within one deploy.
                "INSERT INTO integrations (project_id, name, provider, created_at) "
                "VALUES ($1, $2, $3, clock_timestamp()) "
                "ON CONFLICT (project_id, name) DO NOTHING RETURNING id",
                uuid.UUID(project_id),
                integration.name,
                integration.provider,
            )
            if created is not None:
                await add_revision(conn, created["id"], spec_version, integration)
                return created["id"], []
            # Created by a concurrent deploy since we looked: update it like any other.
            row = await find_integration(conn, project_id, integration.name, for_update=True)
            assert row is not None
        integration_id: uuid.UUID = row["id"]
        old = integration_content(row["content"]) if row["content"] is not None else None
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
        revision_id = await add_revision(conn, integration_id, spec_version, integration)
        if integration.provider != row["provider"]:
            await conn.execute(
                "UPDATE integrations SET provider = $2 WHERE id = $1",
                integration_id,
                integration.provider,
            )
        await self._pause(conn, revision_id, paused)
        return integration_id, []

    @staticmethod
    async def _readers(conn: asyncpg.Connection, integration_id: uuid.UUID) -> list[Reader]:
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
            Reader(r["id"], r["group_ref"], r["created_by"], json.loads(r["content"])) for r in rows
        ]

    @staticmethod
    def _removed_reads(
        old: manifest_pb2.Integration | None,
        new: manifest_pb2.Integration,
        readers: Collection[Reader],
    ) -> dict[str, list[Reader]]:
        """The read objects old declares and new does not, with the installations that
        read each."""
        if old is None:
            return {}
        kept = {o.object_name for o in new.read.objects}
        removed: dict[str, list[Reader]] = {}
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
        self, conn: asyncpg.Connection, revision_id: uuid.UUID, paused: dict[str, list[Reader]]
    ) -> None:
        """A new config per installation, with the removed objects' reads disabled and
        their schedules paused."""
        contents: dict[uuid.UUID, dict[str, Any]] = {}
        for object_name, readers in paused.items():
            for reader in readers:
                if self.reads is not None:
                    await self.reads.pause(
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
