"""The deployment test's own world: the rendered local-test overlay run as processes
(tests/support/deploy_world.py), not the session-wide mesh, which `make test` never starts
for this folder (it runs in the second pytest run, with tests/faults)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.deploy_world import World, remove_home, running_world


@pytest.fixture(scope="session")
async def world() -> AsyncIterator[World]:
    # Not under pytest's tmp_path (0700): PostgreSQL runs as an unprivileged user as root.
    home = Path(tempfile.mkdtemp(prefix="ampmesh-deploy-"))
    home.chmod(0o755)
    async with running_world(home) as running:
        yield running
    remove_home(home)


@pytest.fixture(scope="session")
def stack() -> None:
    raise RuntimeError(
        "tests/deploy runs the rendered deployment (the `world` fixture), not the launcher's mesh"
    )
