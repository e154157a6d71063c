"""A Temporal dev server of a test's own (the launcher's infra component, in a temporary
home), for tests that need Temporal but not the whole mesh."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from services.launcher.infra import Temporal
from services.launcher.ports import PortBook


@asynccontextmanager
async def temporal_dev_server() -> AsyncIterator[Temporal]:
    """A started dev server with namespace ampmesh; stopped and removed after the block."""
    home = Path(tempfile.mkdtemp(prefix="ampmesh-test-temporal-"))
    server = Temporal(home, PortBook(home))
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        shutil.rmtree(home, ignore_errors=True)
