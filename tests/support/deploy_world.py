"""The deployment's own configuration, run on this machine: the harness of tests/deploy.

`kubectl kustomize deploy/overlays/local-test` is rendered, and every workload in it
(Deployments, the token-manager StatefulSet, the release Job) is started as processes
from its rendered command, args, env and volumes, with none of the launcher's wiring.
What a cluster would provide is stood in for, and only that:

- infrastructure: PostgreSQL, Redis, the Temporal dev server and the Pub/Sub emulator
  from services.launcher.infra (the managed services and Temporal cluster an operator
  supplies); their addresses replace the rendered ones in the variables that name them,
  and the database and Redis URLs, the keyring and the admin key go in as the
  `ampmesh-secrets` values an operator would create (the database an empty one, as a
  first install's, so the release Job's migration and the pods' wait-for-schema are
  real: everything is started at once, as `kubectl apply` does);
- DNS and kube-proxy: every `name[.ampmesh[.svc[.cluster.local]]]:port` of a rendered
  Service (and a StatefulSet pod's `token-manager-N.token-manager...`) is rewritten to a
  127.0.0.1 port; a Service with one backend is its pod's port, one with several is a
  round-robin TCP proxy in the test process that skips pods not ready or not accepting;
- a pod's network namespace: each pod's listening ports (the variables below, and every
  containerPort) move to free local ports, consistently with what the Services map, and
  0.0.0.0 listen hosts become 127.0.0.1;
- volumes: a certificate Secret mount (`ampmesh-tls-<identity>`) is a directory holding
  the files its `items` name, issued by the runtime's own CA code for the identity the
  Certificate resource (or the Secret's name) gives; an emptyDir is a directory per
  pod; mount paths in env values and args are rewritten to those directories;
- the kubelet: env resolved as it does (envFrom, value, configMapKeyRef, secretKeyRef
  with optional, fieldRef metadata.name, `$(VAR)`), init containers in order to success,
  then the containers; readiness from the rendered readinessProbe (grpc health on an
  insecure channel, httpGet); a container that exits is restarted after a short delay
  with the same argv, env and ports (restartPolicy Always).

The image's `python` is this venv's interpreter and `envoy` the venv's envoy binary;
nothing else in a command is changed. `World.table()` prints every mapping made, and
`World.log_tails()` every process's last lines, for a failing test to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import httpx
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.api.auth import new_api_key
from services.launcher.edge_config import ENV_PREFIX as EDGE_ENV_PREFIX
from services.launcher.edge_config import LISTENER_OF_PORT, EdgeDeploymentSettings
from services.launcher.infra import Component, PubSub, Redis, Temporal, check_prerequisites
from services.launcher.infra.postgres import Postgres
from services.launcher.mesh import ensure_keyring
from services.launcher.ports import PortBook, free_port
from services.runtime.tls import (
    CertificateAuthority,
    ServiceCredentials,
    ensure_ca,
    ensure_service_credentials,
    issue_certificate,
)

REPO = Path(__file__).resolve().parents[2]
OVERLAY = REPO / "deploy" / "overlays" / "local-test"
KUBECTL = Path(sys.executable).parent / "kubectl"
ENVOY = Path(sys.executable).parent / "envoy"
NAMESPACE = "ampmesh"
LOCAL = "127.0.0.1"
# Variables that name a port the process listens on (the rest of its ports are the
# containerPorts its pod declares).
LISTEN_PORT_VARIABLES = frozenset(
    {
        "AMPMESH_LISTEN_PORT",
        "AMPMESH_HEALTH_PORT",
        "AMPMESH_METRICS_PORT",
        "AMPMESH_SANDBOX_HTTP_PORT",
        "AMPMESH_MCP_PORT",
    }
)
EDGE_PORT_VARIABLE = re.compile(r"AMPMESH_EDGE_\w+_PORT")
LISTEN_HOST_VARIABLE = re.compile(r"AMPMESH_\w*HOST")
# The operator's infrastructure: which rendered variable names which local component.
INFRA_ADDRESS_VARIABLES = {
    "AMPMESH_TEMPORAL_ADDRESS": "temporal",
    "AMPMESH_PUBSUB_EMULATOR_HOST": "pubsub",
}
# How long a killed container waits before the "kubelet" starts it again.
RESTART_DELAY = 1.0
# How often readiness is probed (the rendered periodSeconds, at most this: a test cannot
# wait out a production probe period after every kill).
PROBE_PERIOD = 2.0


class DeployError(RuntimeError):
    """The rendered deployment cannot be run; the message says which object and why."""


# --- rendering --------------------------------------------------------------------------


def render(overlay: Path = OVERLAY) -> list[dict[str, Any]]:
    """Every object `kubectl kustomize overlay` renders."""
    done = subprocess.run(  # noqa: S603 (our pinned kubectl, our overlay)
        [str(KUBECTL), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise DeployError(f"kubectl kustomize {overlay} failed: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@dataclass
class Container:
    name: str
    spec: dict[str, Any]
    init: bool

    @property
    def argv(self) -> list[str]:
        return [*self.spec.get("command", []), *self.spec.get("args", [])]


@dataclass
class Workload:
    kind: str
    name: str
    replicas: int
    template: dict[str, Any]

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.template.get("metadata", {}).get("labels", {})
        return labels

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.template["spec"]
        return spec

    def containers(self) -> list[Container]:
        spec = self.pod_spec
        return [Container(c["name"], c, True) for c in spec.get("initContainers", [])] + [
            Container(c["name"], c, False) for c in spec["containers"]
        ]

    def pod_names(self) -> list[str]:
        # StatefulSet pods are <name>-<ordinal>, which the shard names and the edge's ring
        # depend on; a Deployment's pod names are random in a cluster, made up here.
        return [f"{self.name}-{i}" for i in range(self.replicas)]


def workloads(objects: Iterable[dict[str, Any]]) -> list[Workload]:
    found: list[Workload] = []
    for obj in objects:
        kind, meta = obj.get("kind"), obj.get("metadata", {})
        if kind in ("Deployment", "StatefulSet"):
            replicas = obj["spec"].get("replicas", 1)
            found.append(Workload(kind, meta["name"], replicas, obj["spec"]["template"]))
        elif kind == "Job":
            found.append(Workload(kind, meta["name"], 1, obj["spec"]["template"]))
    return found


def of_kind(objects: Iterable[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o.get("kind") == kind}


# --- the kubelet's env resolution -------------------------------------------------------

_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: a defined variable's value, `$$` a literal `$`, an
    unknown reference left as it is."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(one, value)


def resolve_env(
    container: dict[str, Any],
    pod_name: str,
    config_maps: Mapping[str, dict[str, Any]],
    secrets: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The container's environment as the kubelet builds it (envFrom, then env in order)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]
            data = config_maps.get(ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise DeployError(f"envFrom: ConfigMap {ref['name']} is not rendered")
            env.update({prefix + k: str(v) for k, v in data.get("data", {}).items()})
        elif "secretRef" in source:
            ref = source["secretRef"]
            secret = secrets.get(ref["name"])
            if secret is None:
                if ref.get("optional"):
                    continue
                raise DeployError(f"envFrom: Secret {ref['name']} is not supplied")
            env.update({prefix + k: v for k, v in secret.items()})
    for entry in container.get("env", []):
        name = entry["name"]
        if "value" in entry:
            env[name] = expand(str(entry["value"]), env)
            continue
        source = entry.get("valueFrom", {})
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = secrets.get(ref["name"], {}).get(ref["key"])
            if value is None:
                if ref.get("optional"):
                    continue
                raise DeployError(f"{name}: Secret {ref['name']} key {ref['key']} is not supplied")
            env[name] = value
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            data = config_maps.get(ref["name"], {}).get("data", {})
            if ref["key"] not in data:
                if ref.get("optional"):
                    continue
                raise DeployError(f"{name}: ConfigMap {ref['name']} has no key {ref['key']}")
            env[name] = str(data[ref["key"]])
        elif "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            fields = {"metadata.name": pod_name, "metadata.namespace": NAMESPACE}
            if path not in fields:
                raise DeployError(f"{name}: fieldRef {path} is not supported by the harness")
            env[name] = fields[path]
        else:
            raise DeployError(f"{name}: valueFrom {sorted(source)} is not supported")
    return env


# --- the cluster's names and ports, on this machine --------------------------------------


class Ports:
    """Free local ports, each handed out once: a pod binds its ports only when its
    process starts, so a port merely free now may already be another pod's."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def get(self) -> int:
        while (port := free_port()) in self.taken:
            pass
        self.taken.add(port)
        return port


