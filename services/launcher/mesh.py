"""Starting and stopping the mesh's service processes on one machine.

Each service runs as its own process (`python -m services.<module>`), exactly as it would
in its own deployment, with its settings in AMPMESH_* variables. Processes listen on port
0 and announce the port they bound in their JSON "serving" log line, so nothing races for
ports; the launcher reads that line from the process's log file, then confirms health
over mTLS like any other mesh client would.

All state lives under one home directory: certs/ (the private CA and one certificate per
identity), logs/<service>.log, and mesh.json (what is running where).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.channels import mesh_channel
from services.runtime.tls import ServiceCredentials, ensure_service_credentials

# The identity the launcher uses for its own health checks.
LAUNCHER_IDENTITY = "launcher"


@dataclass(frozen=True)
class ServiceSpec:
    """One service process: its mesh name (= certificate identity) and Python module."""

    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)
    # Log events that announce a port, and the endpoint name each is recorded under.
    endpoints: dict[str, str] = field(default_factory=dict)
    # Environment variables set to another service's address: that service starts first.
    needs: dict[str, str] = field(default_factory=dict)


def default_services(token_manager_shards: int = 2) -> list[ServiceSpec]:
    """Every service of the mesh, in start order."""
    shards = [
        ServiceSpec(
            f"token-manager-{i}",
            "services.token_manager",
            env={"AMPMESH_IDENTITY": "token-manager"},
        )
        for i in range(token_manager_shards)
    ]
    mcp = {"AMPMESH_MCP_PORT": "0"}
    api = {"AMPMESH_API_ADDRESS": "api"}
    return [
        *shards,
        ServiceSpec("scribe", "services.scribe"),
        ServiceSpec("messenger", "services.messenger"),
        ServiceSpec("metrics", "services.metrics"),
        ServiceSpec("temporal", "services.temporal"),
        ServiceSpec("api", "services.api"),
        ServiceSpec(
            "builder-mcp",
            "services.builder_mcp",
            env=mcp,
            needs=api,
            endpoints={"mcp serving": "builder-mcp-http"},
        ),
        ServiceSpec(
            "mcpanda",
            "services.mcpanda",
            env=mcp,
            needs=api,
            endpoints={"mcp serving": "mcpanda-http"},
        ),
    ]


@dataclass
class RunningService:
    spec: ServiceSpec
    process: asyncio.subprocess.Process
    log_path: Path
    identity: str
    log_offset: int = 0  # where this run's lines start in a log kept across runs
    address: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    healthy: bool = False


class MeshError(RuntimeError):
    """A service could not start; the message names it and quotes its log."""


@dataclass
class Mesh:
    home: Path
    services: list[RunningService]
    started_in: float = 0.0

    @property
    def cert_dir(self) -> Path:
        return self.home / "certs"

    def credentials(self, identity: str) -> ServiceCredentials:
        """Credentials for a client identity, issued by this mesh's CA."""
        return ensure_service_credentials(self.cert_dir, identity)

    def service(self, name: str) -> RunningService:
        return next(s for s in self.services if s.spec.name == name)

    def describe(self) -> dict[str, Any]:
        endpoints: dict[str, str] = {s.spec.name: s.address for s in self.services}
        for s in self.services:
            endpoints.update(s.extra)
        endpoints["certs"] = str(self.cert_dir)
        return {
            "processes": [
                {
                    "name": s.spec.name,
                    "pid": s.process.pid,
                    "healthy": s.healthy,
                    "identity": s.identity,
                }
                for s in self.services
            ],
            "endpoints": endpoints,
            "upSeconds": round(self.started_in, 2),
        }


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _announcements(running: RunningService, within: float) -> None:
    """Wait for the service's "serving" line (and its other endpoint lines) in its log."""
    wanted = {"serving": "", **running.spec.endpoints}
    deadline = time.monotonic() + within
    position = running.log_offset
    while wanted:
        if running.process.returncode is not None:
            raise MeshError(
                f"{running.spec.name} exited with code {running.process.returncode} during "
                f"start; its log ({running.log_path}) ends with:\n{_tail(running.log_path)}"
            )
        if time.monotonic() > deadline:
            raise MeshError(
                f"{running.spec.name} did not start within {within:.0f}s; "
                f"its log ends with:\n{_tail(running.log_path)}"
            )
        with running.log_path.open() as log:
            log.seek(position)
            for line in log:
                position += len(line.encode())
                if not line.startswith("{"):
                    continue
                entry = json.loads(line)
                event = entry.get("event")
                if event == "serving" and "serving" in wanted:
                    running.address = f"{entry['host']}:{entry['port']}"
                    if entry.get("metrics_port"):
                        running.extra[f"{running.spec.name}-metrics"] = (
                            f"http://{entry['host']}:{entry['metrics_port']}/metrics"
                        )
                    del wanted["serving"]
                elif event in wanted:
                    running.extra[wanted.pop(event)] = entry.get("url", "")
        await asyncio.sleep(0.05)


