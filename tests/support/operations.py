"""What the operations tests through the edge share: the REST paths of operations, and a
project with an installation stored as the installations RPCs would store it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tests.support.control_plane import create_project, unique

LIST = (
    "/projects/{projectIdOrName}/integrations/{integrationId}/installations/{installationId}"
    "/operations"
)
GET = "/projects/{projectIdOrName}/operations/{operationId}"
LOGS = "/projects/{projectIdOrName}/operations/{operationId}/logs"
BACKFILL = (
    "/projects/{projectIdOrName}/integrations/{integrationId}/installations/{installationId}"
    "/objects/{objectName}/backfill-progress"
)


@dataclass(frozen=True)
class Installation:
    project_id: str
    project_name: str
    integration_id: str
    id: str
    group_ref: str

    def operations_path(self, project: str | None = None) -> str:
        return (
            f"/v1/projects/{project or self.project_id}/integrations/{self.integration_id}"
            f"/installations/{self.id}/operations"
        )

    def backfill_path(self, object_name: str) -> str:
        return (
            f"/v1/projects/{self.project_id}/integrations/{self.integration_id}"
            f"/installations/{self.id}/objects/{object_name}/backfill-progress"
        )


async def new_project(admin: httpx.AsyncClient) -> dict[str, Any]:
    return await create_project(admin, "ops", "Ops")


async def new_installation(
    db: asyncpg.Pool, project: dict[str, Any], group_ref: str = "acme"
) -> Installation:
    """An integration and one installation of it, as the installations RPCs would store
    them (only the columns operations look at matter here)."""
    integration = await db.fetchval(
        "INSERT INTO integrations (project_id, name, provider) VALUES ($1, $2, 'salesforce') "
        "RETURNING id",
        uuid.UUID(project["id"]),
        unique("sync"),
    )
    installation = await db.fetchval(
        "INSERT INTO installations (project_id, integration_id, group_ref) VALUES ($1, $2, $3) "
        "RETURNING id",
        uuid.UUID(project["id"]),
        integration,
        group_ref,
    )
    return Installation(
        project["id"], project["name"], str(integration), str(installation), group_ref
    )
