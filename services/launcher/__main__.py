"""`ampmesh` (or `python -m services.launcher`): run the whole mesh on this machine.

    ampmesh up [--json] [--shards N] [--detach] [--sandbox [--keep-sandbox-state]]
               [--observability]
        start PostgreSQL, Redis, Temporal, the Pub/Sub emulator, every service and the
        Envoy edge, each gated on its health check; print where everything listens; run
        until Ctrl-C or `ampmesh down`, then stop it all in reverse order. --detach
        returns once the mesh is up and leaves it running in the background. While up,
        a process that exits or stops answering its health check is restarted (with
        backoff; one restarted 5 times within 5 minutes is given up on).
        --observability also starts a Prometheus (Debian's prometheus package, or
        $AMPMESH_PROMETHEUS) scraping every service and Envoy, with the alerting rules of
        observability/prometheus/rules.yml; its URL is the `prometheus` endpoint.
    ampmesh status [--json]
        each process, its health now, its pid, restarts and last exit, its endpoint, how
        long `up` took and the mesh's resident memory.
    ampmesh restart NAME
        restart one process (a service, postgres, redis, temporal, pubsub or envoy) of
        the running mesh; wait until it is healthy; print its new pid.
    ampmesh down
        stop the mesh started from this home.
    ampmesh topology apply [--project P] [--emulator-host H] [--dry-run] [--update]
        create the Pub/Sub topics, subscriptions and dead letters the contracts declare, on
        Cloud Pub/Sub (Application Default Credentials) or an emulator; report what existed
        and what differs (services/launcher/topology.py).
    ampmesh settings [--markdown]
        every environment variable ampmesh reads, its default and who reads it
        (docs/SETTINGS.md is the --markdown output).

State (data, certificates, logs, chosen ports) lives in $AMPMESH_HOME, default ./.ampmesh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.api.bootstrap import rotate_admin_key
from services.launcher import edge_config, settings_table
from services.launcher import topology as topology_command
from services.launcher.control import ControlError, ask
from services.launcher.infra import InfraError
from services.launcher.mesh import ADMIN_KEY_FILE, MeshOptions, running_mesh, write_private
from services.launcher.processes import MeshError, tail
from services.launcher.state import (
    LAUNCHER_FILE,
    STATE_FILE,
    forget_launcher,
    read_json,
    record_launcher,
    running_launcher,
    status,
    stop_recorded,
)

EXIT_OK, EXIT_FAILED, EXIT_NOT_RUNNING = 0, 1, 3


def home_dir() -> Path:
    return Path(os.environ.get("AMPMESH_HOME", ".ampmesh")).resolve()


class StepDisplay:
    """Progress of `up`: a live spinner per step on a terminal, plain lines elsewhere."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description:<16}"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> StepDisplay:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def __call__(self, name: str, state: str, detail: str) -> None:
        if not self.live:
            self.console.print(f"{name}: {state}{' ' + detail if detail else ''}", highlight=False)
            return
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=1, detail=state)
        task = self.tasks[name]
        if state == "ready":
            self.progress.update(task, completed=1, detail=detail)
        elif state == "failed":
            self.progress.update(task, detail="[red]failed")
            self.progress.stop_task(task)
        else:
            self.progress.update(task, detail=state)


async def _up(home: Path, options: MeshOptions, as_json: bool) -> int:
    err = Console(stderr=True)
    launcher = running_launcher(home)
    if launcher is not None:
        err.print(f"ampmesh is already running from {home} (pid {launcher.pid}): `ampmesh down`")
        return EXIT_FAILED
    if (home / STATE_FILE).exists():
        err.print(await stop_recorded(home))  # a launcher that died left its processes
    home.mkdir(parents=True, exist_ok=True)
    record_launcher(home)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def on_signal() -> None:
        # During start, cancel it (everything started so far is stopped); once up, stop.
        if stopping.is_set() or not up:
            main.cancel()
        stopping.set()

    up = False
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        with StepDisplay(err) as display:
            async with running_mesh(home, options, progress=display) as mesh:
                up = True
                described = mesh.describe()
                if as_json:
                    print(json.dumps(described), flush=True)
                else:
                    _print_summary(described, err)
                await stopping.wait()
                err.print("stopping…")
    except (MeshError, InfraError) as error:
        err.print(f"[red]ampmesh up failed:[/red] {error}", highlight=False)
        return EXIT_FAILED
    except asyncio.CancelledError:
        err.print("stopped before the mesh was up")
        return EXIT_FAILED
    finally:
        forget_launcher(home)
    return EXIT_OK


