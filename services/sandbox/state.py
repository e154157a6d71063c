"""The sandbox's in-memory state: seeded records, object schemas, faults, counters and
issued tokens, each in a module of its own (records.py, schemas.py, faults.py, tokens.py);
the counters live here.

Every face of the process (the provider HTTP APIs and the gRPC control API) shares one
SandboxState in one event loop, so no locking is needed: nothing here awaits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.sandbox.faults import FaultBook
from services.sandbox.providers import CATALOG_NAMES, Provider
from services.sandbox.records import RecordStore
from services.sandbox.schemas import SchemaStore
from services.sandbox.tokens import TokenStore


@dataclass
class ProviderCounters:
    token_by_grant: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    token_by_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    api_by_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # Requests each proxy-test route received, whatever it answered: how a test sees
    # that a request did (or did not) reach the provider through the proxy.
    proxy_test_by_route: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class Counters:
    """Request counters since start_time."""

    providers: dict[Provider, ProviderCounters] = field(
        default_factory=lambda: {p: ProviderCounters() for p in CATALOG_NAMES}
    )
    token_latency: list[float] = field(default_factory=list)
    api_latency: list[float] = field(default_factory=list)
    faults_fired_at_start: int = 0
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

    def reset_counters(self) -> None:
        self.counters = Counters(faults_fired_at_start=self.faults.fired_total)