@dataclass
class Pod:
    name: str
    workload: Workload
    directory: Path
    allocator: Ports
    # containerPort (as rendered) -> the local port it listens on here.
    ports: dict[int, int] = field(default_factory=dict)
    volumes: dict[str, Path] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    ready: bool = False

    def port(self, container_port: int) -> int:
        if container_port not in self.ports:
            self.ports[container_port] = self.allocator.get()
        return self.ports[container_port]

    def named_port(self, name_or_number: int | str) -> int:
        if isinstance(name_or_number, int) or str(name_or_number).isdigit():
            return int(name_or_number)
        for container in self.workload.containers():
            for port in container.spec.get("ports", []):
                if port.get("name") == name_or_number:
                    return int(port["containerPort"])
        raise DeployError(f"pod {self.name}: no containerPort is named {name_or_number!r}")


class RoundRobin:
    """kube-proxy's stand-in for a Service with several pods: each new TCP connection
    goes to the next ready pod that accepts it."""

    def __init__(self, name: str, backends: list[tuple[Pod, int]]) -> None:
        self.name = name
        self.backends = backends
        self.port = 0
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self.connections: dict[str, int] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, LOCAL, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        start = next(self._turn)
        order = [self.backends[(start + i) % len(self.backends)] for i in range(len(self.backends))]
        # Endpoints: ready pods; a Service whose pods are all unready still gets a try.
        order = [b for b in order if b[0].ready] + [b for b in order if not b[0].ready]
        for pod, port in order:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(LOCAL, port)
            except OSError:
                continue
            self.connections[pod.name] = self.connections.get(pod.name, 0) + 1
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            return
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def host_names(service: str) -> list[str]:
    return [
        f"{service}.{NAMESPACE}.svc.cluster.local",
        f"{service}.{NAMESPACE}.svc",
        f"{service}.{NAMESPACE}",
        service,
    ]


