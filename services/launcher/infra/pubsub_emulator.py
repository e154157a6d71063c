"""The Pub/Sub emulator (Java), started directly so its pid is the JVM's.

The emulator keeps everything in memory (it has no data directory option), so the
contract's topology is created again at every start; `<home>/pubsub` is its working
directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from google.api_core.exceptions import GoogleAPIError

from services.launcher.infra.base import Component, PrerequisiteMissing, executable, on_path
from services.launcher.ports import PortBook
from services.runtime.pubsub_topology import Topology, emulator_publisher, ensure_topology

PROJECT = "ampmesh-local"
EMULATOR_VARIABLE = "AMPMESH_PUBSUB_EMULATOR"
DEFAULT_EMULATOR = Path(
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
)
INSTALL = (
    "install google-cloud-cli-pubsub-emulator (apt) and a Java 17+ runtime, or set "
    f"{EMULATOR_VARIABLE} to its cloud-pubsub-emulator binary"
)


def emulator_binary() -> Path:
    return Path(os.environ.get(EMULATOR_VARIABLE) or DEFAULT_EMULATOR)


def java_binary() -> Path | None:
    """The java the emulator's start script will exec (JAVA_HOME first, as it does)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        return candidate if executable(candidate) else None
    return on_path("java")


def check_installed() -> None:
    if not executable(emulator_binary()):
        raise PrerequisiteMissing(
            f"the Pub/Sub emulator is missing ({emulator_binary()}): {INSTALL}"
        )
    if java_binary() is None:
        raise PrerequisiteMissing(f"Java is missing for the Pub/Sub emulator: {INSTALL}")


class PubSub(Component):
    name = "pubsub"

    def __init__(self, home: Path, ports: PortBook) -> None:
        super().__init__(home, ports)
        self.port = self.ports.get(self.name)
        self.topology: Topology | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def service_env(self) -> dict[str, str]:
        return {"AMPMESH_PUBSUB_EMULATOR_HOST": self.endpoint, "AMPMESH_PUBSUB_PROJECT": PROJECT}

    def check(self) -> None:
        check_installed()

    def command(self) -> Sequence[str]:
        # The start script execs java, so the pid we hold is the emulator's.
        return [str(emulator_binary()), f"--host={self.host}", f"--port={self.port}"]

    async def ready(self, within: float) -> bool:
        return await probe(self.endpoint, within)

    async def after_ready(self) -> None:
        self.topology = await ensure_topology(self.endpoint, PROJECT)

    async def stop(self, grace: float = 15.0) -> int | None:
        code = await super().stop(grace)
        # The JVM exits 128 + SIGTERM once its shutdown hooks ran: that is a clean stop.
        return 0 if code == 128 + signal.SIGTERM else code


def _list_topics(endpoint: str, timeout: float) -> None:
    with emulator_publisher(endpoint) as publisher:
        # One attempt (the caller polls); list() drains the pager: a real round trip.
        pages = publisher.list_topics(project=f"projects/{PROJECT}", retry=None, timeout=timeout)
        list(pages)


async def probe(endpoint: str, within: float) -> bool:
    """Listing the project's topics works."""
    try:
        await asyncio.wait_for(asyncio.to_thread(_list_topics, endpoint, within), within + 1)
    except (GoogleAPIError, TimeoutError, OSError):
        return False
    return True
