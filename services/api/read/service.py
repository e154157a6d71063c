"""The Read API (the read host): triggered reads, and pausing and resuming an
installation's scheduled reads. The records themselves go to the object's destination;
what is returned here is an operation id (services/api/reads.py starts the workflows).

Only builders call it (`full` keys): it spends the customer's provider quota.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
from ampmesh.read.v1 import read_pb2, read_pb2_grpc
from ampmesh.workflows.v1.read_plan_pb2 import ReadPlan
from google.protobuf import empty_pb2

from services.api.auth import ProjectRow
from services.api.common import abort_invalid, abort_missing
from services.api.context import ApiContext
from services.api.read_objects import (
    ReadObject,
    find_destination_ids,
    find_object,
    read_objects,
)
from services.api.reads import (
    InstallationFacts,
    Reads,
    ReadsUnavailable,
    abort_reads_unavailable,
)
from services.api.stored import (
    INSTALLATION_KIND,
    INTEGRATION_KIND,
    config_content,
    find_integration,
    integration_content,
)
from services.domain.read_plan import ObjectNotRead, read_plan
from services.runtime.database import is_uuid
from services.runtime.errors import abort_not_found, abort_with_reason
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

# The installation with its newest config and the revision that config was saved
# against (what its reads read with: the plan comes from them).
_INSTALLATION = """
    SELECT i.id, i.connection_id, i.group_ref, c.content, c.id::text AS config_id,
           r.content AS revision_content
    FROM installations i
    LEFT JOIN LATERAL (
        SELECT id, revision_id, content FROM configs WHERE installation_id = i.id
        ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN revisions r ON r.id = c.revision_id
    WHERE i.integration_id = $1 AND {where}
"""
DELIVER_RESULTS_NOT_BUILT = (
    "the onRequest delivery mode is deprecated and ampmesh does not buffer pages: "
    "use TriggerRead, whose pages are delivered to the object's destination"
)


class ReadApi(read_pb2_grpc.ReadServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def TriggerRead(
        self, request: read_pb2.TriggerReadRequest, context: grpc.aio.ServicerContext
    ) -> read_pb2.TriggerReadResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        problems: dict[str, str] = {}
        if not request.group_ref.strip():
            problems["body.groupRef"] = "is required: your identifier of the customer group"
        if request.mode != "async":
            problems["body.mode"] = (
                f"must be 'async' (the only mode: records go to the object's destination), "
                f"not {request.mode!r}"
            )
        since = (
            request.since_timestamp.ToDatetime(UTC) if request.HasField("since_timestamp") else None
        )
        now = datetime.now(UTC)
        until = (
            request.until_timestamp.ToDatetime(UTC) if request.HasField("until_timestamp") else now
        )
        if since is not None and since >= until:
            problems["body.untilTimestamp"] = (
                f"must be after sinceTimestamp ({since.isoformat()}); it is {until.isoformat()}"
            )
        if since is not None and since > now:
            problems["body.sinceTimestamp"] = "is in the future: no record has changed since then"
        if problems:
            await abort_invalid(context, problems)
        row = await self.ctx.pool.fetchrow(
            _INSTALLATION.format(where="i.group_ref = $2"), integration["id"], request.group_ref
        )
        if row is None:
            await abort_not_found(
                context,
                INSTALLATION_KIND,
                request.group_ref,
                f"group {request.group_ref!r} has no installation of integration "
                f"{integration['name']!r}",
            )
        read_object = await self._object(context, integration, row, request.object_name)
        if read_object.disabled:
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"reads of object {read_object.name!r} are disabled in this installation's config",
                "READS_DISABLED",
            )
        if row["connection_id"] is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                "the installation has no connection to read through: set its connectionId",
                "NO_CONNECTION",
            )
        read_object = dataclasses.replace(
            read_object, plan=await self._plan(project, row, read_object.name)
        )
        try:
            operation_id = await (await self._reads(context)).trigger(
                self._facts(project, integration, row), read_object, since, until
            )
        except ReadsUnavailable as error:
            await abort_reads_unavailable(context, error)
        return read_pb2.TriggerReadResponse(operation_id=operation_id)

    async def PauseReads(
        self, request: read_pb2.PauseReadsRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await self._pause_or_unpause(context, request, pause=True)
        return empty_pb2.Empty()

    async def UnpauseReads(
        self, request: read_pb2.UnpauseReadsRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await self._pause_or_unpause(context, request, pause=False)
        return empty_pb2.Empty()

    async def _pause_or_unpause(
        self,
        context: Any,
        request: read_pb2.PauseReadsRequest | read_pb2.UnpauseReadsRequest,
        *,
        pause: bool,
    ) -> None:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        reads = await self._reads(context)
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            row = None
            if is_uuid(request.installation_id):
                row = await conn.fetchrow(
                    _INSTALLATION.format(where="i.id = $2") + " FOR UPDATE OF i",
                    integration["id"],
                    uuid.UUID(request.installation_id),
                )
            if row is None:
                await abort_missing(context, INSTALLATION_KIND, request.installation_id)
            names: list[str] | None = None
            if request.objects:
                objects = self._objects(integration, row)
                names, unknown = [], []
                for given in request.objects:
                    found = find_object(objects, given)
                    if found is None:
                        unknown.append(given)
                    else:
                        names.append(found.name)
                if unknown:
                    await abort_invalid(
                        context,
                        {
                            "body.objects": f"names no read object of this installation: "
                            f"{', '.join(map(repr, unknown))} (it reads {_listed(objects)})"
                        },
                    )
            try:
                if pause:
                    await reads.pause(conn, str(row["id"]), names, request.note)
                else:
                    await reads.unpause(conn, str(row["id"]), names, request.note)
            except ReadsUnavailable as error:
                await abort_reads_unavailable(context, error)

    # --- helpers ---------------------------------------------------------------------

    async def _reads(self, context: Any) -> Reads:
        if self.ctx.reads is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "this deployment runs without Temporal (AMPMESH_TEMPORAL_ADDRESS): "
                "reads are not available",
                "WORKFLOWS_UNAVAILABLE",
            )
        return self.ctx.reads

    async def _integration(
        self, context: Any, project: ProjectRow, integration_id: str
    ) -> asyncpg.Record:
        row = await find_integration(self.ctx.pool, project.id, integration_id)
        if row is None:
            await abort_missing(context, INTEGRATION_KIND, integration_id)
        return row

    @staticmethod
    def _objects(integration: asyncpg.Record, row: asyncpg.Record) -> dict[str, ReadObject]:
        content = config_content(row["content"]) if row["content"] else None
        if content is None:
            return {}
        return read_objects(content, integration_content(integration["content"]))

    async def _object(
        self, context: Any, integration: asyncpg.Record, row: asyncpg.Record, name: str
    ) -> ReadObject:
        objects = self._objects(integration, row)
        found = find_object(objects, name)
        if found is None:
            await abort_not_found(
                context,
                "object",
                name,
                f"object {name!r} is not read by this installation (it reads {_listed(objects)})",
            )
        return found

    async def _plan(
        self, project: ProjectRow, row: asyncpg.Record, object_name: str
    ) -> ReadPlan | None:
        """The object's read plan from the installation's config and the revision it was
        saved against; None (the workflow resolves it, and skips) when that revision
        does not declare the object."""
        if row["content"] is None or row["revision_content"] is None:
            return None
        try:
            plan = read_plan(
                integration_content(row["revision_content"]),
                config_content(row["content"]),
                object_name,
                config_id=row["config_id"],
            )
        except ObjectNotRead:
            return None
        ids = await find_destination_ids(self.ctx.pool, project.id, [plan.destination_name])
        plan.destination_id = ids.get(plan.destination_name, "")
        return plan

    @staticmethod
    def _facts(
        project: ProjectRow, integration: asyncpg.Record, row: asyncpg.Record
    ) -> InstallationFacts:
        return InstallationFacts(
            project_id=project.id,
            integration_id=str(integration["id"]),
            installation_id=str(row["id"]),
            connection_id=str(row["connection_id"]),
            provider=integration["provider"],
        )


def _listed(objects: dict[str, ReadObject]) -> str:
    return ", ".join(sorted(objects)) or "no object"


def service(ctx: ApiContext) -> Service:
    return partially_built(
        read_pb2.DESCRIPTOR.services_by_name["ReadService"],
        read_pb2_grpc.add_ReadServiceServicer_to_server,
        ReadApi(ctx),
        # DeliverResults, the only method not built.
        DELIVER_RESULTS_NOT_BUILT,
        gate=ctx.auth.authenticate,
    )
