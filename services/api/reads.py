"""The api's side of the read workflows: it starts an object's backfill when an
installation begins reading it, keeps each object's Temporal schedule in step with the
installation's config, pauses and resumes schedules, and starts triggered reads. The
workflows themselves run in the temporal workers (services/temporal/reads).

Consistency with the database: everything here runs inside the transaction that saves
the installation's config, before it commits. If Temporal refuses, the transaction rolls
back and the caller gets UNAVAILABLE with nothing saved. If the commit fails after a
start, the workflow finds no installation (or no such object in its config) and ends
without reading: the read workflows re-check the installation before every run.

A read object's facts are its read plan (services/domain/read_plan.py: the config's
schedule, backfill and destination, else the manifest's; fields and mappings), which
every workflow input carries, so the workers read pages without loading the manifest
and the config again. A schedule's input is brought in step with each config saved.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import asyncpg
import grpc
from ampmesh.events.v1 import envelope_pb2
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.workflows.v1 import (
    backfill_read_pb2,
    object_target_pb2,
    scheduled_read_pb2,
    triggered_read_pb2,
)
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from services.api.read_objects import (
    ReadObject,
    find_destination_ids,
)
from services.domain.read_plan import configured_plans
from services.domain.read_workflows import (
    BACKFILL_WORKFLOW,
    READS_QUEUE,
    TRIGGERED_WORKFLOW,
    backfill_workflow_id,
    read_schedule,
    schedule_id,
    triggered_workflow_id,
)
from services.runtime.errors import abort_with_details, error_info
from services.runtime.logs import get_logger
from services.runtime.request_id import current_request_id
from services.runtime.tracing import TRACEPARENT, TRACESTATE, inject

__all__ = [
    "PAUSED_BY_API",
    "PAUSED_BY_DEPLOY",
    "InstallationFacts",
    "Reads",
    "ReadsUnavailable",
    "abort_reads_unavailable",
    "meta_for",
]

_log = get_logger("ampmesh.api.reads")

# Who paused a schedule (read_schedules.pause_reason).
PAUSED_BY_API = "api"
PAUSED_BY_DEPLOY = "deploy"


class ReadsUnavailable(RuntimeError):
    """Temporal could not be reached or refused a start: nothing was changed."""


@dataclass(frozen=True)
class InstallationFacts:
    """Who and what an installation's workflows read for."""

    project_id: str
    integration_id: str
    installation_id: str
    connection_id: str
    provider: str

    def target(self, object_name: str) -> object_target_pb2.ObjectTarget:
        return object_target_pb2.ObjectTarget(
            project_id=self.project_id,
            integration_id=self.integration_id,
            installation_id=self.installation_id,
            connection_id=self.connection_id,
            provider=self.provider,
            object_name=object_name,
        )


def meta_for(
    message: type[Message], project_id: str, key: str, *, traced: bool = True
) -> envelope_pb2.EventMeta:
    """The meta of a workflow's input; traced: it carries this request's trace context
    (not for a schedule's input, whose every run would join this request's trace)."""
    meta = envelope_pb2.EventMeta(
        id=str(uuid.uuid4()),
        type=message.DESCRIPTOR.full_name,
        project_id=project_id,
        idempotency_key=key,
        request_id=current_request_id() or "",
        source="api",
    )
    meta.time.FromDatetime(datetime.now(UTC))
    if traced:
        carrier: dict[str, str] = {}
        inject(carrier)  # the workflow's events continue this request's trace
        meta.traceparent = carrier.get(TRACEPARENT, "")
        meta.tracestate = carrier.get(TRACESTATE, "")
    return meta


