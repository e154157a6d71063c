"""The metrics service's settings (AMPMESH_* environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.runtime.config import ServiceSettings


class MetricsSettings(ServiceSettings):
    database_url: SecretStr = Field(
        SecretStr(""), description="PostgreSQL URL (postgresql://user:password@host:port/db)"
    )
    metrics_interval: float = Field(
        15.0, gt=0, le=3600, description="seconds between refreshes of the exported gauges"
    )
    metrics_window: float = Field(
        3600.0,
        gt=0,
        le=31 * 86400,
        description="seconds back the exported 'recent' figures count (operations, "
        "records, deliveries, refreshes, proxy calls)",
    )
