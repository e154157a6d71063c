"""`python -m services.temporal`: the Temporal workers' process.

Its contract is `proto/ampmesh/workflows/v1`: the inputs and outputs of the workflows it
runs. At start it connects to the Temporal server and checks our namespace (a mesh whose
workers could not reach Temporal must not report healthy), opens PostgreSQL and the
token-manager channel, makes sure the keep-alive schedule exists, and runs one worker per
task queue (worker.py) for the process's lifetime; it serves gRPC health, so the launcher
and the edge supervise it like the others. AMPMESH_TEMPORAL_TASK_QUEUES picks the queues
(default all four, as `ampmesh up` runs them; a cluster runs one Deployment per queue): the
keep-alive schedule is ensured where `connections` runs, and the registration sweep and the
provider-events consumer run where `subscribe` does. The reads and writes workers share one HTTP
client (the connectors' connection pool), a Pub/Sub publisher and the catalog (pointed at
the provider sandbox when AMPMESH_SANDBOX_URL is set). On SIGTERM the gRPC server drains
first, then the workers stop (activities in flight get worker.GRACEFUL_SHUTDOWN; a write
cut off mid-call is retried on another worker, as the heartbeat timeout tells Temporal).
The subscribe queue's registration shares them too, and its sweeper runs beside the
workers (subscribe/registration_sweep.py), as does the consumer that turns provider
change events into subscribe deliveries (subscribe/events.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from ampmesh.messenger.v1 import messenger_pb2_grpc
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2_grpc
from pydantic import Field, SecretStr, field_validator
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from services.domain.catalog import load_catalog
from services.domain.catalog.sandbox import point_at_sandbox
from services.domain.connectors import registry
from services.domain.connectors.http import provider_session
from services.domain.read_workflows import READS_QUEUE
from services.domain.subscribe_names import SUBSCRIBE_QUEUE
from services.domain.temporal_client import (
    TemporalClientSettings,
    TemporalSettingError,
    connect_temporal,
    describe_connect_error,
)
from services.domain.token_manager_client import TokenManagerClientSettings, token_manager_stub
from services.domain.write_workflows import WRITES_QUEUE
from services.runtime.channels import mesh_channel
from services.runtime.database import open_pool
from services.runtime.entrypoint import StartupError, run_service
from services.runtime.events import PubSubSettings
from services.runtime.logs import get_logger
from services.runtime.server import Service
from services.runtime.tls import ensure_service_credentials
from services.runtime.tracing import temporal_interceptors
from services.temporal.keep_alive.activities import KeepAliveActivities
from services.temporal.reads import shape
from services.temporal.reads.activities import ReadActivities
from services.temporal.reads.publish import Publisher
from services.temporal.subscribe.events import subscribe_consumer
from services.temporal.subscribe.registration_activities import RegistrationActivities
from services.temporal.subscribe.registration_sweep import sweeping
from services.temporal.worker import (
    CONNECTIONS_QUEUE,
    connections_worker,
    ensure_keep_alive_schedule,
    reads_worker,
    subscribe_worker,
    writes_worker,
)
from services.temporal.writes.activities import WriteActivities

_log = get_logger("ampmesh.temporal")

# Every task queue a worker process can poll, in the order they start.
TASK_QUEUES = (CONNECTIONS_QUEUE, READS_QUEUE, WRITES_QUEUE, SUBSCRIBE_QUEUE)


class TemporalWorkerSettings(TokenManagerClientSettings, PubSubSettings, TemporalClientSettings):
    temporal_address: str = Field(
        ..., min_length=1, description="the Temporal frontend, host:port (e.g. 127.0.0.1:7233)"
    )
    temporal_task_queues: str = Field(
        ",".join(TASK_QUEUES),
        description="comma list of the task queues this process polls, of "
        + ", ".join(TASK_QUEUES),
    )
    temporal_connect_timeout: float = Field(
        30.0, gt=0, description="seconds to wait for Temporal at start"
    )
    database_url: SecretStr = Field(
        SecretStr(""), description="PostgreSQL URL (postgresql://user:password@host:port/db)"
    )
    keep_alive_every_seconds: int = Field(
        3600, gt=0, description="seconds between token keep-alive passes (the schedule's interval)"
    )
    sandbox_url: str = Field(
        "", description="provider sandbox URL: hubspot and salesforce point at it when set"
    )
    subscribe_webhook_url: str = Field(
        "",
        description="the public base URL providers send change events to (the edge's "
        "subscribe host); empty: registering subscriptions fails, saying so",
    )
    messenger_address: str = Field(
        "",
        description="messenger's gRPC address, host:port: a read is reported done once "
        "messenger has recorded its pages; empty: once they are on the bus",
    )

    @field_validator("temporal_task_queues")
    @classmethod
    def _known_queues(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        allowed = ", ".join(TASK_QUEUES)
        unknown = [name for name in names if name not in TASK_QUEUES]
        if unknown:
            raise ValueError(f"unknown task queue {unknown[0]!r} (allowed: {allowed})")
        if not names:
            raise ValueError(f"names no task queue (allowed: {allowed})")
        return ",".join(dict.fromkeys(names))

    @property
    def task_queues(self) -> frozenset[str]:
        return frozenset(self.temporal_task_queues.split(","))


class TemporalUnreachable(StartupError):
    pass


async def connect(settings: TemporalWorkerSettings) -> Client:
    """A client of our namespace, once Temporal answers for it."""
    try:
        client = await asyncio.wait_for(
            connect_temporal(settings, interceptors=temporal_interceptors()),
            settings.temporal_connect_timeout,
        )
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace),
            timeout=timedelta(seconds=settings.temporal_connect_timeout),
        )
    except TemporalSettingError:
        raise
    except Exception as error:
        # An API key travels in metadata, not in the SDK's messages; cut out anyway.
        raise TemporalUnreachable(
            f"Temporal at {settings.temporal_address} (namespace "
            f"{settings.temporal_namespace!r}) is unreachable: "
            f"{describe_connect_error(settings, error)}"
        ) from None
    return client


def require_settings(settings: TemporalWorkerSettings, queues: frozenset[str]) -> None:
    """StartupError naming the first setting these queues cannot run without, checked
    before Temporal or PostgreSQL is reached: a pod missing one says so, rather than that
    Temporal is unreachable."""
    if not settings.token_manager_address:
        raise StartupError(
            "AMPMESH_TOKEN_MANAGER_ADDRESS is required: every task queue's activities "
            "reach credentials through the token-manager (set it to the edge's "
            "token-manager listener, host:port)"
        )
    if not settings.database_url.get_secret_value():
        raise StartupError("AMPMESH_DATABASE_URL is required to run the task queues' activities")
    if queues & {READS_QUEUE, WRITES_QUEUE, SUBSCRIBE_QUEUE} and not settings.pubsub_project:
        raise StartupError(
            f"{settings.env_var('pubsub_project')} is required to publish read results and "
            "events (the Pub/Sub project id)"
        )


@asynccontextmanager
async def open_services(settings: TemporalWorkerSettings) -> AsyncIterator[list[Service]]:
    queues = settings.task_queues
    require_settings(settings, queues)
    client = await connect(settings)
    _log.info(
        "temporal connected",
        address=settings.temporal_address,
        namespace=settings.temporal_namespace,
        task_queues=[q for q in TASK_QUEUES if q in queues],
    )
    async with AsyncExitStack() as resources:
        pool = await resources.enter_async_context(
            open_pool(
                settings.database_url.get_secret_value(),
                needed_for="run the task queues' activities",
                max_size=8,
            )
        )
        catalog = load_catalog()
        if settings.sandbox_url:
            catalog = point_at_sandbox(catalog, settings.sandbox_url)
        tokens = token_manager_stub(settings, resources)
        provider = await _provider_activities(
            settings, resources, pool, tokens, catalog, client, queues
        )
        if CONNECTIONS_QUEUE in queues:
            # Made by the process whose worker runs it: a reads-only deployment has no say
            # in the keep-alive's interval.
            await ensure_keep_alive_schedule(
                client, timedelta(seconds=settings.keep_alive_every_seconds)
            )
        # Entered last, so they stop first: the workers finish (or cancel) their tasks while
        # the pool and the channel they use are still open.
        if CONNECTIONS_QUEUE in queues:
            keep_alive = KeepAliveActivities(pool, tokens, catalog)
            await resources.enter_async_context(
                connections_worker(client, keep_alive, on_fatal_error=_stop_process)
            )
        if provider.reads is not None:
            await resources.enter_async_context(
                reads_worker(client, provider.reads, on_fatal_error=_stop_process)
            )
        if provider.writes is not None:
            await resources.enter_async_context(
                writes_worker(client, provider.writes, on_fatal_error=_stop_process)
            )
        if provider.registration is not None:
            await resources.enter_async_context(
                subscribe_worker(client, provider.registration, on_fatal_error=_stop_process)
            )
            await resources.enter_async_context(sweeping(pool, client))
            await resources.enter_async_context(
                subscribe_consumer(
                    pool=pool,
                    tokens=tokens,
                    catalog=catalog,
                    emulator_host=settings.pubsub_emulator_host,
                    project=settings.pubsub_project,
                )
            )
        yield []


@dataclass(frozen=True)
class ProviderActivities:
    """The activities of the queues that call providers; None where the queue is not
    polled here."""

    reads: ReadActivities | None = None
    writes: WriteActivities | None = None
    registration: RegistrationActivities | None = None


async def _provider_activities(
    settings: TemporalWorkerSettings,
    resources: AsyncExitStack,
    pool: asyncpg.Pool,
    tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
    catalog: dict[str, providers_pb2.ProviderInfo],
    client: Client,
    queues: frozenset[str],
) -> ProviderActivities:
    """The reads, writes and subscribe queues' activities (those polled here), sharing one
    publisher and one HTTP client (closed with resources)."""
    if not queues & {READS_QUEUE, WRITES_QUEUE, SUBSCRIBE_QUEUE}:
        return ProviderActivities()
    publisher = Publisher.open(settings.pubsub_emulator_host, settings.pubsub_project)
    resources.callback(publisher.close)
    http = await resources.enter_async_context(provider_session())
    reads = writes = registration = None
    if READS_QUEUE in queues:
        reads = ReadActivities(
            pool=pool,
            tokens=tokens,
            catalog=catalog,
            http=http,
            publisher=publisher,
            client=client,
            connector_for=registry.connector_for,
            auth_for=registry.provider_auth,
            shaping=shape,
            messenger=_recorded_pages(settings, resources),
        )
    if WRITES_QUEUE in queues:
        writes = WriteActivities(
            pool=pool,
            tokens=tokens,
            catalog=catalog,
            http=http,
            publisher=publisher,
            writer_for=registry.writer_for,
            auth_for=registry.provider_auth,
        )
    if SUBSCRIBE_QUEUE in queues:
        registration = RegistrationActivities(
            pool=pool,
            tokens=tokens,
            catalog=catalog,
            http=http,
            publisher=publisher,
            auth_for=registry.provider_auth,
            public_url=settings.subscribe_webhook_url,
        )
        if not settings.subscribe_webhook_url:
            _log.warning("no AMPMESH_SUBSCRIBE_WEBHOOK_URL: subscriptions cannot be registered")
    return ProviderActivities(reads, writes, registration)


def _recorded_pages(
    settings: TemporalWorkerSettings, resources: AsyncExitStack
) -> messenger_pb2_grpc.RecordedPagesServiceStub | None:
    """A stub for messenger's RecordedPagesService, called with the worker's own
    certificate; None without an address. The channel connects on first use."""
    if not settings.messenger_address:
        _log.warning("no messenger address: reads are done once their pages are on the bus")
        return None
    credentials = ensure_service_credentials(
        settings.cert_dir, settings.identity, create=settings.create_certs
    )
    channel = mesh_channel(settings.messenger_address, credentials, server_identity="messenger")
    resources.push_async_callback(channel.close)
    return messenger_pb2_grpc.RecordedPagesServiceStub(channel)


async def _stop_process(error: BaseException) -> None:
    """A worker that cannot poll any more (its namespace gone, say) leaves a process
    that looks healthy but runs nothing: stop it the way SIGTERM does, so its
    supervisor sees it go and restarts it."""
    _log.error("temporal worker failed; stopping", error=str(error)[:200] or type(error).__name__)
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    run_service(name="temporal", services=open_services, settings_cls=TemporalWorkerSettings)


if __name__ == "__main__":
    main()
