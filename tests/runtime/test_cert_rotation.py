"""Provisioned certificates renewed on disk (cert-manager renews, the kubelet swaps the
mounted files): a service takes the new leaf up by restarting gracefully within
AMPMESH_CERT_RENEWAL_JITTER, while another replica serves; a leaf that does not verify is
reported and ignored. Real processes, files swapped the way the kubelet swaps them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.channels import service_config
from services.runtime.tls import (
    CertificateAuthority,
    ServiceCredentials,
    channel_credentials,
    ensure_ca,
    issue_certificate,
)
from tests.support.probe import method
from tests.support.secret_volume import presented_serial, publish, serial_of

REPO = Path(__file__).resolve().parents[2]
IDENTITY = "probe"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

SERVICE_SCRIPT = """
from services.runtime.entrypoint import run_service
from tests.support.probe import Probe

run_service(name="probe", services=[Probe().service()], allowed_callers=["api"])
"""


def leaf(ca: CertificateAuthority, identity: str = IDENTITY) -> tuple[dict[str, bytes], int]:
    """The files of a Secret for identity (as mounted with `items:`), and the leaf's serial."""
    cert_pem, key_pem = issue_certificate(ca, identity)
    files = {f"{IDENTITY}.pem": cert_pem, f"{IDENTITY}.key": key_pem, "ca.pem": ca.cert_pem}
    return files, serial_of(cert_pem)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """One service process on fixed ports, its JSON log events collected as they come."""

    def __init__(self, cert_dir: Path, **env: str) -> None:
        self.cert_dir = cert_dir
        self.port = free_port()
        self.health_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
        self.env.update(
            AMPMESH_LISTEN_PORT=str(self.port),
            AMPMESH_HEALTH_PORT=str(self.health_port),
            AMPMESH_CERT_DIR=str(cert_dir),
            AMPMESH_CREATE_CERTS="false",
            AMPMESH_CERT_WATCH_INTERVAL="0.2",
            AMPMESH_DRAIN_DELAY="1",
            AMPMESH_GRACE_PERIOD="2",
            **env,
        )
        self.events: list[dict[str, Any]] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start (again, like the kubelet after an exit) and wait until it serves."""
        self.events.clear()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVICE_SCRIPT,
            cwd=REPO,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read(self.process))
        await self.wait_for_event("serving")

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").strip()
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    async def wait_for_event(self, prefix: str, within: float = 20) -> dict[str, Any]:
        async def found() -> dict[str, Any]:
            while True:
                for event in self.events:
                    if str(event.get("event", "")).startswith(prefix):
                        return event
                assert self.process is not None
                if self.process.returncode is not None and self._reader and self._reader.done():
                    raise AssertionError(f"exited without logging {prefix!r}: {self.events}")
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(found(), timeout=within)

    async def health(self) -> int:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.health_port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
            return int(reply.status)

    async def wait(self, within: float = 20) -> int:
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout=within)
        if self._reader is not None:
            await self._reader
        return code

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await self.wait(within=15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def balanced_channel(ports: list[int], client: ServiceCredentials) -> grpc.aio.Channel:
    """A mesh channel (its deadline, retry policy and reconnect backoff) over both replicas,
    balanced the way the edge and a Service's endpoints are: a replica whose health says
    NOT_SERVING gets no new calls (here by gRPC's client-side health checking)."""
    config = json.loads(service_config())
    config["loadBalancingConfig"] = [{"round_robin": {}}]
    config["healthCheckConfig"] = {"serviceName": ""}
    addresses = ",".join(f"127.0.0.1:{port}" for port in ports)
    return grpc.aio.secure_channel(
        f"ipv4:{addresses}",
        channel_credentials(client),
        options=[
            ("grpc.service_config", json.dumps(config)),
            ("grpc.enable_retries", 1),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            ("grpc.ssl_target_name_override", IDENTITY),
        ],
    )


def client_credentials(ca: CertificateAuthority) -> ServiceCredentials:
    cert_pem, key_pem = issue_certificate(ca, "api")
    return ServiceCredentials("api", ca.cert_pem, cert_pem, key_pem)


async def test_a_renewed_leaf_restarts_one_replica_gracefully_while_the_other_serves(
    tmp_path: Path,
) -> None:
    ca = ensure_ca(tmp_path / "issuer")
    client = client_credentials(ca)
    first, first_serial = leaf(ca)
    publish(tmp_path / "a", first)
    publish(tmp_path / "b", leaf(ca)[0])
    # a takes a renewal up within a second; b is another pod whose files stay as they are.
    a = Replica(tmp_path / "a", AMPMESH_CERT_RENEWAL_JITTER="1")
    b = Replica(tmp_path / "b", AMPMESH_CERT_RENEWAL_JITTER="1")
    failures: list[str] = []
    answered = 0
    wanted = 20
    enough = asyncio.Event()
    stop_calls = asyncio.Event()

    async def calls(channel: grpc.aio.Channel) -> None:
        nonlocal answered
        whoami = channel.unary_unary(method("Whoami"))
        while not stop_calls.is_set():
            try:
                await whoami(b"", timeout=5)
                answered += 1
                if answered >= wanted:
                    enough.set()
            except grpc.aio.AioRpcError as error:
                failures.append(f"{error.code().name}: {error.details()}")
            await asyncio.sleep(0.01)

    try:
        await a.start()
        await b.start()
        assert presented_serial(a.port, client, tmp_path) == first_serial
        async with balanced_channel([a.port, b.port], client) as channel:
            load = asyncio.create_task(calls(channel))
            await asyncio.wait_for(enough.wait(), timeout=20)

            renewed, renewed_serial = leaf(ca)
            publish(a.cert_dir, renewed)
            announced = await a.wait_for_event("certificate renewed on disk")
            assert announced["serial"] == format(renewed_serial, "x")
            assert 0 <= announced["restart_in_seconds"] <= 1
            # The drain: the health port (what kubelet probes) says NOT_SERVING before
            # the process goes.
            await a.wait_for_event("shutting down")
            assert await a.health() == NOT_SERVING
            assert await a.wait() == 0
            assert a.named("restarting gracefully to take up the renewed certificate")
            assert await b.health() == SERVING
            assert b.named("certificate renewed on disk") == []

            # The kubelet starts the container again: it presents the renewed leaf.
            await a.start()
            assert presented_serial(a.port, client, tmp_path) == renewed_serial
            wanted = answered + 20
            enough.clear()
            await asyncio.wait_for(enough.wait(), timeout=20)
            stop_calls.set()
            await load
        assert failures == []
    finally:
        stop_calls.set()
        await a.stop()
        await b.stop()


async def test_a_leaf_that_does_not_verify_is_reported_once_and_changes_nothing(
    tmp_path: Path,
) -> None:
    ca = ensure_ca(tmp_path / "issuer")
    client = client_credentials(ca)
    first, first_serial = leaf(ca)
    publish(tmp_path / "certs", first)
    replica = Replica(tmp_path / "certs", AMPMESH_CERT_RENEWAL_JITTER="0")
    try:
        await replica.start()
        # Renewed, but for another identity: restarting onto it would fail to start.
        wrong, _ = leaf(ca, identity="scribe")
        publish(replica.cert_dir, wrong)
        ignored = await replica.wait_for_event("certificate on disk ignored")
        assert ignored["level"] == "error"
        assert "does not name 'probe'" in ignored["error"]
        await asyncio.sleep(1)  # five more checks of the same files
        assert len(replica.named(ignored["event"])) == 1
        assert replica.process is not None and replica.process.returncode is None
        assert await replica.health() == SERVING
        assert presented_serial(replica.port, client, tmp_path) == first_serial

        # A valid one afterwards is taken up as usual.
        publish(replica.cert_dir, leaf(ca)[0])
        await replica.wait_for_event("restarting gracefully")
        assert await replica.wait() == 0
    finally:
        await replica.stop()