@dataclass
class Process:
    """One container's process (an init container's, or a container's with restarts)."""

    pod: Pod
    container: Container
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    exits: list[int] = field(default_factory=list)
    stopping: bool = False
    watcher: asyncio.Task[None] | None = None
    # time.monotonic() of the first start, and of the last exit seen.
    started_at: float = 0.0
    ended_at: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.pod.name}/{self.container.name}"

    @property
    def pid(self) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return None
        return self.process.pid

    async def spawn(self) -> None:
        self.started_at = self.started_at or time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.argv}\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL, as a node losing the process would."""
        if self.process is not None and self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGKILL)

    async def stop(self, grace: float = 10.0) -> None:
        self.stopping = True
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


@dataclass
class World:
    """The rendered deployment, running here."""

    home: Path
    objects: list[dict[str, Any]]
    secrets: dict[str, dict[str, str]]
    infra: dict[str, str]
    pods: dict[str, Pod] = field(default_factory=dict)
    # "name:port" (every DNS form) -> "127.0.0.1:local".
    addresses: dict[str, str] = field(default_factory=dict)
    proxies: list[RoundRobin] = field(default_factory=list)
    # What was rewritten, for the table: (what, rendered, local).
    rewrites: list[tuple[str, str, str]] = field(default_factory=list)
    ca: CertificateAuthority | None = None
    allocator: Ports = field(default_factory=Ports)

    @property
    def admin_api_key(self) -> str:
        return self.secrets["ampmesh-secrets"]["admin-api-key"]

    def address(self, service: str, port: int) -> str:
        """Where `service:port` of the cluster is reached from this machine."""
        key = f"{service}:{port}"
        if key not in self.addresses:
            raise DeployError(f"no Service {service} with port {port} is rendered")
        return self.addresses[key]

    def url(self, service: str, port: int) -> str:
        return f"http://{self.address(service, port)}"

    def credentials(self, identity: str) -> ServiceCredentials:
        """Client credentials issued by the deployment's CA (a test's own identity)."""
        return ensure_service_credentials(self.home / "ca", identity)

    def processes(self) -> list[Process]:
        return [p for pod in self.pods.values() for p in pod.processes.values()]

    def process(self, pod: str, container: str | None = None) -> Process:
        found = self.pods[pod].processes
        if container is None:
            (main,) = [p for p in found.values() if not p.container.init]
            return main
        return found[container]

    # -- the mapping --

    def _map_services(self) -> None:
        services = of_kind(self.objects, "Service")
        for workload in self.workload_list:
            for name in workload.pod_names():
                directory = self.home / "pods" / name
                directory.mkdir(parents=True, exist_ok=True)
                self.pods[name] = Pod(name, workload, directory, self.allocator)
        for service in services.values():
            spec = service["spec"]
            selector = spec.get("selector") or {}
            members = [
                pod
                for pod in self.pods.values()
                if selector
                and pod.workload.kind != "Job"
                and all(pod.workload.labels.get(k) == v for k, v in selector.items())
            ]
            name = service["metadata"]["name"]
            for port in spec.get("ports", []):
                target = port.get("targetPort", port["port"])
                backends = [(pod, pod.port(pod.named_port(target))) for pod in members]
                if not backends:
                    continue
                if len(backends) == 1:
                    local = f"{LOCAL}:{backends[0][1]}"
                else:
                    proxy = RoundRobin(f"{name}:{port['port']}", backends)
                    self.proxies.append(proxy)
                    local = f"{LOCAL}:(proxy {proxy.name})"
                for host in host_names(name):
                    self.addresses[f"{host}:{port['port']}"] = local
            # A headless Service's StatefulSet pods each have a name of their own.
            if spec.get("clusterIP") == "None":
                for pod in members:
                    if pod.workload.kind != "StatefulSet":
                        continue
                    for port in spec.get("ports", []):
                        number = pod.named_port(port.get("targetPort", port["port"]))
                        local = f"{LOCAL}:{pod.port(number)}"
                        for host in host_names(name):
                            self.addresses[f"{pod.name}.{host}:{port['port']}"] = local

    async def _start_proxies(self) -> None:
        for proxy in self.proxies:
            await proxy.start()
            placeholder = f"{LOCAL}:(proxy {proxy.name})"
            for key, value in self.addresses.items():
                if value == placeholder:
                    self.addresses[key] = f"{LOCAL}:{proxy.port}"

    def rewrite(self, value: str, pod: Pod, what: str) -> str:
        """A rendered value with every cluster address and mount path made local."""
        original = value
        # One pass each (longest first: `token-manager-0.token-manager` before
        # `token-manager`), so a replacement is never rewritten again.
        if self.addresses:
            names = "|".join(re.escape(k) for k in sorted(self.addresses, key=len, reverse=True))
            value = re.sub(
                rf"(?<![\w.-])({names})(?!\w)", lambda m: self.addresses[m.group(1)], value
            )
        if pod.volumes:
            mounts = "|".join(re.escape(m) for m in sorted(pod.volumes, key=len, reverse=True))
            value = re.sub(
                rf"(?<![\w./-])({mounts})(?=/|$|[\s,;:\"'])",
                lambda m: str(pod.volumes[m.group(1)]),
                value,
            )
        if value != original:
            self.rewrites.append((what, original, value))
        return value

    def container_env(self, pod: Pod, container: Container) -> dict[str, str]:
        rendered = resolve_env(
            container.spec, pod.name, of_kind(self.objects, "ConfigMap"), self.secrets
        )
        if "edge-config" in container.argv:
            # Ports the edge binds by default (its listeners, admin, proxy authz) are the
            # pod's own in a cluster; two edge pods on one loopback need them moved too.
            for variable, default in edge_port_defaults().items():
                rendered.setdefault(variable, str(default))
        env: dict[str, str] = {}
        for name, value in rendered.items():
            what = f"{pod.name}/{container.name} {name}"
            if name in INFRA_ADDRESS_VARIABLES:
                local = self.infra[INFRA_ADDRESS_VARIABLES[name]]
                self.rewrites.append((what, value, local))
                env[name] = local
            elif (
                (name in LISTEN_PORT_VARIABLES or EDGE_PORT_VARIABLE.fullmatch(name))
                and value.isdigit()
                and int(value) != 0
            ):
                local = str(pod.port(int(value)))
                self.rewrites.append((what, value, local))
                env[name] = local
            elif LISTEN_HOST_VARIABLE.fullmatch(name) and value == "0.0.0.0":  # noqa: S104
                self.rewrites.append((what, value, LOCAL))
                env[name] = LOCAL
            else:
                env[name] = self.rewrite(value, pod, what)
            self._check_mapped(what, env[name])
        return env

    def _check_mapped(self, what: str, value: str) -> None:
        """A cluster name left in a value would be dialled here and fail obscurely later."""
        for service in of_kind(self.objects, "Service"):
            name = re.escape(service)
            dialled = rf"(?<![\w.-]){name}(\.{NAMESPACE}[\w.]*)?:\d"
            url = rf"://{name}(\.{NAMESPACE}[\w.]*)?(?![\w.:-])"
            if re.search(dialled, value) or re.search(url, value):
                raise DeployError(f"{what}: {value!r} names Service {service}, not mapped here")

    def container_argv(self, pod: Pod, container: Container, env: Mapping[str, str]) -> list[str]:
        argv = [
            self.rewrite(expand(arg, env), pod, f"{pod.name}/{container.name} argv")
            for arg in container.argv
        ]
        for arg in argv:
            self._check_mapped(f"{pod.name}/{container.name} argv", arg)
        if not argv:
            raise DeployError(
                f"{pod.name}/{container.name}: no command (the image's is not known here)"
            )
        # The image's interpreter and Envoy are this machine's; nothing else is changed.
        if argv[0] in ("python", "python3") or argv[0].startswith("/opt/venv/bin/python"):
            argv[0] = sys.executable
        elif Path(argv[0]).name == "envoy":
            argv[0] = str(ENVOY)
        else:
            raise DeployError(f"{pod.name}/{container.name}: unknown executable {argv[0]!r}")
        return argv

    def process_env(self, pod: Pod, env: Mapping[str, str]) -> dict[str, str]:
        """What a container's process sees: the image's ENV, the pod's host name and the
        rendered env, and nothing of this test process's environment."""
        home = pod.directory / "home"
        home.mkdir(exist_ok=True)
        return {"HOME": str(home), "LANG": "C.UTF-8", **image_env(), "HOSTNAME": pod.name, **env}

    # -- volumes --

    def _certificates(self) -> dict[str, str]:
        """Secret name -> identity, from the rendered Certificate resources (cert-manager),
        whose first dnsName is the identity the runtime reads."""
        found: dict[str, str] = {}
        for cert in of_kind(self.objects, "Certificate").values():
            spec = cert["spec"]
            if spec.get("isCA"):
                continue
            found[spec["secretName"]] = spec["dnsNames"][0]
        return found

    def _mount_volumes(self, pod: Pod) -> None:
        identities = self._certificates()
        volumes = {v["name"]: v for v in pod.workload.pod_spec.get("volumes", [])}
        for container in pod.workload.containers():
            for mount in container.spec.get("volumeMounts", []):
                volume = volumes.get(mount["name"])
                if volume is None:
                    raise DeployError(f"{pod.name}: volume {mount['name']} is not declared")
                local = pod.directory / "volumes" / mount["name"]
                if not local.exists():
                    local.mkdir(parents=True)
                    if "secret" in volume:
                        self._write_secret(volume["secret"], local, identities)
                    elif "emptyDir" not in volume:
                        raise DeployError(
                            f"{pod.name}: volume {mount['name']} ({sorted(volume)}) is not "
                            "supported by the harness"
                        )
                path = local / mount["subPath"] if mount.get("subPath") else local
                pod.volumes[mount["mountPath"].rstrip("/")] = path

    def _write_secret(
        self, volume: dict[str, Any], local: Path, identities: Mapping[str, str]
    ) -> None:
        name = volume["secretName"]
        if name in self.secrets:
            data = dict(self.secrets[name])
        elif name.startswith("ampmesh-tls-"):
            data = self._tls_secret(identities.get(name, name.removeprefix("ampmesh-tls-")))
        else:
            raise DeployError(f"Secret {name} is mounted but not supplied")
        items = volume.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            target = local / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[item["key"]])
            target.chmod(0o600)

    def _tls_secret(self, identity: str) -> dict[str, str]:
        """What cert-manager writes into ampmesh-tls-<identity>, from the runtime's CA code."""
        assert self.ca is not None
        cert_pem, key_pem = issue_certificate(self.ca, identity)
        return {
            "tls.crt": cert_pem.decode(),
            "tls.key": key_pem.decode(),
            "ca.crt": self.ca.cert_pem.decode(),
        }

    # -- the kubelet --

    @property
    def workload_list(self) -> list[Workload]:
        return workloads(self.objects)

    def prepare(self, pod: Pod, container: Container) -> Process:
        env = self.container_env(pod, container)
        argv = self.container_argv(pod, container, env)
        log = self.home / "logs" / f"{pod.name}.{container.name}.log"
        process = Process(pod, container, argv, self.process_env(pod, env), log)
        pod.processes[container.name] = process
        return process

    async def run_pod(self, pod: Pod, within: float) -> None:
        """Init containers in order, each to success; then the containers, kept running."""
        for container in pod.workload.containers():
            process = self.prepare(pod, container)
            if container.init or pod.workload.kind == "Job":
                await process.spawn()
                assert process.process is not None
                try:
                    code = await asyncio.wait_for(process.process.wait(), within)
                except TimeoutError:
                    process.kill()
                    raise DeployError(
                        f"{process.name} did not finish within {within:.0f}s; its log ends "
                        f"with:\n{tail(process.log_path)}"
                    ) from None
                process.exits.append(code)
                process.ended_at = time.monotonic()
                if code != 0:
                    raise DeployError(
                        f"{process.name} exited with {code}; its log ends with:\n"
                        f"{tail(process.log_path)}"
                    )
                continue
            await process.spawn()
            process.watcher = asyncio.create_task(self._keep_running(process))
        if pod.workload.kind != "Job":
            await self._wait_ready(pod, within)

    async def _keep_running(self, process: Process) -> None:
        """restartPolicy Always: an exited container is started again, same argv and env."""
        while not process.stopping:
            assert process.process is not None
            code = await process.process.wait()
            if process.stopping:
                return
            process.exits.append(code)
            process.ended_at = time.monotonic()
            process.pod.ready = False
            await asyncio.sleep(RESTART_DELAY)
            process.restarts += 1
            await process.spawn()

    async def _wait_ready(self, pod: Pod, within: float) -> None:
        deadline = time.monotonic() + within
        while not await self.probe(pod):
            for process in pod.processes.values():
                # Crashing at every start (CrashLoopBackOff): waiting out the deadline
                # tells nothing more.
                if not process.container.init and len(process.exits) >= 2:
                    raise DeployError(
                        f"{process.name} exited with {process.exits} at start; its log "
                        f"ends with:\n{tail(process.log_path)}"
                    )
            if time.monotonic() > deadline:
                logs = "\n".join(f"{p.name}:\n{tail(p.log_path)}" for p in pod.processes.values())
                raise DeployError(f"pod {pod.name} not ready within {within:.0f}s\n{logs}")
            await asyncio.sleep(0.3)
        pod.ready = True

    async def probe(self, pod: Pod) -> bool:
        """Every container's rendered readinessProbe passes (no probe: it is running)."""
        for process in pod.processes.values():
            if process.container.init:
                continue
            if process.pid is None:
                return False
            probe = process.container.spec.get("readinessProbe")
            if probe and not await run_probe(probe, pod):
                return False
        return True

    async def watch_readiness(self) -> None:
        """The endpoints controller: a pod leaves its Services while its probe fails."""
        while True:
            for pod in self.pods.values():
                if pod.workload.kind != "Job" and pod.processes:
                    pod.ready = await self.probe(pod)
            await asyncio.sleep(PROBE_PERIOD)

    # -- reporting --

    def table(self) -> str:
        lines = ["cluster address -> local:"]
        seen: set[str] = set()
        for key, value in sorted(self.addresses.items()):
            if key.split(":")[0].count(".") <= 1 and key not in seen:
                lines.append(f"  {key} -> {value}")
                seen.add(key)
        lines.append("pod ports (containerPort -> local):")
        for pod in self.pods.values():
            lines.append(f"  {pod.name}: {pod.ports}")
        lines.append("rewritten values (none holding a secret):")
        hidden = [v for secret in self.secrets.values() for v in secret.values() if v]
        lines += [
            f"  {what}: {rendered} -> {local}"
            for what, rendered, local in self.rewrites
            if not any(v in rendered or v in local for v in hidden)
        ]
        lines.append("processes:")
        for process in self.processes():
            lines.append(
                f"  {process.name} pid={process.pid} restarts={process.restarts} "
                f"exits={process.exits} argv={' '.join(process.argv)}"
            )
        return "\n".join(lines)

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(f"== {p.name}\n{tail(p.log_path, lines)}" for p in self.processes())


