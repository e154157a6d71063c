"""Notification routing: topics, event-type -> topic routes, topic -> destination routes.

A notification of type T reaches destination D when some route sends T to a topic and
some route sends that topic to D (messenger follows them, issue #6). Routes refer to
topics and destinations of their own project only; deleting a topic or a destination
deletes its routes (foreign keys).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import grpc
from ampmesh.events.v1 import notifications_pb2
from ampmesh.platform.v1 import destinations_pb2, destinations_pb2_grpc
from google.protobuf import empty_pb2

from services.api.auth import ProjectRow, is_uuid
from services.api.common import (
    ProjectTable,
    abort_conflict,
    abort_invalid,
    abort_missing,
    delete_in_project,
    fetch_in_project,
    list_in_project,
    timestamp,
    with_times,
)
from services.api.context import ApiContext
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

# The reference: letters, numbers and dashes, at most 64 characters.
TOPIC_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
TOPIC_NAME_RULE = "must be 1-64 letters, digits or dashes"

# The notification types, from the contract's Notification payloads: each field is its
# type with dots as underscores (read_backfill_done is "read.backfill.done").
EVENT_TYPES: tuple[str, ...] = tuple(
    field.name.replace("_", ".")
    for field in notifications_pb2.Notification.DESCRIPTOR.oneofs_by_name["payload"].fields
)


def event_type_problem(event_type: str) -> str | None:
    if event_type in EVENT_TYPES:
        return None
    listed = ", ".join(EVENT_TYPES)
    if not event_type:
        return f"is required: one of {listed}"
    return f"{event_type!r} is not a notification event type (one of {listed})"


def topic_to_message(row: asyncpg.Record) -> destinations_pb2.Topic:
    return with_times(
        destinations_pb2.Topic(
            id=str(row["id"]), name=row["name"], project_id=str(row["project_id"])
        ),
        row["created_at"],
        row["updated_at"],
    )


def event_route_to_message(row: asyncpg.Record) -> destinations_pb2.NotificationEventTopicRoute:
    return destinations_pb2.NotificationEventTopicRoute(
        id=str(row["id"]),
        event_type=row["event_type"],
        topic_id=str(row["topic_id"]),
        project_id=str(row["project_id"]),
        create_time=timestamp(row["created_at"]),
    )


def destination_route_to_message(row: asyncpg.Record) -> destinations_pb2.TopicDestinationRoute:
    return destinations_pb2.TopicDestinationRoute(
        id=str(row["id"]),
        topic_id=str(row["topic_id"]),
        destination_id=str(row["destination_id"]),
        project_id=str(row["project_id"]),
        create_time=timestamp(row["created_at"]),
    )


class _ProjectScoped:
    """What the three servicers share: the caller's project, and rows of it by id."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _owns(self, project: ProjectRow, table: ProjectTable, row_id: str) -> bool:
        """Whether table holds row_id in project."""
        return await fetch_in_project(self.ctx.pool, table, project, row_id) is not None

    async def _delete(
        self, context: Any, project: ProjectRow, table: ProjectTable, kind: str, row_id: str
    ) -> empty_pb2.Empty:
        await delete_in_project(context, self.ctx.pool, table, project, row_id, kind)
        return empty_pb2.Empty()


