"""An Envoy of the edge's Lua filters in front of canned answers, for the edge's tests."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.launcher.edge import ENVOY, write_lua
from services.launcher.ports import free_port

# Token-manager shards for rendering the edge's configuration in tests.
SHARDS = {
    "token-manager-0": "127.0.0.1:50061",
    "token-manager-1": "127.0.0.1:50062",
    "token-manager-2": "127.0.0.1:50063",
}

# (port, admin port, the Lua scripts as write_lua wrote them) -> an Envoy bootstrap.
Harness = Callable[[int, int, dict[str, Path]], dict[str, Any]]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate` on a configuration file."""
    return subprocess.run(  # noqa: S603 (our own binary and config)
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def running_envoy(directory: Path, harness: Harness) -> Iterator[tuple[httpx.Client, Path]]:
    """Envoy running harness's configuration (written in directory, with the Lua scripts)
    until the block ends: a client of its listener, and its log."""
    port, admin = free_port(), free_port()
    config = directory / "envoy.yaml"
    config.write_text(json.dumps(harness(port, admin, write_lua(directory))))
    log = directory / "envoy.log"
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 (our own binary and config)
            [str(ENVOY), "-c", str(config), "--disable-hot-restart", "--log-level", "warning"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{admin}/ready", process, log)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, log
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"Envoy exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).text.strip() == "LIVE":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    pytest.fail(f"Envoy did not become ready: {log.read_text()[-2000:]}")
