"""What the api knows of an installation's read objects: each object's facts as its read
plan says them (services/domain/read_plan.py resolves the plan from the manifest and the
config), finding an object by its provider or mapped name, and the destination ids a
plan carries. Shared by the platform routes (saving configs) and the read routes
(triggering and pausing reads) through services/api/reads.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import asyncpg
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.workflows.v1.read_plan_pb2 import ReadPlan

from services.domain.read_plan import configured_plans


@dataclass(frozen=True)
class ReadObject:
    """One object an installation reads, with the facts its workflows need."""

    # The provider's object name (the config's key and the manifest's objectName).
    name: str
    # The builder's name for it, when the manifest maps it (mapToName).
    mapped_name: str
    # Cron of its scheduled reads; "" when it is read only on request.
    schedule: str
    # How much history the backfill reads; None when it reads none.
    backfill: manifest_pb2.DefaultPeriod | None
    # Records per page (the manifest's delivery.pageSize); 0: the connector's default.
    page_size: int
    # A disabled object is neither scheduled nor readable on request.
    disabled: bool
    # How its workflows read it; None: they resolve it themselves.
    plan: ReadPlan | None = None

    @staticmethod
    def of(plan: ReadPlan) -> ReadObject:
        """The object's facts, as its plan says them."""
        return ReadObject(
            name=plan.object_name,
            mapped_name=plan.mapped_name,
            schedule=plan.schedule,
            backfill=plan.backfill if plan.HasField("backfill") else None,
            page_size=plan.page_size,
            disabled=plan.disabled,
            plan=plan,
        )


def read_objects(
    content: config_pb2.ConfigContent,
    revision: manifest_pb2.Integration,
    *,
    config_id: str = "",
    destination_ids: Mapping[str, str] | None = None,
) -> dict[str, ReadObject]:
    """The read objects a config selects, by provider object name."""
    plans = configured_plans(
        revision, content, config_id=config_id, destination_ids=destination_ids
    )
    return {name: ReadObject.of(plan) for name, plan in plans.items()}


async def find_destination_ids(
    conn: asyncpg.Connection | asyncpg.Pool, project_id: str, names: Iterable[str]
) -> dict[str, str]:
    """The ids of the project's destinations of these names."""
    rows = await conn.fetch(
        "SELECT name, id::text AS id FROM destinations WHERE project_id = $1 "
        "AND name = ANY($2::text[])",
        uuid.UUID(project_id),
        sorted(set(names)),
    )
    return {r["name"]: r["id"] for r in rows}


def find_object(objects: dict[str, ReadObject], name: str) -> ReadObject | None:
    """The object named by its provider name or its mapped name."""
    if name in objects:
        return objects[name]
    return next((o for o in objects.values() if o.mapped_name and o.mapped_name == name), None)
