"""The `ampmesh` command as a user runs it: up (detached), status, down, and up again on
the same home, which finds its data again. A mesh of its own (one token-manager shard),
beside the session's stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

pytestmark = pytest.mark.e2e


def ampmesh(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "services.launcher", *args],
        env={**os.environ, "AMPMESH_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def status(home: Path) -> dict[str, Any]:
    done = ampmesh(home, "status", "--json", timeout=60)
    return json.loads(done.stdout)  # type: ignore[no-any-return, unused-ignore]


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ampmesh-cli-"))
    path.chmod(0o755)  # PostgreSQL runs unprivileged when we are root
    yield path
    ampmesh(path, "down")
    shutil.rmtree(path, ignore_errors=True)


def up(home: Path) -> dict[str, Any]:
    started = ampmesh(home, "up", "--detach", "--shards", "1", "--sandbox")
    assert started.returncode == 0, started.stdout + started.stderr
    return status(home)


async def test_up_status_down_and_up_again_keeps_the_data(home: Path) -> None:
    described = up(home)
    names = [p["name"] for p in described["processes"]]
    assert "token-manager-0" in names and "token-manager-1" not in names
    assert all(p["healthy"] for p in described["processes"]), described["processes"]
    endpoints = described["endpoints"]
    for name in ("api", "read", "write", "search", "proxy"):
        assert endpoints[name].startswith("http://127.0.0.1:"), name
    for name in ("grpc", "token-manager", "token-manager-0", "messenger", "scribe", "metrics"):
        assert endpoints[name].startswith("127.0.0.1:"), name
    for name in ("postgres", "redis", "temporal", "pubsub"):
        assert name in endpoints
    assert (Path(endpoints["certs"]) / "ca.pem").exists()
    assert described["tlsServerName"]["token-manager-0"] == "token-manager"
    assert described["upSeconds"] > 0 and described["memoryBytes"] > 0

    catalog = httpx.get(f"{endpoints['api']}/v1/providers", timeout=10)
    assert catalog.status_code == 200
    assert catalog.headers["content-type"].startswith("application/json")

    # --sandbox: the provider sandbox runs, and hubspot and salesforce point at it.
    assert "sandbox" in names
    sandbox = endpoints["sandbox-http"]
    assert catalog.json()["hubspot"]["oauth2Opts"]["tokenURL"].startswith(sandbox)
    assert catalog.json()["salesforce"]["baseURL"] == f"{sandbox}/salesforce"
    assert catalog.json()["zendeskSupport"]["baseURL"].startswith("https://")

    # The first credential: an org admin key, shown by status, rotatable.
    admin = described["adminApiKey"]
    assert described["orgId"] and admin.startswith("amp_")
    assert (home / "mesh.json").stat().st_mode & 0o077 == 0  # it holds the key
    projects = f"{endpoints['api']}/v1/projects"
    assert httpx.get(projects, headers={"X-Api-Key": admin}, timeout=10).status_code == 200
    rotated = ampmesh(home, "admin-key", "rotate")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new_admin = status(home)["adminApiKey"]
    assert new_admin != admin and new_admin in rotated.stdout
    assert httpx.get(projects, headers={"X-Api-Key": admin}, timeout=10).status_code == 401
    assert httpx.get(projects, headers={"X-Api-Key": new_admin}, timeout=10).status_code == 200

    database_url = (home / "postgres" / "password").read_text().strip()
    dsn = endpoints["postgres"].replace("ampmesh@", f"ampmesh:{database_url}@")
    connection = await asyncpg.connect(dsn)
    await connection.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    await connection.close()

    pids = [p["pid"] for p in described["processes"]]
    stopped = ampmesh(home, "down")
    assert stopped.returncode == 0, stopped.stderr
    assert not any(psutil.pid_exists(pid) for pid in pids if pid)
    assert not (home / "mesh.json").exists()
    assert ampmesh(home, "status").returncode == 3  # not running

    again = up(home)
    assert again["adminApiKey"] == new_admin  # the same credential after a restart
    dsn = again["endpoints"]["postgres"].replace("ampmesh@", f"ampmesh:{database_url}@")
    connection = await asyncpg.connect(dsn)
    assert await connection.fetchval("SELECT v FROM kept") == "still here"
    await connection.close()
