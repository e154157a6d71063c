"""The plaintext health port (AMPMESH_HEALTH_PORT) that Kubernetes' `grpc:` probes use:
health answers there without a certificate, mirrors the mTLS port's statuses through a
drain, and nothing else is reachable on it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.server import BindError, MeshServer
from services.runtime.tls import ServiceCredentials
from tests.support.probe import PROBE_SERVICE, Probe, dial, method

CredsFor = Callable[[str], ServiceCredentials]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
REPO = Path(__file__).resolve().parents[2]

SERVICE_SCRIPT = """
from services.runtime.entrypoint import run_service
from tests.support.probe import Probe

run_service(name="probe", services=[Probe().service()], allowed_callers=["api"])
"""


async def check(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


def plaintext(port: int) -> grpc.aio.Channel:
    """What kubelet does: no TLS at all."""
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}")


async def test_health_port_answers_without_a_certificate_and_serves_nothing_else(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    server = MeshServer(
        credentials=server_creds, services=[Probe().service()], health_port=0, drain_delay=0.5
    )
    await server.start()
    try:
        assert server.health_port and server.health_port != server.port
        async with plaintext(server.health_port) as channel:
            assert await check(channel) == SERVING
            assert await check(channel, PROBE_SERVICE) == SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await channel.unary_unary(method("Whoami"))(b"", timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
            with pytest.raises(grpc.aio.AioRpcError) as no_reflection:
                await channel.unary_unary(
                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
                )(b"", timeout=5)
            assert no_reflection.value.code() == grpc.StatusCode.UNIMPLEMENTED

        # The mTLS port still refuses a plaintext caller: the health port opened nothing.
        async with plaintext(server.port) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as tls_only:
                await check(channel)
            assert tls_only.value.code() == grpc.StatusCode.UNAVAILABLE

        async with (
            plaintext(server.health_port) as probe,
            dial(server, creds_for("api")) as mesh,
        ):
            shutdown = asyncio.ensure_future(server.shutdown(grace=1))
            await asyncio.sleep(0.1)  # inside the drain delay
            assert await check(probe) == NOT_SERVING
            assert await check(mesh) == NOT_SERVING
            # Draining, not dead: the main port still takes RPCs.
            await mesh.unary_unary(method("Whoami"))(b"", timeout=5)
            await shutdown
            with pytest.raises(grpc.aio.AioRpcError) as gone:
                await check(probe)
            assert gone.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.shutdown(grace=0)


async def test_without_a_health_port_there_is_none(server_creds: ServiceCredentials) -> None:
    async with MeshServer(credentials=server_creds, services=[Probe().service()]) as server:
        assert server.health_port is None


async def test_a_busy_health_port_is_a_bind_error_naming_it(
    server_creds: ServiceCredentials,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = MeshServer(credentials=server_creds, services=[], health_port=port)
        with pytest.raises(BindError, match=f"127.0.0.1:{port} \\(AMPMESH_HEALTH_PORT\\)"):
            await server.start()


async def _log_event(process: asyncio.subprocess.Process, event: str) -> dict[str, Any]:
    assert process.stderr is not None
    while True:
        raw = await asyncio.wait_for(process.stderr.readline(), timeout=15)
        if not raw:
            raise AssertionError(f"process ended before logging {event!r}")
        line = raw.decode().strip()
        if line.startswith("{") and json.loads(line).get("event") == event:
            return dict(json.loads(line))


async def test_a_service_process_reports_not_serving_on_its_health_port_after_sigterm(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        AMPMESH_LISTEN_PORT="0",
        AMPMESH_HEALTH_PORT="0",
        AMPMESH_CERT_DIR=str(tmp_path),
        AMPMESH_DRAIN_DELAY="2",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVICE_SCRIPT,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        serving = await _log_event(process, "serving")
        health_port = serving["health_port"]
        assert isinstance(health_port, int) and health_port != serving["port"]
        async with plaintext(health_port) as channel:
            assert await check(channel) == SERVING
            process.send_signal(signal.SIGTERM)
            await _log_event(process, "shutting down")
            assert await check(channel) == NOT_SERVING
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