def _print_summary(described: dict[str, Any], console: Console) -> None:
    endpoints = described["endpoints"]
    console.print(f"ampmesh is up in {described['upSeconds']:.1f}s (home {described['home']})")
    for name in ("api", "read", "write", "search", "proxy", "subscribe", "grpc", "prometheus"):
        if name in endpoints:
            console.print(f"  {name:<9} {endpoints[name]}", highlight=False)
    console.print(f"  org       {described['orgId']}", highlight=False)
    console.print(f"  admin API key (X-Api-Key) {described['adminApiKey']}", highlight=False)
    console.print("`ampmesh status` for every process; Ctrl-C or `ampmesh down` stops the mesh.")


def _detach(
    home: Path,
    shards: int,
    sandbox: bool,
    keep_sandbox_state: bool = False,
    observability: bool = False,
) -> int:
    """Run `ampmesh up` in the background; return once it is up (or has failed)."""
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "logs" / "launcher.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "services.launcher", "up", "--json", "--shards", str(shards)]
    if sandbox:
        command.append("--sandbox")
    if keep_sandbox_state:
        command.append("--keep-sandbox-state")
    if observability:
        command.append("--observability")
    with log_path.open("ab") as log:
        child = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "AMPMESH_HOME": str(home)},
        )
    while True:
        code = child.poll()
        if code is not None:
            print(f"ampmesh up failed (exit {code}); {log_path} ends with:\n{tail(log_path)}")
            return EXIT_FAILED
        described = read_json(home / STATE_FILE)
        launcher = read_json(home / LAUNCHER_FILE) or {}
        if described is not None and described.get("launcherPid") == child.pid == launcher.get(
            "pid"
        ):
            print(
                f"ampmesh is up in {described['upSeconds']:.1f}s (launcher pid {child.pid}, "
                f"log {log_path}); `ampmesh down` stops it"
            )
            return EXIT_OK
        time.sleep(0.2)


async def _status(home: Path, as_json: bool) -> int:
    described = await status(home)
    if described is None:
        if as_json:
            print(json.dumps({"home": str(home), "processes": [], "endpoints": {}}))
        else:
            print(f"ampmesh is not running from {home}")
        return EXIT_NOT_RUNNING
    if as_json:
        print(json.dumps(described))
        return EXIT_OK
    console = Console()
    endpoints = described["endpoints"]
    table = Table(title=f"ampmesh ({described['home']})")
    for column in ("process", "pid", "health", "restarts", "last exit", "endpoint"):
        table.add_column(column)
    for process in described["processes"]:
        name = process["name"]
        key = {"api": "api-service", "envoy": "envoy-admin"}.get(name, name)
        endpoint = endpoints.get(key, "")
        state = process.get("state", "running")
        if state == "failed":
            health = "[red]crash-looping"
        elif state in ("restarting", "stopped"):
            health = f"[yellow]{state}"
        else:
            health = "[green]healthy" if process["healthy"] else "[red]unhealthy"
        table.add_row(
            name,
            str(process["pid"]),
            health,
            str(process.get("restarts", 0)),
            process.get("lastExit") or "",
            endpoint,
        )
    console.print(table)
    for process in described["processes"]:
        if process.get("reason"):
            console.print(f"{process['name']}: {process['reason']}", highlight=False)
    for name in ("api", "read", "write", "search", "proxy", "subscribe", "grpc", "prometheus"):
        if name in endpoints:
            console.print(f"{name:<9} {endpoints[name]}", highlight=False)
    memory = described["memoryBytes"] / 2**20
    console.print(f"up in {described['upSeconds']:.1f}s; resident memory {memory:.0f} MiB")
    healthy = all(p["healthy"] for p in described["processes"])
    return EXIT_OK if healthy else EXIT_FAILED


