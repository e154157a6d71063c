"""The provider sandbox as its own process (python -m services.sandbox), once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from services.runtime.channels import mesh_channel
from services.runtime.tls import ServiceCredentials
from tests.support.sandbox import SandboxProcess


def _announcements(log_path: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for line in log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("event") in {"serving", "sandbox serving"}:
            found[entry["event"]] = entry
    return found


@pytest.fixture(scope="session")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory, cert_dir: Path) -> Iterator[Any]:
    log_path = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        {
            "AMPMESH_CERT_DIR": str(cert_dir),
            "AMPMESH_IDENTITY": "sandbox",
            "AMPMESH_LISTEN_HOST": "127.0.0.1",
            "AMPMESH_LISTEN_PORT": "0",
            "AMPMESH_LOG_FORMAT": "json",
            "AMPMESH_SANDBOX_HTTP_PORT": "0",
        }
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.sandbox"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            found = _announcements(log_path)
            if len(found) == 2:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the sandbox did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        yield SandboxProcess(
            grpc_address=f"127.0.0.1:{found['serving']['port']}",
            http_url=found["sandbox serving"]["url"],
            log_path=log_path,
        )
    finally:
        process.terminate()
        try:
            assert process.wait(timeout=15) == 0, log_path.read_text()[-3000:]
        finally:
            if process.poll() is None:
                process.kill()


@pytest.fixture(scope="session")
async def control(
    sandbox_process: SandboxProcess, creds_for: Callable[[str], ServiceCredentials]
) -> AsyncIterator[Any]:
    channel = mesh_channel(
        sandbox_process.grpc_address, creds_for("tests"), server_identity="sandbox"
    )
    async with channel:
        yield sandbox_pb2_grpc.SandboxControlServiceStub(channel)


@pytest.fixture
async def sandbox(control: Any) -> AsyncIterator[Any]:
    """The control stub, on a sandbox reset before each test."""
    await control.Reset(sandbox_pb2.ResetRequest())
    yield control


@pytest.fixture
async def http(sandbox_process: SandboxProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_process.http_url, timeout=10) as client:
        yield client
