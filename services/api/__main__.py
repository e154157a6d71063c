"""`python -m services.api`: the public API service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
from ampmesh.messenger.v1 import messenger_pb2_grpc
from ampmesh.metrics.v1 import metrics_pb2_grpc
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2_grpc
from pydantic import Field, SecretStr, field_validator
from temporalio.client import Client

from services.api import proxy, read, search, subscribe, write
from services.api.auth import Authenticator
from services.api.context import ApiContext, ApiPolicy
from services.api.metadata_cache import DEFAULT_TTL_SECONDS, FieldMetadataCache
from services.api.platform import BUILDERS, project_metrics
from services.api.platform.providers import provider_catalog_service
from services.api.proxy import access_metrics
from services.api.proxy.authorization import SERVICE_NAME as PROXY_AUTHORIZATION_SERVICE
from services.api.proxy.limits import ProxyLimits, limits_client
from services.api.reads import Reads
from services.api.writes import Writes
from services.domain.catalog import load_catalog
from services.domain.catalog.rate_limits import RateLimitSettingError, rate_limits
from services.domain.catalog.sandbox import point_at_sandbox
from services.domain.connectors.http import provider_session
from services.domain.routes import NOT_BUILT_YET, ROUTE_GROUPS
from services.domain.temporal_client import TemporalClientSettings, connect_temporal
from services.domain.token_manager_client import TokenManagerClientSettings, token_manager_stub
from services.runtime.channels import mesh_channel
from services.runtime.database import open_pool
from services.runtime.entrypoint import run_service
from services.runtime.events import EventBus, PubSubSettings, open_event_bus
from services.runtime.identity import AccessPolicy
from services.runtime.secretbox import keyring_from_settings
from services.runtime.server import Service
from services.runtime.tls import ensure_service_credentials
from services.runtime.tracing import temporal_interceptors
from services.runtime.unimplemented import with_fallback

# Who may call the api service directly: the edge, and the MCP servers that drive it.
CALLERS = ("envoy", "builder-mcp", "mcpanda")
# Only the edge asks for proxy decisions (they hold credentials) and streams the proxy's
# access logs (any other caller could count made-up calls).
POLICY = AccessPolicy(
    allowed=frozenset(CALLERS),
    per_service={
        access_metrics.SERVICE_NAME: frozenset({"envoy"}),
        PROXY_AUTHORIZATION_SERVICE: frozenset({"envoy"}),
    },
)


class ApiSettings(TokenManagerClientSettings, PubSubSettings, TemporalClientSettings):
    """The api service's settings: which route groups this deployment serves, and what
    the platform group needs (its database and the keyring sealing secrets at rest)."""

    enable_platform_routes: bool = Field(True, description="serve the platform API")
    enable_read_routes: bool = Field(True, description="serve the Read API")
    enable_write_routes: bool = Field(True, description="serve the Write API")
    enable_search_routes: bool = Field(True, description="serve the Search API")
    enable_proxy_routes: bool = Field(True, description="serve the proxy")
    enable_subscribe_routes: bool = Field(
        True, description="receive providers' change webhooks (the subscribe host)"
    )
    database_url: SecretStr = Field(
        SecretStr(""), description="PostgreSQL URL (postgresql://user:password@host:port/db)"
    )
    secret_keys: SecretStr = Field(
        SecretStr(""), description="keyring sealing secrets at rest: id:base64key[,…]"
    )
    allow_loopback_webhooks: bool = Field(
        False, description="let webhook destinations use http:// on loopback (local mesh)"
    )
    refuse_private_destinations: bool = Field(
        True, description="refuse destinations that resolve to private addresses"
    )
    sandbox_url: str = Field(
        "", description="provider sandbox URL: hubspot and salesforce point at it when set"
    )
    oauth_callback_url: str = Field(
        "", description="the OAuth redirect URI: the api host's URL + /callbacks/v1/oauth"
    )
    temporal_address: str = Field(
        "", description="the Temporal frontend, host:port; empty: reads are unavailable"
    )
    messenger_address: str = Field(
        "", description="messenger's gRPC address, host:port; empty: deliveries are unavailable"
    )
    metrics_address: str = Field(
        "", description="the metrics service's gRPC address, host:port; empty: no metrics"
    )
    oauth_state_seconds: int = Field(
        600, ge=60, le=3600, description="seconds an OAuth authorization URL stays usable"
    )
    field_metadata_ttl_seconds: float = Field(
        DEFAULT_TTL_SECONDS,
        ge=0,
        le=86400,
        description="seconds a provider's object description is reused (0: never cached)",
    )
    redis_url: SecretStr = Field(
        SecretStr(""), description="Redis URL: the proxy's throttle holds and rate limits"
    )
    proxy_decision_seconds: float = Field(
        10.0,
        ge=0,
        le=300,
        description="seconds an edge worker reuses a proxy decision (key, installation, token)",
    )
    proxy_rate_limits: str = Field(
        "",
        description="per-connection proxy limits: provider=calls/seconds[,...] (provider=0: none)",
    )

    @field_validator("proxy_rate_limits")
    @classmethod
    def _readable_rate_limits(cls, value: str) -> str:
        try:
            rate_limits(value)
        except RateLimitSettingError as error:
            raise ValueError(str(error)) from None
        return value


def build_services(
    settings: ApiSettings,
    ctx: ApiContext | None = None,
    limits: ProxyLimits | None = None,
    metrics: metrics_pb2_grpc.MetricsServiceStub | None = None,
) -> list[Service]:
    """The public services of every enabled route group (placeholders until built).

    The providers catalog is read here, at start: a data file our contract cannot hold
    stops the service with CatalogError rather than serving a partial catalog. The
    platform services that keep state are built only with a context (a database).
    """
    enabled = [
        service
        for group, services in ROUTE_GROUPS.items()
        if getattr(settings, f"enable_{group}_routes")
        for service in services
    ]
    implemented: list[Service] = []
    if settings.enable_platform_routes:
        implemented.append(provider_catalog_service(ctx.catalog if ctx else catalog_for(settings)))
        if ctx is not None:
            names = {s.full_name for s in enabled}
            implemented += [build(ctx) for name, build in BUILDERS.items() if name in names]
            if project_metrics.SERVICE in names:
                implemented.append(project_metrics.service(ctx, metrics))
    if settings.enable_read_routes and ctx is not None:
        implemented.append(read.service(ctx))
    if settings.enable_search_routes and ctx is not None:
        implemented.append(search.service(ctx))
    if settings.enable_write_routes and ctx is not None:
        implemented.append(write.service(ctx))
    if settings.enable_subscribe_routes and ctx is not None:
        implemented.append(subscribe.provider_webhook_service(ctx))
    if settings.enable_proxy_routes:
        implemented.append(access_metrics.service(pool=ctx.pool if ctx is not None else None))
    if settings.enable_proxy_routes and ctx is not None:
        # Internal: routed only from the edge's loopback listener (not in ROUTE_GROUPS).
        implemented.append(
            proxy.service(
                ctx,
                limits,
                rate_limits(settings.proxy_rate_limits),
                settings.proxy_decision_seconds,
            )
        )
    # Callers authenticate before learning that a method is not built, as for any call.
    gate = ctx.auth.authenticate if ctx is not None else None
    return with_fallback(enabled, implemented=implemented, reasons=NOT_BUILT_YET, gate=gate)


def catalog_for(settings: ApiSettings) -> dict[str, providers_pb2.ProviderInfo]:
    catalog = load_catalog()
    return point_at_sandbox(catalog, settings.sandbox_url) if settings.sandbox_url else catalog


@asynccontextmanager
async def open_services(settings: ApiSettings) -> AsyncIterator[list[Service]]:
    if not (
        settings.enable_platform_routes
        or settings.enable_read_routes
        or settings.enable_write_routes
        or settings.enable_search_routes
        or settings.enable_proxy_routes
        or settings.enable_subscribe_routes
    ):
        yield build_services(settings)
        return
    secrets = keyring_from_settings(settings.secret_keys.get_secret_value())
    async with AsyncExitStack() as resources:
        pool = await resources.enter_async_context(
            open_pool(
                settings.database_url.get_secret_value(), needed_for="serve the platform routes"
            )
        )
        temporal = await _temporal(settings)
        ctx = ApiContext(
            pool=pool,
            secrets=secrets,
            catalog=catalog_for(settings),
            auth=Authenticator(pool),
            policy=ApiPolicy(
                allow_loopback_webhooks=settings.allow_loopback_webhooks,
                refuse_private_destinations=settings.refuse_private_destinations,
                oauth_callback_url=settings.oauth_callback_url,
                oauth_state_seconds=settings.oauth_state_seconds,
            ),
            tokens=_token_manager(settings, resources),
            reads=Reads(temporal) if temporal is not None else None,
            writes=Writes(temporal) if temporal is not None else None,
            events=await _event_bus(settings, resources, pool),
            messenger=_messenger(settings, resources),
            http=await resources.enter_async_context(provider_session()),
            field_metadata=FieldMetadataCache(settings.field_metadata_ttl_seconds),
        )
        yield build_services(
            settings,
            ctx,
            await _proxy_limits(settings, resources),
            _metrics(settings, resources),
        )


async def _proxy_limits(settings: ApiSettings, resources: AsyncExitStack) -> ProxyLimits | None:
    """The proxy's Redis state; None without a Redis URL (throttled and rate-limited
    proxy calls then answer UNAVAILABLE, every other call works). Redis is reached on
    first use, so the api starts while it is down."""
    url = settings.redis_url.get_secret_value()
    if not settings.enable_proxy_routes or not url:
        return None
    client = limits_client(url)
    resources.push_async_callback(client.aclose)
    return ProxyLimits(client)


async def _temporal(settings: ApiSettings) -> Client | None:
    """The client of the read and write workflows; None without a Temporal address. It
    connects lazily: the api serves everything else while Temporal is down, and calls
    that start workflows answer UNAVAILABLE until it is back."""
    if not settings.temporal_address:
        return None
    return await connect_temporal(settings, lazy=True, interceptors=temporal_interceptors())


async def _event_bus(
    settings: ApiSettings, resources: AsyncExitStack, pool: asyncpg.Pool
) -> EventBus | None:
    """The api's outbox and relay (write operations' events, providers' change events,
    installation notifications); None without a Pub/Sub project, and writes, webhooks and
    installation changes then answer UNAVAILABLE."""
    if not settings.pubsub_project or not (
        settings.enable_write_routes
        or settings.enable_subscribe_routes
        or settings.enable_platform_routes
    ):
        return None
    return await resources.enter_async_context(open_event_bus(settings, pool, source="api"))


def _token_manager(
    settings: ApiSettings, resources: AsyncExitStack
) -> token_manager_pb2_grpc.TokenManagerServiceStub | None:
    """A stub for the token-manager shards, called with the api's own certificate (the
    shards accept only the api and temporal identities); None without an address."""
    if not settings.token_manager_address:
        return None
    return token_manager_stub(settings, resources)


def _messenger(
    settings: ApiSettings, resources: AsyncExitStack
) -> messenger_pb2_grpc.MessengerServiceStub | None:
    """A stub for messenger, called with the api's own certificate; None without an
    address. The channel connects on first use: the api starts before messenger."""
    if not settings.messenger_address:
        return None
    credentials = ensure_service_credentials(
        settings.cert_dir, settings.identity, create=settings.create_certs
    )
    channel = mesh_channel(settings.messenger_address, credentials, server_identity="messenger")
    resources.push_async_callback(channel.close)
    return messenger_pb2_grpc.MessengerServiceStub(channel)


def _metrics(
    settings: ApiSettings, resources: AsyncExitStack
) -> metrics_pb2_grpc.MetricsServiceStub | None:
    """A stub for the metrics service, called with the api's own certificate; None without
    an address (GET .../metrics then answers UNAVAILABLE). It connects on first use."""
    if not settings.metrics_address:
        return None
    credentials = ensure_service_credentials(
        settings.cert_dir, settings.identity, create=settings.create_certs
    )
    channel = mesh_channel(settings.metrics_address, credentials, server_identity="metrics")
    resources.push_async_callback(channel.close)
    return metrics_pb2_grpc.MetricsServiceStub(channel)


def main() -> None:
    run_service(
        name="api", services=open_services, allowed_callers=POLICY, settings_cls=ApiSettings
    )


if __name__ == "__main__":
    main()