async def check_health(mesh: Mesh, running: RunningService, deadline: float = 5.0) -> bool:
    """Ask the service's gRPC health service, over mTLS, whether it is SERVING."""
    credentials = mesh.credentials(LAUNCHER_IDENTITY)
    async with mesh_channel(
        running.address, credentials, server_identity=running.identity, retry=None
    ) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=deadline)
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


async def _start(
    spec: ServiceSpec, home: Path, log: IO[bytes], addresses: dict[str, str]
) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        {
            "AMPMESH_HOME": str(home),
            "AMPMESH_CERT_DIR": str(home / "certs"),
            "AMPMESH_LISTEN_PORT": "0",
            "AMPMESH_METRICS_PORT": "0",  # Prometheus exposition, on 127.0.0.1
            "AMPMESH_LOG_FORMAT": "json",
            # Internal ports only: the edge never routes reflection to the outside.
            "AMPMESH_REFLECTION": "true",
            **spec.env,
            **{variable: addresses[service] for variable, service in spec.needs.items()},
        }
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        spec.module,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


async def stop(mesh: Mesh, grace: float = 15.0) -> dict[str, int | None]:
    """SIGTERM every process (they drain), kill what is still running after `grace`."""
    for running in reversed(mesh.services):
        if running.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                running.process.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    for running in mesh.services:
        try:
            codes[running.spec.name] = await asyncio.wait_for(running.process.wait(), grace)
        except TimeoutError:
            running.process.kill()
            await running.process.wait()
            codes[running.spec.name] = None  # did not stop by itself
    (mesh.home / "mesh.json").unlink(missing_ok=True)
    return codes


@contextlib.asynccontextmanager
async def running_mesh(
    home: Path, services: Sequence[ServiceSpec] | None = None, start_within: float = 60.0
) -> AsyncIterator[Mesh]:
    """Start every service, wait until each is healthy, stop them all on exit."""
    started = time.monotonic()
    home = home.resolve()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    # The CA is made once, here, before services race to make it.
    ensure_service_credentials(home / "certs", LAUNCHER_IDENTITY)
    mesh = Mesh(home, [])
    announced: dict[str, asyncio.Task[None]] = {}
    try:
        for spec in services if services is not None else default_services():
            needed = [mesh.service(name) for name in spec.needs.values()]
            await asyncio.gather(*(announced[s.spec.name] for s in needed))
            log_path = home / "logs" / f"{spec.name}.log"
            with log_path.open("ab") as log:
                offset = log.tell()
                addresses = {s.spec.name: s.address for s in needed}
                process = await _start(spec, home, log, addresses)
            identity = spec.env.get("AMPMESH_IDENTITY", spec.name)
            running = RunningService(spec, process, log_path, identity, offset)
            mesh.services.append(running)
            announced[spec.name] = asyncio.create_task(_announcements(running, start_within))
        await asyncio.gather(*announced.values())
        for running in mesh.services:
            running.healthy = await check_health(mesh, running)
            if not running.healthy:
                raise MeshError(f"{running.spec.name} reports NOT_SERVING")
        mesh.started_in = time.monotonic() - started
        (home / "mesh.json").write_text(json.dumps(mesh.describe(), indent=2))
        yield mesh
    finally:
        for task in announced.values():
            task.cancel()
        await stop(mesh)
