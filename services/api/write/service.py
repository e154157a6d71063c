"""The Write API (the write host): create, update and delete records in a customer's
system, one record or a batch, synchronously or asynchronously.

A request is checked whole before anything is written (request.py, then the installation:
the object's write config, the reverse mapping and field settings of
services/domain/write_plan.py, and the provider's field names from the object's cached
metadata), so a refused request writes nothing. Then:

- synchronous (sync.py): the api calls the provider itself, through the connection, and
  answers the provider's outcome (HTTP 422 for a failure, set through the response
  metadata the edge turns into the status); the operation's events go out through the
  api's outbox;
- asynchronous: the operation's creation is staged in the outbox and the AsyncWrite
  workflow started, or the record handed to its group's WriteBatcher
  (`autoBatchPolicy`), in one transaction; the answer is the operation id.

`Idempotency-Key` (idempotency.py) wraps both: a repeat answers the first answer.

Only builders call it (`full` keys): it changes the customer's data.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
from ampmesh.workflows.v1 import async_write_pb2
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from ampmesh.write.v1 import write_pb2, write_pb2_grpc
from google.protobuf import struct_pb2, timestamp_pb2

from services.api.common import abort_invalid
from services.api.context import ApiContext
from services.api.field_metadata import describe, find_field
from services.api.reads import meta_for
from services.api.stored import INSTALLATION_KIND, INTEGRATION_KIND
from services.api.write import idempotency
from services.api.write.request import WriteAsk, decode
from services.api.write.sync import HTTP_STATUS_HEADER, Prepared, write_now
from services.api.write.target import WriteTarget, find_target
from services.api.writes import Writes, WritesUnavailable, abort_writes_unavailable
from services.domain import write_events
from services.domain.connectors.registry import NoConnector, writer_for
from services.domain.connectors.writes import WriteType
from services.domain.write_plan import (
    ObjectNotWritten,
    RecordRefused,
    WritePlan,
    prepare,
    write_plan,
)
from services.runtime.errors import abort_not_found, abort_with_reason
from services.runtime.events import EventBus
from services.runtime.server import Service

_WRITE_TYPES = {
    WriteType.CREATE: async_write_pb2.WRITE_TYPE_CREATE,
    WriteType.UPDATE: async_write_pb2.WRITE_TYPE_UPDATE,
    WriteType.DELETE: async_write_pb2.WRITE_TYPE_DELETE,
}


class WriteApi(write_pb2_grpc.WriteServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def WriteRecords(
        self, request: write_pb2.WriteRecordsRequest, context: grpc.aio.ServicerContext
    ) -> write_pb2.WriteRecordsResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        key = _idempotency_key(context)
        if key is not None and (why := idempotency.key_problem(key)):
            await abort_invalid(context, {"header.Idempotency-Key": why})
        ask, problems = decode(request)
        if ask is None:
            await abort_invalid(context, problems)
        target = await self._target(context, project.id, request)
        plan = await self._plan(context, target, request.object_name, ask)
        prepared = await self._prepare(context, project.id, target, plan, ask)
        events, writes = await self._infrastructure(context, ask)
        if key is None:
            response, status = await self._write(
                context, project.id, target, plan, prepared, ask, str(uuid.uuid4()), events, writes
            )
        else:
            response, status = await self._write_once(
                context, project.id, key, request, target, plan, prepared, ask, events, writes
            )
        if status != 200:
            await context.send_initial_metadata(((HTTP_STATUS_HEADER, str(status)),))
        return response

    async def _write_once(
        self,
        context: Any,
        project_id: str,
        key: str,
        request: write_pb2.WriteRecordsRequest,
        target: WriteTarget,
        plan: WritePlan,
        prepared: Prepared,
        ask: WriteAsk,
        events: EventBus,
        writes: Writes | None,
    ) -> tuple[write_pb2.WriteRecordsResponse, int]:
        claimed = await idempotency.claim(self.ctx.pool, project_id, key, request)
        if isinstance(claimed, idempotency.Replay):
            return claimed.response, claimed.http_status
        if isinstance(claimed, idempotency.Conflict):
            await abort_with_reason(
                context, grpc.StatusCode.ALREADY_EXISTS, claimed.reason, "IDEMPOTENCY_KEY_REUSED"
            )
        operation_id = claimed.operation_id
        try:
            response, status = await self._write(
                context, project_id, target, plan, prepared, ask, operation_id, events, writes
            )
        except BaseException:
            # Refused, or the provider unavailable: the key is free again for a retry. A
            # create whose answer was lost may have been written (its 503 says so), and a
            # retry under the same key then writes again, as one under a new key would.
            await idempotency.release(self.ctx.pool, project_id, key, operation_id)
            raise
        await idempotency.save(self.ctx.pool, project_id, key, operation_id, status, response)
        return response, status

    async def _write(
        self,
        context: Any,
        project_id: str,
        target: WriteTarget,
        plan: WritePlan,
        prepared: Prepared,
        ask: WriteAsk,
        operation_id: str,
        events: EventBus,
        writes: Writes | None,
    ) -> tuple[write_pb2.WriteRecordsResponse, int]:
        operation = write_events.Operation(
            meta=meta_for(async_write_pb2.AsyncWriteInput, project_id, f"{operation_id}/start"),
            target=target_pb2.ObjectTarget(
                project_id=project_id,
                integration_id=target.integration_id,
                installation_id=target.installation_id,
                connection_id=target.connection_id,
                provider=target.provider,
                object_name=plan.object_name,
            ),
            operation_id=operation_id,
            write_type=_WRITE_TYPES[ask.type],
            batch=not ask.single,
            shown_object_name=plan.shown_name,
            source="api",
        )
        if not ask.asynchronous:
            return await write_now(self.ctx, context, events, operation, target, prepared, ask)
        assert writes is not None  # _infrastructure made sure
        try:
            await self._accept(events, writes, operation, target.config_id, prepared, ask)
        except WritesUnavailable as error:
            await abort_writes_unavailable(context, error)
        return write_pb2.WriteRecordsResponse(operation_id=operation_id), 200

    async def _accept(
        self,
        events: EventBus,
        writes: Writes,
        operation: write_events.Operation,
        config_id: str,
        prepared: Prepared,
        ask: WriteAsk,
    ) -> None:
        """Stage the operation's creation and start its workflow (or queue its record) in
        one transaction: Temporal refusing rolls the creation back."""
        asked = operation.meta.time.ToDatetime(tzinfo=UTC)
        records = [_workflow_record(item) for item in prepared.items]
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            if ask.batch_delay is None:
                workflow_id = await writes.start(
                    async_write_pb2.AsyncWriteInput(
                        meta=operation.meta,
                        target=operation.target,
                        operation_id=operation.operation_id,
                        type=operation.write_type,  # type: ignore[arg-type]
                        records=records,
                        batch=operation.batch,
                        all_or_none=ask.all_or_none,
                        retry_deadline=_stamp(asked + ask.retry_for),
                        headers=[
                            async_write_pb2.HttpHeader(key=k, value=v)
                            for k, v in ask.headers.items()
                        ],
                        shown_object_name=operation.shown_object_name,
                    )
                )
            else:
                workflow_id = await writes.enqueue(
                    conn,
                    operation.target,
                    operation.write_type,  # type: ignore[arg-type]
                    async_write_pb2.QueuedWrite(
                        meta=operation.meta,
                        operation_id=operation.operation_id,
                        record=records[0],
                        flush_time=_stamp(asked + ask.batch_delay),
                        retry_deadline=_stamp(asked + ask.retry_for),
                        shown_object_name=operation.shown_object_name,
                    ),
                    ask.type.value,
                )
            await events.stage(
                conn, write_events.operation_created(operation, workflow_id, "", config_id)
            )
        events.kick()

    # --- checks ----------------------------------------------------------------------

    async def _target(
        self, context: Any, project_id: str, request: write_pb2.WriteRecordsRequest
    ) -> WriteTarget:
        target = await find_target(
            self.ctx.pool, project_id, request.integration_id, request.group_ref
        )
        if target is None:
            await abort_not_found(
                context,
                INTEGRATION_KIND,
                request.integration_id,
                f"integration {request.integration_id!r} not found in this project",
            )
        if not target.installation_id:
            await abort_not_found(
                context,
                INSTALLATION_KIND,
                request.group_ref,
                f"body.groupRef: group {request.group_ref!r} has no installation of "
                f"integration {target.integration_name!r}",
            )
        if not target.connection_id:
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"body.groupRef: the installation of group {request.group_ref!r} has no "
                "connection to write through: connect the customer's account",
                "NO_CONNECTION",
            )
        if target.connection_status == "bad_credentials":
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"body.groupRef: the provider refused the credentials of group "
                f"{request.group_ref!r}'s connection; reconnect it (oauth-update) or rotate "
                "them (PATCH) before writing",
                "BAD_CREDENTIALS",
            )
        return target

    async def _plan(
        self, context: Any, target: WriteTarget, object_name: str, ask: WriteAsk
    ) -> WritePlan:
        try:
            plan = write_plan(target.revision, target.config, object_name)
        except ObjectNotWritten as error:
            await abort_invalid(context, {"path.objectName": str(error)})
        if ask.type is WriteType.DELETE and not plan.deletion_enabled:
            await abort_invalid(
                context,
                {
                    "body.type": f"deletes of {plan.object_name!r} are not enabled for this "
                    "installation: its config must set write.objects."
                    f"{plan.object_name}.deletionSettings.enabled"
                },
            )
        try:
            writer_for(target.provider)
        except NoConnector as error:
            await abort_with_reason(
                context, grpc.StatusCode.FAILED_PRECONDITION, str(error), "WRITE_NOT_SUPPORTED"
            )
        return plan

    async def _prepare(
        self,
        context: Any,
        project_id: str,
        target: WriteTarget,
        plan: WritePlan,
        ask: WriteAsk,
    ) -> Prepared:
        problems: dict[str, str] = {}
        items = []
        for record in ask.records:
            try:
                prepared = prepare(plan, ask.type, record.values, field_prefix=record.path)
            except RecordRefused as refused:
                problems.update({each.field: each.reason for each in refused.refusals})
                continue
            if record.associations and target.provider != "hubspot":
                where = "body.associations" if ask.single else f"{record.path[:-7]}.associations"
                problems[where] = (
                    f"associations are written for HubSpot only, not {target.provider}"
                )
            items.append((record, prepared))
        if problems:
            await abort_invalid(context, problems)
        if ask.type is not WriteType.DELETE:
            await self._known_fields(context, project_id, target, plan, items, problems)
        if problems:
            await abort_invalid(context, problems)
        return Prepared.of(items)

    async def _known_fields(
        self,
        context: Any,
        project_id: str,
        target: WriteTarget,
        plan: WritePlan,
        items: list[Any],
        problems: dict[str, str],
    ) -> None:
        """Every field written must be one the provider's object has (after mapping): a
        record the provider would refuse for it is refused here, before any is written."""
        described = await describe(
            self.ctx,
            context,
            project_id=project_id,
            connection=target.connection(),
            object_name=plan.object_name,
            missing_ok=True,
        )
        if described is None:
            problems["path.objectName"] = (
                f"the customer's {target.provider} has no object {plan.object_name!r}"
            )
            return
        for _record, prepared in items:
            for name in sorted(prepared.provider_fields):
                if find_field(described, name) is not None:
                    continue
                # A field the record gave is named by its path; one a default of the
                # installation's config put there, by the config.
                where = prepared.origins.get(name) or f"config.write.objects.{plan.object_name}"
                problems[where] = f"{plan.object_name!r} has no field {name!r}"

    async def _infrastructure(self, context: Any, ask: WriteAsk) -> tuple[EventBus, Writes | None]:
        if self.ctx.events is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "this deployment runs without an event bus (AMPMESH_PUBSUB_PROJECT): writes "
                "cannot record their operations",
                "EVENTS_UNAVAILABLE",
            )
        if ask.asynchronous and self.ctx.writes is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "this deployment runs without Temporal (AMPMESH_TEMPORAL_ADDRESS): "
                "asynchronous writes are not available",
                "WORKFLOWS_UNAVAILABLE",
            )
        return self.ctx.events, self.ctx.writes


def _idempotency_key(context: Any) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == idempotency.HEADER:
            return str(value)
    return None


def _workflow_record(item: Any) -> async_write_pb2.WriteRecord:
    fields = struct_pb2.Struct()
    fields.update(dict(item.fields))
    associations = []
    for association in item.associations:
        each = struct_pb2.Struct()
        each.update(dict(association))
        associations.append(each)
    return async_write_pb2.WriteRecord(
        record=fields, associations=associations, record_id=item.record_id
    )


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def service(ctx: ApiContext) -> Service:
    return Service.from_servicer(
        write_pb2.DESCRIPTOR.services_by_name["WriteService"],
        write_pb2_grpc.add_WriteServiceServicer_to_server,
        WriteApi(ctx),
    )
