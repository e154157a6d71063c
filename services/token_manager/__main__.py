"""`python -m services.token_manager`: one token-manager shard.

It holds every connection's credentials (sealed in PostgreSQL, cached sealed in Redis and
opened in the shard's memory: store.py, redis_tier.py, memory.py; every shard hears of
every change at once: invalidation.py), exchanges OAuth authorization codes, hands out
usable tokens, refreshes them ahead of expiry once per connection across all shards
(refresh.py), revokes them at providers that can (provider.py), and announces every change
on the event bus through a transactional outbox (announce.py, services.runtime.events).

This module only wires a shard together: the settings (settings.py), the store and the
bus, the provider client, the provider-app lookup (apps.py) and the servicer
(servicer.py, whose errors are errors.py's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import redis.asyncio
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc

from services.domain.catalog import load_catalog
from services.domain.catalog.sandbox import point_at_sandbox
from services.runtime.database import open_pool
from services.runtime.entrypoint import StartupError, run_service
from services.runtime.events import open_event_bus
from services.runtime.secretbox import keyring_from_settings
from services.runtime.server import Service
from services.token_manager import announce
from services.token_manager.apps import provider_apps
from services.token_manager.invalidation import Listener
from services.token_manager.memory import MemoryCache
from services.token_manager.provider import ProviderClient, RetryPolicy
from services.token_manager.redis_tier import RedisTier
from services.token_manager.servicer import TokenManager
from services.token_manager.settings import TokenManagerSettings
from services.token_manager.store import CredentialStore, Opened

# The mesh identities allowed to call it (through Envoy, which forwards theirs); any
# other certificate is refused.
CALLERS = ("api", "temporal")
SOURCE = announce.SOURCE


@asynccontextmanager
async def open_store(settings: TokenManagerSettings) -> AsyncIterator[CredentialStore]:
    """The pool, the Redis tier, the change listener and the SecretBox; StartupError with
    one line when PostgreSQL cannot be reached (Redis may be down: the shard starts
    serving from PostgreSQL and uses Redis once it answers)."""
    redis_url = settings.redis_url.get_secret_value()
    if not redis_url:
        raise StartupError("AMPMESH_REDIS_URL is required to cache credentials")
    box = keyring_from_settings(settings.secret_keys.get_secret_value())
    database_url = settings.database_url.get_secret_value()
    async with AsyncExitStack() as resources:
        pool = await resources.enter_async_context(
            open_pool(database_url, needed_for="store credentials")
        )
        client = redis.asyncio.Redis.from_url(
            redis_url,
            socket_connect_timeout=settings.redis_timeout_seconds,
            socket_timeout=settings.redis_timeout_seconds,
        )
        resources.push_async_callback(client.aclose)
        memory: MemoryCache[Opened] = MemoryCache(
            settings.memory_cache_entries, settings.memory_cache_seconds
        )
        listener = Listener(
            database_url,
            memory,
            name=settings.shard_name or settings.service_name,
            keepalive_seconds=settings.listen_keepalive_seconds,
        )
        resources.push_async_callback(listener.aclose)
        try:
            await listener.start(within=10.0)
        except TimeoutError:
            raise StartupError("cannot listen for credential changes in PostgreSQL") from None
        tier = RedisTier(
            client, settings.redis_cache_seconds, retry_after=settings.redis_retry_seconds
        )
        resources.push_async_callback(tier.aclose)
        await tier.start()
        store = CredentialStore(
            pool,
            tier,
            box,
            memory=memory,
            listener=listener,
            lock_timeout_seconds=settings.refresh_lock_seconds,
        )
        tier.on_recovery = store.settle_debts
        settling = asyncio.create_task(
            store.keep_settling(settings.cache_debt_sweep_seconds), name="settle cache debts"
        )
        resources.callback(settling.cancel)
        yield store


@asynccontextmanager
async def open_services(settings: TokenManagerSettings) -> AsyncIterator[list[Service]]:
    if not settings.pubsub_project:
        # Checked before PostgreSQL is reached: a pod without it says so, not that the
        # database is down.
        raise StartupError(
            f"{settings.env_var('pubsub_project')} is required to publish connection events "
            "(the Pub/Sub project id)"
        )
    catalog = load_catalog()
    if settings.sandbox_url:
        catalog = point_at_sandbox(catalog, settings.sandbox_url)
    async with (
        open_store(settings) as store,
        open_event_bus(settings, store.pool, source=SOURCE) as bus,
    ):
        provider = ProviderClient(
            RetryPolicy(
                attempts=settings.provider_attempts, timeout=settings.provider_timeout_seconds
            )
        )
        await provider.warm_up()
        yield [
            Service.from_servicer(
                token_manager_pb2.DESCRIPTOR.services_by_name["TokenManagerService"],
                token_manager_pb2_grpc.add_TokenManagerServiceServicer_to_server,
                TokenManager(
                    settings.shard_name or settings.service_name,
                    store,
                    catalog,
                    timedelta(seconds=settings.refresh_margin_seconds),
                    provider,
                    provider_apps(store.pool, store.box),
                    bus,
                ),
            )
        ]


def main() -> None:
    run_service(
        name="token-manager",
        services=open_services,
        allowed_callers=CALLERS,
        settings_cls=TokenManagerSettings,
    )


if __name__ == "__main__":
    main()
