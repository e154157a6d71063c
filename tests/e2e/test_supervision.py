"""Supervision as an operator sees it: a process killed under a running mesh comes back by
itself on the same port with a new pid, and `ampmesh status` says how often and why;
`ampmesh restart NAME` restarts one on purpose; the sandbox keeps its state when asked.

The session's `stack` is supervised like `ampmesh up`: the kills here (a service, Redis,
Envoy) are ones the rest of the session does not notice once healed. PostgreSQL, and the
CLI, are tried on a mesh of their own."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from services.launcher.state import status
from services.runtime.channels import mesh_channel
from services.runtime.tls import ensure_service_credentials
from tests.support.sandbox import CONTACTS, HS, bearer, password_tokens, seed_records
from tests.support.stack import Stack, component

pytestmark = pytest.mark.e2e

HEAL_WITHIN = 120.0


async def killed_and_healed(stack: Stack, name: str) -> dict[str, Any]:
    """kill -9 the process; wait until the supervisor brought it back; its mesh.json entry."""
    mesh = stack.mesh
    assert mesh.supervisor is not None
    before = mesh.restarts(name)
    victim = mesh.supervisor.record(name).pid
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + HEAL_WITHIN
    while mesh.restarts(name) == before:
        assert time.monotonic() < deadline, f"{name} was not restarted"
        await asyncio.sleep(0.1)
    await mesh.wait_healthy(HEAL_WITHIN)
    described = await status(stack.home)
    assert described is not None
    entry = next(p for p in described["processes"] if p["name"] == name)
    assert entry["pid"] != victim and entry["healthy"], entry
    assert entry["restarts"] == before + 1 and entry["lastExit"] == "signal SIGKILL", entry
    return entry


async def test_a_killed_service_comes_back_by_itself_and_status_says_so(stack: Stack) -> None:
    entry = await killed_and_healed(stack, "metrics")
    running = stack.mesh.service("metrics")
    assert running.process.pid == entry["pid"]
    assert running.address == stack.endpoints["metrics"]  # the same port: peers still reach it
    shown = ampmesh(stack.home, "status", env={"COLUMNS": "200"})
    row = next(line for line in shown.stdout.splitlines() if " metrics " in line)
    assert str(entry["pid"]) in row and "signal SIGKILL" in row and "healthy" in row, shown.stdout


async def test_killed_redis_comes_back_with_its_data(stack: Stack) -> None:
    url = component(stack, "redis").service_env()["AMPMESH_REDIS_URL"]
    before = redis.asyncio.Redis.from_url(url)
    try:
        await before.set("supervision-test", "kept")
        await asyncio.sleep(1.5)  # the append-only file is synced every second
    finally:
        await before.aclose()
    await killed_and_healed(stack, "redis")
    after = redis.asyncio.Redis.from_url(url)  # the same URL: the same port
    try:
        assert await after.get("supervision-test") == b"kept"  # its append-only file read
        await after.delete("supervision-test")
    finally:
        await after.aclose()


async def test_killed_envoy_comes_back_and_routes_again(stack: Stack) -> None:
    await killed_and_healed(stack, "envoy")
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{stack.endpoints['api']}/v1/providers")
    assert answer.status_code == 200


# --- a mesh of its own, driven by the CLI -----------------------------------------------


def ampmesh(
    home: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "services.launcher", *args],
        env={**os.environ, "AMPMESH_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def described(home: Path) -> dict[str, Any]:
    shown = ampmesh(home, "status", "--json", timeout=60)
    return json.loads(shown.stdout)  # type: ignore[no-any-return, unused-ignore]


def entry(home: Path, name: str) -> dict[str, Any]:
    return next(p for p in described(home)["processes"] if p["name"] == name)


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ampmesh-supervised-"))
    path.chmod(0o755)  # PostgreSQL runs unprivileged when we are root
    yield path
    ampmesh(path, "down")
    shutil.rmtree(path, ignore_errors=True)


async def records_held(home: Path) -> int:
    """How many contacts the sandbox holds (seeding one more, then counting it out)."""
    endpoints = described(home)["endpoints"]
    credentials = ensure_service_credentials(home / "certs", "tests")
    async with mesh_channel(
        endpoints["sandbox"], credentials, server_identity="sandbox"
    ) as channel:
        control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
        added = await control.SeedRecords(
            sandbox_pb2.SeedRecordsRequest(
                provider=HS, object_name="contacts", count=1, seed=3, replace=False
            )
        )
    return int(added.total) - 1


async def test_restart_on_request_and_a_sandbox_that_keeps_its_state(home: Path) -> None:
    # A user's sandbox setting reaches the sandbox under `ampmesh up --sandbox`.
    user = {"AMPMESH_SANDBOX_ACCESS_TOKEN_LIFETIME": "777"}
    started = ampmesh(
        home, "up", "--detach", "--shards", "1", "--sandbox", "--keep-sandbox-state", env=user
    )
    assert started.returncode == 0, started.stdout + started.stderr
    endpoints = described(home)["endpoints"]
    async with httpx.AsyncClient(base_url=endpoints["sandbox-http"], timeout=10) as http:
        tokens = await password_tokens(http)
    assert tokens["expires_in"] == 777

    credentials = ensure_service_credentials(home / "certs", "tests")
    async with mesh_channel(
        endpoints["sandbox"], credentials, server_identity="sandbox"
    ) as channel:
        await seed_records(
            sandbox_pb2_grpc.SandboxControlServiceStub(channel), HS, "contacts", 20_000
        )

    unknown = ampmesh(home, "restart", "sandbox-9")
    assert unknown.returncode == 1
    assert "no process is named 'sandbox-9'" in unknown.stderr and "redis" in unknown.stderr

    old = entry(home, "sandbox")["pid"]
    restarted = ampmesh(home, "restart", "sandbox")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    now = entry(home, "sandbox")
    assert str(now["pid"]) in restarted.stdout and now["pid"] != old
    assert (now["restarts"], now["lastExit"], now["healthy"]) == (1, "restarted on request", True)
    # Its records and the tokens it issued outlived it.
    assert await records_held(home) == 20_000
    async with httpx.AsyncClient(base_url=endpoints["sandbox-http"], timeout=10) as http:
        page = await http.get(CONTACTS, headers=bearer(tokens["access_token"]))
    assert page.status_code == 200, page.text

    # PostgreSQL killed: back by itself, on its data directory, and the api serves again.
    victim = entry(home, "postgres")["pid"]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + HEAL_WITHIN
    while (postgres := entry(home, "postgres"))["restarts"] == 0 or not postgres["healthy"]:
        assert time.monotonic() < deadline, postgres
        await asyncio.sleep(0.5)
    assert postgres["pid"] != victim and postgres["lastExit"] == "signal SIGKILL"
    admin = described(home)["adminApiKey"]
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(60):
            projects = await http.get(
                f"{endpoints['api']}/v1/projects", headers={"X-Api-Key": admin}
            )
            if projects.status_code == 200:
                break
            await asyncio.sleep(1)
    assert projects.status_code == 200, projects.text

    # down and up: the sandbox's state is still there; nothing to restart in between.
    assert ampmesh(home, "down").returncode == 0
    stopped = ampmesh(home, "restart", "sandbox")
    assert stopped.returncode == 3 and "not running" in stopped.stderr
    again = ampmesh(home, "up", "--detach", "--shards", "1", "--sandbox", "--keep-sandbox-state")
    assert again.returncode == 0, again.stdout + again.stderr
    assert await records_held(home) == 20_001
    async with httpx.AsyncClient(base_url=endpoints["sandbox-http"], timeout=10) as http:
        page = await http.get(CONTACTS, headers=bearer(tokens["access_token"]))
    assert page.status_code == 200, page.text
