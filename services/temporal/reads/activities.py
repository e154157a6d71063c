"""The read activities: open_read, read_pages, save_read_watermark and close_read.

read_pages is the hot path: it fetches pages through the provider's connector, renders
each record once (reads.shape, orjson), packs them into WebhookMessage bodies of at most
300 KB, publishes one ReadResultPage per body and moves its cursor past a page only when
Pub/Sub has acknowledged every message of it. Fetching page n+1 overlaps waiting for
page n's acknowledgements, so the provider and Pub/Sub work side by side.

Every event's idempotency key derives from the operation id (and page and part numbers),
so a retried activity republishes the same keys and consumers keep one of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
import asyncpg
import grpc
import orjson
from ampmesh.events.v1 import (
    backfill_progress_pb2,
    log_entry_pb2,
    notifications_pb2,
    read_result_pb2,
)
from ampmesh.events.v1 import operation_events_pb2 as operations_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope, EventMeta
from ampmesh.manifest.v1 import config_pb2
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from ampmesh.workflows.v1 import read_operation_pb2, read_page_pb2
from google.protobuf import json_format
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from services.domain.read_bodies import set_body
from services.domain.read_workflows import FAILURES_BEFORE_PAUSE
from services.runtime.events import new_envelope
from services.runtime.logs import get_logger
from services.temporal.connectors.base import (
    Connector,
    Page,
    PageTokenExpired,
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    ReadRequest,
    TokenRejected,
)
from services.temporal.reads.publish import Publisher, wait_all
from services.temporal.reads.workflows import (
    CLOSE_READ_ACTIVITY,
    INSTALLATION_GONE,
    OPEN_READ_ACTIVITY,
    PROVIDER_REQUEST_ERROR,
    READ_PAGES_ACTIVITY,
    SAVE_WATERMARK_ACTIVITY,
)

_log = get_logger("ampmesh.temporal.reads")

SOURCE = "temporal"
# Bodies above this are split into parts (the reference's inline limit).
BODY_LIMIT = 300_000
# OperationFinished and the final BackfillProgress must outrank every progress event
# (whose sequence is the pages done).
FINAL_SEQUENCE_OFFSET = 1_000_000
# How often the activity heartbeats while a page is slow (the provider retrying): well
# inside the workflow's 10 s heartbeat timeout.
HEARTBEAT_EVERY = 2.0
TOKEN_DEADLINE = 20.0
# The token-manager's answers for a connection whose credentials the provider refuses.
_CREDENTIALS_REFUSED = (
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
)
CREDENTIALS_REFUSED = "CredentialsRefused"
# Pages published but not yet acknowledged at most (each up to 300 KB per part).
PAGES_IN_FLIGHT = 32
# Seconds between progress events of a read (and one after its last page).
PROGRESS_EVERY = 0.5

_READ_TYPE_NAMES = {
    operations_pb2.READ_TYPE_BACKFILL: "backfill",
    operations_pb2.READ_TYPE_SCHEDULED: "scheduled",
    operations_pb2.READ_TYPE_TRIGGERED: "triggered",
}


class Shaping(Protocol):
    """What reads.shape offers (a protocol, so tests may stand in for it)."""

    def selection_for(
        self, read_object: config_pb2.ReadConfigObject, manifest_object: dict[str, Any] | None
    ) -> Any: ...

    def render_record(self, connector: Connector, raw: dict[str, Any], selection: Any) -> bytes: ...

    def pack_bodies(
        self, header: dict[str, Any], records: list[bytes], limit: int = BODY_LIMIT
    ) -> list[tuple[bytes, int]]: ...


ConnectorFor = Callable[[str], Connector]
AuthFor = Callable[
    [providers_pb2.ProviderInfo, str, token_manager_pb2.GetTokenResponse], ProviderAuth
]


@dataclass
class ReadContext:
    """What a read needs about its installation and object, loaded once per call."""

    project_id: str
    installation_id: str
    integration_id: str
    integration_name: str
    provider: str
    group_ref: str
    group_name: str
    installation_created_at: datetime
    installation_updated_at: datetime | None
    connection_id: str
    consumer_ref: str
    consumer_name: str
    workspace: str
    config_id: str
    config: dict[str, Any]
    read_config: config_pb2.ReadConfigObject
    manifest_object: dict[str, Any]
    destination_id: str
    destination_name: str

    @property
    def object_name(self) -> str:
        """The provider's object name (the manifest's objectName)."""
        return str(self.manifest_object.get("objectName", ""))

    @property
    def shown_object_name(self) -> str:
        """The name builders see: the mapped name when the object is mapped."""
        return str(self.manifest_object.get("mapToName") or self.object_name)

    def page_size(self, asked: int) -> int:
        if asked > 0:
            return asked
        delivery = self.manifest_object.get("delivery") or {}
        return int(delivery.get("pageSize") or 0)


_SELECT_CONTEXT = """
    SELECT i.project_id::text AS project_id, i.integration_id::text AS integration_id,
           i.group_ref, i.group_name, i.created_at, i.updated_at,
           i.connection_id::text AS connection_id,
           g.name AS integration_name, g.provider,
           c.id::text AS config_id, c.content AS config_content, r.content AS revision_content,
           cn.consumer_ref, cn.consumer_name, cn.provider_workspace_ref
    FROM installations i
    JOIN integrations g ON g.id = i.integration_id
    LEFT JOIN LATERAL (
        SELECT id, revision_id, content FROM configs
        WHERE installation_id = i.id ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN revisions r ON r.id = coalesce(c.revision_id, g.latest_revision_id)
    LEFT JOIN connections cn ON cn.id = i.connection_id
    WHERE i.id = $1::uuid AND i.project_id = $2::uuid
"""
_SELECT_DESTINATION = "SELECT id::text FROM destinations WHERE project_id = $1::uuid AND name = $2"
_SELECT_WATERMARK = (
    "SELECT watermark FROM read_watermarks WHERE installation_id = $1::uuid AND object_name = $2"
)
_UPSERT_WATERMARK = """
    INSERT INTO read_watermarks (installation_id, object_name, project_id, watermark, operation_id)
    VALUES ($1::uuid, $2, $3::uuid, $4, $5::uuid)
    ON CONFLICT (installation_id, object_name) DO UPDATE SET
        watermark = GREATEST(read_watermarks.watermark, EXCLUDED.watermark),
        operation_id = CASE WHEN EXCLUDED.watermark > read_watermarks.watermark
                            THEN EXCLUDED.operation_id ELSE read_watermarks.operation_id END,
        updated_at = now()
"""
_SCHEDULE_SUCCEEDED = """
    UPDATE read_schedules SET consecutive_failures = 0, last_error = '', updated_at = now()
    WHERE installation_id = $1::uuid AND object_name = $2 AND consecutive_failures <> 0
"""
# last_error names the run's operation, so a retried close_read counts its run once.
_SCHEDULE_FAILED = """
    UPDATE read_schedules
    SET consecutive_failures = consecutive_failures + 1, last_error = $3, updated_at = now()
    WHERE installation_id = $1::uuid AND object_name = $2 AND last_error IS DISTINCT FROM $3
    RETURNING consecutive_failures
"""
_SELECT_SCHEDULE = """
    SELECT schedule_id, consecutive_failures, paused FROM read_schedules
    WHERE installation_id = $1::uuid AND object_name = $2
"""
_SCHEDULE_PAUSED = """
    UPDATE read_schedules
    SET paused = true, pause_reason = 'errors', pause_note = $3, updated_at = now()
    WHERE installation_id = $1::uuid AND object_name = $2
"""


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    loaded = orjson.loads(value) if isinstance(value, (str, bytes)) else value
    return loaded if isinstance(loaded, dict) else {}


def _manifest_object(revision: dict[str, Any], object_name: str) -> dict[str, Any] | None:
    for entry in (revision.get("read") or {}).get("objects") or []:
        if isinstance(entry, dict) and entry.get("objectName") == object_name:
            return entry
    return None


def _stamp(moment: datetime | None) -> str:
    """RFC 3339 in UTC, as protobuf's JSON mapping prints timestamps."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _status_name(status: int) -> str:
    return operations_pb2.OperationStatus.Name(status)


class _Beat:
    """Heartbeats the last acknowledged cursor now, and again every HEARTBEAT_EVERY
    while a page is slow, so a living call is never timed out and a dead one resumes
    from the last page that is on the bus."""

    def __init__(self) -> None:
        self.details = b""

    def set(self, cursor: target_pb2.ReadCursor) -> None:
        self.details = cursor.SerializeToString()
        activity.heartbeat(self.details)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async def tick() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_EVERY)
                activity.heartbeat(self.details)

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ReadActivities:
    """The reads queue's activities, bound to the process's resources."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        http: aiohttp.ClientSession,
        publisher: Publisher,
        client: Client,
        connector_for: ConnectorFor,
        auth_for: AuthFor,
        shaping: Shaping,
    ) -> None:
        self._pool = pool
        self._tokens = tokens
        self._catalog = catalog
        self._http = http
        self._publisher = publisher
        self._client = client
        self._connector_for = connector_for
        self._auth_for = auth_for
        self._shape = shaping

    # --- context -----------------------------------------------------------------------

    async def _context(self, target: target_pb2.ObjectTarget) -> ReadContext | str:
        """The read's context, or why there is none (installation, connection or object
        gone or disabled)."""
        try:
            row = await self._pool.fetchrow(
                _SELECT_CONTEXT, target.installation_id, target.project_id
            )
        except asyncpg.DataError:
            row = None
        if row is None:
            return f"installation {target.installation_id} is gone"
        if not row["connection_id"] or row["consumer_ref"] is None:
            return f"installation {target.installation_id} has no connection"
        manifest_object = _manifest_object(_json(row["revision_content"]), target.object_name)
        if manifest_object is None:
            return f"the integration reads no object {target.object_name!r}"
        config = _json(row["config_content"])
        read_config = config_pb2.ReadConfigObject()
        configured = ((config.get("read") or {}).get("objects") or {}).get(target.object_name)
        if configured:
            json_format.ParseDict(configured, read_config, ignore_unknown_fields=True)
        if read_config.HasField("disabled") and read_config.disabled:
            return f"object {target.object_name!r} is disabled in the installation's config"
        destination_name = read_config.destination or str(manifest_object.get("destination", ""))
        destination_id = ""
        if destination_name:
            destination_id = (
                await self._pool.fetchval(_SELECT_DESTINATION, row["project_id"], destination_name)
                or ""
            )
        return ReadContext(
            project_id=row["project_id"],
            installation_id=target.installation_id,
            integration_id=row["integration_id"],
            integration_name=row["integration_name"],
            provider=row["provider"],
            group_ref=row["group_ref"],
            group_name=row["group_name"],
            installation_created_at=row["created_at"],
            installation_updated_at=row["updated_at"],
            connection_id=row["connection_id"],
            consumer_ref=row["consumer_ref"],
            consumer_name=row["consumer_name"],
            workspace=row["provider_workspace_ref"] or "",
            config_id=row["config_id"] or "",
            config=config,
            read_config=read_config,
            manifest_object=manifest_object,
            destination_id=destination_id,
            destination_name=destination_name,
        )

    # --- open --------------------------------------------------------------------------

    @activity.defn(name=OPEN_READ_ACTIVITY)
    async def open_read(
        self, request: read_operation_pb2.OpenReadInput
    ) -> read_operation_pb2.OpenReadOutput:
        context = await self._context(request.target)
        if isinstance(context, str):
            _log.info("read skipped", operation_id=request.operation_id, reason=context)
            return read_operation_pb2.OpenReadOutput(skip=True, skip_reason=context)
        until = request.until.ToDatetime(tzinfo=UTC)
        since = await self._since(request, context, until)
        window = target_pb2.ReadCursor()
        window.until.FromDatetime(until)
        if since is not None:
            window.since.FromDatetime(since)
        created = operations_pb2.OperationCreated(
            operation_id=request.operation_id,
            integration_id=context.integration_id,
            installation_id=context.installation_id,
            config_id=context.config_id,
            connection_id=context.connection_id,
            action_type=operations_pb2.ACTION_TYPE_READ,
            read_type=request.read_type,
            objects=[context.object_name],
            workflow_id=request.workflow_id,
            workflow_run_id=request.workflow_run_id,
        )
        if since is not None:
            created.since_time.FromDatetime(since)
        created.until_time.FromDatetime(until)
        created.create_time.CopyFrom(request.meta.time)
        operation = request.operation_id
        await self._publisher.publish_all(
            [
                self._envelope(request.meta, f"{operation}/created", operation_created=created),
                self._log_entry(
                    request.meta,
                    context,
                    operation,
                    "started",
                    f"[{context.shown_object_name}] "
                    f"{_READ_TYPE_NAMES.get(request.read_type, 'read')} read started",
                    log_entry_pb2.LOG_SEVERITY_INFO,
                ),
            ]
        )
        return read_operation_pb2.OpenReadOutput(
            cursor=window, page_size=context.page_size(request.page_size)
        )

    async def _since(
        self, request: read_operation_pb2.OpenReadInput, context: ReadContext, until: datetime
    ) -> datetime | None:
        """The window's lower bound: the caller's; else for a scheduled run the object's
        watermark (the installation's creation when it has none); else for a backfill its
        configured default period (the config's, then the manifest's): full history is
        no bound, N days is until - N days, and no backfill reads nothing old."""
        if request.HasField("since"):
            return request.since.ToDatetime(tzinfo=UTC)
        if request.read_type == operations_pb2.READ_TYPE_SCHEDULED:
            watermark = await self._pool.fetchval(
                _SELECT_WATERMARK, context.installation_id, context.object_name
            )
            return watermark if watermark is not None else context.installation_created_at
        if request.full_history or request.read_type != operations_pb2.READ_TYPE_BACKFILL:
            return None
        configured = (context.config.get("read") or {}).get("objects", {}).get(
            context.object_name
        ) or {}
        period = (configured.get("backfill") or {}).get("defaultPeriod") or (
            context.manifest_object.get("backfill") or {}
        ).get("defaultPeriod")
        if not period:
            return until
        if period.get("fullHistory"):
            return None
        return until - timedelta(days=int(period.get("days") or 0))

    # --- pages -------------------------------------------------------------------------

    async def _auth(self, context: ReadContext, *, force: bool = False) -> ProviderAuth:
        request = token_manager_pb2.GetTokenRequest(
            connection_id=context.connection_id, project_id=context.project_id
        )
        if force:
            request.refresh = token_manager_pb2.REFRESH_MODE_FORCE
        try:
            response = await self._tokens.GetToken(request, timeout=TOKEN_DEADLINE)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise ApplicationError(
                    f"connection {context.connection_id} is gone",
                    type=INSTALLATION_GONE,
                    non_retryable=True,
                ) from None
            if code in _CREDENTIALS_REFUSED:
                # The provider refused the connection's credentials (bad_credentials):
                # only the customer reconnecting helps, so the read fails now, visibly,
                # instead of retrying for ever.
                raise ApplicationError(
                    f"connection {context.connection_id} has credentials the provider "
                    "refuses: reconnect it",
                    type=CREDENTIALS_REFUSED,
                    non_retryable=True,
                ) from None
            # The status message is the token-manager's: only its code leaves here.
            raise ApplicationError(
                f"the token-manager refused a token for connection {context.connection_id} "
                f"({code.name})",
                type="TokenUnavailable",
            ) from None
        info = self._catalog.get(context.provider)
        if info is None:
            raise ApplicationError(
                f"provider {context.provider!r} is not in the catalog",
                type=PROVIDER_REQUEST_ERROR,
                non_retryable=True,
            )
        try:
            return self._auth_for(info, context.workspace, response)
        except ValueError as error:
            # The connection lacks what the provider's URL needs (its workspace): only
            # reconnecting it can help.
            raise ApplicationError(
                str(error), type=PROVIDER_REQUEST_ERROR, non_retryable=True
            ) from None

    @activity.defn(name=READ_PAGES_ACTIVITY)
    async def read_pages(
        self, request: read_page_pb2.ReadPageInput
    ) -> read_page_pb2.ReadPageOutput:
        started = time.perf_counter()
        context = await self._context(request.target)
        if isinstance(context, str):
            raise ApplicationError(context, type=INSTALLATION_GONE, non_retryable=True)
        cursor = target_pb2.ReadCursor()
        details = activity.info().heartbeat_details
        if details and isinstance(details[0], bytes):
            cursor.ParseFromString(details[0])
        else:
            cursor.CopyFrom(request.cursor)
        try:
            connector = self._connector_for(context.provider)
        except KeyError as error:
            raise ApplicationError(
                str(error), type=PROVIDER_REQUEST_ERROR, non_retryable=True
            ) from None
        selection = self._shape.selection_for(context.read_config, context.manifest_object)
        reader = _PageReader(
            self,
            context,
            connector,
            since=cursor.since.ToDatetime(tzinfo=UTC) if cursor.HasField("since") else None,
            until=cursor.until.ToDatetime(tzinfo=UTC) if cursor.HasField("until") else None,
            fields=list(selection.provider_fields()),
            page_size=context.page_size(request.page_size),
        )
        if cursor.HasField("max_modified_time"):
            reader.newest = cursor.max_modified_time.ToDatetime(tzinfo=UTC)
        header = self._header(request, context)
        message = read_result_pb2.WebhookMessage()
        json_format.ParseDict(header, message, ignore_unknown_fields=True)
        output = read_page_pb2.ReadPageOutput()
        beat = _Beat()
        beat.set(cursor)
        max_pages = max(request.max_pages, 1)
        progress: list[asyncio.Future[str]] = []
        # Pages published and not yet acknowledged, oldest first: the settler moves the
        # cursor past each once it and every page before it are acknowledged (so a
        # resumed call never skips one), while the loop below fetches and publishes the
        # next ones; up to PAGES_IN_FLIGHT outstanding hide Pub/Sub's ack latency.
        in_flight: asyncio.Queue[_Published | None] = asyncio.Queue(maxsize=PAGES_IN_FLIGHT)

        async def settler() -> None:
            progress_due = 0.0
            while (published := await in_flight.get()) is not None:
                await wait_all(published.acks)
                published.advance(cursor)
                if published.estimated_total is not None:
                    output.records_estimated_total = published.estimated_total
                output.page_count += 1
                output.record_count += published.records
                output.message_count += len(published.acks)
                output.payload_bytes += published.payload_bytes
                now = time.monotonic()
                if now >= progress_due or not published.next_page_token:
                    # Counts are absolute: one progress event per interval tells as much
                    # as one per page, for a fraction of the events scribe stores.
                    progress_due = now + PROGRESS_EVERY
                    progress.extend(
                        self._publisher.start(
                            self._progress(request, context, cursor, published.estimated_total)
                        )
                    )
                beat.set(cursor)

        try:
            async with beat.running(), asyncio.TaskGroup() as group:
                settling = group.create_task(settler())
                try:
                    token = cursor.page_token
                    number = cursor.pages_done
                    for _ in range(max_pages):
                        page = await reader.fetch(token)
                        number += 1
                        records = [
                            self._shape.render_record(connector, raw, selection)
                            for raw in page.records
                        ]
                        token = page.next_page_token
                        envelopes = self._page_envelopes(
                            request, context, message, header, records, number, not token
                        )
                        await in_flight.put(
                            _Published(
                                number=number,
                                next_page_token=token,
                                records=len(records),
                                newest=reader.page_newest,
                                since=reader.since,
                                estimated_total=page.estimated_total,
                                payload_bytes=sum(len(e.read_result_page.body) for e in envelopes),
                                acks=self._publisher.start(envelopes),
                            )
                        )
                        if not token:
                            output.done = True
                            break
                finally:
                    # A settler that died (a publish failed) drains nothing: do not wait on it.
                    if not settling.done():
                        await in_flight.put(None)
        except BaseExceptionGroup as failed:
            # Temporal must see the error itself (an ApplicationError says whether to retry).
            first = failed.exceptions[0]
            for candidate in failed.exceptions:
                if isinstance(candidate, ApplicationError):
                    first = candidate
                    break
            raise first from None
        await wait_all(progress)
        output.cursor.CopyFrom(cursor)
        if cursor.HasField("max_modified_time"):
            output.max_modified_time.CopyFrom(cursor.max_modified_time)
        elapsed = time.perf_counter() - started
        _log.info(
            "read pages",
            operation_id=request.operation_id,
            object=context.object_name,
            pages=output.page_count,
            records=output.record_count,
            messages=output.message_count,
            done=output.done,
            records_per_second=round(output.record_count / elapsed) if elapsed > 0 else None,
        )
        return output

    def _header(self, request: read_page_pb2.ReadPageInput, context: ReadContext) -> dict[str, Any]:
        """WebhookMessage's JSON mapping without result (pack_bodies adds resultInfo's
        count and the records); unset fields left out as protobuf's JSON would."""
        header: dict[str, Any] = {
            "projectId": context.project_id,
            "provider": context.provider,
            "workspace": context.workspace,
            "groupRef": context.group_ref,
            "groupName": context.group_name,
            "installationId": context.installation_id,
            "installationUpdateTime": _stamp(
                context.installation_updated_at or context.installation_created_at
            ),
            "objectName": context.shown_object_name,
            "operationId": request.operation_id,
            "rawObjectName": context.object_name
            if context.shown_object_name != context.object_name
            else "",
            "action": "read",
            "resultInfo": {"type": "inline"},
            "consumerRef": context.consumer_ref,
            "consumerName": context.consumer_name,
            "operationTime": _stamp(request.meta.time.ToDatetime(tzinfo=UTC))
            if request.meta.HasField("time")
            else "",
            "readType": _READ_TYPE_NAMES.get(request.read_type, ""),
        }
        return {key: value for key, value in header.items() if value}

    def _page_envelopes(
        self,
        request: read_page_pb2.ReadPageInput,
        context: ReadContext,
        message: read_result_pb2.WebhookMessage,
        header: dict[str, Any],
        records: list[bytes],
        number: int,
        last: bool,
    ) -> list[Envelope]:
        if not records:
            # Nothing to deliver (an empty window, or a provider's empty last page): the
            # builder hears "No new data found" from the operation, not an empty webhook.
            return []
        parts = self._shape.pack_bodies(header, records, BODY_LIMIT)
        envelopes = []
        for index, (body, count) in enumerate(parts, start=1):
            page = read_result_pb2.ReadResultPage(
                message=message,
                destination_id=context.destination_id,
                destination_name=context.destination_name,
                integration_id=context.integration_id,
                connection_id=context.connection_id,
                page_number=number,
                part_number=index,
                part_count=len(parts),
                last_page=last and index == len(parts),
            )
            set_body(page, body)
            page.message.result_info.num_records = count
            envelopes.append(
                self._envelope(
                    request.meta,
                    f"{request.operation_id}/page/{number}/part/{index}",
                    read_result_page=page,
                )
            )
        return envelopes

    def _progress(
        self,
        request: read_page_pb2.ReadPageInput,
        context: ReadContext,
        cursor: target_pb2.ReadCursor,
        estimated: int | None,
    ) -> list[Envelope]:
        operation = request.operation_id
        counts = operations_pb2.OperationCounts(
            records_read=cursor.records_done,
            records_published=cursor.records_done,
            pages=cursor.pages_done,
            records_estimated_total=estimated,
        )
        events = [
            self._envelope(
                request.meta,
                f"{operation}/progress/{cursor.pages_done}",
                operation_progress=operations_pb2.OperationProgress(
                    operation_id=operation,
                    sequence=cursor.pages_done,
                    installation_id=context.installation_id,
                    object_name=context.object_name,
                    counts=counts,
                ),
            )
        ]
        if request.read_type == operations_pb2.READ_TYPE_BACKFILL:
            events.append(
                self._envelope(
                    request.meta,
                    f"{operation}/backfill-progress/{cursor.pages_done}",
                    backfill_progress=self._backfill_progress(
                        request.meta,
                        context.installation_id,
                        context.object_name,
                        operation,
                        cursor.pages_done,
                        cursor.records_done,
                        estimated,
                        done=False,
                    ),
                )
            )
        return events

    @staticmethod
    def _backfill_progress(
        meta: EventMeta,
        installation_id: str,
        object_name: str,
        operation_id: str,
        sequence: int,
        records: int,
        estimated: int | None,
        *,
        done: bool,
    ) -> backfill_progress_pb2.BackfillProgress:
        progress = backfill_progress_pb2.BackfillProgress(
            installation_id=installation_id,
            object_name=object_name,
            operation_id=operation_id,
            sequence=sequence,
            records_processed=records,
            records_estimated_total=estimated,
            done=done,
        )
        if meta.HasField("time"):
            progress.start_time.CopyFrom(meta.time)
        progress.update_time.FromDatetime(datetime.now(UTC))
        return progress

    # --- watermark and close -----------------------------------------------------------

    @activity.defn(name=SAVE_WATERMARK_ACTIVITY)
    async def save_read_watermark(self, request: read_page_pb2.SaveReadWatermarkInput) -> None:
        if not request.cursor.HasField("until"):
            return
        try:
            await self._pool.execute(
                _UPSERT_WATERMARK,
                request.target.installation_id,
                request.target.object_name,
                request.target.project_id,
                request.cursor.until.ToDatetime(tzinfo=UTC),
                request.operation_id or None,
            )
        except asyncpg.ForeignKeyViolationError:
            # The installation was deleted while it was being read: nothing to keep.
            _log.info("watermark not saved: installation gone", operation_id=request.operation_id)

    @activity.defn(name=CLOSE_READ_ACTIVITY)
    async def close_read(
        self, request: read_operation_pb2.CloseReadInput
    ) -> read_operation_pb2.CloseReadOutput:
        found = await self._context(request.target)
        context = found if isinstance(found, ReadContext) else None
        operation = request.operation_id
        target = request.target
        cursor = request.cursor
        success = request.status == operations_pb2.OPERATION_STATUS_SUCCESS
        shown = context.shown_object_name if context else target.object_name
        if not success:
            result = f"[{shown}] Read failed: {request.error}"
        elif cursor.records_done == 0:
            result = f"[{shown}] No new data found"
        else:
            result = f"[{shown}] Read {cursor.records_done} records"
        estimated = (
            request.records_estimated_total if request.HasField("records_estimated_total") else None
        )
        counts = operations_pb2.OperationCounts(
            records_read=cursor.records_done,
            records_published=cursor.records_done,
            pages=cursor.pages_done,
            records_estimated_total=estimated,
        )
        finished = operations_pb2.OperationFinished(
            operation_id=operation,
            sequence=cursor.pages_done + FINAL_SEQUENCE_OFFSET,
            installation_id=target.installation_id,
            action_type=operations_pb2.ACTION_TYPE_READ,
            status=request.status,
            result=result,
            counts=counts,
            errors=[request.error] if request.error else [],
        )
        finished.finish_time.CopyFrom(request.finish_time)
        if request.HasField("start_time"):
            finished.duration.FromTimedelta(
                request.finish_time.ToDatetime() - request.start_time.ToDatetime()
            )
        events = [
            self._envelope(request.meta, f"{operation}/finished", operation_finished=finished)
        ]
        if request.read_type == operations_pb2.READ_TYPE_BACKFILL:
            events.append(
                self._envelope(
                    request.meta,
                    f"{operation}/backfill-progress/final",
                    backfill_progress=self._backfill_progress(
                        request.meta,
                        target.installation_id,
                        target.object_name,
                        operation,
                        cursor.pages_done + FINAL_SEQUENCE_OFFSET,
                        cursor.records_done,
                        estimated,
                        done=True,
                    ),
                )
            )
        paused = False
        if context is not None:
            events.append(
                self._log_entry(
                    request.meta,
                    context,
                    operation,
                    "finished",
                    result,
                    log_entry_pb2.LOG_SEVERITY_INFO
                    if success
                    else log_entry_pb2.LOG_SEVERITY_ERROR,
                    error=request.error,
                )
            )
            notification = self._notification(request, context, success)
            if notification is not None:
                events.append(
                    self._envelope(
                        request.meta, f"{operation}/notification", notification=notification
                    )
                )
            if request.read_type == operations_pb2.READ_TYPE_SCHEDULED:
                paused, more = await self._schedule_bookkeeping(request, context, success)
                events.extend(more)
        await self._publisher.publish_all(events)
        _log.info(
            "read closed",
            operation_id=operation,
            object=target.object_name,
            status=_status_name(request.status),
            records=cursor.records_done,
            schedule_paused=paused or None,
        )
        return read_operation_pb2.CloseReadOutput(result=result, schedule_paused=paused)

    def _notification(
        self, request: read_operation_pb2.CloseReadInput, context: ReadContext, success: bool
    ) -> notifications_pb2.Notification | None:
        common: dict[str, Any] = {
            "project_id": context.project_id,
            "provider": context.provider,
            "integration_id": context.integration_id,
            "integration_name": context.integration_name,
            "installation_id": context.installation_id,
            "connection_id": context.connection_id,
            "group_ref": context.group_ref,
            "group_name": context.group_name,
            "consumer_ref": context.consumer_ref,
            "consumer_name": context.consumer_name,
            "object_name": context.shown_object_name,
        }
        window = request.cursor
        if request.read_type == operations_pb2.READ_TYPE_BACKFILL:
            if not success:
                return None
            return notifications_pb2.Notification(
                read_backfill_done=notifications_pb2.ReadBackfillDoneNotification(
                    notification_type="read.backfill.done",
                    data=notifications_pb2.ReadBackfillDoneData(**common),
                )
            )
        if request.read_type != operations_pb2.READ_TYPE_TRIGGERED:
            return None
        if success:
            done = notifications_pb2.ReadTriggeredDoneData(**common)
            if window.HasField("since"):
                done.from_timestamp.CopyFrom(window.since)
            done.until_timestamp.CopyFrom(window.until)
            return notifications_pb2.Notification(
                read_triggered_done=notifications_pb2.ReadTriggeredDoneNotification(
                    notification_type="read.triggered.done", data=done
                )
            )
        failed = notifications_pb2.ReadTriggeredErrorData(**common, error=request.error)
        if window.HasField("since"):
            failed.from_timestamp.CopyFrom(window.since)
        failed.until_timestamp.CopyFrom(window.until)
        return notifications_pb2.Notification(
            read_triggered_error=notifications_pb2.ReadTriggeredErrorNotification(
                notification_type="read.triggered.error", data=failed
            )
        )

    async def _schedule_bookkeeping(
        self, request: read_operation_pb2.CloseReadInput, context: ReadContext, success: bool
    ) -> tuple[bool, list[Envelope]]:
        """Reset the failure count on success; count a failed run, and pause the schedule
        after FAILURES_BEFORE_PAUSE in a row (with its read.schedule.paused)."""
        key = (context.installation_id, context.object_name)
        if success:
            await self._pool.execute(_SCHEDULE_SUCCEEDED, *key)
            return False, []
        await self._pool.fetchval(
            _SCHEDULE_FAILED, *key, f"operation {request.operation_id}: {request.error}"[:1000]
        )
        row = await self._pool.fetchrow(_SELECT_SCHEDULE, *key)
        if row is None or row["consecutive_failures"] < FAILURES_BEFORE_PAUSE:
            return False, []
        schedule_id = request.schedule_id or row["schedule_id"]
        note = (
            f"paused after {row['consecutive_failures']} failed runs in a row; "
            f"last error: {request.error}"
        )[:500]
        events: list[Envelope] = []
        if not row["paused"]:
            try:
                await self._client.get_schedule_handle(schedule_id).pause(note=note)
            except Exception as error:
                _log.warning(
                    "schedule not paused", schedule_id=schedule_id, error=type(error).__name__
                )
            await self._pool.execute(_SCHEDULE_PAUSED, *key, note)
        data = notifications_pb2.ReadSchedulePausedData(
            project_id=context.project_id,
            provider=context.provider,
            integration_id=context.integration_id,
            integration_name=context.integration_name,
            installation_id=context.installation_id,
            connection_id=context.connection_id,
            group_ref=context.group_ref,
            group_name=context.group_name,
            consumer_ref=context.consumer_ref,
            consumer_name=context.consumer_name,
            error=request.error,
        )
        if context.config:
            json_format.ParseDict(context.config, data.config)
        # Keyed by the run that paused it: a retried close republishes the same one.
        events.append(
            self._envelope(
                request.meta,
                f"{schedule_id}/paused/{request.operation_id}",
                notification=notifications_pb2.Notification(
                    read_schedule_paused=notifications_pb2.ReadSchedulePausedNotification(
                        notification_type="read.schedule.paused", data=data
                    )
                ),
            )
        )
        return True, events

    # --- events ------------------------------------------------------------------------

    @staticmethod
    def _envelope(meta: EventMeta, key: str, **payload: Any) -> Envelope:
        envelope = new_envelope(
            project_id=meta.project_id,
            idempotency_key=key,
            source=SOURCE,
            request_id=meta.request_id,
            **payload,
        )
        envelope.meta.traceparent = meta.traceparent
        envelope.meta.tracestate = meta.tracestate
        return envelope

    def _log_entry(
        self,
        meta: EventMeta,
        context: ReadContext,
        operation: str,
        what: str,
        message: str,
        severity: int,
        *,
        error: str = "",
    ) -> Envelope:
        entry = log_entry_pb2.LogEntry(
            operation_id=operation,
            installation_id=context.installation_id,
            integration_id=context.integration_id,
            severity=severity,  # type: ignore[arg-type]
            msg=message,
            error=error,
            details={"object": context.object_name},
        )
        entry.timestamp.FromDatetime(datetime.now(UTC))
        return self._envelope(meta, f"{operation}/log/{what}", log_entry=entry)


