"""The token-manager's settings (AMPMESH_* environment variables): its storage, its
caches, how it refreshes and how it calls providers. The shard and `reseal` both read
them."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.runtime.events import PubSubSettings


class TokenManagerSettings(PubSubSettings):
    shard_name: str = Field(
        "", description="this shard's name, e.g. token-manager-0 (default: the service name)"
    )
    database_url: SecretStr = Field(
        SecretStr(""), description="PostgreSQL URL (postgresql://user:password@host:port/db)"
    )
    redis_url: SecretStr = Field(
        SecretStr(""), description="Redis URL (redis://host:port/db), the shared token cache"
    )
    secret_keys: SecretStr = Field(
        SecretStr(""), description="keyring sealing credentials at rest: id:base64key[,…]"
    )
    memory_cache_entries: int = Field(
        4096, ge=0, description="opened credentials a shard keeps in memory (LRU)"
    )
    memory_cache_seconds: float = Field(
        60.0,
        ge=0,
        description="how long a shard keeps credentials in memory at most (changes on any "
        "shard evict them at once; this is the last resort)",
    )
    redis_cache_seconds: int = Field(
        3600, ge=1, description="TTL of the sealed credentials cached in Redis"
    )
    redis_timeout_seconds: float = Field(
        0.5,
        gt=0,
        description="longest wait for Redis to connect or answer before this shard serves "
        "from PostgreSQL and stops calling Redis until a probe answers",
    )
    redis_retry_seconds: float = Field(
        0.5, gt=0, description="first wait before probing a Redis that stopped answering"
    )
    cache_debt_sweep_seconds: float = Field(
        5.0,
        gt=0,
        description="how often a shard writes to Redis the changes it missed (a shard killed "
        "mid-write, a Redis outage)",
    )
    listen_keepalive_seconds: float = Field(
        5.0,
        gt=0,
        description="how often the connection that hears credential changes is checked alive",
    )
    refresh_margin_seconds: int = Field(
        300, ge=0, description="a token expiring within this margin is refreshed first"
    )
    refresh_lock_seconds: float = Field(
        30.0, gt=0, description="longest wait for another shard's refresh of a connection"
    )
    provider_timeout_seconds: float = Field(
        10.0, gt=0, description="timeout of one call to a provider's token endpoint"
    )
    provider_attempts: int = Field(
        3, ge=1, description="attempts at a token endpoint answering 5xx, 429 or timing out"
    )
    sandbox_url: str = Field(
        "", description="the provider sandbox: hubspot and salesforce point at it (local mesh)"
    )
