"""Projects: create (org admin keys only), get by id or name (with the deployment's
entitlements when asked), list, update by field mask.

Names follow the reference: letters, digits and dashes, unique across the deployment
whatever their case; `appName` is what end users see in the connect UI.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import grpc
from ampmesh.platform.v1 import projects_pb2, projects_pb2_grpc

from services.api.auth import Principal, ProjectRow, abort_forbidden
from services.api.common import (
    abort_conflict,
    abort_invalid,
    check_update_mask,
    with_times,
)
from services.api.context import ApiContext
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
NAME_RULE = "must be 1-63 letters, digits or dashes, starting with a letter or digit"
UPDATABLE = ("name", "appName")

# What a project of this deployment is entitled to (GET ?includeEntitlements=true). A
# self-hosted deployment has no plans: every project gets everything. Branding is removed
# (ampmesh adds none to the connect UI). Log retention has no number of days to report:
# operation logs are kept until the project's data is deleted, so the entitlement is left
# out rather than made up.
ENTITLEMENTS = projects_pb2.ProjectEntitlements(
    branding_removal=projects_pb2.BrandingRemovalEntitlement(value=True)
)


def to_message(project: ProjectRow) -> projects_pb2.Project:
    return with_times(
        projects_pb2.Project(
            id=project.id, name=project.name, app_name=project.app_name, org_id=project.org_id
        ),
        project.created_at,
        project.updated_at,
    )


def _problems(project: projects_pb2.Project, fields: tuple[str, ...], at: str) -> dict[str, str]:
    """Problems with the given fields of project, named `at` + JSON name (the REST body
    is the project itself on create, and holds it under `project` on update)."""
    problems: dict[str, str] = {}
    if "name" in fields and not NAME.match(project.name):
        problems[f"{at}name"] = NAME_RULE
    if "appName" in fields and not project.app_name.strip():
        problems[f"{at}appName"] = "is required"
    return problems


class Projects(projects_pb2_grpc.ProjectServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def ListProjects(
        self, request: projects_pb2.ListProjectsRequest, context: grpc.aio.ServicerContext
    ) -> projects_pb2.ListProjectsResponse:
        principal = await self.ctx.auth.authenticate(context)
        rows = await self.ctx.pool.fetch(
            "SELECT * FROM projects WHERE org_id = $1 AND ($2::uuid IS NULL OR id = $2) "
            "ORDER BY created_at, id",
            uuid.UUID(principal.org_id),
            uuid.UUID(principal.project_id) if principal.project_id else None,
        )
        return projects_pb2.ListProjectsResponse(
            projects=[to_message(ProjectRow.from_record(r)) for r in rows]
        )

    async def CreateProject(
        self, request: projects_pb2.CreateProjectRequest, context: grpc.aio.ServicerContext
    ) -> projects_pb2.Project:
        principal = await self.ctx.auth.authenticate(context)
        await self.ctx.auth.require_builder(context, principal)
        await self._require_org_admin(context, principal)
        project = request.project
        problems = _problems(project, ("name", "appName"), "body.")
        org_id = project.org_id or principal.org_id
        if org_id != principal.org_id:
            # An org the key does not belong to: as if it did not exist.
            problems["body.orgId"] = f"no org {org_id!r} for this key"
        if problems:
            await abort_invalid(context, problems)
        try:
            row = await self.ctx.pool.fetchrow(
                "INSERT INTO projects (org_id, name, app_name) VALUES ($1, $2, $3) RETURNING *",
                uuid.UUID(principal.org_id),
                project.name,
                project.app_name.strip(),
            )
        except asyncpg.UniqueViolationError:
            await abort_conflict(context, f"a project named {project.name!r} already exists")
        return to_message(ProjectRow.from_record(row))

    async def GetProject(
        self, request: projects_pb2.GetProjectRequest, context: grpc.aio.ServicerContext
    ) -> projects_pb2.Project:
        _, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        message = to_message(project)
        if request.include_entitlements:
            message.entitlements.CopyFrom(ENTITLEMENTS)
        return message

    async def UpdateProject(
        self, request: projects_pb2.UpdateProjectRequest, context: grpc.aio.ServicerContext
    ) -> projects_pb2.Project:
        current = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        fields = await check_update_mask(context, request.update_mask, UPDATABLE)
        problems = _problems(request.project, fields, "body.project.")
        if problems:
            await abort_invalid(context, problems)
        name = request.project.name if "name" in fields else current.name
        app_name = request.project.app_name.strip() if "appName" in fields else current.app_name
        try:
            row = await self.ctx.pool.fetchrow(
                "UPDATE projects SET name = $2, app_name = $3, updated_at = now() "
                "WHERE id = $1 RETURNING *",
                uuid.UUID(current.id),
                name,
                app_name,
            )
        except asyncpg.UniqueViolationError:
            await abort_conflict(context, f"a project named {name!r} already exists")
        return to_message(ProjectRow.from_record(row))

    @staticmethod
    async def _require_org_admin(context: Any, principal: Principal) -> None:
        if not principal.is_org_admin:
            await abort_forbidden(
                context, f"creating projects needs an org admin key ({principal.via})"
            )


def service(ctx: ApiContext) -> Service:
    return partially_built(
        projects_pb2.DESCRIPTOR.services_by_name["ProjectService"],
        projects_pb2_grpc.add_ProjectServiceServicer_to_server,
        Projects(ctx),
        "",
    )
