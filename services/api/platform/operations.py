"""Operations, read side: an installation's operations one page at a time, one operation,
its logs, and the progress of an object's backfill.

Nothing in the api writes these rows: scribe records them as runs happen (issue #6). The
shapes it writes, which this module reads back:

- `operations.metadata`: the reference's operation `metadata` JSON (`objects`, `retry`
  {`attempts`, `lastAttempt`, `lastNotified`}, `progress` {…}, `successfulRecordIds`);
  unknown keys are ignored.
- `operation_logs.message`: the reference's log `message` JSON (`msg`, `error`,
  `operation_id`, `details` {string: string}).
- `backfill_progress`: one row per backfill operation and object, absolute counts.

Every query is confined to the project the caller may act on, and a customer JWT (which
carries a groupRef) sees only its own group's installations and their operations; anything
else is NOT_FOUND, with the same words as a resource that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import grpc
from ampmesh.platform.v1 import operations_pb2, operations_pb2_grpc
from google.protobuf import json_format

from services.api.auth import Authenticator, Principal, ProjectRow, is_uuid
from services.api.common import abort_invalid, abort_missing, timestamp
from services.api.context import ApiContext
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000
# The proto's counters are int32; a count past that is shown as the largest it can hold.
_INT32_MAX = 2**31 - 1
_TOKEN_VERSION = 1
_FOREIGN_PAGE_PROBLEM = (
    "is not a page token of this installation's operation list: pass the "
    "pagination.nextPageToken of the previous page, or leave pageToken out for the first page"
)


@dataclass(frozen=True)
class PageToken:
    """Where the previous page ended (its last row, in the list's newest-first order), and
    which list it belongs to: a token is only good for the installation it came from."""

    installation_id: str
    created_at: datetime
    operation_id: uuid.UUID

    def encode(self) -> str:
        payload = json.dumps(
            [
                _TOKEN_VERSION,
                self.installation_id,
                self.created_at.isoformat(),
                str(self.operation_id),
            ],
            separators=(",", ":"),
        )
        # URL-safe and unpadded, so clients can put it in a query string as it is.
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageToken | None:
        """The token's position, or None when it is not a token this list handed out."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            version, installation_id, created_at, operation_id = json.loads(raw)
            if version != _TOKEN_VERSION or not isinstance(installation_id, str):
                return None
            moment = datetime.fromisoformat(created_at)
            if moment.tzinfo is None:
                return None
            return cls(installation_id, moment, uuid.UUID(operation_id))
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
            return None


def _json_object(value: Any) -> dict[str, Any]:
    """A jsonb column's value as a dict (asyncpg hands jsonb over as text unless the pool
    has a codec for it)."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _int32(value: int) -> int:
    return min(value, _INT32_MAX)


def to_operation(row: asyncpg.Record) -> operations_pb2.Operation:
    operation = operations_pb2.Operation(
        id=str(row["id"]),
        project_id=str(row["project_id"]),
        integration_id=_text(row["integration_id"]),
        installation_id=_text(row["installation_id"]),
        config_id=_text(row["config_id"]),
        action_type=row["action_type"],
        status=row["status"],
        result=row["result"],
        create_time=timestamp(row["created_at"]),
    )
    metadata = _json_object(row["metadata"])
    if metadata:
        json_format.ParseDict(metadata, operation.metadata, ignore_unknown_fields=True)
    trace_id = row.get("trace_id")
    if trace_id:
        operation.metadata.trace_id = trace_id
    return operation


def to_log(row: asyncpg.Record) -> operations_pb2.Log:
    message = _json_object(row["message"])
    details = message.get("details")
    return operations_pb2.Log(
        timestamp=timestamp(row["logged_at"]),
        severity=row["severity"],
        message=operations_pb2.LogMessage(
            msg=_text(message.get("msg")),
            error=_text(message.get("error")),
            # Every entry belongs to its operation, whether or not the writer said so.
            operation_id=_text(message.get("operation_id")) or str(row["operation_id"]),
            details=(
                {str(k): _text(v) for k, v in details.items()} if isinstance(details, dict) else {}
            ),
        ),
    )


def to_backfill_progress(row: asyncpg.Record) -> operations_pb2.BackfillProgress:
    progress = operations_pb2.BackfillProgress(
        installation_id=str(row["installation_id"]),
        object_name=row["object_name"],
        operation_id=str(row["operation_id"]),
        records_processed=_int32(row["records_processed"]),
        create_time=timestamp(row["created_at"]),
        update_time=timestamp(row["updated_at"] or row["created_at"]),
    )
    if row["records_estimated_total"] is not None:
        progress.records_estimated_total = _int32(row["records_estimated_total"])
    return progress


class Operations(operations_pb2_grpc.OperationServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def ListOperations(
        self, request: operations_pb2.ListOperationsRequest, context: grpc.aio.ServicerContext
    ) -> operations_pb2.ListOperationsResponse:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        installation = await self._installation(
            context, principal, project, request.integration_id, request.installation_id
        )
        page_size = DEFAULT_PAGE_SIZE
        if request.HasField("page_size"):
            if request.page_size < 1:
                await abort_invalid(
                    context, {"query.pageSize": f"must be between 1 and {MAX_PAGE_SIZE}"}
                )
            # Larger pages are served at the largest size rather than refused.
            page_size = min(request.page_size, MAX_PAGE_SIZE)
        after: PageToken | None = None
        if request.page_token:
            after = PageToken.decode(request.page_token)
            if after is None or after.installation_id != str(installation):
                await abort_invalid(context, {"query.pageToken": _FOREIGN_PAGE_PROBLEM})
        # One row more than the page tells whether another page follows.
        rows = await self.ctx.pool.fetch(
            "SELECT * FROM operations WHERE project_id = $1 AND installation_id = $2 "
            "AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid)) "
            "ORDER BY created_at DESC, id DESC LIMIT $5",
            uuid.UUID(project.id),
            installation,
            after.created_at if after else None,
            after.operation_id if after else None,
            page_size + 1,
        )
        page = rows[:page_size]
        pagination = operations_pb2.PaginationInfo(done=len(rows) <= page_size)
        if not pagination.done:
            last = page[-1]
            pagination.next_page_token = PageToken(
                str(installation), last["created_at"], last["id"]
            ).encode()
        return operations_pb2.ListOperationsResponse(
            results=[to_operation(r) for r in page], pagination=pagination
        )

    async def GetBackfillProgress(
        self,
        request: operations_pb2.GetBackfillProgressRequest,
        context: grpc.aio.ServicerContext,
    ) -> operations_pb2.BackfillProgress:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        installation = await self._installation(
            context, principal, project, request.integration_id, request.installation_id
        )
        row = await self.ctx.pool.fetchrow(
            "SELECT * FROM backfill_progress WHERE project_id = $1 AND installation_id = $2 "
            "AND object_name = $3 ORDER BY created_at DESC LIMIT 1",
            uuid.UUID(project.id),
            installation,
            request.object_name,
        )
        if row is None:
            await abort_missing(
                context, "backfill progress of object", request.object_name or "(none)"
            )
        return to_backfill_progress(row)

    async def GetOperation(
        self, request: operations_pb2.GetOperationRequest, context: grpc.aio.ServicerContext
    ) -> operations_pb2.Operation:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        return to_operation(
            await self._operation(context, principal, project, request.operation_id)
        )

    async def ListOperationLogs(
        self,
        request: operations_pb2.ListOperationLogsRequest,
        context: grpc.aio.ServicerContext,
    ) -> operations_pb2.ListOperationLogsResponse:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        operation = await self._operation(context, principal, project, request.operation_id)
        rows = await self.ctx.pool.fetch(
            "SELECT * FROM operation_logs WHERE project_id = $1 AND operation_id = $2 "
            "ORDER BY logged_at, id",
            uuid.UUID(project.id),
            operation["id"],
        )
        return operations_pb2.ListOperationLogsResponse(logs=[to_log(r) for r in rows])

    async def _installation(
        self,
        context: Any,
        principal: Principal,
        project: ProjectRow,
        integration_id: str,
        installation_id: str,
    ) -> uuid.UUID:
        """The id of the project's installation named in the path, which must belong to
        the integration named there too; NOT_FOUND otherwise."""
        row = None
        if is_uuid(integration_id) and is_uuid(installation_id):
            row = await self.ctx.pool.fetchrow(
                "SELECT id, group_ref FROM installations "
                "WHERE id = $1 AND integration_id = $2 AND project_id = $3",
                uuid.UUID(installation_id),
                uuid.UUID(integration_id),
                uuid.UUID(project.id),
            )
        if row is None or not Authenticator.sees_group(principal, row["group_ref"]):
            await abort_missing(context, "installation", installation_id)
        installation: uuid.UUID = row["id"]
        return installation

    async def _operation(
        self, context: Any, principal: Principal, project: ProjectRow, operation_id: str
    ) -> asyncpg.Record:
        row = None
        if is_uuid(operation_id):
            row = await self.ctx.pool.fetchrow(
                "SELECT o.*, i.group_ref FROM operations o "
                "LEFT JOIN installations i ON i.id = o.installation_id "
                "WHERE o.id = $1 AND o.project_id = $2",
                uuid.UUID(operation_id),
                uuid.UUID(project.id),
            )
        if row is None or not Authenticator.sees_group(principal, row["group_ref"]):
            await abort_missing(context, "operation", operation_id)
        return row


def service(ctx: ApiContext) -> Service:
    return partially_built(
        operations_pb2.DESCRIPTOR.services_by_name["OperationService"],
        operations_pb2_grpc.add_OperationServiceServicer_to_server,
        Operations(ctx),
        "",
    )