@dataclass
class _Published:
    """A page handed to the publisher, and what the cursor becomes once it is acked."""

    number: int
    next_page_token: str
    records: int
    newest: datetime | None
    estimated_total: int | None
    payload_bytes: int
    acks: list[asyncio.Future[str]]
    # The lower bound the page's query ran with (moved up when a forgotten query was
    # read again): the next page token belongs to that query.
    since: datetime | None = None

    def advance(self, cursor: target_pb2.ReadCursor) -> None:
        if self.since is not None:
            cursor.since.FromDatetime(self.since)
        cursor.page_token = self.next_page_token
        cursor.pages_done = self.number
        cursor.records_done += self.records
        if self.newest is not None and (
            not cursor.HasField("max_modified_time")
            or self.newest > cursor.max_modified_time.ToDatetime(tzinfo=UTC)
        ):
            cursor.max_modified_time.FromDatetime(self.newest)


class _PageReader:
    """Fetches pages of one window through a connector, with one token per call (a
    forced refresh and a second try when the provider rejects it)."""

    def __init__(
        self,
        activities: ReadActivities,
        context: ReadContext,
        connector: Connector,
        *,
        since: datetime | None,
        until: datetime | None,
        fields: list[str],
        page_size: int,
    ) -> None:
        self._activities = activities
        self._context = context
        self._connector = connector
        self._since = since
        self._until = until
        self._fields = fields
        self._page_size = page_size
        self._auth: ProviderAuth | None = None
        # The newest modification time among the records fetched so far: where the
        # window starts again if the provider drops its query (PageTokenExpired).
        self.newest: datetime | None = None
        # The newest modification time in the page fetch returned last.
        self.page_newest: datetime | None = None

    @property
    def since(self) -> datetime | None:
        """The lower bound of the query the pages now come from."""
        return self._since

    async def fetch(self, page_token: str) -> Page:
        try:
            page = await self._fetch(page_token, self._since)
        except PageTokenExpired:
            # Records come oldest first: everything before `newest` has been read, so a
            # fresh query from there leaves no gap (the records at `newest` come twice).
            _log.info(
                "provider dropped the query; reading the window again from the newest record",
                object=self._context.object_name,
            )
            # Later pages belong to the new query: it is the window's lower bound now
            # (the cursor takes it too, so a retried call resumes the same query).
            self._since = self.newest or self._since
            page = await self._fetch("", self._since)
        self.page_newest = _newest(self._connector, page.records)
        if self.page_newest is not None and (self.newest is None or self.page_newest > self.newest):
            self.newest = self.page_newest
        return page

    async def _fetch(self, page_token: str, since: datetime | None) -> Page:
        request = ReadRequest(
            object_name=self._context.object_name,
            fields=self._fields,
            since=since,
            until=self._until,
            page_token=page_token,
            page_size=self._page_size,
        )
        http = self._activities._http
        try:
            if self._auth is None:
                self._auth = await self._activities._auth(self._context)
            try:
                return await self._connector.read_page(http, self._auth, request)
            except TokenRejected:
                self._auth = await self._activities._auth(self._context, force=True)
                return await self._connector.read_page(http, self._auth, request)
        except TokenRejected:
            raise ApplicationError(
                f"{self._context.provider} rejected the refreshed token of connection "
                f"{self._context.connection_id}: reconnect it",
                type=CREDENTIALS_REFUSED,
                non_retryable=True,
            ) from None
        except ProviderUnavailable as error:
            raise ApplicationError(
                str(error),
                type="ProviderUnavailable",
                next_retry_delay=timedelta(seconds=error.retry_after)
                if error.retry_after
                else None,
            ) from None
        except PageTokenExpired:
            raise
        except ProviderRequestError as error:
            raise ApplicationError(
                str(error), type=PROVIDER_REQUEST_ERROR, non_retryable=True
            ) from None


def _newest(connector: Connector, records: list[dict[str, Any]]) -> datetime | None:
    newest: datetime | None = None
    for raw in records:
        moment = connector.modified_time(raw)
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    return newest
