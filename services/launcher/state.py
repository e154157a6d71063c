"""What `ampmesh status` and `ampmesh down` know: the files `up` leaves in the home.

launcher.json  the running `ampmesh up` (pid and start time), written when it starts;
mesh.json      every process and endpoint, written once everything is healthy.

Both are removed when `up` stops cleanly. A pid is only trusted together with its start
time, so a later, unrelated process that reuses the pid is never signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from services.launcher import infra
from services.launcher.edge import probe as edge_probe
from services.launcher.processes import LAUNCHER_IDENTITY, grpc_healthy
from services.runtime.tls import ensure_service_credentials

LAUNCHER_FILE = "launcher.json"
STATE_FILE = "mesh.json"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def record_launcher(home: Path) -> None:
    me = psutil.Process()
    (home / LAUNCHER_FILE).write_text(json.dumps({"pid": me.pid, "createTime": me.create_time()}))


def forget_launcher(home: Path) -> None:
    (home / LAUNCHER_FILE).unlink(missing_ok=True)


def live_process(pid: int | None, create_time: float | None) -> psutil.Process | None:
    """The process with this pid if it is the one recorded (same start time)."""
    if not pid:
        return None
    try:
        process = psutil.Process(pid)
        if create_time is not None and abs(process.create_time() - create_time) > 0.5:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def running_launcher(home: Path) -> psutil.Process | None:
    recorded = read_json(home / LAUNCHER_FILE) or {}
    return live_process(recorded.get("pid"), recorded.get("createTime"))


def resident_bytes(pids: list[int]) -> int:
    """Resident memory of these processes and all their descendants, each counted once."""
    seen: set[int] = set()
    total = 0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for process in tree:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
    return total


async def status(home: Path) -> dict[str, Any] | None:
    """mesh.json with each process's health checked now, and the mesh's memory; None when
    no mesh runs from this home."""
    described = read_json(home / STATE_FILE)
    if described is None:
        return None
    endpoints: Mapping[str, str] = described.get("endpoints", {})
    credentials = ensure_service_credentials(home / "certs", LAUNCHER_IDENTITY)

    async def check(process: dict[str, Any]) -> bool:
        if live_process(process.get("pid"), process.get("createTime")) is None:
            return False
        name, kind = process["name"], process.get("kind")
        if kind == "infrastructure":
            return await infra.probe(name, endpoints.get(name, ""), home)
        if kind == "edge":
            return await edge_probe(endpoints)
        key = "api-service" if name == "api" else name
        return await grpc_healthy(endpoints.get(key, ""), process["identity"], credentials, 2.0)

    processes = described.get("processes", [])
    results = await asyncio.gather(*(check(p) for p in processes))
    for process, healthy in zip(processes, results, strict=True):
        process["healthy"] = healthy
    pids = [described.get("launcherPid"), *(p.get("pid") for p in processes)]
    described["memoryBytes"] = resident_bytes([pid for pid in pids if pid])
    return described


async def stop_recorded(home: Path, grace: float = 30.0) -> str:
    """Stop the mesh of this home: ask its launcher to (it stops everything in order), or,
    if the launcher is gone, stop the processes mesh.json records. Returns what was done."""
    launcher = running_launcher(home)
    if launcher is not None:
        launcher.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace + 30
        while launcher.is_running() and launcher.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the launcher (pid {launcher.pid}) did not stop in time")
            await asyncio.sleep(0.2)
        return f"stopped the mesh of launcher pid {launcher.pid}"
    described = read_json(home / STATE_FILE)
    if described is None:
        return "nothing is running from this home"
    orphans = [
        process
        for entry in reversed(described.get("processes", []))
        if (process := live_process(entry.get("pid"), entry.get("createTime"))) is not None
    ]
    for process in orphans:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = await asyncio.to_thread(psutil.wait_procs, orphans, grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    (home / STATE_FILE).unlink(missing_ok=True)
    forget_launcher(home)
    return f"the launcher was gone: stopped {len(orphans)} leftover processes"
