"""An Envoy of a test's own, started as the edge's container starts it (the venv's binary,
no hot restart), for tests that run a rendered configuration without the launcher."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.launcher.edge import ENVOY


@contextmanager
def running_envoy(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Envoy on `config`, its output in `log`; terminated after the block."""
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own binary and config)
            [str(ENVOY), "-c", str(config), "--disable-hot-restart", "--log-level", "info"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
