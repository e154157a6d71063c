"""`python -m services.metrics`: the metrics service."""

from __future__ import annotations

from ampmesh.metrics.v1 import metrics_pb2

from services.runtime.entrypoint import run_service
from services.runtime.unimplemented import unimplemented_service

SERVICE = metrics_pb2.DESCRIPTOR.services_by_name["MetricsService"]
# The mesh identities allowed to call this service; any other certificate is refused.
CALLERS = ("api", "mcpanda", "builder-mcp")


def main() -> None:
    run_service(
        name="metrics",
        services=[unimplemented_service(SERVICE, "application metrics have no issue filed yet")],
        allowed_callers=CALLERS,
    )


if __name__ == "__main__":
    main()
