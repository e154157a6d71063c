"""Reaching Temporal as a cluster or Temporal Cloud asks for: TLS with our own CA, a client
certificate, a server name, an API key. Through a real connection: a TLS front (a gRPC
pass-through that terminates mTLS, as a cluster's ingress does) before a real dev server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.service import TLSConfig

from services.domain.temporal_client import (
    NAMESPACE_HEADER,
    TemporalClientSettings,
    connect_options,
    connect_temporal,
)
from services.launcher.infra import Temporal
from services.runtime.config import ConfigError, load_settings
from services.runtime.tls import ensure_service_credentials, server_credentials
from tests.support.own_infra import temporal_dev_server

API_KEY = "tmprl-cloud-key-0123456789-never-shown"
FRONT_NAME = "temporal-frontend"  # the name on the TLS front's certificate
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("AMPMESH_"):
            monkeypatch.delenv(name)
    yield


def settings(**values: Any) -> TemporalClientSettings:
    return load_settings(TemporalClientSettings, service_name="api", **values)


def test_a_missing_ca_file_is_one_line_naming_the_variable(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AMPMESH_TEMPORAL_TLS_CA_FILE", str(tmp_path / "absent.pem"))
    with pytest.raises(ConfigError) as error:
        load_settings(TemporalClientSettings, service_name="api")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("configuration error: AMPMESH_TEMPORAL_TLS_CA_FILE is invalid")


def test_an_api_key_is_never_sent_in_plaintext(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMPMESH_TEMPORAL_API_KEY", API_KEY)
    monkeypatch.setenv("AMPMESH_TEMPORAL_TLS", "false")
    with pytest.raises(ConfigError) as error:
        load_settings(TemporalClientSettings, service_name="api")
    message = str(error.value)
    assert "AMPMESH_TEMPORAL_API_KEY" in message and "AMPMESH_TEMPORAL_TLS" in message
    assert API_KEY not in message and API_KEY not in repr(error.value.__context__)


def test_a_client_certificate_needs_its_key(clean_env: None, tmp_path: Path) -> None:
    creds = ensure_service_credentials(tmp_path, "temporal")
    with pytest.raises(ConfigError, match="AMPMESH_TEMPORAL_TLS_KEY_FILE is not"):
        settings(temporal_tls_cert_file=tmp_path / "temporal.pem")
    assert creds.identity == "temporal"


def test_an_api_key_alone_is_tls_to_the_system_roots_with_the_namespace_header(
    clean_env: None,
) -> None:
    options = connect_options(settings(temporal_api_key=API_KEY, temporal_namespace="acme.a1b2"))
    assert options.tls is True
    assert options.api_key == API_KEY
    assert options.rpc_metadata == {NAMESPACE_HEADER: "acme.a1b2"}
    assert API_KEY not in repr(options)


def test_plaintext_stays_plaintext(clean_env: None) -> None:
    options = connect_options(settings(temporal_address="temporal:7233"))
    assert options.as_kwargs() == {"tls": False, "api_key": None, "rpc_metadata": {}}


def test_files_become_the_tls_config(clean_env: None, tmp_path: Path) -> None:
    creds = ensure_service_credentials(tmp_path, "temporal")
    options = connect_options(
        settings(
            temporal_tls_ca_file=tmp_path / "ca.pem",
            temporal_tls_cert_file=tmp_path / "temporal.pem",
            temporal_tls_key_file=tmp_path / "temporal.key",
            temporal_tls_server_name=FRONT_NAME,
        )
    )
    assert options.tls == TLSConfig(
        server_root_ca_cert=creds.ca_pem,
        domain=FRONT_NAME,
        client_cert=creds.cert_pem,
        client_private_key=creds.key_pem,
    )
    assert options.api_key is None


class Front:
    """A TLS front before a plaintext Temporal: terminates mTLS with a certificate for
    FRONT_NAME (requiring a client certificate from the same CA), forwards every call's
    bytes and metadata to the server, and remembers the metadata it saw."""

    def __init__(self, upstream: str) -> None:
        self.upstream = grpc.aio.insecure_channel(upstream)
        self.seen: list[dict[str, str]] = []
        self.peers: list[list[bytes]] = []

    def handler(self) -> grpc.GenericRpcHandler:
        front = self

        class Forward(grpc.GenericRpcHandler):
            def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
                method = details.method
                metadata = {str(k): str(v) for k, v in details.invocation_metadata}
                front.seen.append(metadata)
                forwarded = [
                    (k, v)
                    for k, v in metadata.items()
                    if not k.startswith((":", "grpc-")) and k not in ("user-agent", "te")
                ]

                async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                    front.peers.append(context.auth_context().get("x509_pem_cert", []))
                    try:
                        reply: bytes = await front.upstream.unary_unary(method)(
                            request, metadata=forwarded, timeout=30
                        )
                    except grpc.aio.AioRpcError as error:
                        await context.abort(error.code(), error.details() or "")
                    return reply

                return grpc.unary_unary_rpc_method_handler(call)

        return Forward()


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[Temporal]:
    async with temporal_dev_server() as server:
        yield server


@pytest.fixture
async def front(temporal: Temporal, tmp_path: Path) -> AsyncIterator[tuple[Front, int, Path]]:
    """The front, its port, and the directory holding the CA and a client's files."""
    front = Front(temporal.endpoint)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((front.handler(),))
    port = server.add_secure_port(
        "127.0.0.1:0", server_credentials(ensure_service_credentials(tmp_path, FRONT_NAME))
    )
    ensure_service_credentials(tmp_path, "temporal")  # the client's certificate
    await server.start()
    yield front, port, tmp_path
    await server.stop(0)
    await front.upstream.close()


