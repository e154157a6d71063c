"""A real service process: starts from the environment, serves, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from services.runtime.channels import mesh_channel
from services.runtime.entrypoint import find_service_main, main
from services.runtime.tls import ensure_service_credentials
from tests.support.probe import method

REPO = Path(__file__).resolve().parents[2]

# What a service's main() looks like, with the probe service standing in for a real one.
SERVICE_SCRIPT = """
from services.runtime.entrypoint import run_service
from tests.support.probe import Probe

run_service(name="probe", services=[Probe().service()], allowed_callers=["api"])
"""


def service_env(cert_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        {
            "AMPMESH_LISTEN_PORT": "0",
            "AMPMESH_METRICS_PORT": "0",
            "AMPMESH_CERT_DIR": str(cert_dir),
            "AMPMESH_GRACE_PERIOD": "5",
            **extra,
        }
    )
    return env


async def start_service(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVICE_SCRIPT,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_log(
    process: asyncio.subprocess.Process, event: str
) -> tuple[dict[str, Any], list[str]]:
    """Read JSON log lines until one with this event; returns it and every line read."""
    assert process.stderr is not None
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(process.stderr.readline(), timeout=15)
        if not raw:
            raise AssertionError(f"process ended before logging {event!r}: {lines}")
        line = raw.decode().strip()
        lines.append(line)
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == event:
                return entry, lines


async def test_service_process_serves_until_sigterm_then_drains(tmp_path: Path) -> None:
    process = await start_service(service_env(tmp_path))
    try:
        serving, _ = await read_log(process, "serving")
        assert serving["service"] == "probe" and serving["identity"] == "probe"
        assert serving["services"] == ["ampmesh.test.v1.Probe"]
        # The process made the CA and its own certificate on first start.
        assert (tmp_path / "ca.pem").exists() and (tmp_path / "probe.pem").exists()

        client = ensure_service_credentials(tmp_path, "api")
        async with mesh_channel(
            f"127.0.0.1:{serving['port']}", client, server_identity="probe", retry=None
        ) as channel:
            await channel.unary_unary(method("Whoami"))(b"", timeout=5)
            metrics_url = f"http://127.0.0.1:{serving['metrics_port']}/metrics"
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(metrics_url, timeout=5).read()
            )
            assert b'grpc_method="Whoami"' in body

            slow = asyncio.ensure_future(channel.unary_unary(method("Slow"))(b"0.8", timeout=10))
            await asyncio.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            assert await slow == b"done"  # in flight at SIGTERM, finished during the grace

        await read_log(process, "stopped")
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    process = await start_service(service_env(tmp_path, AMPMESH_LISTEN_PORT="fifty"))
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 2
    assert stderr.decode().splitlines() == [
        "probe: configuration error: AMPMESH_LISTEN_PORT is invalid: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


async def test_busy_port_exits_1_with_one_log_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await start_service(service_env(tmp_path, AMPMESH_LISTEN_PORT=str(port)))
        entry, _ = await read_log(process, "cannot start")
        assert await asyncio.wait_for(process.wait(), timeout=10) == 1
    assert f"127.0.0.1:{port}" in entry["error"]


def test_ampmesh_service_command_rejects_unknown_services(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, why in [
        ("no-such-service", "no service named 'no-such-service'"),
        ("runtime", "'runtime' is not a service name"),
        ("../etc", "is not a service name"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main(["--service", name])
        assert exited.value.code == 2
        assert why in capsys.readouterr().err
    assert find_service_main("runtime") == "'runtime' is not a service name"
