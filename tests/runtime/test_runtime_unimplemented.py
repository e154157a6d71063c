"""Placeholder services built from a ServiceDescriptor answer UNIMPLEMENTED with a reason."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.longrunning import (  # type: ignore[import-untyped, unused-ignore]
    operations_proto_pb2,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from prometheus_client import CollectorRegistry

from services.runtime.interceptors import RpcMetrics
from services.runtime.tls import ServiceCredentials
from services.runtime.unimplemented import unimplemented_service, with_fallback
from tests.support.probe import PROBE_SERVICE, Probe, dial, method, serving

CredsFor = Callable[[str], ServiceCredentials]

OPERATIONS = operations_proto_pb2.DESCRIPTOR.services_by_name["Operations"]
REFLECTION = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]  # bidi streaming
REASON = "the Write API is built by issue 7"


async def test_every_method_names_itself_and_the_issue(
    server_creds: ServiceCredentials,
    creds_for: CredsFor,
    registry: CollectorRegistry,
    metrics: RpcMetrics,
) -> None:
    placeholder = unimplemented_service(OPERATIONS, REASON)
    assert placeholder.name == "google.longrunning.Operations"
    async with (
        serving(server_creds, [placeholder], metrics=metrics) as server,
        dial(server, creds_for("api")) as channel,
    ):
        for m in OPERATIONS.methods:
            full = f"/google.longrunning.Operations/{m.name}"
            with pytest.raises(grpc.aio.AioRpcError) as unbuilt:
                await channel.unary_unary(full)(b"", timeout=5)
            assert unbuilt.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert unbuilt.value.details() == f"{full} is not built yet: {REASON}"

    labels = {
        "grpc_service": "google.longrunning.Operations",
        "grpc_method": "GetOperation",
        "grpc_type": "unary",
        "grpc_code": "UNIMPLEMENTED",
    }
    assert registry.get_sample_value("grpc_server_handled_total", labels) == 1


async def test_streaming_placeholder_and_fallback_next_to_a_real_service(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    probe = Probe()
    services = with_fallback(
        [OPERATIONS, REFLECTION],
        implemented=[probe.service()],
        reasons={REFLECTION.full_name: "reflection is built by issue 12"},
    )
    assert [s.name for s in services] == [
        PROBE_SERVICE,
        "google.longrunning.Operations",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    async with (
        serving(server_creds, services) as server,
        dial(server, creds_for("api")) as channel,
    ):
        assert await channel.unary_unary(method("Whoami"))(b"", timeout=5)  # the real one

        bidi = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        )(iter([b""]), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as unbuilt:
            async for _ in bidi:
                pass
        assert unbuilt.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert unbuilt.value.details().endswith(": reflection is built by issue 12")

        with pytest.raises(grpc.aio.AioRpcError) as unscheduled:
            await channel.unary_unary("/google.longrunning.Operations/GetOperation")(b"")
        assert unscheduled.value.details().endswith("is not built yet: not scheduled")

        # Placeholders are reported healthy: the process answers for them.
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=OPERATIONS.full_name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_unknown_method_is_unimplemented_and_counted_without_its_name(
    server_creds: ServiceCredentials,
    creds_for: CredsFor,
    registry: CollectorRegistry,
    metrics: RpcMetrics,
) -> None:
    async with (
        serving(server_creds, [Probe().service()], metrics=metrics) as server,
        dial(server, creds_for("api")) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await channel.unary_unary("/made.up.Service/Anything")(b"", timeout=5)
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert unknown.value.details() == "unknown method /made.up.Service/Anything"
    # One "unknown" label, whatever name a caller invents: metrics cannot be grown at will.
    labels = {
        "grpc_service": "unknown",
        "grpc_method": "unknown",
        "grpc_type": "bidi_stream",
        "grpc_code": "UNIMPLEMENTED",
    }
    assert registry.get_sample_value("grpc_server_handled_total", labels) == 1