# Where the image keeps the source tree and the venv, and where they are here.
IMAGE_PATHS = {"/app": str(REPO), "/opt/venv/bin": str(Path(sys.executable).parent)}
_ENV_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)')


def image_env(dockerfile: Path = REPO / "Dockerfile") -> dict[str, str]:
    """The final stage's ENV of the image definition, its paths made this machine's."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    if not dockerfile.exists():
        raise DeployError(f"{dockerfile}: the image definition is missing")
    text = dockerfile.read_text().replace("\\\n", " ")
    final = re.split(r"(?m)^FROM\s", text)[-1]
    for line in final.splitlines():
        if not line.startswith("ENV "):
            continue
        for name, raw in _ENV_PAIR.findall(line[4:]):
            value = raw.strip('"').replace("$PATH", env.get("PATH", ""))
            for image_path, local in IMAGE_PATHS.items():
                value = re.sub(rf"{re.escape(image_path)}(?=[:/]|$)", local, value)
            env[name] = value
    return env


def edge_port_defaults() -> dict[str, int]:
    """Every port `ampmesh edge-config` binds, by variable, with its default."""
    fields = EdgeDeploymentSettings.model_fields
    return {
        f"{EDGE_ENV_PREFIX}{name}".upper(): int(fields[name].default) for name in LISTENER_OF_PORT
    }


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def run_probe(probe: Mapping[str, Any], pod: Pod) -> bool:
    timeout = float(probe.get("timeoutSeconds", 1)) + 1
    try:
        if "grpc" in probe:
            port = pod.port(int(probe["grpc"]["port"]))
            async with grpc.aio.insecure_channel(f"{LOCAL}:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                request = health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", ""))
                response = await stub.Check(request, timeout=timeout)
            return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = pod.port(pod.named_port(get["port"]))
            async with httpx.AsyncClient(timeout=timeout) as http:
                answer = await http.get(f"http://{LOCAL}:{port}{get.get('path', '/')}")
            return 200 <= answer.status_code < 400
        if "tcpSocket" in probe:
            port = pod.port(pod.named_port(probe["tcpSocket"]["port"]))
            _, writer = await asyncio.wait_for(asyncio.open_connection(LOCAL, port), timeout)
            writer.close()
            return True
    except (grpc.RpcError, httpx.HTTPError, OSError, TimeoutError):
        return False
    raise DeployError(f"pod {pod.name}: probe {sorted(probe)} is not supported by the harness")


# --- bringing it up -----------------------------------------------------------------------


# The deployment's own database on the local server: empty, as a managed PostgreSQL is at
# the first install (the server's `ampmesh` database is migrated when it starts), so the
# release Job does the real migration and the pods' wait-for-schema really waits.
DEPLOY_DATABASE = "ampmesh_deploy"


async def empty_database(server_url: str, name: str = DEPLOY_DATABASE) -> str:
    """A new, empty database on the server of server_url; its URL."""
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def operator_secrets(
    home: Path, components: Iterable[Component]
) -> dict[str, dict[str, str]]:
    """`ampmesh-secrets` as an operator would create it, for this machine's infrastructure."""
    env: dict[str, str] = {}
    for component in components:
        env.update(component.service_env())
    return {
        "ampmesh-secrets": {
            "database-url": await empty_database(env["AMPMESH_DATABASE_URL"]),
            "redis-url": env["AMPMESH_REDIS_URL"],
            "secret-keys": ensure_keyring(home),
            "admin-api-key": new_api_key().secret,
        }
    }


