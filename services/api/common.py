"""Helpers every platform servicer uses: errors in the reference's shapes, field masks,
timestamps, and rows of the caller's project named by their id.

Errors: field violations name where the problem is as `<in>.<jsonName>` — `path.x`,
`query.x`, `body.x.y`, `header.x` — which the edge turns into problem+json `issues[]`
(`in`, `name`). gRPC codes map to HTTP as the transcoder does: INVALID_ARGUMENT 400,
UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404, ALREADY_EXISTS 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, NoReturn, Protocol, TypeVar, get_args

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.auth import ProjectRow
from services.runtime.errors import (
    abort_invalid_argument,
    abort_not_found,
    abort_with_details,
    error_info,
)


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class _Timed(Protocol):
    create_time: Timestamp
    update_time: Timestamp


_M = TypeVar("_M", bound=_Timed)


def with_times(message: _M, created_at: datetime, updated_at: datetime | None) -> _M:
    """message with its row's create_time, and update_time once the row has changed (the
    reference leaves updateTime out until then)."""
    message.create_time.CopyFrom(timestamp(created_at))
    if updated_at is not None:
        message.update_time.CopyFrom(timestamp(updated_at))
    return message


async def abort_invalid(
    context: Any,
    violations: Mapping[str, str],
    message: str = "the request is not valid",
) -> NoReturn:
    """INVALID_ARGUMENT (400) with one issue per field; the message lists them too, so a
    gRPC caller reading only the status message learns what is wrong."""
    listed = "; ".join(f"{field}: {why}" for field, why in violations.items())
    await abort_invalid_argument(context, f"{message}: {listed}", violations)


async def abort_conflict(context: Any, message: str) -> NoReturn:
    """ALREADY_EXISTS (409): a name already taken."""
    await abort_with_details(
        context, grpc.StatusCode.ALREADY_EXISTS, message, error_info("ALREADY_EXISTS")
    )


async def abort_missing(context: Any, kind: str, name: str) -> NoReturn:
    """NOT_FOUND (404) for a resource of the caller's project (or one it may not see)."""
    await abort_not_found(context, kind, name, f"{kind} {name!r} not found")


async def check_update_mask(
    context: Any, update_mask: Iterable[str], allowed: Iterable[str]
) -> tuple[str, ...]:
    """The mask's paths, each one of allowed (JSON names); INVALID_ARGUMENT otherwise."""
    paths = tuple(update_mask)
    allowed = tuple(allowed)
    if not paths:
        await abort_invalid(
            context, {"body.updateMask": f"is required: a list of {', '.join(allowed)}"}
        )
    unknown = [p for p in paths if p not in allowed]
    if unknown:
        await abort_invalid(
            context,
            {
                "body.updateMask": f"{', '.join(unknown)} cannot be updated (allowed: "
                f"{', '.join(allowed)})"
            },
        )
    return paths


# --- rows of the caller's project, named in paths by their id ---------------------------

# The tables whose rows belong to one project (`project_id`) and have a UUID `id`. A
# Literal, so that the table a statement below names always comes from this list, never
# from a request (hence the noqa: S608).
ProjectTable = Literal[
    "destinations",
    "jwt_keys",
    "notification_event_topic_routes",
    "provider_apps",
    "topic_destination_routes",
    "topics",
]
_SELECT_ONE = {
    table: f"SELECT * FROM {table} WHERE project_id = $1 AND id = $2"  # noqa: S608
    for table in get_args(ProjectTable)
}
_SELECT_ALL = {
    table: f"SELECT * FROM {table} WHERE project_id = $1 ORDER BY created_at, id"  # noqa: S608
    for table in get_args(ProjectTable)
}
_DELETE_ONE = {
    table: f"DELETE FROM {table} WHERE project_id = $1 AND id = $2 RETURNING id"  # noqa: S608
    for table in get_args(ProjectTable)
}


def _as_uuid(text: str) -> uuid.UUID | None:
    """text as a UUID; None when it is not one (an id in a path that names nothing)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def fetch_in_project(
    conn: asyncpg.Pool | asyncpg.Connection, table: ProjectTable, project: ProjectRow, row_id: str
) -> asyncpg.Record | None:
    """The row of table with id row_id in project, or None (also when row_id is no id)."""
    parsed = _as_uuid(row_id)
    if parsed is None:
        return None
    row: asyncpg.Record | None = await conn.fetchrow(
        _SELECT_ONE[table], uuid.UUID(project.id), parsed
    )
    return row


async def find_in_project(
    context: Any,
    conn: asyncpg.Pool | asyncpg.Connection,
    table: ProjectTable,
    project: ProjectRow,
    row_id: str,
    kind: str,
) -> asyncpg.Record:
    """The row of table with id row_id in project; NOT_FOUND naming kind otherwise."""
    row = await fetch_in_project(conn, table, project, row_id)
    if row is None:
        await abort_missing(context, kind, row_id)
    return row


async def list_in_project(
    conn: asyncpg.Pool | asyncpg.Connection, table: ProjectTable, project: ProjectRow
) -> list[asyncpg.Record]:
    """Every row of table in project, oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(_SELECT_ALL[table], uuid.UUID(project.id))
    return rows


async def delete_in_project(
    context: Any,
    conn: asyncpg.Pool | asyncpg.Connection,
    table: ProjectTable,
    project: ProjectRow,
    row_id: str,
    kind: str,
) -> None:
    """Deletes the row of table with id row_id in project; NOT_FOUND naming kind when there
    is none."""
    parsed = _as_uuid(row_id)
    deleted = None
    if parsed is not None:
        deleted = await conn.fetchval(_DELETE_ONE[table], uuid.UUID(project.id), parsed)
    if deleted is None:
        await abort_missing(context, kind, row_id)
