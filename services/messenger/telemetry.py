"""Messenger's Prometheus metrics, beside the per-RPC ones every service has."""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import Counter, Histogram


class MessengerMetrics:
    def __init__(self) -> None:
        self.deliveries = Counter(
            "ampmesh_messenger_attempts_total",
            "Delivery attempts by kind (read_result, notification) and outcome.",
            ["kind", "outcome"],
        )
        self.attempt_seconds = Histogram(
            "ampmesh_messenger_attempt_seconds",
            "Time a receiver took to answer an attempt (or to fail).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.records = Counter(
            "ampmesh_messenger_records_delivered_total",
            "Records in read-result deliveries the receiver accepted.",
        )
        self.recorded = Counter(
            "ampmesh_messenger_deliveries_recorded_total",
            "Deliveries accepted from the event bus, by kind.",
            ["kind"],
        )


@lru_cache(maxsize=1)
def messenger_metrics() -> MessengerMetrics:
    """Process-wide, on the default registry (a metric registers once per process)."""
    return MessengerMetrics()
