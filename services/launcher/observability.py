"""`ampmesh up --observability`: a Prometheus server scraping the whole local mesh.

Prometheus is one more infrastructure `Component`, started last (it needs every service's
metrics URL and Envoy's admin port), supervised and stopped with the rest:

- binary: AMPMESH_PROMETHEUS, else `prometheus` on PATH (Debian's prometheus package;
  scripts/install_observability.sh installs it); missing → one line saying what to install;
- config: rendered into `<home>/prometheus/prometheus.yml` at every start, with
  observability/prometheus/rules.yml copied beside it (the rules this mesh was started
  with, whatever the checkout holds later);
- targets: one job per service (token-manager's shards share the job "token-manager",
  each its own `instance`), `instance` the process name, at the `<name>-metrics` URL the
  service announced; Envoy's admin `/stats/prometheus` (job "envoy"); Prometheus itself.
  A service's metrics port is booked in the home's PortBook like its gRPC port, so a
  restarted service serves the same URL and the config stays static;
- storage: `<home>/prometheus/data` (kept across runs, AMPMESH_PROMETHEUS_RETENTION, 7d);
- listens on 127.0.0.1 at a booked port; its URL is the mesh's `prometheus` endpoint;
- AMPMESH_PROMETHEUS_SCRAPE_INTERVAL (seconds, default 15) sets the scrape and rule
  evaluation interval (tests use 1).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from services.launcher.infra.base import Component, PrerequisiteMissing, executable, on_path
from services.launcher.ports import PortBook
from services.launcher.processes import RunningService

__all__ = [
    "BINARY_VARIABLE",
    "RULES_FILE",
    "Prometheus",
    "Target",
    "check_installed",
    "probe",
    "scrape_targets",
]

BINARY_VARIABLE = "AMPMESH_PROMETHEUS"
INTERVAL_VARIABLE = "AMPMESH_PROMETHEUS_SCRAPE_INTERVAL"
RETENTION_VARIABLE = "AMPMESH_PROMETHEUS_RETENTION"
RULES_FILE = Path(__file__).resolve().parents[2] / "observability" / "prometheus" / "rules.yml"

MISSING = (
    "prometheus not found: install Debian's prometheus package (apt-get install prometheus) "
    f"or set {BINARY_VARIABLE}"
)


def prometheus_binary() -> Path | None:
    override = os.environ.get(BINARY_VARIABLE)
    if override:
        return Path(override) if executable(Path(override)) else None
    return on_path("prometheus")


def check_installed() -> None:
    """PrerequisiteMissing (one line) when there is no Prometheus to start, no rules, or a
    bad scrape interval; starts nothing."""
    if prometheus_binary() is None:
        if os.environ.get(BINARY_VARIABLE):
            raise PrerequisiteMissing(
                f"{BINARY_VARIABLE}={os.environ[BINARY_VARIABLE]} is not an executable prometheus"
            )
        raise PrerequisiteMissing(MISSING)
    if not RULES_FILE.is_file():
        raise PrerequisiteMissing(f"the Prometheus rules file {RULES_FILE} is missing")
    scrape_interval()  # a bad value should not cost a whole start-up


def scrape_interval() -> float:
    raw = os.environ.get(INTERVAL_VARIABLE, "15")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0.1 <= seconds <= 3600:
        raise PrerequisiteMissing(
            f"{INTERVAL_VARIABLE}={raw!r}: expected the scrape interval in seconds (0.1 to 3600)"
        )
    return seconds


@dataclass(frozen=True)
class Target:
    """One scraped endpoint: `job` groups replicas (token-manager's shards), `instance`
    names the process as `ampmesh status` does."""

    job: str
    instance: str
    url: str

    @property
    def address(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/metrics"


def _job(name: str) -> str:
    # token-manager-0, token-manager-1 → token-manager: alerts and sums group shards.
    stem, _, suffix = name.rpartition("-")
    return stem if stem and suffix.isdigit() else name


def scrape_targets(
    services: Iterable[RunningService], edge_endpoints: Mapping[str, str]
) -> list[Target]:
    """Every service that announced a metrics URL, and Envoy's admin stats when known."""
    targets = [
        Target(_job(s.name), s.name, s.extra[f"{s.name}-metrics"])
        for s in services
        if s.extra.get(f"{s.name}-metrics")
    ]
    admin = edge_endpoints.get("envoy-admin")
    if admin:
        targets.append(Target("envoy", "envoy", f"{admin}/stats/prometheus"))
    return targets


def render_config(targets: Sequence[Target], interval: float, self_address: str) -> str:
    """prometheus.yml (JSON is YAML): one scrape job per job name, rules beside it."""
    every = f"{round(interval * 1000)}ms"
    jobs: dict[tuple[str, str], list[Target]] = {}
    for target in [*targets, Target("prometheus", "prometheus", f"http://{self_address}/metrics")]:
        jobs.setdefault((target.job, target.path), []).append(target)
    scrape_configs = [
        {
            "job_name": job,
            "metrics_path": path,
            "scrape_interval": every,
            # A scrape must end before the next one starts.
            "scrape_timeout": every,
            "static_configs": [
                {"targets": [t.address], "labels": {"instance": t.instance}} for t in members
            ],
        }
        for (job, path), members in jobs.items()
    ]
    config = {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": ["rules.yml"],
        "scrape_configs": scrape_configs,
    }
    return json.dumps(config, indent=2) + "\n"


class Prometheus(Component):
    name = "prometheus"

    def __init__(self, home: Path, ports: PortBook, targets: Sequence[Target]) -> None:
        super().__init__(home, ports)
        self.port = self.ports.get(self.name)
        self.targets = list(targets)
        self.interval = scrape_interval()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "prometheus.yml"

    def service_env(self) -> dict[str, str]:
        return {}

    def check(self) -> None:
        check_installed()

    async def prepare(self) -> None:
        await super().prepare()
        (self.state_dir / "data").mkdir(exist_ok=True)
        shutil.copyfile(RULES_FILE, self.state_dir / "rules.yml")
        self.config_path.write_text(render_config(self.targets, self.interval, self.address))

    def command(self) -> Sequence[str]:
        binary = prometheus_binary()
        assert binary is not None
        return [
            str(binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.state_dir / 'data'}",
            f"--storage.tsdb.retention.time={os.environ.get(RETENTION_VARIABLE, '7d')}",
            f"--web.listen-address={self.address}",
            f"--web.external-url={self.endpoint}",
            "--log.level=warn",
        ]

    async def ready(self, within: float) -> bool:
        return await probe(self.endpoint, within)


def _get(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http://127.0.0.1 we built)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return 0


# `timeout` bounds the one HTTP request, not an outer cancel scope.
async def probe(endpoint: str, timeout: float = 2.0) -> bool:  # noqa: ASYNC109
    """Prometheus answers /-/ready (config and rules loaded, storage open)."""
    return await asyncio.to_thread(_get, f"{endpoint}/-/ready", timeout) == 200
