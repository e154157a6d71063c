"""An in-process OTLP/gRPC collector, and a whole mesh exporting its traces to it.

The collector is opentelemetry-proto's TraceService on a grpc.aio server in the test
process: it keeps every span any process of the mesh (Envoy included) exports, with the
service.name of the resource that sent it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from services.launcher.mesh import MeshOptions, running_mesh
from tests.support.otlp import Collector
from tests.support.sandbox import controlling
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def collector() -> AsyncIterator[Collector]:
    servicer = Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    servicer.port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer
    finally:
        await server.stop(0)


@pytest.fixture(scope="module")
async def traced(collector: Collector) -> AsyncIterator[Stack]:
    """The whole mesh with the provider sandbox, every process (and the edge) exporting
    its spans to the collector."""
    home = Path(tempfile.mkdtemp(prefix="ampmesh-test-traced-"))
    home.chmod(0o755)
    saved = os.environ.get("AMPMESH_OTLP_ENDPOINT")
    # The launcher passes the user's AMPMESH_* settings on to every process (and the edge
    # reads it), once, at start: the variable is put back as soon as the mesh is up.
    os.environ["AMPMESH_OTLP_ENDPOINT"] = collector.endpoint
    try:
        async with running_mesh(home, MeshOptions(sandbox=True)) as mesh:
            _restore(saved)
            yield Stack(mesh, mesh.endpoints())
    finally:
        _restore(saved)
    shutil.rmtree(home, ignore_errors=True)


def _restore(saved: str | None) -> None:
    if saved is None:
        os.environ.pop("AMPMESH_OTLP_ENDPOINT", None)
    else:
        os.environ["AMPMESH_OTLP_ENDPOINT"] = saved


@pytest.fixture
async def traced_sandbox(traced: Stack) -> AsyncIterator[Any]:
    async with controlling(traced) as control:
        yield control
