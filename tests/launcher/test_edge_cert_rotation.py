"""The edge takes up a renewed certificate without a restart: Envoy gets its certificate
and the mesh CA from SDS files watching the certificate directory, so when the kubelet
swaps the mounted Secret (cert-manager renewed it), new handshakes both ways (callers of
the token-manager listener, and the upstreams Envoy dials) see the new leaf, in the same
Envoy process."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509

from services.launcher.edge import Edge
from services.launcher.ports import PortBook, free_port
from services.runtime.tls import (
    CertificateAuthority,
    ServiceCredentials,
    ensure_ca,
    issue_certificate,
)
from tests.support.envoy_process import running_envoy
from tests.support.secret_volume import presented_serial, publish, serial_of


def edge_files(ca: CertificateAuthority) -> tuple[dict[str, bytes], int]:
    """The edge's Secret as its pod mounts it (`items:` renamed to the runtime's names)."""
    cert_pem, key_pem = issue_certificate(ca, "envoy")
    return {"envoy.pem": cert_pem, "envoy.key": key_pem, "ca.pem": ca.cert_pem}, serial_of(cert_pem)


def credentials(ca: CertificateAuthority, identity: str) -> ServiceCredentials:
    cert_pem, key_pem = issue_certificate(ca, identity)
    return ServiceCredentials(identity, ca.cert_pem, cert_pem, key_pem)


@asynccontextmanager
async def api_upstream(
    creds: ServiceCredentials, port: int, scratch: Path
) -> AsyncIterator[list[int]]:
    """A TLS server where Envoy's api cluster dials, requiring a client certificate: it
    records the serial of each certificate Envoy presents and closes the connection, so
    Envoy's health checker dials (and presents its certificate) again every second."""
    scratch.mkdir()
    (scratch / "api.pem").write_bytes(creds.cert_pem)
    (scratch / "api.key").write_bytes(creds.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(scratch / "api.pem", scratch / "api.key")
    context.load_verify_locations(cadata=creds.ca_pem.decode())
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    seen: list[int] = []

    async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        seen.append(int(x509.load_der_x509_certificate(der).serial_number))
        writer.close()

    server = await asyncio.start_server(handshake, "127.0.0.1", port, ssl=context)
    try:
        yield seen
    finally:
        server.close()


async def eventually_presented(
    port: int,
    client: ServiceCredentials,
    scratch: Path,
    serial: int,
    process: subprocess.Popen[bytes],
    log: Path,
) -> None:
    """Wait until a new handshake with port is answered with the leaf whose serial is given."""
    last: object = "no handshake"
    for _ in range(200):
        if process.poll() is not None:
            pytest.fail(f"Envoy exited: {log.read_text()[-3000:]}")
        try:
            last = presented_serial(port, client, scratch)
        except OSError as error:
            last = repr(error)
        if last == serial:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"port {port} never presented {serial:x} (last: {last}); {log.read_text()[-3000:]}")


async def eventually_dialled_with(
    seen: list[int], serial: int, process: subprocess.Popen[bytes], log: Path
) -> None:
    for _ in range(200):
        if process.poll() is not None:
            pytest.fail(f"Envoy exited: {log.read_text()[-3000:]}")
        if seen and seen[-1] == serial:
            return
        await asyncio.sleep(0.1)
    pytest.fail(
        f"Envoy never dialled the api with {serial:x} (saw {seen[-3:]}); {log.read_text()[-3000:]}"
    )


async def test_the_edge_presents_a_renewed_certificate_without_a_restart(
    tmp_path: Path,
) -> None:
    ca = ensure_ca(tmp_path / "issuer")
    certs = tmp_path / "certs"  # the pod's Secret volume
    first, first_serial = edge_files(ca)
    publish(certs, first)
    home = tmp_path / "home"
    edge = Edge(home, PortBook(home), certs)
    api_port = free_port()
    config = edge.render(f"127.0.0.1:{api_port}", {"token-manager-0": f"127.0.0.1:{free_port()}"})
    token_manager_port = edge.ports["token-manager"]
    caller = credentials(ca, "api")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    log = tmp_path / "envoy.log"

    async with api_upstream(credentials(ca, "api"), api_port, tmp_path / "api") as dialled:
        with running_envoy(config, log) as process:
            await eventually_presented(
                token_manager_port, caller, scratch, first_serial, process, log
            )
            await eventually_dialled_with(dialled, first_serial, process, log)

            renewed, renewed_serial = edge_files(ca)
            publish(certs, renewed)
            # Downstream: a caller of the token-manager listener; upstream: the api.
            await eventually_presented(
                token_manager_port, caller, scratch, renewed_serial, process, log
            )
            await eventually_dialled_with(dialled, renewed_serial, process, log)
            assert process.poll() is None  # the same Envoy, never restarted

            # A leaf whose key is not its certificate's is refused; the renewed one stays.
            broken, _ = edge_files(ca)
            publish(certs, {**broken, "envoy.key": renewed["envoy.key"]})
            await asyncio.sleep(1)
            assert presented_serial(token_manager_port, caller, scratch) == renewed_serial
            assert process.poll() is None