async def _restart(home: Path, name: str) -> int:
    described = read_json(home / STATE_FILE)
    socket = (described or {}).get("controlSocket")
    if described is None or running_launcher(home) is None or not socket:
        print(f"ampmesh is not running from {home}: `ampmesh up` first", file=sys.stderr)
        return EXIT_NOT_RUNNING
    names = [p["name"] for p in described.get("processes", [])]
    if name not in names:
        print(f"no process is named {name!r}; the mesh runs: {', '.join(names)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"restarting {name}…", file=sys.stderr)
    try:
        # Stopping takes up to its grace, starting up to the mesh's start limit.
        answer = await ask(Path(socket), {"command": "restart", "name": name}, timeout=300)
    except ControlError as error:
        print(f"could not ask the launcher to restart {name}: {error}", file=sys.stderr)
        return EXIT_FAILED
    if not answer.get("ok"):
        print(f"restarting {name} failed: {answer.get('error')}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{name} restarted and healthy: pid {answer['pid']} (restarts {answer['restarts']})")
    return EXIT_OK


async def _rotate_admin_key(home: Path) -> int:
    described = read_json(home / STATE_FILE)
    password_file = home / "postgres" / "password"
    if described is None or not password_file.exists():
        print(f"ampmesh is not running from {home}: `ampmesh up` first")
        return EXIT_NOT_RUNNING
    # The endpoint carries no password; the home's password file does.
    password = password_file.read_text().strip()
    database_url = described["endpoints"]["postgres"].replace(
        "ampmesh@", f"ampmesh:{quote(password, safe='')}@", 1
    )
    admin = await rotate_admin_key(database_url, home / ADMIN_KEY_FILE)
    described["adminApiKey"], described["orgId"] = admin.api_key, admin.org_id
    write_private(home / STATE_FILE, json.dumps(described, indent=2))
    print(f"new admin API key for org {admin.org_id}: {admin.api_key} (the old one is revoked)")
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ampmesh", description="Run ampmesh locally.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the whole mesh and run until Ctrl-C")
    up.add_argument("--json", action="store_true", help="print the endpoints as one JSON object")
    up.add_argument(
        "--shards",
        type=int,
        default=int(os.environ.get("AMPMESH_TOKEN_MANAGER_SHARDS", "2")),
        help="token-manager shards (default 2, or $AMPMESH_TOKEN_MANAGER_SHARDS)",
    )
    up.add_argument("--detach", action="store_true", help="return once up; run in background")
    up.add_argument(
        "--sandbox",
        action="store_true",
        help="also start the provider sandbox; hubspot and salesforce then point at it",
    )
    up.add_argument(
        "--keep-sandbox-state",
        action="store_true",
        help=(
            "with --sandbox: keep the sandbox's seeded records and issued tokens in "
            "$AMPMESH_HOME/sandbox/state.json, across its restarts and `down`/`up` "
            "(or set AMPMESH_KEEP_SANDBOX_STATE=true)"
        ),
    )
    up.add_argument(
        "--observability",
        action="store_true",
        help=(
            "also start Prometheus (Debian's prometheus package, or $AMPMESH_PROMETHEUS) "
            "scraping every service, with the alerting rules"
        ),
    )
    state = commands.add_parser("status", help="what runs, its health and endpoints")
    state.add_argument("--json", action="store_true", help="one JSON object")
    restart = commands.add_parser(
        "restart", help="restart one process of the running mesh and wait until healthy"
    )
    restart.add_argument("name", help="the process: a service, postgres, redis, ... or envoy")
    commands.add_parser("down", help="stop the mesh started from this home")
    admin = commands.add_parser("admin-key", help="the org admin API key")
    admin.add_argument("action", choices=["rotate"], help="replace it; the old one stops working")
    edge = commands.add_parser(
        "edge-config",
        help="write the edge's Envoy configuration from AMPMESH_EDGE_* (a pod's init container)",
    )
    edge.add_argument(
        "--out", type=Path, required=True, help="directory for edge.yaml and what it loads"
    )
    topology_command.add_parser(commands)
    settings_table.add_parser(commands)
    args = parser.parse_args(argv)
    home = home_dir()
    if args.command == "up" and args.shards < 1:
        parser.error("--shards must be at least 1")
    if args.command == "up" and args.keep_sandbox_state and not args.sandbox:
        parser.error("--keep-sandbox-state needs --sandbox")
    if args.command == "up" and args.sandbox:
        wanted = os.environ.get("AMPMESH_KEEP_SANDBOX_STATE", "").lower()
        args.keep_sandbox_state = args.keep_sandbox_state or wanted in ("1", "true", "yes")
    if args.command == "up" and args.detach:
        code = _detach(home, args.shards, args.sandbox, args.keep_sandbox_state, args.observability)
    elif args.command == "up":
        options = MeshOptions(
            token_manager_shards=args.shards,
            sandbox=args.sandbox,
            keep_sandbox_state=args.keep_sandbox_state,
            observability=args.observability,
        )
        code = asyncio.run(_up(home, options, args.json))
    elif args.command == "restart":
        code = asyncio.run(_restart(home, args.name))
    elif args.command == "status":
        code = asyncio.run(_status(home, args.json))
    elif args.command == "admin-key":
        code = asyncio.run(_rotate_admin_key(home))
    elif args.command == "topology":
        code = topology_command.run(args, sys.stdout, sys.stderr)
    elif args.command == "settings":
        code = settings_table.run(args, sys.stdout)
    elif args.command == "edge-config":
        code = edge_config.main(args.out)
    else:
        print(asyncio.run(stop_recorded(home)))
        code = EXIT_OK
    sys.stdout.flush()
    sys.stderr.flush()
    # Temporal's client can crash the interpreter at exit (sdk-python #300).
    os._exit(code)


if __name__ == "__main__":
    main()
