"""AMPMESH_SANDBOX_STATE_FILE: a sandbox process stopped and started again finds its seeded
records and the tokens it issued (what `ampmesh up --sandbox --keep-sandbox-state` uses)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from services.runtime.channels import mesh_channel
from services.runtime.tls import ServiceCredentials
from tests.support.sandbox import CONTACTS, HS, bearer, password_tokens, seed_records


@contextmanager
def sandbox(cert_dir: Path, log_path: Path, state_file: Path) -> Iterator[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        {
            "AMPMESH_CERT_DIR": str(cert_dir),
            "AMPMESH_IDENTITY": "sandbox",
            "AMPMESH_LISTEN_HOST": "127.0.0.1",
            "AMPMESH_LISTEN_PORT": "0",
            "AMPMESH_LOG_FORMAT": "json",
            "AMPMESH_SANDBOX_HTTP_PORT": "0",
            "AMPMESH_SANDBOX_STATE_FILE": str(state_file),
        }
    )
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.sandbox"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        found: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while len(found) < 2:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the sandbox did not start:\n{log_path.read_text()[-3000:]}")
            with log_path.open() as lines:
                lines.seek(offset)
                for line in lines:
                    if line.startswith("{"):
                        entry = json.loads(line)
                        if entry.get("event") in {"serving", "sandbox serving"}:
                            found[entry["event"]] = entry
            time.sleep(0.05)
        yield {
            "grpc": f"127.0.0.1:{found['serving']['port']}",
            "http": found["sandbox serving"]["url"],
            "process": process,
        }
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


async def add_one(address: str, credentials: ServiceCredentials) -> int:
    """Records the object holds, counting one more added now."""
    async with mesh_channel(address, credentials, server_identity="sandbox") as channel:
        control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
        added = await control.SeedRecords(
            sandbox_pb2.SeedRecordsRequest(
                provider=HS, object_name="contacts", count=1, seed=9, replace=False
            )
        )
    return int(added.total)


async def test_records_and_tokens_survive_a_stop_and_a_kill(
    tmp_path: Path, cert_dir: Path, creds_for: Callable[[str], ServiceCredentials]
) -> None:
    state_file = tmp_path / "sandbox" / "state.json"
    log_path = tmp_path / "sandbox.log"
    credentials = creds_for("tests")
    with sandbox(cert_dir, log_path, state_file) as first:
        async with mesh_channel(first["grpc"], credentials, server_identity="sandbox") as channel:
            control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
            await seed_records(control, HS, "contacts", 20_000)
        async with httpx.AsyncClient(base_url=first["http"], timeout=10) as http:
            tokens = await password_tokens(http)
            page = await http.get(CONTACTS, headers=bearer(tokens["access_token"]))
            assert page.status_code == 200
            first_page = page.json()["results"]
    # A clean stop (SIGTERM) writes the state last.
    assert state_file.exists()
    assert state_file.stat().st_mode & 0o077 == 0  # it holds tokens

    with sandbox(cert_dir, log_path, state_file) as second:
        async with httpx.AsyncClient(base_url=second["http"], timeout=10) as http:
            page = await http.get(CONTACTS, headers=bearer(tokens["access_token"]))
            assert page.status_code == 200, page.text  # the token it issued still works
            assert page.json()["results"] == first_page  # the same records, same order
            refreshed = await http.post(
                "/hubspot/oauth/v1/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                auth=("sandbox-client", "sandbox-secret"),
            )
            assert refreshed.status_code == 200, refreshed.text
        assert await add_one(second["grpc"], credentials) == 20_001
        # Written within its debounce period, then killed: no clean stop this time.
        await asyncio.sleep(3)
        second["process"].kill()
        second["process"].wait()

    with sandbox(cert_dir, log_path, state_file) as third:
        assert await add_one(third["grpc"], credentials) == 20_002
        async with httpx.AsyncClient(base_url=third["http"], timeout=10) as http:
            # The refresh revoked the first refresh token, and that was kept too.
            again = await http.post(
                "/hubspot/oauth/v1/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                auth=("sandbox-client", "sandbox-secret"),
            )
            assert again.status_code == 400, again.text
