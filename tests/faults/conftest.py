"""The fault matrix's own mesh: killing PostgreSQL or the Temporal server must not take
down the mesh every other test shares, so this folder starts one of its own (with the
provider sandbox) and `make test` runs it in a pytest run of its own, after the rest.

The table of what each fault cost is printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ampmesh.sandbox.v1 import sandbox_pb2_grpc

from services.launcher.mesh import MeshOptions, running_mesh
from tests.faults.matrix import ROWS, Row
from tests.support.sandbox import controlling
from tests.support.stack import Stack


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    """This folder's mesh (it replaces the session-wide `stack` for these tests)."""
    home = Path(tempfile.mkdtemp(prefix="ampmesh-faults-"))
    home.chmod(0o755)
    async with running_mesh(home, MeshOptions(sandbox=True)) as mesh:
        yield Stack(mesh, mesh.endpoints())
    # AMPMESH_TEST_KEEP_HOME=1 keeps the logs of a run to read what a fault did.
    if not os.environ.get("AMPMESH_TEST_KEEP_HOME"):
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def sandbox(stack: Stack) -> AsyncIterator[sandbox_pb2_grpc.SandboxControlServiceStub]:
    async with controlling(stack) as control:
        yield control


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    lines = [Row.header(), *(row.line() for row in ROWS)]
    terminalreporter.section("fault matrix")
    for line in lines:
        terminalreporter.write_line(line)
