"""mcpanda's settings: the MCP service's own, and where the operator-side services are."""

from __future__ import annotations

from pydantic import Field

from services.domain.temporal_client import TemporalClientSettings
from services.runtime.mcp_http import McpSettings


class McpandaSettings(McpSettings, TemporalClientSettings):
    """Where mcpanda reaches the services behind the api (empty: their tools answer that
    the service is not configured; the launcher sets every one it runs)."""

    messenger_address: str = Field("", description="messenger's gRPC address (deliveries)")
    scribe_address: str = Field("", description="scribe's gRPC address (ingestion, dead letters)")
    metrics_address: str = Field("", description="the metrics service's gRPC address")
    sandbox_address: str = Field("", description="the provider sandbox's control gRPC address")
    temporal_address: str = Field("", description="Temporal frontend (host:port), for histories")
