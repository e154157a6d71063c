"""MessengerService: inspect and steer deliveries and endpoints (api, mcpanda and
builder-mcp call it). Every RPC is scoped to request.project_id: another project's ids are
NOT_FOUND."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from ampmesh.messenger.v1 import messenger_pb2 as pb
from ampmesh.messenger.v1 import messenger_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.messenger.bodies import FIELD_OF_TYPE, sample_body
from services.messenger.deliveries import Deliverer
from services.messenger.rows import FAILED, HELD, PENDING, RETRYING, SUCCEEDED, Job
from services.runtime.database import is_uuid
from services.runtime.errors import abort_invalid_argument, abort_not_found

STATUS_NAMES = {
    pb.DELIVERY_STATUS_PENDING: PENDING,
    pb.DELIVERY_STATUS_RETRYING: RETRYING,
    pb.DELIVERY_STATUS_SUCCEEDED: SUCCEEDED,
    pb.DELIVERY_STATUS_FAILED: FAILED,
    pb.DELIVERY_STATUS_HELD: HELD,
}
STATUS_VALUES = {name: value for value, name in STATUS_NAMES.items()}
KIND_NAMES = {
    pb.DELIVERY_KIND_READ_RESULT: "read_result",
    pb.DELIVERY_KIND_NOTIFICATION: "notification",
}
KIND_VALUES = {name: value for value, name in KIND_NAMES.items()}
ENDPOINT_STATES = {
    "enabled": pb.ENDPOINT_STATE_ENABLED,
    "failing": pb.ENDPOINT_STATE_FAILING,
    "disabled": pb.ENDPOINT_STATE_DISABLED,
}
DEFAULT_PAGE, MAX_PAGE = 100, 1000
_LIST_COLUMNS = (
    "d.id, d.project_id, d.destination_id, dst.name AS destination_name, d.url, d.kind, "
    "d.event_type, d.event_id, d.operation_id, d.installation_id, d.object_name, d.status, "
    "d.attempt_count, d.created_at, d.next_attempt_at, d.last_attempt_at, d.completed_at, "
    "d.last_status_code, d.last_error, octet_length(d.body) AS payload_bytes, d.record_count"
)


def _stamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def to_delivery(row: asyncpg.Record) -> pb.Delivery:
    delivery = pb.Delivery(
        id=row["id"],
        project_id=str(row["project_id"]),
        destination_id=str(row["destination_id"]),
        destination_name=row["destination_name"] or "",
        url=row["url"],
        kind=KIND_VALUES.get(row["kind"], pb.DELIVERY_KIND_UNSPECIFIED),
        event_type=row["event_type"],
        event_id=row["event_id"],
        operation_id=row["operation_id"],
        installation_id=row["installation_id"],
        object_name=row["object_name"],
        status=STATUS_VALUES.get(row["status"], pb.DELIVERY_STATUS_UNSPECIFIED),
        attempt_count=row["attempt_count"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        payload_bytes=row["payload_bytes"],
        record_count=row["record_count"],
    )
    for name, column in (
        ("create_time", "created_at"),
        ("last_attempt_time", "last_attempt_at"),
        ("complete_time", "completed_at"),
    ):
        if (stamp := _stamp(row[column])) is not None:
            getattr(delivery, name).CopyFrom(stamp)
    if row["status"] in (PENDING, RETRYING) and row["next_attempt_at"] is not None:
        delivery.next_attempt_time.FromDatetime(row["next_attempt_at"])
    return delivery


def _encode_token(created_at: datetime, delivery_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at.isoformat(), delivery_id])).decode()


def _decode_token(token: str) -> tuple[datetime, str]:
    """ValueError when the token is not one of ours."""
    try:
        created, delivery_id = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(created), str(delivery_id)
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError):
        raise ValueError("not a page token") from None


class Messenger(messenger_pb2_grpc.MessengerServiceServicer):
    def __init__(self, pool: asyncpg.Pool, deliverer: Deliverer) -> None:
        self.pool = pool
        self.deliverer = deliverer

    # --- checks ---

    async def _project(self, context: Any, project_id: str) -> str:
        if not project_id:
            await abort_invalid_argument(
                context, "project_id is required", {"project_id": "is required"}
            )
        if not is_uuid(project_id):
            await abort_invalid_argument(
                context, "project_id must be a project id (a UUID)", {"project_id": "not a UUID"}
            )
        return project_id

    async def _destination(
        self, context: Any, project_id: str, destination_id: str
    ) -> asyncpg.Record:
        if not destination_id:
            await abort_invalid_argument(
                context, "destination_id is required", {"destination_id": "is required"}
            )
        row = None
        if is_uuid(destination_id):
            row = await self.pool.fetchrow(
                "SELECT id, name, type, metadata FROM destinations "
                "WHERE id = $1::uuid AND project_id = $2::uuid",
                destination_id,
                project_id,
            )
        if row is None:
            await abort_not_found(context, "destination", destination_id)
        return row

    async def _delivery_row(
        self, context: Any, project_id: str, delivery_id: str
    ) -> asyncpg.Record:
        if not delivery_id:
            await abort_invalid_argument(
                context, "delivery_id is required", {"delivery_id": "is required"}
            )
        row = await self.pool.fetchrow(
            f"SELECT {_LIST_COLUMNS}, d.body FROM webhook_deliveries d "  # noqa: S608
            "LEFT JOIN destinations dst ON dst.id = d.destination_id "
            "WHERE d.id = $1 AND d.project_id = $2::uuid",
            delivery_id,
            project_id,
        )
        if row is None:
            await abort_not_found(context, "delivery", delivery_id)
        return row

    # --- RPCs ---

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: Any
    ) -> pb.ListDeliveriesResponse:
        project_id = await self._project(context, request.project_id)
        if request.destination_id and not is_uuid(request.destination_id):
            await abort_invalid_argument(
                context,
                "destination_id must be a destination id (a UUID)",
                {"destination_id": "not a UUID"},
            )
        if request.page_size < 0:
            await abort_invalid_argument(
                context, "page_size must not be negative", {"page_size": "must be >= 0"}
            )
        size = min(request.page_size or DEFAULT_PAGE, MAX_PAGE)
        after: tuple[datetime, str] | None = None
        if request.page_token:
            try:
                after = _decode_token(request.page_token)
            except ValueError:
                await abort_invalid_argument(
                    context,
                    "page_token is not a token this list returned",
                    {"page_token": "use next_page_token of the previous page"},
                )
        rows = await self.pool.fetch(
            f"""
            SELECT {_LIST_COLUMNS} FROM webhook_deliveries d
            LEFT JOIN destinations dst ON dst.id = d.destination_id
            WHERE d.project_id = $1::uuid
              AND ($2::uuid IS NULL OR d.destination_id = $2::uuid)
              AND ($3::text IS NULL OR d.operation_id = $3)
              AND ($4::text IS NULL OR d.status = $4)
              AND ($5::text IS NULL OR d.kind = $5)
              AND ($6::timestamptz IS NULL OR d.created_at >= $6)
              AND ($7::timestamptz IS NULL OR d.created_at < $7)
              AND ($8::timestamptz IS NULL OR (d.created_at, d.id) < ($8, $9))
            ORDER BY d.created_at DESC, d.id DESC
            LIMIT $10
            """,  # noqa: S608 (constant column names)
            project_id,
            request.destination_id or None,
            request.operation_id or None,
            STATUS_NAMES.get(request.status),
            KIND_NAMES.get(request.kind),
            request.start_time.ToDatetime(UTC) if request.HasField("start_time") else None,
            request.end_time.ToDatetime(UTC) if request.HasField("end_time") else None,
            after[0] if after else None,
            after[1] if after else "",
            size + 1,
        )
        response = pb.ListDeliveriesResponse(deliveries=[to_delivery(r) for r in rows[:size]])
        if len(rows) > size:
            last = rows[size - 1]
            response.next_page_token = _encode_token(last["created_at"], last["id"])
        return response

    async def GetDelivery(self, request: pb.GetDeliveryRequest, context: Any) -> pb.Delivery:
        project_id = await self._project(context, request.project_id)
        row = await self._delivery_row(context, project_id, request.delivery_id)
        delivery = to_delivery(row)
        if request.include_body:
            delivery.body = row["body"]
        attempts = await self.pool.fetch(
            "SELECT * FROM webhook_delivery_attempts WHERE delivery_id = $1 ORDER BY number",
            row["id"],
        )
        for attempt in attempts:
            item = delivery.attempts.add(
                number=attempt["number"],
                trigger=attempt["trigger"],
                outcome=attempt["outcome"],
                status_code=attempt["status_code"],
                response_body=attempt["response_body"],
                error=attempt["error"],
            )
            item.start_time.FromDatetime(attempt["started_at"])
            item.duration.FromNanoseconds(int(attempt["duration_seconds"] * 1e9))
            if attempt["retry_after_seconds"] is not None:
                item.retry_after.FromNanoseconds(int(attempt["retry_after_seconds"] * 1e9))
        return delivery

    async def RedeliverDelivery(
        self, request: pb.RedeliverDeliveryRequest, context: Any
    ) -> pb.Delivery:
        project_id = await self._project(context, request.project_id)
        await self._delivery_row(context, project_id, request.delivery_id)
        row = await self.pool.fetchrow(
            """
            UPDATE webhook_deliveries d SET status = 'pending', next_trigger = $3,
                next_attempt_at = now(), completed_at = NULL,
                retry_deadline = now() + make_interval(secs => $4),
                lease_until = now() + make_interval(secs => $5)
            WHERE id = $1 AND project_id = $2::uuid
            RETURNING d.id, d.project_id, d.destination_id, d.kind, d.body, d.attempt_count,
                d.next_trigger, d.retry_deadline, d.record_count,
                coalesce((SELECT e.state = 'disabled' FROM webhook_endpoints e
                          WHERE e.destination_id = d.destination_id), false) AS held
            """,
            request.delivery_id,
            project_id,
            pb.ATTEMPT_TRIGGER_REDELIVER,
            self.deliverer.settings.max_age,
            self.deliverer.settings.lease,
        )
        if row is not None:
            await self.deliverer.send_now(Job.of(row), held=row["held"])
        return await self.GetDelivery(
            pb.GetDeliveryRequest(project_id=project_id, delivery_id=request.delivery_id), context
        )

    async def ReplayDeliveries(
        self, request: pb.ReplayDeliveriesRequest, context: Any
    ) -> pb.ReplayDeliveriesResponse:
        project_id = await self._project(context, request.project_id)
        if not request.destination_id and not request.operation_id:
            await abort_invalid_argument(
                context,
                "give destination_id (with a time window) or operation_id",
                {
                    "destination_id": "required unless operation_id is given",
                    "operation_id": "required unless destination_id is given",
                },
            )
        if request.destination_id:
            await self._destination(context, project_id, request.destination_id)
        if (
            request.HasField("start_time")
            and request.HasField("end_time")
            and request.end_time.ToDatetime() <= request.start_time.ToDatetime()
        ):
            await abort_invalid_argument(
                context, "end_time must be after start_time", {"end_time": "before start_time"}
            )
        statuses: list[str] = []
        for value in request.statuses or (pb.DELIVERY_STATUS_FAILED, pb.DELIVERY_STATUS_HELD):
            name = STATUS_NAMES.get(value)
            if name is None:
                await abort_invalid_argument(
                    context,
                    "statuses must name delivery statuses",
                    {"statuses": f"{value} is not a delivery status"},
                )
            statuses.append(name)
        where = """
            project_id = $1::uuid
            AND ($2::uuid IS NULL OR destination_id = $2::uuid)
            AND ($3::text IS NULL OR operation_id = $3)
            AND ($4::timestamptz IS NULL OR created_at >= $4)
            AND ($5::timestamptz IS NULL OR created_at < $5)
            AND status = ANY($6::text[])
        """
        arguments = (
            project_id,
            request.destination_id or None,
            request.operation_id or None,
            request.start_time.ToDatetime(UTC) if request.HasField("start_time") else None,
            request.end_time.ToDatetime(UTC) if request.HasField("end_time") else None,
            statuses,
        )
        matched = await self.pool.fetchval(
            f"SELECT count(*) FROM webhook_deliveries WHERE {where}",  # noqa: S608
            *arguments,
        )
        if request.dry_run:
            return pb.ReplayDeliveriesResponse(matched=matched, scheduled=0)
        # Rows another process is sending right now (leased) are left to it.
        scheduled = await self.pool.fetchval(
            f"""
            WITH replayed AS (
                UPDATE webhook_deliveries SET status = 'pending', next_trigger = $7,
                    next_attempt_at = now(), completed_at = NULL, lease_until = NULL,
                    retry_deadline = now() + make_interval(secs => $8)
                WHERE {where} AND (lease_until IS NULL OR lease_until < now())
                RETURNING 1
            )
            SELECT count(*) FROM replayed
            """,  # noqa: S608 (a constant condition)
            *arguments,
            pb.ATTEMPT_TRIGGER_REPLAY,
            self.deliverer.settings.max_age,
        )
        self.deliverer.kick()
        return pb.ReplayDeliveriesResponse(matched=matched, scheduled=scheduled)

    async def TestDestination(
        self, request: pb.TestDestinationRequest, context: Any
    ) -> pb.TestDestinationResponse:
        project_id = await self._project(context, request.project_id)
        if request.event_type and request.event_type not in FIELD_OF_TYPE:
            await abort_invalid_argument(
                context,
                f"event_type {request.event_type!r} is not a notification type",
                {"event_type": "a notification type (e.g. read.backfill.done) or empty"},
            )
        wait: float | None = None
        if request.HasField("timeout"):
            wait = request.timeout.ToNanoseconds() / 1e9
            if not 0 < wait <= 60:
                await abort_invalid_argument(
                    context, "timeout must be between 0 and 60 s", {"timeout": "out of range"}
                )
        await self._destination(context, project_id, request.destination_id)
        self.deliverer.forget_target(request.destination_id)
        target = await self.deliverer.target(request.destination_id)
        assert target is not None
        body = sample_body(request.event_type, project_id)
        message_id = "msg_test_" + secrets.token_hex(8)
        attempt = await self.deliverer.attempt(target, message_id, body, wait_for=wait)
        response = pb.TestDestinationResponse(
            success=attempt.outcome == pb.ATTEMPT_OUTCOME_SUCCESS,
            url=target.url,
            message_id=message_id,
            request_body=body,
            outcome=attempt.outcome,  # type: ignore[arg-type]
            status_code=attempt.status_code,
            response_body=attempt.response_body,
            error=attempt.error,
        )
        custom = {name.lower() for name in target.headers}
        for name, value in attempt.request_headers.items():
            response.request_headers[name] = "<redacted>" if name.lower() in custom else value
        response.duration.FromNanoseconds(int(attempt.duration * 1e9))
        return response

    async def GetEndpoint(self, request: pb.GetEndpointRequest, context: Any) -> pb.Endpoint:
        project_id = await self._project(context, request.project_id)
        destination = await self._destination(context, project_id, request.destination_id)
        return await self._endpoint(project_id, destination)

    async def EnableEndpoint(self, request: pb.EnableEndpointRequest, context: Any) -> pb.Endpoint:
        project_id = await self._project(context, request.project_id)
        destination = await self._destination(context, project_id, request.destination_id)
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                """
                INSERT INTO webhook_endpoints (destination_id, project_id) VALUES ($1, $2)
                ON CONFLICT (destination_id) DO UPDATE SET state = 'enabled',
                    consecutive_failures = 0, failing_since = NULL, disabled_at = NULL,
                    disable_reason = '', updated_at = now()
                """,
                destination["id"],
                uuid.UUID(project_id),
            )
            if request.discard_held:
                await connection.execute(
                    "UPDATE webhook_deliveries SET status = 'failed', completed_at = now(), "
                    "last_error = 'discarded when the endpoint was re-enabled' "
                    "WHERE destination_id = $1 AND status = 'held'",
                    destination["id"],
                )
            else:
                await connection.execute(
                    "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), "
                    "next_trigger = $2, lease_until = NULL, "
                    "retry_deadline = now() + make_interval(secs => $3) "
                    "WHERE destination_id = $1 AND status = 'held'",
                    destination["id"],
                    pb.ATTEMPT_TRIGGER_ENDPOINT_ENABLED,
                    self.deliverer.settings.max_age,
                )
        self.deliverer.forget_target(str(destination["id"]))
        self.deliverer.kick()
        return await self._endpoint(project_id, destination)

    async def _endpoint(self, project_id: str, destination: asyncpg.Record) -> pb.Endpoint:
        row = await self.pool.fetchrow(
            """
            SELECT e.*,
              (SELECT count(*) FROM webhook_deliveries
               WHERE destination_id = $1 AND status IN ('pending', 'retrying')) AS pending,
              (SELECT count(*) FROM webhook_deliveries
               WHERE destination_id = $1 AND status = 'held') AS held
            FROM (SELECT 1) AS one LEFT JOIN webhook_endpoints e ON e.destination_id = $1
            """,
            destination["id"],
        )
        assert row is not None
        metadata = orjson.loads(destination["metadata"]) if destination["metadata"] else {}
        endpoint = pb.Endpoint(
            project_id=project_id,
            destination_id=str(destination["id"]),
            destination_name=destination["name"],
            url=str(metadata.get("url", "")),
            state=ENDPOINT_STATES.get(row["state"] or "enabled", pb.ENDPOINT_STATE_ENABLED),
            consecutive_failures=row["consecutive_failures"] or 0,
            disable_reason=row["disable_reason"] or "",
            pending_deliveries=row["pending"],
            held_deliveries=row["held"],
        )
        for name, column in (
            ("failing_since", "failing_since"),
            ("last_success_time", "last_success_at"),
            ("last_failure_time", "last_failure_at"),
            ("disable_time", "disabled_at"),
        ):
            if (stamp := _stamp(row[column])) is not None:
                getattr(endpoint, name).CopyFrom(stamp)
        return endpoint
