"""Our own service processes: how each is started, announced, health-checked and stopped.

Each service runs as its own process (`python -m services.<module>`), exactly as it would
in its own deployment, with its settings in AMPMESH_* variables. Its gRPC port comes from
the home's PortBook (Envoy's static config names it); ports it opens besides (Prometheus,
MCP over HTTP) are bound as port 0 and announced in JSON log lines, which the launcher
reads from the process's log file. Health is then confirmed over mTLS like any other
mesh client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.channels import mesh_channel
from services.runtime.tls import ServiceCredentials

# The identity the launcher uses for its own health checks.
LAUNCHER_IDENTITY = "launcher"
# The MCP servers' HTTP port variable (services/runtime/mcp_http.py).
MCP_PORT = "AMPMESH_MCP_PORT"


class MeshError(RuntimeError):
    """Something could not start; the message names it and quotes its log."""


@dataclass(frozen=True)
class ServiceSpec:
    """One service process: its process name, mesh identity and Python module."""

    name: str
    module: str
    identity: str = ""  # the certificate identity; defaults to name
    env: dict[str, str] = field(default_factory=dict)
    # Log events that announce an HTTP endpoint, and the endpoint name each is recorded under.
    endpoints: dict[str, str] = field(default_factory=dict)
    # Started after the edge (they call the api through its gRPC address).
    after_edge: bool = False

    @property
    def mesh_identity(self) -> str:
        return self.identity or self.name


def default_services(token_manager_shards: int = 2, *, sandbox: bool = False) -> list[ServiceSpec]:
    """Every service of the mesh, in start order (the provider sandbox when asked)."""
    shards = [
        ServiceSpec(
            f"token-manager-{i}",
            "services.token_manager",
            identity="token-manager",
            env={"AMPMESH_SHARD_NAME": f"token-manager-{i}"},
        )
        for i in range(token_manager_shards)
    ]
    # The mesh books the port (mesh.py); any free one when started on its own.
    mcp = {MCP_PORT: "0"}
    # Its HTTP port is booked (AMPMESH_SANDBOX_HTTP_PORT): the api's catalog names it.
    providers = [
        ServiceSpec("sandbox", "services.sandbox", endpoints={"sandbox serving": "sandbox-http"})
    ]
    return [
        *(providers if sandbox else []),
        *shards,
        ServiceSpec("scribe", "services.scribe"),
        ServiceSpec("messenger", "services.messenger"),
        ServiceSpec("metrics", "services.metrics"),
        # The Temporal workers; "temporal" is the Temporal server's name in the mesh.
        ServiceSpec("temporal-worker", "services.temporal", identity="temporal"),
        ServiceSpec("api", "services.api"),
        ServiceSpec(
            "builder-mcp",
            "services.builder_mcp",
            env=mcp,
            endpoints={"mcp serving": "builder-mcp-http"},
            after_edge=True,
        ),
        ServiceSpec(
            "mcpanda",
            "services.mcpanda",
            env=mcp,
            endpoints={"mcp serving": "mcpanda-http"},
            after_edge=True,
        ),
    ]


@dataclass
class RunningService:
    spec: ServiceSpec
    process: asyncio.subprocess.Process
    log_path: Path
    port: int
    env: dict[str, str]
    log_offset: int = 0  # where this run's lines start in a log kept across runs
    address: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    healthy: bool = False
    # The user's AMPMESH_* settings it was started with (a restart passes the same).
    settings: Mapping[str, str] | None = None
    # Set by stop_service: the supervisor leaves a process stopped on purpose down.
    stopped_on_purpose: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def identity(self) -> str:
        return self.spec.mesh_identity


# Variables that wire a process to the rest of the mesh. The launcher sets them for the
# processes that need them; one left over in the user's shell (a deployment's URL, a
# builder's API key) must not reach the processes it does not set them for.
WIRING_VARIABLES = frozenset(
    {
        "AMPMESH_API_ADDRESS",
        "AMPMESH_API_IDENTITY",
        "AMPMESH_API_KEY",
        "AMPMESH_MCP_PORT",
        "AMPMESH_SANDBOX_HTTP_PORT",
        "AMPMESH_SANDBOX_URL",
        "AMPMESH_SANDBOX_STATE_FILE",
        "AMPMESH_SHARD_NAME",
    }
)


def user_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The AMPMESH_* settings the user set for the mesh's processes (AMPMESH_SANDBOX_*,
    a log level, a limit, ...): they pass to every process, under the launcher's own
    values, which always win. Taken once when the mesh starts, so a restart sees the same
    settings whatever the launcher's environment became since."""
    return {
        key: value
        for key, value in environ.items()
        if key.startswith("AMPMESH_") and key not in WIRING_VARIABLES
    }


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def start_service(
    spec: ServiceSpec,
    home: Path,
    port: int,
    env: dict[str, str],
    settings: Mapping[str, str] | None = None,
) -> RunningService:
    """Spawn the service's process with its settings; returns at once.

    `env` is the launcher's own AMPMESH_* values; `settings` the user's (user_settings()),
    which pass under them. Without `settings`, no AMPMESH_* variable of the launcher's
    environment reaches the process."""
    log_path = home / "logs" / f"{spec.name}.log"
    with log_path.open("ab") as log:
        offset = log.tell()
        process = await _spawn(spec, home, port, env, settings or {}, log)
    return RunningService(spec, process, log_path, port, dict(env), offset, settings=settings)