class Topics(_ProjectScoped, destinations_pb2_grpc.TopicServiceServicer):
    async def CreateTopic(
        self, request: destinations_pb2.CreateTopicRequest, context: grpc.aio.ServicerContext
    ) -> destinations_pb2.Topic:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        name = request.topic.name
        if not TOPIC_NAME.match(name):
            await abort_invalid(context, {"body.name": TOPIC_NAME_RULE})
        try:
            row = await self.ctx.pool.fetchrow(
                "INSERT INTO topics (project_id, name) VALUES ($1, $2) RETURNING *",
                uuid.UUID(project.id),
                name,
            )
        except asyncpg.UniqueViolationError:
            await abort_conflict(context, f"a topic named {name!r} exists")
        return topic_to_message(row)

    async def ListTopics(
        self, request: destinations_pb2.ListTopicsRequest, context: grpc.aio.ServicerContext
    ) -> destinations_pb2.ListTopicsResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        rows = await list_in_project(self.ctx.pool, "topics", project)
        return destinations_pb2.ListTopicsResponse(topics=[topic_to_message(r) for r in rows])

    async def UpdateTopic(
        self, request: destinations_pb2.UpdateTopicRequest, context: grpc.aio.ServicerContext
    ) -> destinations_pb2.Topic:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        if not await self._owns(project, "topics", request.topic_id):
            await abort_missing(context, "topic", request.topic_id)
        name = request.topic.name
        if not TOPIC_NAME.match(name):
            await abort_invalid(context, {"body.name": TOPIC_NAME_RULE})
        try:
            row = await self.ctx.pool.fetchrow(
                "UPDATE topics SET name = $3, updated_at = now() "
                "WHERE project_id = $1 AND id = $2 RETURNING *",
                uuid.UUID(project.id),
                uuid.UUID(request.topic_id),
                name,
            )
        except asyncpg.UniqueViolationError:
            await abort_conflict(context, f"a topic named {name!r} exists")
        if row is None:  # deleted meanwhile
            await abort_missing(context, "topic", request.topic_id)
        return topic_to_message(row)

    async def DeleteTopic(
        self, request: destinations_pb2.DeleteTopicRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        return await self._delete(context, project, "topics", "topic", request.topic_id)


class EventTopicRoutes(
    _ProjectScoped, destinations_pb2_grpc.NotificationEventTopicRouteServiceServicer
):
    async def CreateNotificationEventTopicRoute(
        self,
        request: destinations_pb2.CreateNotificationEventTopicRouteRequest,
        context: grpc.aio.ServicerContext,
    ) -> destinations_pb2.NotificationEventTopicRoute:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        route = request.notification_event_topic_route
        problems: dict[str, str] = {}
        if why := event_type_problem(route.event_type):
            problems["body.eventType"] = why
        if not await self._owns(project, "topics", route.topic_id):
            problems["body.topicId"] = _no_such("topic", route.topic_id, project)
        if problems:
            await abort_invalid(context, problems)
        try:
            row = await self.ctx.pool.fetchrow(
                "INSERT INTO notification_event_topic_routes (project_id, event_type, topic_id) "
                "VALUES ($1, $2, $3) RETURNING *",
                uuid.UUID(project.id),
                route.event_type,
                uuid.UUID(route.topic_id),
            )
        except asyncpg.UniqueViolationError:
            await abort_conflict(
                context, f"{route.event_type} is already routed to topic {route.topic_id}"
            )
        except asyncpg.ForeignKeyViolationError:  # the topic was deleted meanwhile
            await abort_invalid(
                context, {"body.topicId": _no_such("topic", route.topic_id, project)}
            )
        return event_route_to_message(row)

    async def ListNotificationEventTopicRoutes(
        self,
        request: destinations_pb2.ListNotificationEventTopicRoutesRequest,
        context: grpc.aio.ServicerContext,
    ) -> destinations_pb2.ListNotificationEventTopicRoutesResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        problems: dict[str, str] = {}
        topic_id = _id_filter(request, "topic_id", "query.topicId", problems)
        event_type = request.event_type if request.HasField("event_type") else None
        if event_type is not None and (why := event_type_problem(event_type)):
            problems["query.eventType"] = why
        if problems:
            await abort_invalid(context, problems)
        rows = await self.ctx.pool.fetch(
            "SELECT * FROM notification_event_topic_routes WHERE project_id = $1 "
            "AND ($2::uuid IS NULL OR topic_id = $2) AND ($3::text IS NULL OR event_type = $3) "
            "ORDER BY created_at, id",
            uuid.UUID(project.id),
            topic_id,
            event_type,
        )
        return destinations_pb2.ListNotificationEventTopicRoutesResponse(
            notification_event_topic_routes=[event_route_to_message(r) for r in rows]
        )

    async def DeleteNotificationEventTopicRoute(
        self,
        request: destinations_pb2.DeleteNotificationEventTopicRouteRequest,
        context: grpc.aio.ServicerContext,
    ) -> empty_pb2.Empty:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        return await self._delete(
            context, project, "notification_event_topic_routes", "route", request.route_id
        )


class TopicDestinationRoutes(
    _ProjectScoped, destinations_pb2_grpc.TopicDestinationRouteServiceServicer
):
    async def CreateTopicDestinationRoute(
        self,
        request: destinations_pb2.CreateTopicDestinationRouteRequest,
        context: grpc.aio.ServicerContext,
    ) -> destinations_pb2.TopicDestinationRoute:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        route = request.topic_destination_route
        problems = await self._route_problems(project, route)
        if problems:
            await abort_invalid(context, problems)
        try:
            row = await self.ctx.pool.fetchrow(
                "INSERT INTO topic_destination_routes (project_id, topic_id, destination_id) "
                "VALUES ($1, $2, $3) RETURNING *",
                uuid.UUID(project.id),
                uuid.UUID(route.topic_id),
                uuid.UUID(route.destination_id),
            )
        except asyncpg.UniqueViolationError:
            await abort_conflict(
                context,
                f"topic {route.topic_id} is already routed to destination {route.destination_id}",
            )
        except asyncpg.ForeignKeyViolationError:  # one of them was deleted meanwhile
            await abort_invalid(context, await self._route_problems(project, route))
        return destination_route_to_message(row)

    async def _route_problems(
        self, project: ProjectRow, route: destinations_pb2.TopicDestinationRoute
    ) -> dict[str, str]:
        problems: dict[str, str] = {}
        if not await self._owns(project, "topics", route.topic_id):
            problems["body.topicId"] = _no_such("topic", route.topic_id, project)
        if not await self._owns(project, "destinations", route.destination_id):
            problems["body.destinationId"] = _no_such("destination", route.destination_id, project)
        return problems

    async def ListTopicDestinationRoutes(
        self,
        request: destinations_pb2.ListTopicDestinationRoutesRequest,
        context: grpc.aio.ServicerContext,
    ) -> destinations_pb2.ListTopicDestinationRoutesResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        problems: dict[str, str] = {}
        topic_id = _id_filter(request, "topic_id", "query.topicId", problems)
        destination_id = _id_filter(request, "destination_id", "query.destinationId", problems)
        if problems:
            await abort_invalid(context, problems)
        rows = await self.ctx.pool.fetch(
            "SELECT * FROM topic_destination_routes WHERE project_id = $1 "
            "AND ($2::uuid IS NULL OR topic_id = $2) "
            "AND ($3::uuid IS NULL OR destination_id = $3) ORDER BY created_at, id",
            uuid.UUID(project.id),
            topic_id,
            destination_id,
        )
        return destinations_pb2.ListTopicDestinationRoutesResponse(
            topic_destination_routes=[destination_route_to_message(r) for r in rows]
        )

    async def DeleteTopicDestinationRoute(
        self,
        request: destinations_pb2.DeleteTopicDestinationRouteRequest,
        context: grpc.aio.ServicerContext,
    ) -> empty_pb2.Empty:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        return await self._delete(
            context, project, "topic_destination_routes", "route", request.route_id
        )


def _no_such(kind: str, row_id: str, project: ProjectRow) -> str:
    if not row_id:
        return f"is required: the id of a {kind} of project {project.name!r}"
    return f"no {kind} with id {row_id!r} in project {project.name!r}"


def _id_filter(request: Any, field: str, at: str, problems: dict[str, str]) -> uuid.UUID | None:
    """An optional id filter of a list request; a value that is no id is a problem (an id
    of nothing simply matches nothing)."""
    if not request.HasField(field):
        return None
    value = getattr(request, field)
    if not is_uuid(value):
        problems[at] = f"{value!r} is not an id"
        return None
    return uuid.UUID(value)


def topic_service(ctx: ApiContext) -> Service:
    return partially_built(
        destinations_pb2.DESCRIPTOR.services_by_name["TopicService"],
        destinations_pb2_grpc.add_TopicServiceServicer_to_server,
        Topics(ctx),
        "",
    )


def event_topic_route_service(ctx: ApiContext) -> Service:
    return partially_built(
        destinations_pb2.DESCRIPTOR.services_by_name["NotificationEventTopicRouteService"],
        destinations_pb2_grpc.add_NotificationEventTopicRouteServiceServicer_to_server,
        EventTopicRoutes(ctx),
        "",
    )


def topic_destination_route_service(ctx: ApiContext) -> Service:
    return partially_built(
        destinations_pb2.DESCRIPTOR.services_by_name["TopicDestinationRouteService"],
        destinations_pb2_grpc.add_TopicDestinationRouteServiceServicer_to_server,
        TopicDestinationRoutes(ctx),
        "",
    )
