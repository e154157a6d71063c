"""`ampmesh edge-config`: the edge pod's configuration is the launcher's, but for where.

One source of truth: both come from render_config() and envoy/*.tmpl. The launcher's is
rendered as `ampmesh up` renders it (Edge.render, one api, loopback, booked ports); the
cluster's by the command an init container runs, with the cluster's names. What may
differ (addresses, ports, file paths, the read surface's own api, the pod's health
listener) is normalized away and checked on its own; everything else must be identical.
Then the command's output runs in a real Envoy, and bad settings are refused by name.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from ruamel.yaml import YAML

from services.launcher.edge import Edge, unhealthy_clusters
from services.launcher.edge_config import main
from services.launcher.ports import PortBook, free_port
from services.runtime.tls import ensure_service_credentials, server_credentials
from tests.support.envoy_process import running_envoy

REPO = Path(__file__).resolve().parents[2]
SHARD_NAMES = ("token-manager-0", "token-manager-1", "token-manager-2")
# What the manifests give the init container (deploy/, the edge Deployment).
CLUSTER_ENV = {
    "AMPMESH_EDGE_API_ADDRESS": "api:50051",
    "AMPMESH_EDGE_API_READ_ADDRESS": "api-read:50051",
    "AMPMESH_EDGE_API_WRITE_ADDRESS": "api-write:50051",
    "AMPMESH_EDGE_API_PROXY_ADDRESS": "api-proxy:50051",
    "AMPMESH_EDGE_TOKEN_MANAGER_SHARDS": ",".join(
        f"{name}={name}.token-manager:50051" for name in SHARD_NAMES
    ),
    "AMPMESH_CERT_DIR": "/etc/ampmesh/certs",
}
TOKEN_SERVICE = "ampmesh.token.v1.TokenManagerService"
# The pod's upstream clusters when each route group has its own api.
UPSTREAMS = ("api", "token_manager", "api_write", "api_internal", "api_read")
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 (what a pod's listeners bind, compared here)


def edge_config(out: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """The init container's command, with only the given environment (and PATH)."""
    return subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "services.launcher", "edge-config", "--out", str(out)],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(YAML(typ="safe", pure=True).load(path)))
    return loaded


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def endpoint_addresses(cluster: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(hostname, address, port) of each of a cluster's endpoints."""
    return [
        (
            e["endpoint"].get("hostname", ""),
            e["endpoint"]["address"]["socket_address"]["address"],
            e["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for group in cluster["load_assignment"]["endpoints"]
        for e in group["lb_endpoints"]
    ]


def normalized(config: dict[str, Any], paths: Mapping[str, str]) -> dict[str, Any]:
    """config with what legitimately differs between a home and a pod replaced by
    placeholders: every listen/upstream address and port, and the given path prefixes."""
    text = json.dumps(config)
    for prefix, placeholder in paths.items():
        text = text.replace(prefix, placeholder)
    result: dict[str, Any] = json.loads(text)

    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"address", "port_value"}:
                return {"address": "HOST", "port_value": "PORT"}
            return {key: scrub(value) for key, value in node.items()}
        if isinstance(node, list):
            return [scrub(item) for item in node]
        return node

    scrubbed: dict[str, Any] = scrub(result)
    return scrubbed


@pytest.fixture(scope="module")
def launcher_config(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    home = tmp_path_factory.mktemp("home")
    edge = Edge(home, PortBook(home), home / "certs")
    shards = {name: f"127.0.0.1:{50061 + n}" for n, name in enumerate(SHARD_NAMES)}
    return load(edge.render("127.0.0.1:50051", shards)), home


@pytest.fixture(scope="module")
def cluster_config(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("pod") / "etc-envoy"
    result = edge_config(out, CLUSTER_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return load(out / "edge.yaml"), out


def test_the_pods_edge_is_the_launchers_but_for_addresses(
    launcher_config: tuple[dict[str, Any], Path],
    cluster_config: tuple[dict[str, Any], Path],
) -> None:
    local, home = launcher_config
    pod, out = cluster_config
    pod = copy.deepcopy(pod)
    clusters = by_name(pod["static_resources"]["clusters"])
    listeners = by_name(pod["static_resources"]["listeners"])

    # The pod's own: kubelet's probes and Prometheus, on a listener of their own.
    health_listener = listeners.pop("health")
    assert health_listener["address"]["socket_address"]["address"] == EVERY_INTERFACE
    admin = clusters.pop("envoy_admin")
    assert endpoint_addresses(admin) == [("", "127.0.0.1", 9901)]
    # The read surface's own api: the api's cluster in all but its name and address.
    read = clusters.pop("api_read")
    assert endpoint_addresses(read) == [("", "api-read", 50051)]
    api = clusters["api"]
    assert normalized({**read, "name": "api"}, {}) == normalized(
        {**api, "load_assignment": {**api["load_assignment"], "cluster_name": "api_read"}}, {}
    )

    # Each route group's api, each shard by its pod's stable name, hashed on its name.
    assert endpoint_addresses(api) == [("", "api", 50051)]
    assert endpoint_addresses(clusters["api_write"]) == [("", "api-write", 50051)]
    assert endpoint_addresses(clusters["api_internal"]) == [("", "api-proxy", 50051)]
    assert endpoint_addresses(clusters["token_manager"]) == [
        (name, f"{name}.token-manager", 50051) for name in SHARD_NAMES
    ]
    for name in ("api", "api_write", "api_internal", "token_manager"):
        assert clusters[name]["type"] == "STRICT_DNS"
        assert clusters[name]["respect_dns_ttl"] is True

    # Reachable from outside the pod: the public and token-manager listeners; the admin
    # and the proxy's decisions stay on loopback.
    for name, listener in listeners.items():
        expected = "127.0.0.1" if name == "proxy-authz" else EVERY_INTERFACE
        assert listener["address"]["socket_address"]["address"] == expected, name
    assert pod["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    ports = {
        name: item["address"]["socket_address"]["port_value"] for name, item in listeners.items()
    }
    assert ports == {
        "api": 8080,
        "read": 8081,
        "write": 8082,
        "search": 8083,
        "proxy": 8084,
        "subscribe": 8085,
        "grpc": 8090,
        "token-manager": 50061,
        "proxy-authz": 50062,
    }
    assert health_listener["address"]["socket_address"]["port_value"] == 8086

    # The read group's calls reach api-read: the REST surface and native gRPC.
    text = json.dumps(list(listeners.values()))
    assert '"cluster": "api_read"' in text
    pod["static_resources"]["listeners"] = json.loads(text.replace('"api_read"', '"api"'))
    pod["static_resources"]["clusters"] = list(clusters.values())
    # The rest is the launcher's, to the letter.
    local_paths = {
        str(home / "logs" / "proxy-access.log"): "ACCESS_LOG",
        str(home / "envoy"): "DIR",
        str(home / "certs"): "CERTS",
    }
    pod_paths = {"/dev/stdout": "ACCESS_LOG", str(out): "DIR", "/etc/ampmesh/certs": "CERTS"}
    assert normalized(pod, pod_paths) == normalized(local, local_paths)


def test_the_launchers_edge_has_one_api_and_no_health_listener(
    launcher_config: tuple[dict[str, Any], Path],
) -> None:
    local, _ = launcher_config
    clusters = by_name(local["static_resources"]["clusters"])
    assert "api_read" not in clusters
    assert "envoy_admin" not in clusters
    assert "health" not in by_name(local["static_resources"]["listeners"])
    for name in ("api", "api_write", "api_internal"):
        assert endpoint_addresses(clusters[name]) == [("", "127.0.0.1", 50051)]


def test_rendering_needs_no_certificates(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    result = edge_config(tmp_path / "out", {**CLUSTER_ENV, "AMPMESH_CERT_DIR": str(certs)})
    assert result.returncode == 0, result.stderr
    assert not certs.exists()  # neither read nor made: cert-manager mounts them
    names = {path.name for path in (tmp_path / "out").iterdir()}
    assert {"edge.yaml", "ampmesh.binpb", "problem.lua", "proxy.lua"} <= names


def test_the_command_exits_2_naming_a_missing_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in CLUSTER_ENV.items() if k != "AMPMESH_EDGE_API_ADDRESS"}
    result = edge_config(tmp_path / "out", env)
    assert result.returncode == 2
    assert result.stderr == (
        "ampmesh edge-config: configuration error: AMPMESH_EDGE_API_ADDRESS is required "
        "but not set\n"
    )
    assert not (tmp_path / "out" / "edge.yaml").exists()


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"AMPMESH_EDGE_TOKEN_MANAGER_SHARDS": None}, "AMPMESH_EDGE_TOKEN_MANAGER_SHARDS is req"),
        ({"AMPMESH_EDGE_API_WRITE_ADDRESS": "api-write"}, "AMPMESH_EDGE_API_WRITE_ADDRESS"),
        ({"AMPMESH_EDGE_TOKEN_MANAGER_SHARDS": "tm:50051"}, "AMPMESH_EDGE_TOKEN_MANAGER_SHARDS"),
        (
            {"AMPMESH_EDGE_TOKEN_MANAGER_SHARDS": "a=x:1,a=y:1"},
            "AMPMESH_EDGE_TOKEN_MANAGER_SHARDS",
        ),
        ({"AMPMESH_EDGE_LISTEN_HOST": "edge"}, "AMPMESH_EDGE_LISTEN_HOST"),
        ({"AMPMESH_EDGE_GRPC_PORT": "70000"}, "AMPMESH_EDGE_GRPC_PORT"),
        ({"AMPMESH_EDGE_HEALTH_PORT": "8080"}, "AMPMESH_EDGE_HEALTH_PORT"),
        ({"AMPMESH_EDGE_MAX_REQUESTS": "lots"}, "AMPMESH_EDGE_MAX_REQUESTS"),
        ({"AMPMESH_CORS_ALLOWED_ORIGINS": "not an origin"}, "AMPMESH_CORS_ALLOWED_ORIGINS"),
        ({"AMPMESH_OTLP_ENDPOINT": "collector"}, "AMPMESH_OTLP_ENDPOINT"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str | None],
    variable: str,
) -> None:
    # The command's own function, in this process (the command above runs it the same).
    for name in os.environ:
        if name.startswith("AMPMESH_"):
            monkeypatch.delenv(name)
    for name, value in {**CLUSTER_ENV, **change}.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    assert main(tmp_path / "out") == 2
    stderr = capsys.readouterr().err
    assert variable in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "out" / "edge.yaml").exists()


# --- the command's output in a real Envoy ------------------------------------------------


@asynccontextmanager
async def upstream(cert_dir: Path, identity: str, service: str, port: int) -> AsyncIterator[None]:
    """A gRPC server on port with identity's mesh certificate, serving health only."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    credentials = server_credentials(ensure_service_credentials(cert_dir, identity))
    assert server.add_secure_port(f"127.0.0.1:{port}", credentials) == port
    await server.start()
    try:
        yield
    finally:
        await server.stop(0)


async def answer(
    client: httpx.AsyncClient, url: str, status: int, process: subprocess.Popen[bytes], log: Path
) -> httpx.Response:
    """The first answer to GET url with `status` (Envoy's health checks run on their own
    interval), or fail quoting Envoy's log."""
    last = "no answer"
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"Envoy exited: {log.read_text()[-3000:]}")
        try:
            response = await client.get(url)
        except httpx.HTTPError as error:
            last = repr(error)
        else:
            if response.status_code == status:
                return response
            last = f"{response.status_code} {response.text[:200]}"
        await asyncio.sleep(0.1)
    pytest.fail(f"GET {url}: never {status} (last: {last}); Envoy: {log.read_text()[-3000:]}")


