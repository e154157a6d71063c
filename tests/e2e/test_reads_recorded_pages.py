"""Messenger's RecordedPagesService on the running mesh: the temporal worker, and only
it, asks what was recorded of a read's pages (a count by operation, the keys never
recorded), and bad requests are refused naming the field."""

from __future__ import annotations

import uuid

import grpc
import pytest
from ampmesh.messenger.v1 import messenger_pb2, messenger_pb2_grpc

from services.runtime.channels import mesh_channel
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def channel(stack: Stack, caller: str) -> grpc.aio.Channel:
    running = stack.mesh.service("messenger")
    return mesh_channel(
        running.address,
        stack.credentials(caller),
        server_identity=running.identity,
        retry=None,
    )


async def test_only_the_temporal_worker_asks_what_was_recorded_of_a_read(stack: Stack) -> None:
    project, destination, operation = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    async with channel(stack, "temporal") as ch:
        pages = messenger_pb2_grpc.RecordedPagesServiceStub(ch)
        counted = await pages.CountRecordedPages(
            messenger_pb2.CountRecordedPagesRequest(
                project_id=project, operation_id=operation, destination_id=destination
            ),
            timeout=5,
        )
        # Nothing recorded, and a destination that does not exist takes no page.
        assert (counted.recorded, counted.destination_found) == (0, False)
        keys = [f"{operation}/page/{n}/part/1" for n in (1, 2)]
        missing = await pages.FindUnrecordedPages(
            messenger_pb2.FindUnrecordedPagesRequest(
                project_id=project, destination_id=destination, keys=keys
            ),
            timeout=5,
        )
        assert list(missing.missing_keys) == keys
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pages.CountRecordedPages(
                messenger_pb2.CountRecordedPagesRequest(project_id="nope", operation_id=operation),
                timeout=5,
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "project_id" in str(refused.value.details())
        # The rest of messenger is not the worker's to call.
        deliveries = messenger_pb2_grpc.MessengerServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await deliveries.ListDeliveries(
                messenger_pb2.ListDeliveriesRequest(project_id=project), timeout=5
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with channel(stack, "api") as ch:
        pages = messenger_pb2_grpc.RecordedPagesServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await pages.CountRecordedPages(
                messenger_pb2.CountRecordedPagesRequest(project_id=project, operation_id=operation),
                timeout=5,
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