async def test_mtls_with_a_server_name_and_an_api_key_reach_temporal(
    clean_env: None, front: tuple[Front, int, Path]
) -> None:
    proxy, port, certs = front
    client = await connect_temporal(
        settings(
            temporal_address=f"127.0.0.1:{port}",
            temporal_tls_ca_file=certs / "ca.pem",
            temporal_tls_cert_file=certs / "temporal.pem",
            temporal_tls_key_file=certs / "temporal.key",
            temporal_tls_server_name=FRONT_NAME,
            temporal_api_key=API_KEY,
        )
    )
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="ampmesh")
    )
    assert described.namespace_info.name == "ampmesh"
    # What Temporal Cloud checks: the key as a bearer token, the namespace header, and
    # (with mTLS) the client's certificate.
    assert proxy.seen and all(m.get("authorization") == f"Bearer {API_KEY}" for m in proxy.seen)
    assert all(m.get(NAMESPACE_HEADER) == "ampmesh" for m in proxy.seen)
    client_pem = (certs / "temporal.pem").read_bytes().strip()
    assert all(p and p[0].strip() == client_pem for p in proxy.peers)


async def test_without_our_ca_the_front_is_not_trusted(
    clean_env: None, front: tuple[Front, int, Path]
) -> None:
    _, port, _ = front
    with pytest.raises(RuntimeError, match=r"(?i)certificate|unknown ?issuer|tls|handshake"):
        await asyncio.wait_for(
            connect_temporal(
                settings(
                    temporal_address=f"127.0.0.1:{port}",
                    temporal_tls=True,  # the system roots, which never signed our CA
                    temporal_tls_server_name=FRONT_NAME,
                )
            ),
            30,
        )


async def test_a_worker_that_cannot_connect_names_the_address_not_the_key(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        AMPMESH_TEMPORAL_ADDRESS="127.0.0.1:9",  # discard: nothing answers
        AMPMESH_TEMPORAL_API_KEY=API_KEY,
        AMPMESH_TEMPORAL_CONNECT_TIMEOUT="5",
        AMPMESH_CERT_DIR=str(tmp_path),
        AMPMESH_LISTEN_PORT="0",
        # Checked before Temporal is reached, never reached themselves.
        AMPMESH_TOKEN_MANAGER_ADDRESS="127.0.0.1:9",
        AMPMESH_DATABASE_URL="postgresql://ampmesh@127.0.0.1:9/ampmesh",
        AMPMESH_PUBSUB_PROJECT="ampmesh-local",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.temporal",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    output = (stdout + stderr).decode()
    assert API_KEY not in output
    failures = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and json.loads(line).get("event") == "cannot start"
    ]
    assert len(failures) == 1
    assert "Temporal at 127.0.0.1:9" in failures[0]["error"]