class Reads:
    """Starts read workflows and manages read schedules on Temporal."""

    def __init__(self, temporal: Client) -> None:
        self.temporal = temporal

    async def installation_saved(
        self,
        conn: asyncpg.Connection,
        facts: InstallationFacts,
        content: config_pb2.ConfigContent,
        revision: manifest_pb2.Integration,
        *,
        created_at: datetime,
    ) -> None:
        """Bring the installation's reads in step with its newest config: objects it
        starts reading get their watermark (now: scheduled reads read what changes from
        here on), their backfill (what changed before) and their schedule; objects it
        stops reading lose their schedule; changed crons and disabled objects update
        theirs, and every schedule's input carries the object's new plan. Call inside
        the transaction that saved the config."""
        config_id = await conn.fetchval(
            "SELECT id::text FROM configs WHERE installation_id = $1 "
            "ORDER BY created_at DESC, id DESC LIMIT 1",
            uuid.UUID(facts.installation_id),
        )
        plans = configured_plans(revision, content, config_id=config_id or "")
        destinations = await find_destination_ids(
            conn, facts.project_id, (p.destination_name for p in plans.values())
        )
        for plan in plans.values():
            plan.destination_id = destinations.get(plan.destination_name, "")
        objects = {name: ReadObject.of(plan) for name, plan in plans.items()}
        rows = await conn.fetch(
            "SELECT object_name, schedule_id, cron, paused, pause_reason FROM read_schedules "
            "WHERE installation_id = $1 FOR UPDATE",
            uuid.UUID(facts.installation_id),
        )
        scheduled = {r["object_name"]: r for r in rows}
        known = {
            r["object_name"]
            for r in await conn.fetch(
                "SELECT object_name FROM read_watermarks WHERE installation_id = $1",
                uuid.UUID(facts.installation_id),
            )
        }
        with _temporal_refusals():
            for name, read_object in objects.items():
                if name not in known and not read_object.disabled:
                    await self._start_reading(conn, facts, read_object, created_at)
                await self._keep_schedule(conn, facts, read_object, scheduled.get(name))
            # An object dropped from the config forgets how far it had read: added
            # again, it is backfilled again.
            await conn.execute(
                "DELETE FROM read_watermarks WHERE installation_id = $1 "
                "AND NOT object_name = ANY($2::text[])",
                uuid.UUID(facts.installation_id),
                list(objects),
            )
            for name, row in scheduled.items():
                if name not in objects or not objects[name].schedule:
                    await conn.execute(
                        "DELETE FROM read_schedules WHERE schedule_id = $1", row["schedule_id"]
                    )
                    await self._delete_schedule(row["schedule_id"])

    async def _start_reading(
        self,
        conn: asyncpg.Connection,
        facts: InstallationFacts,
        read_object: ReadObject,
        now: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO read_watermarks (installation_id, object_name, project_id, watermark) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            uuid.UUID(facts.installation_id),
            read_object.name,
            uuid.UUID(facts.project_id),
            now,
        )
        period = read_object.backfill
        if period is None:
            return
        operation_id = str(uuid.uuid4())
        workflow_input = backfill_read_pb2.BackfillReadInput(
            meta=meta_for(
                backfill_read_pb2.BackfillReadInput,
                facts.project_id,
                f"{operation_id}/start",
            ),
            target=facts.target(read_object.name),
            operation_id=operation_id,
            full_history=period.full_history,
            page_size=read_object.page_size,
            plan=read_object.plan,
        )
        workflow_input.until.FromDatetime(now)
        if not period.full_history:
            workflow_input.since.FromDatetime(now - timedelta(days=period.days))
        workflow_id = backfill_workflow_id(facts.installation_id, read_object.name)
        await self.temporal.start_workflow(
            BACKFILL_WORKFLOW,
            workflow_input,
            id=workflow_id,
            task_queue=READS_QUEUE,
            # An object read again after it was dropped backfills again.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        _log.info(
            "backfill started",
            workflow_id=workflow_id,
            operation_id=operation_id,
            full_history=period.full_history,
            days=period.days,
        )

    async def _keep_schedule(
        self,
        conn: asyncpg.Connection,
        facts: InstallationFacts,
        read_object: ReadObject,
        row: asyncpg.Record | None,
    ) -> None:
        if not read_object.schedule:
            return
        sid = schedule_id(facts.installation_id, read_object.name)
        workflow_input = scheduled_read_pb2.ScheduledReadInput(
            meta=meta_for(
                scheduled_read_pb2.ScheduledReadInput, facts.project_id, sid, traced=False
            ),
            target=facts.target(read_object.name),
            schedule_id=sid,
            page_size=read_object.page_size,
            plan=read_object.plan,
        )
        if row is None:
            paused = read_object.disabled
            await conn.execute(
                "INSERT INTO read_schedules (installation_id, object_name, project_id, "
                "schedule_id, cron, paused, pause_reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                uuid.UUID(facts.installation_id),
                read_object.name,
                uuid.UUID(facts.project_id),
                sid,
                read_object.schedule,
                paused,
                PAUSED_BY_DEPLOY if paused else "",
            )
            schedule = read_schedule(workflow_input, read_object.schedule, paused=paused)
            try:
                await self.temporal.create_schedule(sid, schedule)
            except ScheduleAlreadyRunningError:
                # Left by a transaction that rolled back after creating it: make it ours.
                await self._set_schedule(sid, read_object.schedule, paused, workflow_input)
            return
        if row["cron"] != read_object.schedule:
            await conn.execute(
                "UPDATE read_schedules SET cron = $2, updated_at = now() WHERE schedule_id = $1",
                sid,
                read_object.schedule,
            )
        # The schedule's runs read with the config just saved (its input's plan).
        await self._set_schedule(sid, read_object.schedule, None, workflow_input)
        if read_object.disabled and not row["paused"]:
            await self._pause(conn, [sid], PAUSED_BY_DEPLOY, "the object is disabled")
        elif not read_object.disabled and row["paused"] and row["pause_reason"] == PAUSED_BY_DEPLOY:
            # Enabled again: resume what disabling paused (a pause by the API stays).
            await self._unpause(conn, [sid], "the object is enabled again")

    async def _set_schedule(
        self,
        sid: str,
        cron: str,
        paused: bool | None,
        workflow_input: scheduled_read_pb2.ScheduledReadInput,
    ) -> None:
        """Bring the schedule's cron, its paused state (unless None) and its input's
        target and plan to these; no update when nothing differs."""

        async def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
            schedule = current.description.schedule
            changed = list(schedule.spec.cron_expressions) != [cron]
            schedule.spec.cron_expressions = [cron]
            if paused is not None:
                changed = changed or schedule.state.paused != paused
                schedule.state.paused = paused
            action = schedule.action
            if isinstance(action, ScheduleActionStartWorkflow):
                wanted = await self._schedule_input(action.args, workflow_input)
                if wanted is not None:
                    action.args = [wanted]
                    changed = True
            return ScheduleUpdate(schedule=schedule) if changed else None

        await self.temporal.get_schedule_handle(sid).update(update)

    async def _schedule_input(
        self, args: Iterable[object], workflow_input: scheduled_read_pb2.ScheduledReadInput
    ) -> scheduled_read_pb2.ScheduledReadInput | None:
        """The schedule's input with workflow_input's target, page size and plan (its
        meta kept: it describes the schedule's creation); None when it has them."""
        current = scheduled_read_pb2.ScheduledReadInput()
        given = list(args)
        payloads = [a for a in given if isinstance(a, Payload)]
        if len(given) == 1 and len(payloads) == 1:
            (current,) = await self.temporal.data_converter.decode(
                payloads, [scheduled_read_pb2.ScheduledReadInput]
            )
        elif len(given) == 1 and isinstance(given[0], scheduled_read_pb2.ScheduledReadInput):
            current = given[0]
        if (
            current.target == workflow_input.target
            and current.plan == workflow_input.plan
            and current.page_size == workflow_input.page_size
            and current.schedule_id == workflow_input.schedule_id
        ):
            return None
        wanted = scheduled_read_pb2.ScheduledReadInput()
        wanted.CopyFrom(workflow_input)
        if current.HasField("meta"):
            wanted.meta.CopyFrom(current.meta)
        return wanted

    async def _delete_schedule(self, sid: str) -> None:
        try:
            await self.temporal.get_schedule_handle(sid).delete()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise

    async def installation_deleted(self, conn: asyncpg.Connection, installation_id: str) -> None:
        """Delete the installation's schedules and stop its backfills (call before the
        installation's row goes; its read rows go with it)."""
        rows = await conn.fetch(
            "SELECT object_name, schedule_id FROM read_schedules WHERE installation_id = $1",
            uuid.UUID(installation_id),
        )
        names = await conn.fetch(
            "SELECT object_name FROM read_watermarks WHERE installation_id = $1",
            uuid.UUID(installation_id),
        )
        with _temporal_refusals():
            for row in rows:
                await self._delete_schedule(row["schedule_id"])
            for row in names:
                handle = self.temporal.get_workflow_handle(
                    backfill_workflow_id(installation_id, row["object_name"])
                )
                try:
                    await handle.cancel()
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND:
                        raise

    async def pause(
        self,
        conn: asyncpg.Connection,
        installation_id: str,
        object_names: Iterable[str] | None,
        note: str,
        *,
        reason: str = PAUSED_BY_API,
    ) -> None:
        """Pause the schedules of the objects named (all when None)."""
        ids = await self._schedule_ids(conn, installation_id, object_names)
        with _temporal_refusals():
            await self._pause(conn, ids, reason, note)

    async def unpause(
        self,
        conn: asyncpg.Connection,
        installation_id: str,
        object_names: Iterable[str] | None,
        note: str,
    ) -> None:
        """Resume the schedules of the objects named (all when None), whoever paused
        them; failures counted so far are forgotten."""
        ids = await self._schedule_ids(conn, installation_id, object_names)
        with _temporal_refusals():
            await self._unpause(conn, ids, note or "resumed through the Read API")

    async def _unpause(self, conn: asyncpg.Connection, ids: list[str], note: str) -> None:
        paused = await conn.fetch(
            "UPDATE read_schedules SET paused = false, pause_reason = '', pause_note = $2, "
            "consecutive_failures = 0, updated_at = now() "
            "WHERE schedule_id = ANY($1::text[]) AND paused RETURNING schedule_id",
            ids,
            note,
        )
        for row in paused:
            await self.temporal.get_schedule_handle(row["schedule_id"]).unpause(note=note)

    async def _pause(
        self, conn: asyncpg.Connection, ids: list[str], reason: str, note: str
    ) -> None:
        rows = await conn.fetch(
            "UPDATE read_schedules SET paused = true, pause_reason = $2, pause_note = $3, "
            "updated_at = now() WHERE schedule_id = ANY($1::text[]) AND NOT paused "
            "RETURNING schedule_id",
            ids,
            reason,
            note,
        )
        for row in rows:
            await self.temporal.get_schedule_handle(row["schedule_id"]).pause(
                note=note or f"paused by {reason}"
            )

    @staticmethod
    async def _schedule_ids(
        conn: asyncpg.Connection, installation_id: str, object_names: Iterable[str] | None
    ) -> list[str]:
        rows = await conn.fetch(
            "SELECT object_name, schedule_id FROM read_schedules WHERE installation_id = $1 "
            "FOR UPDATE",
            uuid.UUID(installation_id),
        )
        wanted = None if object_names is None else set(object_names)
        return [r["schedule_id"] for r in rows if wanted is None or r["object_name"] in wanted]

    async def trigger(
        self,
        facts: InstallationFacts,
        read_object: ReadObject,
        since: datetime | None,
        until: datetime,
    ) -> str:
        """Start a triggered read of one object; its operation id."""
        operation_id = str(uuid.uuid4())
        workflow_input = triggered_read_pb2.TriggeredReadInput(
            meta=meta_for(
                triggered_read_pb2.TriggeredReadInput, facts.project_id, f"{operation_id}/start"
            ),
            target=facts.target(read_object.name),
            operation_id=operation_id,
            page_size=read_object.page_size,
            plan=read_object.plan,
        )
        if since is not None:
            workflow_input.since.FromDatetime(since)
        workflow_input.until.FromDatetime(until)
        with _temporal_refusals():
            await self.temporal.start_workflow(
                TRIGGERED_WORKFLOW,
                workflow_input,
                id=triggered_workflow_id(operation_id),
                task_queue=READS_QUEUE,
            )
        return operation_id


async def abort_reads_unavailable(context: Any, error: ReadsUnavailable) -> NoReturn:
    """UNAVAILABLE: the change was rolled back because Temporal refused its reads."""
    await abort_with_details(
        context,
        grpc.StatusCode.UNAVAILABLE,
        f"reads could not be scheduled, so nothing was changed; try again: {error}",
        error_info("WORKFLOWS_UNAVAILABLE"),
    )


@contextmanager
def _temporal_refusals() -> Iterator[None]:
    """Temporal refusing a call, or not being reachable at all, as ReadsUnavailable."""
    try:
        yield
    except RPCError as error:
        # The SDK's message names the failure, never a credential (Temporal has none here).
        raise ReadsUnavailable(
            f"the workflow service refused the request ({error.status.name}): {str(error)[:200]}"
        ) from None
    except RuntimeError as error:
        # The lazy client's first call connects; failing that, the SDK raises a bare
        # RuntimeError (not an RPCError), which would otherwise answer 500.
        if not str(error).startswith("Failed client connect"):
            raise
        raise ReadsUnavailable("the workflow service could not be reached") from None
