"""A project's application metrics (ProjectMetricsService), for builders.

The metrics service computes them from PostgreSQL (ampmesh.metrics.v1); this servicer is
the public door: it checks the caller (builders only, as for every project resource: a
project key of another project is refused), finds the project and the integration by id
or name, checks the window in the request's terms, then asks the metrics service with
the api's certificate and answers its ProjectMetrics. Without a metrics address
(AMPMESH_METRICS_ADDRESS) the RPC answers UNAVAILABLE naming the setting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import grpc
from ampmesh.metrics.v1 import metrics_pb2 as pb
from ampmesh.metrics.v1 import metrics_pb2_grpc
from ampmesh.platform.v1 import project_metrics_pb2, project_metrics_pb2_grpc

from services.api.common import abort_invalid, abort_missing
from services.api.context import ApiContext
from services.api.stored import find_integration
from services.runtime.errors import STATUS_DETAILS_KEY, abort_with_reason
from services.runtime.server import Service

SERVICE = "ampmesh.platform.v1.ProjectMetricsService"
CALL_TIMEOUT = 10.0
MAX_WINDOW = timedelta(days=31)
DEFAULT_WINDOW = timedelta(hours=24)


class ProjectMetrics(project_metrics_pb2_grpc.ProjectMetricsServiceServicer):
    def __init__(
        self, ctx: ApiContext, metrics: metrics_pb2_grpc.MetricsServiceStub | None
    ) -> None:
        self.ctx = ctx
        self.metrics = metrics

    async def GetProjectMetrics(
        self,
        request: project_metrics_pb2.GetProjectMetricsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.ProjectMetrics:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        problems = _window_problems(request)
        if problems:
            await abort_invalid(context, problems)
        asked = pb.GetProjectMetricsRequest(project_id=project.id)
        if request.HasField("start_time"):
            asked.start_time.CopyFrom(request.start_time)
        if request.HasField("end_time"):
            asked.end_time.CopyFrom(request.end_time)
        if request.integration_id:
            row = await find_integration(self.ctx.pool, project.id, request.integration_id)
            if row is None:
                await abort_missing(context, "integration", request.integration_id)
            asked.integration_id = str(row["id"])
        if self.metrics is None:
            await abort_with_reason(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "metrics are unavailable: this api has no metrics service address "
                "(AMPMESH_METRICS_ADDRESS)",
                "METRICS_UNAVAILABLE",
            )
        try:
            answer: pb.ProjectMetrics = await self.metrics.GetProjectMetrics(
                asked, timeout=CALL_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            await _relay(context, error)
        return answer


def _window_problems(request: project_metrics_pb2.GetProjectMetricsRequest) -> dict[str, str]:
    """What is wrong with the window, named as the REST caller wrote it (query.startTime)."""
    now = datetime.now(UTC)
    end = request.end_time.ToDatetime(tzinfo=UTC) if request.HasField("end_time") else now
    start = (
        request.start_time.ToDatetime(tzinfo=UTC)
        if request.HasField("start_time")
        else end - DEFAULT_WINDOW
    )
    if start >= end:
        return {"query.startTime": "must be before endTime (or now, without endTime)"}
    if end - start > MAX_WINDOW:
        return {"query.startTime": "the window (endTime - startTime) spans at most 31 days"}
    return {}


async def _relay(context: Any, error: grpc.aio.AioRpcError) -> NoReturn:
    """End the call as the metrics service ended ours: its code, message and details."""
    code = error.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        await abort_with_reason(
            context,
            grpc.StatusCode.UNAVAILABLE,
            "the metrics service did not answer; try again",
            "METRICS_UNAVAILABLE",
        )
    details = tuple(
        (key, value) for key, value in error.trailing_metadata() or () if key == STATUS_DETAILS_KEY
    )
    await context.abort(code, error.details() or "", trailing_metadata=details)
    raise AssertionError("unreachable: abort raises")


def service(ctx: ApiContext, metrics: metrics_pb2_grpc.MetricsServiceStub | None) -> Service:
    return Service.from_servicer(
        project_metrics_pb2.DESCRIPTOR.services_by_name["ProjectMetricsService"],
        project_metrics_pb2_grpc.add_ProjectMetricsServiceServicer_to_server,
        ProjectMetrics(ctx, metrics),
    )
