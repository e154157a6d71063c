"""`python -m services.metrics`: the metrics service.

Computes per-project application metrics from PostgreSQL (services/metrics/queries.py):
on demand for one project and window (MetricsService.GetProjectMetrics, which the api,
mcpanda and builder-mcp call over mTLS), and every AMPMESH_METRICS_INTERVAL seconds for
every project, as gauges on the process's Prometheus exposition (exporter.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ampmesh.metrics.v1 import metrics_pb2, metrics_pb2_grpc

from services.metrics.exporter import Exporter
from services.metrics.service import Metrics
from services.metrics.settings import MetricsSettings
from services.runtime.database import open_pool
from services.runtime.entrypoint import run_service
from services.runtime.server import Service

# The mesh identities allowed to call it; any other certificate is refused.
CALLERS = ("api", "mcpanda", "builder-mcp")


@asynccontextmanager
async def open_services(settings: MetricsSettings) -> AsyncIterator[list[Service]]:
    async with open_pool(
        settings.database_url.get_secret_value(), needed_for="compute metrics", max_size=4
    ) as pool:
        exporter = Exporter(
            pool, interval=settings.metrics_interval, window=settings.metrics_window
        )
        exporter.start()
        try:
            yield [
                Service.from_servicer(
                    metrics_pb2.DESCRIPTOR.services_by_name["MetricsService"],
                    metrics_pb2_grpc.add_MetricsServiceServicer_to_server,
                    Metrics(pool),
                )
            ]
        finally:
            await exporter.stop()


def main() -> None:
    run_service(
        name="metrics",
        services=open_services,
        allowed_callers=CALLERS,
        settings_cls=MetricsSettings,
    )


if __name__ == "__main__":
    main()
