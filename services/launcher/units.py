"""The mesh's processes as the supervisor sees them: one `Unit` per service, infrastructure
component and the Envoy edge, each restarted the way `running_mesh` first started it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.launcher.edge import Edge
from services.launcher.edge import probe as edge_probe
from services.launcher.infra import Component
from services.launcher.processes import (
    MeshError,
    RunningService,
    grpc_healthy,
    start_service,
    stop_service,
    wait_announced,
)
from services.launcher.supervisor import Unit
from services.runtime.tls import ServiceCredentials


class ServiceUnit(Unit):
    """One of our services; a restart replaces its RunningService in the mesh's list."""

    kind = "service"

    def __init__(
        self,
        name: str,
        services: list[RunningService],
        home: Path,
        credentials: ServiceCredentials,
    ) -> None:
        self.name = name
        self._services = services
        self._home = home
        self._credentials = credentials

    @property
    def running(self) -> RunningService:
        return next(s for s in self._services if s.name == self.name)

    @property
    def process(self) -> asyncio.subprocess.Process:
        return self.running.process

    @property
    def held(self) -> bool:
        return self.running.stopped_on_purpose

    async def start(self, within: float) -> None:
        old = self.running
        # Same port, same launcher values and user settings: peers and Envoy's static
        # config still point at it.
        new = await start_service(old.spec, self._home, old.port, old.env, old.settings)
        self._services[self._services.index(old)] = new
        await wait_announced(new, within)
        new.healthy = await grpc_healthy(new.address, new.identity, self._credentials)
        if not new.healthy:
            raise MeshError(f"{self.name} does not report SERVING on {new.address}")

    async def stop(self, grace: float) -> int | None:
        code = await stop_service(self.running, grace)
        # Stopped to be restarted, not to stay down.
        self.running.stopped_on_purpose = False
        return code

    async def probe(self, within: float) -> bool:
        running = self.running
        return await grpc_healthy(running.address, running.identity, self._credentials, within)


class ComponentUnit(Unit):
    """An infrastructure component: start() prepares its (kept) state directory, spawns
    it, waits for its ready probe and runs after_ready (migrations, the Pub/Sub topology)."""

    kind = "infrastructure"

    def __init__(self, component: Component) -> None:
        self.name = component.name
        self.component = component

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        return self.component.process

    @property
    def held(self) -> bool:
        return self.component.stopped_on_purpose

    async def start(self, within: float) -> None:
        await self.component.start(within=within)

    async def stop(self, grace: float) -> int | None:
        code = await self.component.stop(grace)
        self.component.stopped_on_purpose = False
        return code

    async def probe(self, within: float) -> bool:
        return await self.component.ready(within)


class EdgeUnit(Unit):
    """Envoy, restarted with the config it rendered (same listeners, same clusters)."""

    kind = "edge"

    def __init__(self, edge: Edge) -> None:
        self.name = edge.name
        self.edge = edge

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        return self.edge.process

    async def start(self, within: float) -> None:
        await self.edge.start(within=within)

    async def stop(self, grace: float) -> int | None:
        return await self.edge.stop(grace)

    async def probe(self, within: float) -> bool:
        return await edge_probe(self.edge.endpoints(), within)
