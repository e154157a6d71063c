"""MetricsService over mTLS, as mcpanda and builder-mcp call it (the api relays the public
route to it): its own checks of the request, and who may call it."""

from __future__ import annotations

import uuid

import grpc
import pytest
from ampmesh.metrics.v1 import metrics_pb2 as pb
from ampmesh.metrics.v1 import metrics_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from services.runtime.channels import mesh_channel
from services.runtime.errors import status_from_error
from tests.metrics.metrics_world import World
from tests.support.stack import Stack


def _at(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


async def _ask(
    stack: Stack, identity: str, request: pb.GetProjectMetricsRequest
) -> pb.ProjectMetrics:
    async with mesh_channel(
        stack.endpoints["metrics"], stack.credentials(identity), server_identity="metrics"
    ) as channel:
        answer: pb.ProjectMetrics = await metrics_pb2_grpc.MetricsServiceStub(
            channel
        ).GetProjectMetrics(request)
        return answer


def _bad_fields(error: grpc.aio.AioRpcError) -> set[str]:
    status = status_from_error(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return {violation.field for violation in bad.field_violations}
    raise AssertionError("no BadRequest detail")


@pytest.mark.parametrize("identity", ["mcpanda", "builder-mcp"])
async def test_the_mcp_servers_get_a_projects_figures(
    stack: Stack, world: World, identity: str
) -> None:
    answer = await _ask(stack, identity, pb.GetProjectMetricsRequest(project_id=world.project_id))
    assert answer.project_id == world.project_id
    assert answer.records.read == 157
    assert answer.dead_letters.waiting == 1


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.GetProjectMetricsRequest(), "project_id"),
        (
            pb.GetProjectMetricsRequest(
                project_id=str(uuid.uuid4()), start_time=_at(2000), end_time=_at(1000)
            ),
            "start_time",
        ),
        (
            pb.GetProjectMetricsRequest(
                project_id=str(uuid.uuid4()), start_time=_at(0), end_time=_at(32 * 86400)
            ),
            "start_time",
        ),
        (
            pb.GetProjectMetricsRequest(project_id=str(uuid.uuid4()), integration_id="sync"),
            "integration_id",
        ),
    ],
    ids=["no project", "start after end", "more than 31 days", "integration not an id"],
)
async def test_bad_requests_are_refused_naming_the_field(
    stack: Stack, request_: pb.GetProjectMetricsRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _ask(stack, "mcpanda", request_)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_fields(refused.value) == {field}


@pytest.mark.parametrize("project", [str(uuid.uuid4()), "not-an-id"])
async def test_an_unknown_project_is_not_found(stack: Stack, project: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _ask(stack, "mcpanda", pb.GetProjectMetricsRequest(project_id=project))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_other_mesh_identities_are_refused(stack: Stack, world: World) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _ask(stack, "scribe", pb.GetProjectMetricsRequest(project_id=world.project_id))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