@contextlib.asynccontextmanager
async def running_world(
    home: Path, overlay: Path = OVERLAY, within: float = 150.0
) -> AsyncIterator[World]:
    """Render the overlay, start the infrastructure and every workload; stop it all."""
    objects = render(overlay)
    check_prerequisites()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    book = PortBook(home)
    components: list[Component] = [
        Postgres(home, book),
        Redis(home, book),
        Temporal(home, book),
        PubSub(home, book),
    ]
    world: World | None = None
    watcher: asyncio.Task[None] | None = None
    try:
        await all_of(c.start(within=90) for c in components)
        infra = {c.name: c.endpoint for c in components}
        world = World(home, objects, await operator_secrets(home, components), infra)
        world.ca = ensure_ca(home / "ca")
        world._map_services()
        await world._start_proxies()
        for pod in world.pods.values():
            world._mount_volumes(pod)
        try:
            # Everything at once, as `kubectl apply` does: the release Job migrates while
            # the pods' wait-for-schema init containers hold them.
            await all_of(world.run_pod(pod, within) for pod in world.pods.values())
        except BaseException:
            print(world.table())
            raise
        watcher = asyncio.create_task(world.watch_readiness())
        yield world
    finally:
        if watcher is not None:
            watcher.cancel()
        if world is not None:
            await asyncio.gather(*(p.stop() for p in world.processes()))
            for proxy in world.proxies:
                await proxy.close()
        await asyncio.gather(*(c.stop(10.0) for c in reversed(components)))


async def all_of(steps: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run steps concurrently; the first failure stops the others (no pod keeps starting
    behind a failed start) and is raised alone."""
    try:
        async with asyncio.TaskGroup() as group:
            for step in steps:
                group.create_task(step)
    except BaseExceptionGroup as failed:
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


def remove_home(home: Path) -> None:
    if not os.environ.get("AMPMESH_TEST_KEEP_HOME"):
        shutil.rmtree(home, ignore_errors=True)
