"""The token-manager's own Prometheus metrics, beside the per-RPC ones every service has:
where tokens are served from, and how refreshes at providers go (what an operator
watches to see a provider failing, or refresh storms doubling up)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ampmesh.token.v1 import token_manager_pb2 as tm
from prometheus_client import Counter, Gauge, Histogram

SOURCES: dict[int, str] = {
    tm.TOKEN_SOURCE_MEMORY: "memory",
    tm.TOKEN_SOURCE_REDIS: "redis",
    tm.TOKEN_SOURCE_POSTGRES: "postgres",
    tm.TOKEN_SOURCE_PROVIDER: "provider",
}


class TokenMetrics:
    def __init__(self) -> None:
        self.served = Counter(
            "ampmesh_token_served_total",
            "Tokens handed out by GetToken, by where they came from.",
            ["source"],
        )
        self._served: dict[int, Any] = {}
        self.refreshes = Counter(
            "ampmesh_token_refreshes_total",
            "Refresh decisions taken under a connection's lock, by provider and outcome: "
            "refreshed, refused (now bad_credentials), unavailable (will retry), or "
            "already_fresh (another shard or flight had refreshed it).",
            ["provider", "outcome"],
        )
        self.provider_seconds = Histogram(
            "ampmesh_token_provider_seconds",
            "Time a provider's token endpoint took to answer a successful grant.",
            ["provider"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        # The degraded modes an operator should see (redis_tier.py, invalidation.py).
        self.redis_available = Gauge(
            "ampmesh_token_redis_available",
            "1 while this shard uses Redis, 0 while it serves from PostgreSQL because "
            "Redis does not answer.",
        )
        self.redis_outages = Counter(
            "ampmesh_token_redis_outages_total",
            "Times this shard stopped using Redis after a failed call.",
        )
        self.listening = Gauge(
            "ampmesh_token_invalidations_listening",
            "1 while this shard hears every credential change from PostgreSQL (and so "
            "uses its memory and Redis), 0 while it reconnects.",
        )
        self.invalidations = Counter(
            "ampmesh_token_invalidations_total",
            "Credential changes this shard heard of (each evicts its memory copy).",
        )

    def served_from(self, source: int) -> None:
        child = self._served.get(source)
        if child is None:
            # Looked up once per source: .labels() costs more than the GetToken it counts.
            child = self._served[source] = self.served.labels(SOURCES.get(source, "unknown"))
        child.inc()

    def refresh(self, provider: str, outcome: str) -> None:
        self.refreshes.labels(provider, outcome).inc()


@lru_cache(maxsize=1)
def token_metrics() -> TokenMetrics:
    """Process-wide, on the default registry (a metric registers only once per process,
    however many shards a test runs in it)."""
    return TokenMetrics()
