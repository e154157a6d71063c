"""Installations: one integration installed for one customer group, with its configs.

An installation's config is kept as a history: every change (create, PATCH, JSON Patch, a
destructive deploy) saves a new `configs` row tied to the integration's latest revision,
and the newest row is the installation's config. Config content is the reference's
ConfigContent JSON, checked against the latest revision: every object it configures must
be declared in the same section of the revision, destinations must exist in the project,
schedules and backfill periods follow the manifest's rules.

Who may call: builders (`full` keys) for every group; frontend keys too (the install UI
names the group itself); customer JWTs only for their own group (other groups' are
NOT_FOUND, and lists are confined to it).

Every installation uses one connection: a connection of its group to the integration's
provider. Create names it (`connectionId`) or, as the reference does, leaves it out when
the group has exactly one such connection; PATCH `connectionId` switches to another one.
Responses show the connection as GET .../connections/{id} does, without credentials.
`skipSampling` is accepted and has nothing to skip: installing reads no sample (the reads
of issue #6 start a backfill or a schedule, never a sample).

Every change (create, update of the config or the connection, patch, delete) is
announced by `installation.created|updated|deleted` (installation_events.py), staged in
the api's outbox by the transaction that makes it: a deployment without an event bus
refuses changes (UNAVAILABLE), as writes do. The same transaction keeps the
installation's `subscriptions` row in step, and SyncSubscriptions is started after commit
(subscriptions.py, which also says when a deletion leaves the connection to the worker).

This module is the servicer: auth, loading and locking rows, transactions, reads that
follow a saved config. What it decides without I/O lives beside it: config_checks.py
(content against the revision), update_masks.py (what each update mask changes),
config_patch.py (JSON Patch of one object's config); installation_rows.py reads and shows
an installation's row and saves configs. It stays one module of about 600 lines:
the RPCs share the helpers that find, lock and choose rows (integration, installation,
group filter, connection), and splitting those off would only move the class apart.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
from ampmesh.manifest.v1 import config_pb2
from ampmesh.platform.v1 import (
    installations_pb2,
    installations_pb2_grpc,
)
from google.protobuf import empty_pb2, json_format

from services.api.auth import Principal, ProjectRow, is_uuid
from services.api.common import (
    abort_conflict,
    abort_invalid,
    abort_missing,
)
from services.api.context import ApiContext
from services.api.platform import installation_events, integrations, subscriptions
from services.api.platform.config_checks import SECTIONS, ContentChecker
from services.api.platform.config_patch import PatchError, apply_changes
from services.api.platform.connection_removal import remove_if_unused
from services.api.platform.installation_rows import (
    INSTALLATION_SELECT,
    save_config,
    to_message,
)
from services.api.platform.update_masks import (
    CONNECTION_AT,
    Update,
    apply_masks,
    mask_problems,
)
from services.api.reads import InstallationFacts, ReadsUnavailable, abort_reads_unavailable
from services.api.stored import (
    INSTALLATION_KIND,
    INTEGRATION_KIND,
    config_content,
    find_integration,
    integration_content,
)
from services.runtime.errors import abort_not_found, abort_with_reason
from services.runtime.events import EventBus
from services.runtime.logs import get_logger
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

CREATE_AUTHOR = "api:create-installation"
PATCH_AUTHOR = "api:patch-config-content"
_log = get_logger("ampmesh.api.installations")

# --- the service ---------------------------------------------------------------------------


class Installations(installations_pb2_grpc.InstallationServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _integration(
        self, context: Any, project: ProjectRow, integration_id: str
    ) -> asyncpg.Record:
        row = await find_integration(self.ctx.pool, project.id, integration_id)
        if row is None:
            await abort_missing(context, INTEGRATION_KIND, integration_id)
        return row

    async def _installation(
        self,
        context: Any,
        conn: asyncpg.Connection | asyncpg.Pool,
        principal: Principal,
        integration: asyncpg.Record,
        installation_id: str,
        *,
        for_update: bool = False,
    ) -> asyncpg.Record:
        row = None
        if is_uuid(installation_id):
            lock = " FOR UPDATE OF i" if for_update else ""
            row = await conn.fetchrow(
                f"{INSTALLATION_SELECT} WHERE i.integration_id = $1 AND i.id = $2{lock}",
                integration["id"],
                uuid.UUID(installation_id),
            )
        if row is None:
            await abort_missing(context, INSTALLATION_KIND, installation_id)
        await self.ctx.auth.require_group(
            context, principal, row["group_ref"], kind=INSTALLATION_KIND, name=installation_id
        )
        return row

    async def _group_filter(
        self, context: Any, principal: Principal, group_ref: str | None
    ) -> str | None:
        if group_ref is not None:
            await self.ctx.auth.require_group(context, principal, group_ref)
            return group_ref
        return principal.group_ref

    # --- reading ---------------------------------------------------------------------

    async def ListInstallations(
        self,
        request: installations_pb2.ListInstallationsRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.ListInstallationsResponse:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        group = await self._group_filter(
            context, principal, request.group_ref if request.HasField("group_ref") else None
        )
        rows = await self.ctx.pool.fetch(
            f"{INSTALLATION_SELECT} WHERE i.integration_id = $1 "
            "AND ($2::text IS NULL OR i.group_ref = $2) ORDER BY i.created_at, i.id",
            integration["id"],
            group,
        )
        return installations_pb2.ListInstallationsResponse(
            installations=[to_message(r) for r in rows]
        )

    async def ListInstallationsForProject(
        self,
        request: installations_pb2.ListInstallationsForProjectRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.ListInstallationsForProjectResponse:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        group = await self._group_filter(
            context, principal, request.group_ref if request.HasField("group_ref") else None
        )
        rows = await self.ctx.pool.fetch(
            f"{INSTALLATION_SELECT} WHERE i.project_id = $1 "
            "AND ($2::text IS NULL OR i.group_ref = $2) ORDER BY i.created_at, i.id",
            uuid.UUID(project.id),
            group,
        )
        return installations_pb2.ListInstallationsForProjectResponse(
            installations=[to_message(r) for r in rows]
        )

    async def GetInstallation(
        self, request: installations_pb2.GetInstallationRequest, context: grpc.aio.ServicerContext
    ) -> installations_pb2.Installation:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        row = await self._installation(
            context, self.ctx.pool, principal, integration, request.installation_id
        )
        return to_message(row)

    # --- the connection an installation uses ------------------------------------------

    async def _named_connection(
        self,
        context: Any,
        project: ProjectRow,
        integration: asyncpg.Record,
        group_ref: str,
        connection_id: str,
        at: str,
        problems: dict[str, str],
    ) -> uuid.UUID | None:
        """connection_id if it names a connection of group_ref to the integration's
        provider; else None, with the reason in problems[at]."""
        row = None
        if is_uuid(connection_id):
            row = await self.ctx.pool.fetchrow(
                "SELECT id, provider, group_ref FROM connections WHERE project_id = $1 AND id = $2",
                uuid.UUID(project.id),
                uuid.UUID(connection_id),
            )
        # Another group's connection is described as missing: its existence is not the
        # caller's to learn (a customer JWT sees only its own group).
        if row is None or row["group_ref"] != group_ref:
            problems[at] = f"names no connection of group {group_ref!r}"
            return None
        if row["provider"] != integration["provider"]:
            problems[at] = (
                f"names a {row['provider']} connection; integration {integration['name']!r} "
                f"needs a {integration['provider']} connection"
            )
            return None
        found: uuid.UUID = row["id"]
        return found

    async def _connection(
        self,
        context: Any,
        project: ProjectRow,
        integration: asyncpg.Record,
        group_ref: str,
        connection_id: str,
        at: str,
    ) -> uuid.UUID:
        """The connection a new installation uses: the one named, or the group's only
        connection to the integration's provider; INVALID_ARGUMENT naming at otherwise."""
        problems: dict[str, str] = {}
        if connection_id:
            found = await self._named_connection(
                context, project, integration, group_ref, connection_id, at, problems
            )
            if found is None:
                await abort_invalid(context, problems)
            return found
        provider = integration["provider"]
        ids = await self.ctx.pool.fetch(
            "SELECT id FROM connections WHERE project_id = $1 AND group_ref = $2 "
            "AND provider = $3 ORDER BY created_at, id",
            uuid.UUID(project.id),
            group_ref,
            provider,
        )
        if len(ids) != 1:
            why = (
                f"group {group_ref!r} has no {provider} connection: connect one first "
                "(oauth-connect or connections:generate)"
                if not ids
                else f"group {group_ref!r} has {len(ids)} {provider} connections: name one"
            )
            await abort_invalid(context, {at: f"is required: {why}"})
        only: uuid.UUID = ids[0]["id"]
        return only

    # --- changing --------------------------------------------------------------------

    async def CreateInstallation(
        self,
        request: installations_pb2.CreateInstallationRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.Installation:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        given = request.installation
        problems: dict[str, str] = {}
        if not given.group_ref.strip():
            problems["body.groupRef"] = "is required: your identifier of the customer group"
        else:
            await self.ctx.auth.require_group(context, principal, given.group_ref)
        if not given.HasField("config") or not given.config.HasField("content"):
            problems["body.config.content"] = "is required: the installation's initial config"
        if problems:
            await abort_invalid(context, problems)
        events = await self._events(context)
        connection_id = await self._connection(
            context,
            project,
            integration,
            given.group_ref,
            given.connection_id,
            "body.connectionId",
        )
        content = config_pb2.ConfigContent()
        content.CopyFrom(given.config.content)
        content.provider = content.provider or integration["provider"]
        revision = integration_content(integration["content"])
        destinations = await integrations.destination_names(self.ctx.pool, project.id)
        checker = ContentChecker(revision, destinations, "body.config.content.", {})
        checker.check_all(content)
        if checker.problems:
            await abort_invalid(context, checker.problems)
        created_by = given.config.created_by or (
            f"consumer:{principal.consumer_ref}" if principal.consumer_ref else CREATE_AUTHOR
        )
        try:
            async with self.ctx.pool.acquire() as conn, conn.transaction():
                # The group's name is the one its connection carries (the request names
                # only the group's ref); the ref when the connection has none.
                installation_id = await conn.fetchval(
                    "INSERT INTO installations (project_id, integration_id, group_ref, "
                    "group_name, created_by, connection_id) VALUES ($1, $2, $3, "
                    "COALESCE((SELECT NULLIF(group_name, '') FROM connections "
                    "WHERE id = $5), $3), $4, $5) RETURNING id",
                    uuid.UUID(project.id),
                    integration["id"],
                    given.group_ref,
                    created_by,
                    connection_id,
                )
                await save_config(
                    conn, installation_id, integration["revision_id"], created_by, content
                )
                await self._reads_follow(
                    context, conn, project, integration, installation_id, connection_id, content
                )
                row = await self._installation(
                    context, conn, principal, integration, str(installation_id)
                )
                await events.stage(conn, installation_events.created(row, integration))
                sync = await self._subscriptions_follow(conn, project, integration, row, content)
        except asyncpg.UniqueViolationError:
            await abort_conflict(
                context,
                f"group {given.group_ref!r} already has an installation of integration "
                f"{integration['name']!r}",
            )
        events.kick()
        await subscriptions.start(self.ctx, sync)
        return to_message(row)

    async def UpdateInstallation(
        self,
        request: installations_pb2.UpdateInstallationRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.Installation:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        masks = tuple(request.update.update_mask)
        if problems := mask_problems(masks):
            await abort_invalid(context, problems)
        given = request.update.installation
        events = await self._events(context)
        sync = None
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            row = before = await self._installation(
                context, conn, principal, integration, request.installation_id, for_update=True
            )
            # The connection named is looked up first, so that the masks' functions do
            # no I/O; what it finds goes where the connectionId mask puts it.
            connection: uuid.UUID | str | None = None
            if "connectionId" in masks and given.connection_id:
                found: dict[str, str] = {}
                connection = await self._named_connection(
                    context,
                    project,
                    integration,
                    row["group_ref"],
                    given.connection_id,
                    CONNECTION_AT,
                    found,
                )
                connection = connection or found[CONNECTION_AT]
            revision = integration_content(integration["content"])
            destinations = await integrations.destination_names(conn, project.id)
            update = Update(
                given=given,
                content=(
                    config_content(row["content"]) if row["content"] else config_pb2.ConfigContent()
                ),
                checker=ContentChecker(
                    revision, destinations, "body.installation.config.content.", {}
                ),
                connection=connection,
            )
            apply_masks(update, masks)
            content, connection_id = update.content, update.connection_id
            config_changed, created_by = update.config_changed, update.created_by
            if update.problems:
                await abort_invalid(context, update.problems)
            if connection_id is not None:
                await conn.execute(
                    "UPDATE installations SET connection_id = $2, updated_at = clock_timestamp() "
                    "WHERE id = $1",
                    row["id"],
                    connection_id,
                )
            if config_changed:
                await save_config(conn, row["id"], integration["revision_id"], created_by, content)
            if config_changed or connection_id is not None:
                await self._reads_follow(
                    context,
                    conn,
                    project,
                    integration,
                    row["id"],
                    connection_id or row["connection_id"],
                    content,
                )
            row = await self._installation(
                context, conn, principal, integration, request.installation_id
            )
            switched = connection_id is not None and connection_id != before["connection_id"]
            # A mask that changes nothing (the same connection again) announces nothing.
            if config_changed or switched:
                await events.stage(
                    conn,
                    installation_events.updated(
                        before, row, integration, config_saved=config_changed
                    ),
                )
                sync = await self._subscriptions_follow(conn, project, integration, row, content)
        events.kick()
        await subscriptions.start(self.ctx, sync)
        return to_message(row)

    async def DeleteInstallation(
        self,
        request: installations_pb2.DeleteInstallationRequest,
        context: grpc.aio.ServicerContext,
    ) -> empty_pb2.Empty:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        row = await self._installation(
            context, self.ctx.pool, principal, integration, request.installation_id
        )
        events = await self._events(context)
        # Its configs and read state go with it (ON DELETE CASCADE); so does its
        # connection when no other installation uses it, as the reference does
        # (connection_removal.py), unless its provider-side subscriptions still need the
        # connection's token to be removed (subscriptions.py: the worker removes it then).
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            # Locked and read again: the notification shows the config that is deleted.
            row = await self._installation(
                context, conn, principal, integration, request.installation_id, for_update=True
            )
            if self.ctx.reads is not None:
                try:
                    await self.ctx.reads.installation_deleted(conn, str(row["id"]))
                except ReadsUnavailable as error:
                    await abort_reads_unavailable(context, error)
            await events.stage(conn, installation_events.deleted(row, integration))
            sync = await subscriptions.installation_deleted(conn, project.id, row["id"])
            await conn.execute("DELETE FROM installations WHERE id = $1", row["id"])
        events.kick()
        await subscriptions.start(self.ctx, sync)
        if sync is not None and sync.keeps_connection:
            _log.info(
                "connection kept for the removal of the installation's subscriptions",
                installation_id=str(row["id"]),
                connection_id=str(row["connection_id"]),
            )
            return empty_pb2.Empty()
        revocation = await remove_if_unused(self.ctx, project.id, row["connection_id"])
        if revocation:
            await context.send_initial_metadata(revocation)
        return empty_pb2.Empty()

    async def PatchObjectConfigContent(
        self,
        request: installations_pb2.PatchObjectConfigContentRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.Installation:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        problems: dict[str, str] = {}
        if bool(request.group_ref) == bool(request.installation_id):
            problems["body.groupRef"] = "set exactly one of groupRef and installationId"
        if request.action not in SECTIONS:
            problems["body.action"] = f"must be one of {', '.join(SECTIONS)}"
        if not request.changes:
            problems["body.changes"] = "is required: at least one JSON Patch operation"
        if problems:
            await abort_invalid(context, problems)
        section, name = request.action, request.object_name
        events = await self._events(context)
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            installation_id = request.installation_id
            if request.group_ref:
                await self.ctx.auth.require_group(context, principal, request.group_ref)
                found = await conn.fetchval(
                    "SELECT id FROM installations WHERE integration_id = $1 AND group_ref = $2",
                    integration["id"],
                    request.group_ref,
                )
                if found is None:
                    await abort_not_found(
                        context,
                        INSTALLATION_KIND,
                        request.group_ref,
                        f"group {request.group_ref!r} has no installation of integration "
                        f"{integration['name']!r}",
                    )
                installation_id = str(found)
            row = before = await self._installation(
                context, conn, principal, integration, installation_id, for_update=True
            )
            content = (
                config_content(row["content"]) if row["content"] else config_pb2.ConfigContent()
            )
            stored = json_format.MessageToDict(content)
            objects = stored.setdefault(section, {}).setdefault("objects", {})
            current = objects.get(name, {"objectName": name})
            operations = [
                (c.op, c.path, json_format.MessageToDict(c.value) if c.HasField("value") else None)
                for c in request.changes
            ]
            try:
                patched = apply_changes(current, operations)
                objects[name] = patched
                content = json_format.ParseDict(stored, config_pb2.ConfigContent())
            except PatchError as error:
                await abort_invalid(context, {"body.changes": str(error)})
            except json_format.ParseError as error:
                await abort_invalid(
                    context,
                    {"body.changes": f"the patched {section} config is not valid: {error}"},
                )
            revision = integration_content(integration["content"])
            destinations = await integrations.destination_names(conn, project.id)
            checker = ContentChecker(revision, destinations, "", {})
            checker.check_object(section, name, getattr(content, section).objects[name])
            if checker.problems:
                # The operations are the body's only field; each problem names where in
                # the patched config it is.
                listed = "; ".join(f"{k}: {v}" for k, v in checker.problems.items())
                await abort_invalid(
                    context, {"body.changes": f"the patched config is not valid: {listed}"}
                )
            await save_config(conn, row["id"], integration["revision_id"], PATCH_AUTHOR, content)
            await self._reads_follow(
                context, conn, project, integration, row["id"], row["connection_id"], content
            )
            row = await self._installation(context, conn, principal, integration, installation_id)
            await events.stage(
                conn, installation_events.updated(before, row, integration, config_saved=True)
            )
            sync = await self._subscriptions_follow(conn, project, integration, row, content)
        events.kick()
        await subscriptions.start(self.ctx, sync)
        return to_message(row)

    # --- helpers ---------------------------------------------------------------------

    async def _events(self, context: Any) -> EventBus:
        """The api's outbox, which every change of an installation announces itself
        through; UNAVAILABLE, with nothing changed, in a deployment without one (a change
        that could not be announced is not made, as writes do)."""
        if self.ctx.events is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "this deployment runs without an event bus (AMPMESH_PUBSUB_PROJECT): "
                "installation changes cannot be announced, so none is made",
                "EVENTS_UNAVAILABLE",
            )
        return self.ctx.events

    @staticmethod
    async def _subscriptions_follow(
        conn: asyncpg.Connection,
        project: ProjectRow,
        integration: asyncpg.Record,
        row: asyncpg.Record,
        content: config_pb2.ConfigContent,
    ) -> subscriptions.Sync | None:
        """The installation's subscriptions row in step with the config and connection
        just saved (the workflow is started after commit)."""
        return await subscriptions.installation_saved(
            conn,
            project_id=project.id,
            integration_id=integration["id"],
            provider=integration["provider"],
            installation_id=row["id"],
            connection_id=row["connection_id"],
            content=content,
        )

    async def _reads_follow(
        self,
        context: Any,
        conn: asyncpg.Connection,
        project: ProjectRow,
        integration: asyncpg.Record,
        installation_id: uuid.UUID,
        connection_id: uuid.UUID | None,
        content: config_pb2.ConfigContent,
    ) -> None:
        """Start, schedule or stop the installation's reads to match the config just
        saved, in the same transaction (UNAVAILABLE, with nothing saved, when Temporal
        cannot be reached)."""
        if self.ctx.reads is None:
            return
        facts = InstallationFacts(
            project_id=project.id,
            integration_id=str(integration["id"]),
            installation_id=str(installation_id),
            connection_id=str(connection_id or ""),
            provider=integration["provider"],
        )
        revision = integration_content(integration["content"])
        try:
            await self.ctx.reads.installation_saved(
                conn, facts, content, revision, created_at=await conn.fetchval("SELECT now()")
            )
        except ReadsUnavailable as error:
            await abort_reads_unavailable(context, error)


def service(ctx: ApiContext) -> Service:
    return partially_built(
        installations_pb2.DESCRIPTOR.services_by_name["InstallationService"],
        installations_pb2_grpc.add_InstallationServiceServicer_to_server,
        Installations(ctx),
        "",
    )
