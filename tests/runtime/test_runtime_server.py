"""Server lifecycle: health, graceful drain on shutdown, bind failures, reflection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.longrunning import (  # type: ignore[import-untyped, unused-ignore]
    operations_pb2,
    operations_pb2_grpc,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.runtime.server import BindError, MeshServer, Service
from services.runtime.tls import ServiceCredentials
from tests.support.probe import PROBE_SERVICE, Probe, dial, method, serving

CredsFor = Callable[[str], ServiceCredentials]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def check(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


async def test_health_serving_then_not_serving_while_in_flight_rpc_drains(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    probe = Probe()
    server = MeshServer(
        credentials=server_creds,
        services=[probe.service()],
        port=0,
        grace_period=5.0,
        # Between NOT_SERVING and refusing connections, so a probe can observe the change.
        drain_delay=0.4,
    )
    await server.start()
    channel = dial(server, creds_for("api"))
    try:
        assert await check(channel) == SERVING
        assert await check(channel, PROBE_SERVICE) == SERVING

        slow = asyncio.ensure_future(channel.unary_unary(method("Slow"))(b"1.0", timeout=10))
        await probe.entered["Slow"].wait()  # the RPC is in the handler

        shutdown = asyncio.ensure_future(server.shutdown())
        await asyncio.sleep(0.1)  # inside drain_delay: still answering, no longer healthy
        assert await check(channel) == NOT_SERVING
        assert await check(channel, PROBE_SERVICE) == NOT_SERVING
        assert not slow.done()

        assert await slow == b"done"  # the in-flight RPC completed during the grace period
        await shutdown
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(method("Whoami"))(b"", timeout=2)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()
        await server.shutdown(grace=0)


async def test_watchers_see_not_serving_on_shutdown(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    async with (
        serving(server_creds, [Probe().service()], grace_period=0.5) as server,
        dial(server, creds_for("api")) as channel,
    ):
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=PROBE_SERVICE), timeout=10
        )
        updates = watch.__aiter__()
        assert (await updates.__anext__()).status == SERVING
        shutdown = asyncio.ensure_future(server.shutdown())
        assert (await updates.__anext__()).status == NOT_SERVING
        watch.cancel()
        await shutdown


async def test_busy_port_is_a_clear_bind_error(server_creds: ServiceCredentials) -> None:
    async with serving(server_creds, [Probe().service()]) as first:
        # With grpcio's default SO_REUSEPORT this second server would start and steal calls.
        second = MeshServer(credentials=server_creds, services=[], port=first.port)
        with pytest.raises(BindError, match=f"127.0.0.1:{first.port}"):
            await second.start()


async def test_duplicate_service_names_are_rejected(server_creds: ServiceCredentials) -> None:
    probe = Probe()
    with pytest.raises(ValueError, match=PROBE_SERVICE):
        MeshServer(credentials=server_creds, services=[probe.service(), probe.service()])


async def list_services(channel: grpc.aio.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    async for reply in call:
        return sorted(s.name for s in reply.list_services_response.service)
    return []


@pytest.mark.parametrize("enabled", [True, False])
async def test_reflection_only_when_enabled(
    server_creds: ServiceCredentials, creds_for: CredsFor, enabled: bool
) -> None:
    async with (
        serving(server_creds, [Probe().service()], reflection=enabled) as server,
        dial(server, creds_for("api")) as channel,
    ):
        if enabled:
            assert PROBE_SERVICE in await list_services(channel)
        else:
            # Asked as one message with the call's start: on the bidi stream, the server's
            # UNIMPLEMENTED can beat grpc's send of the request, and the client then reports
            # INTERNAL for its failed send instead of the server's answer.
            ask = channel.unary_unary(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            with pytest.raises(grpc.aio.AioRpcError) as absent:
                await ask(reflection_pb2.ServerReflectionRequest(list_services=""), timeout=5)
            assert absent.value.code() == grpc.StatusCode.UNIMPLEMENTED


class Operations(operations_pb2_grpc.OperationsServicer):  # type: ignore[misc, unused-ignore]
    """A generated servicer with one method overridden, as a real service would be."""

    async def GetOperation(self, request: Any, context: Any) -> operations_pb2.Operation:
        return operations_pb2.Operation(name=request.name, done=True)


async def test_generated_servicer_is_served_and_reported_healthy(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    service = Service.from_servicer(
        operations_pb2.DESCRIPTOR.services_by_name["Operations"],
        operations_pb2_grpc.add_OperationsServicer_to_server,
        Operations(),
    )
    assert service.name == "google.longrunning.Operations"
    async with (
        serving(server_creds, [service]) as server,
        dial(server, creds_for("api")) as channel,
    ):
        stub = operations_pb2_grpc.OperationsStub(channel)
        reply = await stub.GetOperation(operations_pb2.GetOperationRequest(name="op-1"), timeout=5)
        assert (reply.name, reply.done) == ("op-1", True)
        assert await check(channel, service.name) == SERVING
        with pytest.raises(grpc.aio.AioRpcError) as inherited:
            await stub.DeleteOperation(operations_pb2.DeleteOperationRequest(name="op-1"))
    assert inherited.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert inherited.value.details() == (
        "/google.longrunning.Operations/DeleteOperation is not implemented"
    )
