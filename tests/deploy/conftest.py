"""The deployment test's own world: the rendered local-test overlay run as processes
(tests/support/deploy_world.py), not the session-wide mesh, which `make test` never starts
for this folder (it runs in the second pytest run, with tests/faults)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Generator
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test shows the mapping made and each process's last lines."""
    report = yield
    world = getattr(item, "funcargs", {}).get("world")
    if report.failed and isinstance(world, World):
        report.sections.append(("deployment mapping", world.table()))
        report.sections.append(("deployment logs", world.log_tails()))
    return report
