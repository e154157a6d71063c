"""`python -m services.metrics`: the metrics service (its contract, not built yet)."""

from __future__ import annotations

from ampmesh.metrics.v1 import metrics_pb2

from services.runtime.unimplemented import run_unbuilt_service


def main() -> None:
    run_unbuilt_service(
        name="metrics",
        service=metrics_pb2.DESCRIPTOR.services_by_name["MetricsService"],
        reason="application metrics are issue #19, not built yet",
        # The mesh identities allowed to call it; any other certificate is refused.
        allowed_callers=("api", "mcpanda", "builder-mcp"),
    )


if __name__ == "__main__":
    main()
