"""The whole local mesh: infrastructure, our services, the Envoy edge, in order.

`running_mesh(home)` brings everything up, each step gated on a real health check:

  1. prerequisites (one clear line naming what to install when something is missing);
  2. the private CA and a certificate per identity (made once, kept in <home>/certs);
  3. infrastructure, concurrently (they do not depend on each other): PostgreSQL with
     the schema migrated, Redis, the Temporal dev server, the Pub/Sub emulator with the
     topology the contracts declare;
  4. our services (token-manager shards, scribe, messenger, metrics, temporal workers,
     api), concurrently, each on its PortBook port;
  5. the Envoy edge in front of api and the token-manager shards;
  6. the MCP servers, which drive the api.

Once up, a `Supervisor` (supervisor.py) watches every process and restarts one that exits
or stops answering its health check, with backoff and a crash-loop limit; mesh.json is
rewritten on every change (pids, restarts, last exit reasons), and the launcher answers
`ampmesh restart NAME` on its control socket (control.py).

All state lives under one home directory: certs/, logs/<process>.log, one folder per
infrastructure component, envoy/, ports.json (ports kept across runs) and mesh.json (what
runs where, written once everything is healthy, rewritten when the supervisor restarts
something, and removed on a clean stop; `ampmesh status` and `ampmesh down` read it).
Leaving the context stops everything in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from services.api.bootstrap import AdminCredential, ensure_admin
from services.domain.subscribe_names import PUBLIC_URL_SETTING
from services.launcher import control, observability
from services.launcher.cors import CorsSettingError, CorsSettings
from services.launcher.edge import SUBSCRIBE, Edge, EdgeError, OverloadSettings, TracingSettings
from services.launcher.infra import Component, check_prerequisites, default_components
from services.launcher.ports import PortBook
from services.launcher.processes import (
    LAUNCHER_IDENTITY,
    MCP_PORT,
    MeshError,
    RunningService,
    ServiceSpec,
    default_services,
    grpc_healthy,
    start_service,
    stop_service,
    user_settings,
    wait_announced,
)
from services.launcher.state import STATE_FILE
from services.launcher.supervisor import (
    ProcessRecord,
    SupervisionError,
    SupervisionPolicy,
    Supervisor,
    Unit,
)
from services.launcher.units import ComponentUnit, EdgeUnit, ServiceUnit
from services.runtime.secretbox import SecretBox
from services.runtime.tls import ServiceCredentials, ensure_service_credentials

__all__ = [
    "Mesh",
    "MeshError",
    "MeshOptions",
    "Step",
    "SupervisionError",
    "SupervisionPolicy",
    "running_mesh",
]

# Every identity that holds a certificate in the local mesh.
IDENTITIES = (
    LAUNCHER_IDENTITY,
    "envoy",
    "api",
    "token-manager",
    "scribe",
    "messenger",
    "metrics",
    "temporal",
    "builder-mcp",
    "mcpanda",
)

ADMIN_KEY_FILE = "admin-api-key"
KEYRING_FILE = Path("secrets") / "keyring"
# Where the sandbox keeps its records and tokens across restarts (--keep-sandbox-state).
SANDBOX_STATE_FILE = Path("sandbox") / "state.json"

# A progress report: (step name, state, detail). States: "starting", "ready", "failed".
Step = Callable[[str, str, str], None]


def _quiet(name: str, state: str, detail: str) -> None:
    return None


@dataclass(frozen=True)
class MeshOptions:
    token_manager_shards: int = 2
    # Start the provider sandbox and point the catalog's hubspot and salesforce at it.
    sandbox: bool = False
    start_within: float = 90.0
    stop_grace: float = 15.0
    # Restart what dies or hangs (supervisor.py); without it, nothing is watched, and
    # restart() still works.
    supervise: bool = True
    policy: SupervisionPolicy = field(default_factory=SupervisionPolicy)
    # The sandbox keeps its records and issued tokens in <home>/sandbox/state.json, across
    # its restarts and the mesh's.
    keep_sandbox_state: bool = False
    # Also start a Prometheus scraping every service, with the alerting rules
    # (observability.py).
    observability: bool = False


@dataclass
class Mesh:
    home: Path
    options: MeshOptions
    components: list[Component] = field(default_factory=list)
    services: list[RunningService] = field(default_factory=list)
    edge: Edge | None = None
    admin: AdminCredential | None = None
    started_in: float = 0.0
    supervisor: Supervisor | None = None
    control_socket: Path | None = None

    @property
    def cert_dir(self) -> Path:
        return self.home / "certs"

    def credentials(self, identity: str) -> ServiceCredentials:
        """Credentials for a client identity, issued by this mesh's CA."""
        return ensure_service_credentials(self.cert_dir, identity)

    def service(self, name: str) -> RunningService:
        return next(s for s in self.services if s.name == name)

    async def restart(self, name: str) -> RunningService:
        """Start a service again (same port, same settings), whether it runs, stopped or
        was killed, and wait until it is healthy; one the supervisor restarted meanwhile
        counts. Goes through the supervisor: never races its automatic restarts."""
        self.service(name)
        await self.restart_process(name)
        return self.service(name)

    async def restart_process(self, name: str) -> ProcessRecord:
        """Restart any process by name (a service, postgres, redis, temporal, pubsub,
        envoy) and wait until it is healthy; its record (pid, restarts, last exit)."""
        return await self._supervisor().restart(name)

    def hold(self, name: str) -> None:
        """Leave the process down when it next exits (killed by a test that needs it dead
        for a while) instead of restarting it; restart(name) ends the hold."""
        self._supervisor().hold(name)

    def healthy(self) -> bool:
        """Every process runs and passed its last health check (stopped ones excepted)."""
        return self._supervisor().healthy()

    async def wait_healthy(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109 (reported)
        """Return once every process is healthy again; TimeoutError naming those not."""
        await self._supervisor().wait_healthy(timeout)

    def restarts(self, name: str) -> int:
        """How many times the process was restarted (by the supervisor or on request)."""
        return self._supervisor().restarts(name)

    def _supervisor(self) -> Supervisor:
        if self.supervisor is None:
            raise MeshError("the mesh is not up yet")
        return self.supervisor

    def units(self) -> list[Unit]:
        """Every process of the mesh as the supervisor sees it, in start order."""
        launcher = self.credentials(LAUNCHER_IDENTITY)
        units: list[Unit] = [ComponentUnit(c) for c in self.components]
        early = [s for s in self.services if not s.spec.after_edge]
        late = [s for s in self.services if s.spec.after_edge]
        units += [ServiceUnit(s.name, self.services, self.home, launcher) for s in early]
        if self.edge is not None:
            units.append(EdgeUnit(self.edge))
        units += [ServiceUnit(s.name, self.services, self.home, launcher) for s in late]
        return units

    def write_state(self) -> None:
        """(Re)write mesh.json, at once (a reader never sees half a file)."""
        write_private(self.home / STATE_FILE, json.dumps(self.describe(), indent=2))

    def endpoints(self) -> dict[str, str]:
        endpoints: dict[str, str] = {}
        if self.edge is not None:
            endpoints.update(self.edge.endpoints())
        for component in self.components:
            endpoints[component.name] = component.endpoint
        for running in self.services:
            # "api" is the REST base URL through the edge; the process is "api-service".
            key = "api-service" if running.name == "api" else running.name
            endpoints[key] = running.address
            endpoints.update(running.extra)
        endpoints["certs"] = str(self.cert_dir)
        return endpoints

    def tls_server_names(self) -> dict[str, str]:
        """The name each internal gRPC endpoint's certificate must be checked against,
        where it differs from the endpoint's name."""
        names = {
            ("api-service" if s.name == "api" else s.name): s.identity
            for s in self.services
            if s.identity != s.name
        }
        names["api-service"] = "api"
        if self.edge is not None:
            names["token-manager"] = "envoy"
        return names

    def describe(self) -> dict[str, Any]:
        """What `ampmesh status --json` prints (and mesh.json holds)."""
        processes: list[dict[str, Any]] = []
        for component in self.components:
            processes.append(_process(component.name, component.pid, "infrastructure"))
        for running in self.services:
            processes.append(_process(running.name, running.process.pid, "service"))
            processes[-1]["identity"] = running.identity
        if self.edge is not None:
            processes.append(_process(self.edge.name, self.edge.pid, "edge"))
        for entry in processes:
            if self.supervisor is not None and entry["name"] in self.supervisor.records:
                # pid, createTime, state, healthy, restarts, lastExit, reason.
                entry.update(self.supervisor.records[entry["name"]].describe())
            else:
                entry.update(healthy=True, state="running", restarts=0, lastExit=None)
        # Read again each time: `ampmesh admin-key rotate` replaces it while the mesh runs.
        admin_key = _read_secret(self.home / ADMIN_KEY_FILE) or (
            self.admin.api_key if self.admin else None
        )
        return {
            "home": str(self.home),
            "launcherPid": os.getpid(),
            "processes": processes,
            "endpoints": self.endpoints(),
            "tlsServerName": self.tls_server_names(),
            "upSeconds": round(self.started_in, 2),
            "orgId": self.admin.org_id if self.admin else None,
            "adminApiKey": admin_key,
            "controlSocket": str(self.control_socket) if self.control_socket else None,
            "supervised": self.options.supervise,
        }


def _read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _process(name: str, pid: int | None, kind: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "pid": pid, "kind": kind}
    if pid is not None:
        with contextlib.suppress(psutil.Error):
            # With the pid, tells `down` a process apart from a later one reusing the pid.
            entry["createTime"] = psutil.Process(pid).create_time()
    return entry


@contextlib.asynccontextmanager
async def running_mesh(
    home: Path, options: MeshOptions | None = None, progress: Step | None = None
) -> AsyncIterator[Mesh]:
    """Start the whole mesh, each step health-gated; stop it all on exit."""
    options = options or MeshOptions()
    report = progress or _quiet
    started = time.monotonic()
    home = home.resolve()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    mesh = Mesh(home, options)
    try:
        report("prerequisites", "starting", "")
        check_prerequisites()
        if options.observability:
            observability.check_installed()
        try:
            # Read before anything starts: a bad value should not cost a whole start-up.
            cors = CorsSettings.from_environment()
            overload = OverloadSettings.from_environment()
            tracing = TracingSettings.from_environment()
        except (CorsSettingError, EdgeError) as error:
            raise MeshError(str(error)) from None
        report("prerequisites", "ready", "")
        report("certificates", "starting", str(home / "certs"))
        for identity in IDENTITIES:
            ensure_service_credentials(home / "certs", identity)
        report("certificates", "ready", str(home / "certs"))

        ports = PortBook(home)
        mesh.components = default_components(home, ports)
        await _all(_start_component(c, options.start_within, report) for c in mesh.components)

        # The user's AMPMESH_* settings, taken once: every start and restart passes these.
        settings = user_settings(os.environ)
        infra_env: dict[str, str] = {}
        for component in mesh.components:
            infra_env.update(component.service_env())
        report("admin key", "starting", "")
        mesh.admin = await ensure_admin(infra_env["AMPMESH_DATABASE_URL"], home / ADMIN_KEY_FILE)
        report("admin key", "ready", f"org {mesh.admin.org_id}")
        infra_env["AMPMESH_SECRET_KEYS"] = ensure_keyring(home)
        # The local mesh delivers to webhooks on this machine (tests, a builder's laptop).
        infra_env["AMPMESH_ALLOW_LOOPBACK_WEBHOOKS"] = "true"
        infra_env["AMPMESH_REFUSE_PRIVATE_DESTINATIONS"] = "false"
        mesh.edge = Edge(home, ports, home / "certs", cors, overload, tracing)
        edge_endpoints = mesh.edge.endpoints()
        # api and temporal reach the token-manager shards through the edge's ring hash.
        infra_env["AMPMESH_TOKEN_MANAGER_ADDRESS"] = edge_endpoints["token-manager"]
        infra_env["AMPMESH_TOKEN_MANAGER_SERVER_NAME"] = "envoy"  # noqa: S105 (a TLS name)
        infra_env["AMPMESH_OAUTH_CALLBACK_URL"] = f"{edge_endpoints['api']}/callbacks/v1/oauth"
        # Where providers send change webhooks (the sandbox among them; registration gives
        # them this URL). A URL the user set (a tunnel to this machine, so a real provider
        # reaches it) wins.
        infra_env[PUBLIC_URL_SETTING] = (
            settings.get(PUBLIC_URL_SETTING) or edge_endpoints[SUBSCRIBE]
        )
        # The api asks messenger about deliveries (its port is booked before either starts),
        infra_env["AMPMESH_MESSENGER_ADDRESS"] = f"127.0.0.1:{ports.get('messenger')}"
        # and the metrics service about a project's figures (GET .../metrics).
        infra_env["AMPMESH_METRICS_ADDRESS"] = f"127.0.0.1:{ports.get('metrics')}"
        specs = default_services(options.token_manager_shards, sandbox=options.sandbox)
        if options.sandbox:
            sandbox_port = ports.get("sandbox-http")
            infra_env["AMPMESH_SANDBOX_HTTP_PORT"] = str(sandbox_port)
            infra_env["AMPMESH_SANDBOX_URL"] = f"http://127.0.0.1:{sandbox_port}"
            if options.keep_sandbox_state:
                specs = [_keeping_state(s, home) if s.name == "sandbox" else s for s in specs]
        early = [s for s in specs if not s.after_edge]
        await _start_services(mesh, early, ports, infra_env, settings, report)

        report("envoy", "starting", "")
        shards = {s.name: s.address for s in mesh.services if s.identity == "token-manager"}
        mesh.edge.render(api_address=mesh.service("api").address, token_manager_shards=shards)
        await mesh.edge.start(within=options.start_within)
        report("envoy", "ready", edge_endpoints["api"])

        infra_env["AMPMESH_API_ADDRESS"] = mesh.service("api").address
        infra_env["AMPMESH_API_IDENTITY"] = "api"
        # Locally the builder is whoever runs the mesh: the MCP servers act with the org
        # admin key (a deployment gives builder-mcp a project key instead).
        infra_env["AMPMESH_API_KEY"] = mesh.admin.api_key
        # builder-mcp's send_request tools call providers through the edge's proxy host.
        infra_env["AMPMESH_PROXY_URL"] = edge_endpoints["proxy"]
        # mcpanda drives the operator-side services too (deliveries, dead letters, metrics,
        # the provider sandbox's control API).
        for name in ("scribe", "sandbox"):
            if any(s.name == name for s in mesh.services):
                infra_env[f"AMPMESH_{name.upper()}_ADDRESS"] = mesh.service(name).address
        late = [s for s in specs if s.after_edge]
        await _start_services(mesh, late, ports, infra_env, settings, report)
        if options.observability:
            targets = observability.scrape_targets(mesh.services, edge_endpoints)
            prometheus = observability.Prometheus(home, ports, targets)
            mesh.components.append(prometheus)  # supervised, stopped and described like one
            await _start_component(prometheus, options.start_within, report)

        mesh.started_in = time.monotonic() - started
        mesh.supervisor = Supervisor(mesh.units(), options.policy, on_change=mesh.write_state)
        if options.supervise:
            mesh.supervisor.start()
        mesh.control_socket = control.socket_path(home)
        server = await control.serve(mesh.control_socket, partial(_answer, mesh))
        try:
            mesh.write_state()
            yield mesh
        finally:
            server.close()
            mesh.control_socket.unlink(missing_ok=True)
    finally:
        if mesh.supervisor is not None:
            await mesh.supervisor.close()
        await stop(mesh, report)


def _keeping_state(spec: ServiceSpec, home: Path) -> ServiceSpec:
    path = home / SANDBOX_STATE_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return replace(spec, env={**spec.env, "AMPMESH_SANDBOX_STATE_FILE": str(path)})


async def _answer(mesh: Mesh, request: dict[str, Any]) -> dict[str, Any]:
    """A request on the control socket (control.py)."""
    if request.get("command") != "restart":
        return {"ok": False, "error": f"unknown command {request.get('command')!r}"}
    name = request.get("name")
    if not isinstance(name, str) or not name:
        return {"ok": False, "error": "name: the process to restart is missing"}
    try:
        record = await mesh.restart_process(name)
    except (SupervisionError, MeshError) as error:
        return {"ok": False, "error": str(error)}
    return {"ok": True, "name": name, "pid": record.pid, "restarts": record.restarts}


def ensure_keyring(home: Path) -> str:
    """The keyring sealing secrets at rest (AMPMESH_SECRET_KEYS), made once per home."""
    path = home / KEYRING_FILE
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(SecretBox.new_spec() + "\n")
    return path.read_text().strip()


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mesh.json holds the admin API key), whole:
    written beside it, then renamed over it."""
    partial_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(partial_path, path)


async def _start_component(component: Component, within: float, report: Step) -> None:
    report(component.name, "starting", "")
    try:
        await component.start(within=within)
    except Exception:
        report(component.name, "failed", "")
        raise
    report(component.name, "ready", component.endpoint)


async def _start_services(
    mesh: Mesh,
    specs: Sequence[ServiceSpec],
    ports: PortBook,
    env: dict[str, str],
    settings: dict[str, str],
    report: Step,
) -> None:
    credentials = mesh.credentials(LAUNCHER_IDENTITY)
    started: list[RunningService] = []
    for spec in specs:
        report(spec.name, "starting", "")
        # Booked like the gRPC port, so a restart (and the next `up`) keeps the URL that
        # Prometheus scrapes.
        metrics = {"AMPMESH_METRICS_PORT": str(ports.get(f"{spec.name}-metrics"))}
        launcher_env = {**env, **metrics}
        if MCP_PORT in spec.env:
            # An MCP server's URL is what a builder's assistant is configured with: booked,
            # so a restart by the supervisor (or the next `up`) serves the same URL.
            spec = replace(spec, env={**spec.env, MCP_PORT: str(ports.get(f"{spec.name}-http"))})
        running = await start_service(spec, mesh.home, ports.get(spec.name), launcher_env, settings)
        mesh.services.append(running)
        started.append(running)

    async def ready(running: RunningService) -> None:
        try:
            await wait_announced(running, mesh.options.start_within)
            running.healthy = await grpc_healthy(running.address, running.identity, credentials)
            if not running.healthy:
                raise MeshError(f"{running.name} does not report SERVING on {running.address}")
        except Exception:
            report(running.name, "failed", "")
            raise
        report(running.name, "ready", running.address)

    await _all(ready(r) for r in started)


async def _all(steps: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run steps concurrently; the first failure cancels the rest and is raised alone
    (the user gets one clear message, not an exception group)."""
    try:
        async with asyncio.TaskGroup() as group:
            for step in steps:
                group.create_task(step)
    except BaseExceptionGroup as failed:
        first = failed.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


async def stop(mesh: Mesh, report: Step = _quiet) -> dict[str, int | None]:
    """Stop everything in reverse start order; the exit codes (None = had to be killed)."""
    grace = mesh.options.stop_grace
    codes: dict[str, int | None] = {}
    (mesh.home / STATE_FILE).unlink(missing_ok=True)
    late = [s for s in mesh.services if s.spec.after_edge]
    early = [s for s in mesh.services if not s.spec.after_edge]
    codes.update(await _stop_services(late, grace))
    if mesh.edge is not None and mesh.edge.pid is not None:
        codes[mesh.edge.name] = await mesh.edge.stop(grace)
    codes.update(await _stop_services(early, grace))
    stopping = [c for c in reversed(mesh.components) if c.pid is not None]
    results = await asyncio.gather(*(c.stop(grace) for c in stopping))
    codes.update({c.name: code for c, code in zip(stopping, results, strict=True)})
    for name in codes:
        report(name, "stopped", "")
    return codes


async def _stop_services(services: list[RunningService], grace: float) -> dict[str, int | None]:
    results = await asyncio.gather(*(stop_service(s, grace) for s in services))
    return {s.name: code for s, code in zip(services, results, strict=True)}
