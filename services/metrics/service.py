"""MetricsService.GetProjectMetrics: one project's figures for one window, computed on
demand with the exporter's queries (services/metrics/queries.py) scoped to the project.

The window defaults to the 24 hours before now and may span at most 31 days. Figures
the contract calls snapshots (connections, installations, outstanding deliveries, the
oldest undelivered age, endpoints disabled now, dead letters waiting) are as of now,
whatever the window; "outstanding" is likewise counted now, not at the window's end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from ampmesh.events.v1 import connection_events_pb2 as ce
from ampmesh.events.v1 import operation_events_pb2 as oe
from ampmesh.metrics.v1 import metrics_pb2 as pb
from ampmesh.metrics.v1 import metrics_pb2_grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from services.metrics.queries import Figures, Scope, compute
from services.runtime.database import is_uuid
from services.runtime.errors import abort_invalid_argument, abort_not_found

DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=31)

ACTIONS = {
    "read": oe.ACTION_TYPE_READ,
    "write": oe.ACTION_TYPE_WRITE,
    "subscribe": oe.ACTION_TYPE_SUBSCRIBE,
}
STATUSES = {
    "in_progress": oe.OPERATION_STATUS_IN_PROGRESS,
    "success": oe.OPERATION_STATUS_SUCCESS,
    "failure": oe.OPERATION_STATUS_FAILURE,
}
CONNECTION_STATUSES = {
    "created": ce.CONNECTION_STATUS_CREATED,
    "working": ce.CONNECTION_STATUS_WORKING,
    "bad_credentials": ce.CONNECTION_STATUS_BAD_CREDENTIALS,
}


class WindowError(ValueError):
    """A request's window cannot be computed; field names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def window_of(
    start: Timestamp | None, end: Timestamp | None, now: datetime
) -> tuple[datetime, datetime]:
    """[start, end) of a request (None: absent), or WindowError naming the field."""
    end_time = end.ToDatetime(tzinfo=UTC) if end is not None else now
    start_time = start.ToDatetime(tzinfo=UTC) if start is not None else end_time - DEFAULT_WINDOW
    if start_time >= end_time:
        raise WindowError("start_time", "start_time must be before end_time")
    if end_time - start_time > MAX_WINDOW:
        raise WindowError("start_time", "the window (end_time - start_time) is at most 31 days")
    return start_time, end_time


def _duration(seconds: float | None) -> Duration | None:
    if seconds is None:
        return None
    duration = Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def project_metrics(
    project_id: str, start: datetime, end: datetime, computed_at: datetime, figures: Figures
) -> pb.ProjectMetrics:
    """The contract's message for one project's figures."""
    message = pb.ProjectMetrics(
        project_id=project_id,
        start_time=_timestamp(start),
        end_time=_timestamp(end),
        compute_time=_timestamp(computed_at),
        records=pb.RecordCounts(
            read=figures.records_read,
            written=figures.records_written,
            write_failed=figures.records_write_failed,
            delivered=figures.records_delivered,
        ),
        token_refreshes=pb.TokenRefreshMetrics(
            succeeded=figures.refreshes_succeeded, failed=figures.refreshes_failed
        ),
        dead_letters=pb.DeadLetterMetrics(
            waiting=figures.dead_letters_waiting, recorded=figures.dead_letters_recorded
        ),
    )
    for (action, status), operation in sorted(figures.operations.items()):
        entry = pb.OperationCount(
            action_type=ACTIONS.get(action, oe.ACTION_TYPE_UNSPECIFIED),
            status=STATUSES.get(status, oe.OPERATION_STATUS_UNSPECIFIED),
            count=operation.count,
        )
        if (p50 := _duration(operation.p50_seconds)) is not None:
            entry.p50_duration.CopyFrom(p50)
        if (p99 := _duration(operation.p99_seconds)) is not None:
            entry.p99_duration.CopyFrom(p99)
        message.operations.append(entry)
    deliveries = message.deliveries
    deliveries.succeeded = figures.deliveries_succeeded
    deliveries.failed = figures.deliveries_failed
    deliveries.outstanding = figures.outstanding
    deliveries.attempts = figures.delivery_attempts
    settled = figures.deliveries_succeeded + figures.deliveries_failed
    if settled:
        deliveries.success_rate = figures.deliveries_succeeded / settled
    if (p50 := _duration(figures.delivery_p50_seconds)) is not None:
        deliveries.p50_latency.CopyFrom(p50)
    if (p99 := _duration(figures.delivery_p99_seconds)) is not None:
        deliveries.p99_latency.CopyFrom(p99)
    deliveries.endpoints_disabled = figures.endpoints_disabled_in_window
    deliveries.endpoints_disabled_now = figures.endpoints_disabled_now
    if (
        figures.outstanding
        and (oldest := _duration(figures.oldest_undelivered_seconds)) is not None
    ):
        deliveries.oldest_undelivered_age.CopyFrom(oldest)
    for (provider, status), count in sorted(figures.connections.items()):
        message.connections.append(
            pb.ConnectionCount(
                status=CONNECTION_STATUSES.get(status, ce.CONNECTION_STATUS_UNSPECIFIED),
                count=count,
                provider=provider,
            )
        )
    for (integration,), count in sorted(figures.installations.items()):
        message.installations.append(pb.InstallationCount(integration_id=integration, count=count))
    for (status_class,), count in sorted(figures.proxy_calls.items()):
        if count:
            message.proxy_calls.append(pb.ProxyCallCount(status_class=status_class, count=count))
    return message


class Metrics(metrics_pb2_grpc.MetricsServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def GetProjectMetrics(
        self, request: pb.GetProjectMetricsRequest, context: Any
    ) -> pb.ProjectMetrics:
        if not request.project_id:
            await abort_invalid_argument(
                context, "project_id is required", {"project_id": "required"}
            )
        if request.integration_id and not is_uuid(request.integration_id):
            await abort_invalid_argument(
                context,
                "integration_id must be an integration id (a UUID)",
                {"integration_id": "not a UUID"},
            )
        now = datetime.now(UTC)
        try:
            start, end = window_of(
                request.start_time if request.HasField("start_time") else None,
                request.end_time if request.HasField("end_time") else None,
                now,
            )
        except WindowError as error:
            await abort_invalid_argument(context, str(error), {error.field: str(error)})
        if not is_uuid(request.project_id):
            await abort_not_found(context, "project", request.project_id)
        computed = await compute(
            self.pool.fetch,
            Scope(
                start=start,
                end=end,
                project_id=request.project_id,
                integration_id=request.integration_id or None,
            ),
        )
        figures = computed.projects.get(request.project_id)
        if figures is None:
            await abort_not_found(context, "project", request.project_id)
        return project_metrics(request.project_id, start, end, now, figures)