async def test_the_pods_edge_runs_in_envoy_and_tells_kubelet_when_it_can_serve(
    tmp_path: Path,
) -> None:
    certs = tmp_path / "certs"  # what cert-manager would mount, from the runtime's CA
    ensure_service_credentials(certs, "envoy")
    api_port, shard_port = free_port(), free_port()
    health_port, admin_port = free_port(), free_port()
    listener_ports = {
        f"AMPMESH_EDGE_{name}_PORT": str(free_port())
        for name in (
            "API",
            "READ",
            "WRITE",
            "SEARCH",
            "PROXY",
            "SUBSCRIBE",
            "GRPC",
            "TOKEN_MANAGER",
            "PROXY_AUTHZ",
        )
    }
    env = {
        **listener_ports,
        "AMPMESH_EDGE_LISTEN_HOST": "127.0.0.1",
        "AMPMESH_EDGE_ADMIN_PORT": str(admin_port),
        "AMPMESH_EDGE_HEALTH_PORT": str(health_port),
        # Names resolved by DNS, as a headless Service's are, beside an address.
        "AMPMESH_EDGE_API_ADDRESS": f"127.0.0.1:{api_port}",
        "AMPMESH_EDGE_API_READ_ADDRESS": f"localhost:{api_port}",
        "AMPMESH_EDGE_API_WRITE_ADDRESS": f"localhost:{api_port}",
        "AMPMESH_EDGE_API_PROXY_ADDRESS": f"localhost:{api_port}",
        "AMPMESH_EDGE_TOKEN_MANAGER_SHARDS": f"token-manager-0=localhost:{shard_port}",
        "AMPMESH_CERT_DIR": str(certs),
    }
    out = tmp_path / "etc-envoy"
    rendered = edge_config(out, env)
    assert rendered.returncode == 0, rendered.stderr
    health_url = f"http://127.0.0.1:{health_port}"
    log = tmp_path / "envoy.log"
    with running_envoy(out / "edge.yaml", log) as process:
        async with httpx.AsyncClient(timeout=5) as client:
            # Up with nothing to send calls to: alive, and ready, for every edge pod shares
            # its upstreams (one group's api down must not take every surface out of the
            # Service). But only once Envoy knows its upstreams: its listeners open after
            # each cluster's first health-check round.
            await answer(client, f"{health_url}/ready", 200, process, log)
            await answer(client, f"{health_url}/healthz", 200, process, log)
            admin = f"http://127.0.0.1:{admin_port}"
            statuses = (await client.get(f"{admin}/clusters?format=json")).json()
            hosts = [
                host
                for cluster in statuses["cluster_statuses"]
                if cluster["name"] in UPSTREAMS
                for host in cluster["host_statuses"]
            ]
            assert len(hosts) == len(UPSTREAMS)
            assert not any(host["health_status"].get("pending_active_hc") for host in hosts)
            assert set(unhealthy_clusters(statuses)) == set(UPSTREAMS)
            async with (
                upstream(certs, "api", "", api_port),
                upstream(certs, "token-manager", TOKEN_SERVICE, shard_port),
            ):
                # Each upstream reached over mTLS, names resolved, health-checked: healthy.
                healthy = [
                    f'envoy_cluster_membership_healthy{{envoy_cluster_name="{name}"}} 1'
                    for name in UPSTREAMS
                ]
                for _ in range(300):
                    stats = await answer(
                        client, f"{health_url}/stats/prometheus", 200, process, log
                    )
                    if all(line in stats.text for line in healthy):
                        break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail(f"upstreams never all healthy: {log.read_text()[-3000:]}")
                assert "envoy_cluster_upstream_cx_total" in stats.text
                # Nothing else of the admin interface is reachable through it.
                for path in ("/clusters", "/config_dump", "/quitquitquit", "/stats"):
                    await answer(client, f"{health_url}{path}", 404, process, log)
                # The pod's preStop: from now on kubelet and the Service see it going.
                failed = await client.post(f"{admin}/healthcheck/fail")
                assert failed.status_code == 200
                await answer(client, f"{health_url}/healthz", 503, process, log)
                await answer(client, f"{health_url}/ready", 503, process, log)