async def _spawn(
    spec: ServiceSpec,
    home: Path,
    port: int,
    extra_env: dict[str, str],
    settings: Mapping[str, str],
    log: IO[bytes],
) -> asyncio.subprocess.Process:
    # The launcher's environment minus its AMPMESH_* (which may name another mesh); the
    # user's settings as taken at the mesh's start.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(settings)
    env.update(
        {
            "AMPMESH_HOME": str(home),
            "AMPMESH_CERT_DIR": str(home / "certs"),
            "AMPMESH_IDENTITY": spec.mesh_identity,
            "AMPMESH_LISTEN_HOST": "127.0.0.1",
            "AMPMESH_LISTEN_PORT": str(port),
            # Prometheus exposition, on 127.0.0.1 (the mesh books a port; else any free).
            "AMPMESH_METRICS_PORT": "0",
            "AMPMESH_LOG_FORMAT": "json",
            # Internal ports only: the edge never routes reflection to the outside.
            "AMPMESH_REFLECTION": "true",
            **extra_env,
            **spec.env,
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
        # Ctrl-C reaches the launcher only, which stops everything in order.
        start_new_session=True,
    )


async def wait_announced(running: RunningService, within: float) -> None:
    """Wait for the service's "serving" line (and its other endpoint lines) in its log."""
    wanted = {"serving": "", **running.spec.endpoints}
    deadline = time.monotonic() + within
    position = running.log_offset
    while wanted:
        if running.process.returncode is not None:
            raise MeshError(
                f"{running.name} exited with code {running.process.returncode} during "
                f"start; its log ({running.log_path}) ends with:\n{tail(running.log_path)}"
            )
        if time.monotonic() > deadline:
            raise MeshError(
                f"{running.name} did not start within {within:.0f}s; "
                f"its log ({running.log_path}) ends with:\n{tail(running.log_path)}"
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
                        running.extra[f"{running.name}-metrics"] = (
                            f"http://{entry['host']}:{entry['metrics_port']}/metrics"
                        )
                    del wanted["serving"]
                elif event in wanted:
                    running.extra[wanted.pop(event)] = entry.get("url", "")
        await asyncio.sleep(0.05)


async def grpc_healthy(
    address: str, identity: str, credentials: ServiceCredentials, within: float = 5.0
) -> bool:
    """Whether the gRPC server at address (whose certificate names identity) is SERVING."""
    try:
        async with mesh_channel(
            address, credentials, server_identity=identity, retry=None
        ) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=within)
    except Exception:  # any failure to answer is "not healthy", which is what we report
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


async def stop_service(running: RunningService, grace: float) -> int | None:
    """SIGTERM (the service drains), SIGKILL after grace; the exit code, None if killed."""
    running.stopped_on_purpose = True
    if running.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            running.process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(running.process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            running.process.kill()
        await running.process.wait()
        return None
