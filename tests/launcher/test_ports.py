"""PortBook: a port per name, kept for the home while it stays free."""

from __future__ import annotations

import socket
from pathlib import Path

from services.launcher.ports import PortBook


def test_ports_are_distinct_and_kept_for_the_next_run(tmp_path: Path) -> None:
    book = PortBook(tmp_path)
    first = {name: book.get(name) for name in ("postgres", "redis", "edge-api")}
    assert len(set(first.values())) == 3
    assert book.get("redis") == first["redis"]
    again = PortBook(tmp_path)
    assert {name: again.get(name) for name in first} == first


def test_a_port_taken_since_is_replaced(tmp_path: Path) -> None:
    port = PortBook(tmp_path).get("api")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        assert PortBook(tmp_path).get("api") != port


def test_a_port_left_in_time_wait_by_a_stopped_server_is_kept(tmp_path: Path) -> None:
    port = PortBook(tmp_path).get("api")
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server closes first: its side lingers in TIME_WAIT
        client.close()
    assert PortBook(tmp_path).get("api") == port


def test_booked_ports_stay_out_of_the_kernels_ephemeral_range(tmp_path: Path) -> None:
    # Processes binding port 0 meanwhile draw from the ephemeral range; bookings do not.
    first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    book = PortBook(tmp_path)
    ports = [book.get(f"p{i}") for i in range(20)]
    assert all(10000 <= port < first_ephemeral for port in ports)
    assert len(set(ports)) == 20
