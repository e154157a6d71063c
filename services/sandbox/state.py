"""The sandbox's in-memory state: seeded records, object schemas, faults, counters, issued
tokens and webhook subscriptions, each in a module of its own (records.py, schemas.py,
faults.py, tokens.py, webhooks.py); the counters live here.

Every face of the process (the provider HTTP APIs and the gRPC control API) shares one
SandboxState in one event loop, so no locking is needed: nothing here awaits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.sandbox.faults import FaultBook
from services.sandbox.providers import CATALOG_NAMES, Provider
from services.sandbox.records import RecordStore
from services.sandbox.schemas import SchemaStore
from services.sandbox.tokens import TokenStore
from services.sandbox.webhooks import WebhookBook


@dataclass
class ProviderCounters:
    token_by_grant: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    token_by_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    api_by_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # Requests each proxy-test route received, whatever it answered: how a test sees
    # that a request did (or did not) reach the provider through the proxy.
    proxy_test_by_route: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Requests each write route received, whatever it answered.
    write_by_route: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Records the writes actually created, updated or deleted.
    records_written: int = 0
    # Batch write requests by the records each carried: how a test sees a writer split.
    write_batch_sizes: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # Write requests carrying each Sforce-* header (lower-cased): how a test sees a
    # header the builder gave pass through the connector.
    passthrough_headers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Webhook requests sent to subscribers by the status answered (0: none).
    webhook_by_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # Change events a subscriber accepted (2xx), duplicates sent by a fault not counted.
    webhook_events_delivered: int = 0


@dataclass
class Counters:
    """Request counters since start_time."""

    providers: dict[Provider, ProviderCounters] = field(
        default_factory=lambda: {p: ProviderCounters() for p in CATALOG_NAMES}
    )
    token_latency: list[float] = field(default_factory=list)
    api_latency: list[float] = field(default_factory=list)
    faults_fired_at_start: int = 0
    # Change events given up on after every retry.
    webhooks_abandoned: int = 0
    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def count_token(self, provider: Provider, grant_type: str, status: int, took: float) -> None:
        counters = self.providers[provider]
        counters.token_by_grant[grant_type or "unknown"] += 1
        counters.token_by_status[status] += 1
        self.token_latency.append(took)

    def count_api(self, provider: Provider, status: int, took: float) -> None:
        self.providers[provider].api_by_status[status] += 1
        self.api_latency.append(took)

    def count_proxy_test(self, provider: Provider, route: str) -> None:
        self.providers[provider].proxy_test_by_route[route] += 1

    def count_write(self, provider: Provider, route: str, headers: Iterable[str]) -> None:
        """A write request received on `route`, with these header names."""
        counters = self.providers[provider]
        counters.write_by_route[route] += 1
        for name in {name.lower() for name in headers}:
            if name.startswith("sforce-"):
                counters.passthrough_headers[name] += 1

    def count_batch(self, provider: Provider, size: int) -> None:
        self.providers[provider].write_batch_sizes[size] += 1

    def count_written(self, provider: Provider, records: int) -> None:
        self.providers[provider].records_written += records


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no samples)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


class SandboxState:
    """Everything the sandbox holds."""

    def __init__(self) -> None:
        self.records = RecordStore()
        # Object schemas (standard and custom fields) the metadata APIs serve.
        self.schemas = SchemaStore(self.records)
        self.faults = FaultBook()
        self.counters = Counters()
        self.tokens = TokenStore()
        # Webhook subscriptions and the change events waiting to be sent.
        self.webhooks = WebhookBook()

    def reset_counters(self) -> None:
        self.counters = Counters(faults_fired_at_start=self.faults.fired_total)
