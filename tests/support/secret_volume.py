"""Certificates as Kubernetes mounts them, for the rotation tests: a Secret volume updated
the way the kubelet updates it, and the certificate a TLS port presents."""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

from cryptography import x509

from services.runtime.tls import ServiceCredentials


def publish(directory: Path, files: dict[str, bytes]) -> None:
    """What the kubelet does to a Secret volume: the files in a new timestamped directory,
    a `..data_tmp` symlink to it renamed over `..data` (the one atomic step), each file a
    symlink through `..data`, and the old directory removed."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "..data"
    old = os.readlink(data) if data.is_symlink() else None
    stamp = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for name, content in files.items():
        (stamp / name).write_bytes(content)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(stamp.name)
    os.rename(tmp, data)
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    if old is not None:
        for leftover in (directory / old).iterdir():
            leftover.unlink()
        (directory / old).rmdir()


def serial_of(cert_pem: bytes) -> int:
    return int(x509.load_pem_x509_certificate(cert_pem).serial_number)


def presented_serial(port: int, client: ServiceCredentials, scratch: Path) -> int:
    """The serial of the certificate a new TLS handshake with 127.0.0.1:port is answered
    with, presenting client's certificate (written to scratch, which must be private)."""
    cert, key = scratch / "client.pem", scratch / "client.key"
    cert.write_bytes(client.cert_pem)
    key.write_bytes(client.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=client.ca_pem.decode())
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)
