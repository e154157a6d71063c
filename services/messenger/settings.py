"""Messenger's settings (AMPMESH_* environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.runtime.events import PubSubSettings


class MessengerSettings(PubSubSettings):
    database_url: SecretStr = Field(
        SecretStr(""), description="PostgreSQL URL (postgresql://user:password@host:port/db)"
    )
    secret_keys: SecretStr = Field(
        SecretStr(""),
        description="keyring opening destinations' sealed signing keys (id:base64key,...)",
    )
    allow_loopback_webhooks: bool = Field(
        False, description="deliver over http:// to loopback hosts (the local mesh only)"
    )
    refuse_private_destinations: bool = Field(
        True, description="refuse webhook URLs resolving to private or reserved addresses"
    )
    max_messages: int = Field(200, ge=1, description="events handled at once per subscription")
    delivery_timeout: float = Field(10.0, gt=0, description="seconds a receiver has to answer")
    backoff_first: float = Field(1.0, gt=0, description="seconds before the first retry")
    backoff_cap: float = Field(60.0, gt=0, description="longest wait between retries, seconds")
    retry_after_cap: float = Field(
        3600.0, gt=0, description="longest Retry-After honoured, seconds"
    )
    max_age: float = Field(
        86400.0, gt=0, description="seconds after which a delivery still failing is given up"
    )
    disable_after: float = Field(
        86400.0,
        ge=0,
        description="seconds an endpoint must fail continuously before it is disabled",
    )
    disable_min_failures: int = Field(
        10, ge=1, description="failed attempts in a row needed before an endpoint is disabled"
    )
    max_concurrency: int = Field(64, ge=1, description="HTTP attempts in flight in all")
    max_concurrency_per_destination: int = Field(
        16, ge=1, description="HTTP attempts in flight to one destination"
    )
    max_queued_sends: int = Field(
        512,
        ge=1,
        description="fresh deliveries queued in memory for an immediate send; beyond, the "
        "poller takes them from PostgreSQL",
    )
    lease: float = Field(
        60.0, gt=0, description="seconds a process owns a claimed delivery before others may"
    )
    poll_interval: float = Field(
        1.0, gt=0, description="seconds between looks for due retries and orphaned deliveries"
    )
