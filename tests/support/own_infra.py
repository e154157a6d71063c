"""Infrastructure of a test's own: one of the launcher's components (PostgreSQL, Redis,
Temporal, the Pub/Sub emulator) in a temporary home, for tests that need it but not the
whole mesh, or that must not touch the session mesh's."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeVar

from services.launcher.infra import Component, Temporal
from services.launcher.ports import PortBook

C = TypeVar("C", bound=Component)


@asynccontextmanager
async def own_component(kind: type[C], name: str) -> AsyncIterator[C]:
    """A started `kind` in a fresh home; stopped and removed after the block."""
    # Not pytest's tmp_path (0700): as root, PostgreSQL runs as a user that could not enter it.
    home = Path(tempfile.mkdtemp(prefix=f"ampmesh-test-{name}-", dir="/tmp"))
    home.chmod(0o755)
    component = kind(home, PortBook(home))
    try:
        await component.start()
        yield component
    finally:
        await component.stop()
        shutil.rmtree(home, ignore_errors=True)


def temporal_dev_server() -> AbstractAsyncContextManager[Temporal]:
    """A started Temporal dev server with namespace ampmesh."""
    return own_component(Temporal, "temporal")
