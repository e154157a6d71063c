"""Ports for the local mesh's listeners, chosen once per home and kept.

Infrastructure (PostgreSQL, Redis, Temporal, the Pub/Sub emulator) and Envoy's listeners
need their port before they start, unlike our gRPC services, which bind port 0 and
announce what they got. A PortBook picks a free port for each name the first time and
remembers it in `<home>/ports.json`, so a second `up` on the same home serves the same
URLs; a remembered port that another program has taken since is replaced by a free one.
"""

from __future__ import annotations

import json
import secrets
import socket
from pathlib import Path

HOST = "127.0.0.1"


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers bind: a port whose last connections linger in TIME_WAIT after a
        # stop is free to them, and must stay the home's port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# Where booked ports are drawn from: below the kernel's ephemeral range.
LOWEST_BOOKED_PORT = 10000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _first_ephemeral_port() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(host: str = HOST) -> int:
    """A port nothing listens on right now, from below the kernel's ephemeral range.

    A booked port is bound only later (Envoy starts after our services), and meanwhile
    every process binding port 0 (metrics, MCP, outgoing connections) takes its port from
    the ephemeral range: a booked port from that range could be taken first (seen once,
    with several meshes starting together). Below it, only other bookings compete.
    """
    ceiling = _first_ephemeral_port()
    if ceiling - LOWEST_BOOKED_PORT > 1000:
        for _ in range(100):
            port = LOWEST_BOOKED_PORT + secrets.randbelow(ceiling - LOWEST_BOOKED_PORT)
            if port_is_free(port, host):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))  # the kernel's choice, as a last resort
        return int(probe.getsockname()[1])


class PortBook:
    """Named ports for one home, stable across runs while they stay free."""

    def __init__(self, home: Path) -> None:
        self.path = home / "ports.json"
        self._ports: dict[str, int] = {}
        if self.path.exists():
            self._ports = {k: int(v) for k, v in json.loads(self.path.read_text()).items()}
        self._checked: set[str] = set()

    def get(self, name: str) -> int:
        """The port for name: the remembered one if it is still free, else a new one."""
        if name in self._checked:
            return self._ports[name]
        port = self._ports.get(name)
        taken = {self._ports[n] for n in self._checked}
        if port is None or port in taken or not port_is_free(port):
            port = free_port()
            while port in taken:
                port = free_port()
        self._ports[name] = port
        self._checked.add(name)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self._ports, indent=2, sort_keys=True))
        return port
