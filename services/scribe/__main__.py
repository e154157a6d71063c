"""`python -m services.scribe`: the scribe service.

Scribe consumes its three subscriptions, `ampmesh-connections.scribe` (connection history
and status, services/scribe/connections.py), `ampmesh-operations.scribe` (operations and
backfill progress) and `ampmesh-logs.scribe` (operation logs, both
services/scribe/operations.py), plus the dead-letter subscription the launcher creates
beside each (`<subscription>.dead-letter`), and persists every event once
(services/scribe/ingest.py: counters, dead letters). It serves ScribeService
(services/scribe/service.py): ingestion status, dead letters and their retry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from ampmesh.scribe.v1 import scribe_pb2, scribe_pb2_grpc
from pydantic import Field, SecretStr

from services.runtime.database import open_pool
from services.runtime.entrypoint import StartupError, run_service
from services.runtime.events import PubSubSettings
from services.runtime.logs import get_logger
from services.runtime.pubsub_topology import DEAD_LETTER_SUFFIX, subscriptions_of
from services.runtime.server import Service
from services.runtime.subscriber import consume_raw, keep_consuming
from services.scribe.ingest import Ingestion
from services.scribe.service import Scribe

# The mesh identities allowed to call it; any other certificate is refused.
CALLERS = ("api", "mcpanda")
# As topics.proto declares them (the launcher creates exactly those).
SUBSCRIPTIONS = subscriptions_of("scribe")

_log = get_logger("ampmesh.scribe")


class ScribeSettings(PubSubSettings):
    database_url: SecretStr = Field(
        SecretStr(""), description="PostgreSQL URL (postgresql://user:password@host:port/db)"
    )
    max_messages: int = Field(100, ge=1, description="events handled at once per subscription")


@contextlib.asynccontextmanager
async def open_services(settings: ScribeSettings) -> AsyncIterator[list[Service]]:
    if not settings.pubsub_project:
        raise StartupError(
            f"{settings.env_var('pubsub_project')} is required to consume events "
            "(the Pub/Sub project id)"
        )
    async with open_pool(
        settings.database_url.get_secret_value(), needed_for="record events"
    ) as pool:
        ingestion = Ingestion.standard(pool)
        tasks = [asyncio.create_task(ingestion.counters.run(), name="ingestion counters")]
        for subscription in SUBSCRIPTIONS:
            for name in (subscription, subscription + DEAD_LETTER_SUFFIX):
                tasks.append(
                    asyncio.create_task(
                        keep_consuming(_consumer(settings, name, ingestion), name),
                        name="consumer " + name,
                    )
                )
        try:
            yield [
                Service.from_servicer(
                    scribe_pb2.DESCRIPTOR.services_by_name["ScribeService"],
                    scribe_pb2_grpc.add_ScribeServiceServicer_to_server,
                    Scribe(ingestion),
                )
            ]
        finally:
            # Before the pool closes: in-flight events are nacked and come back later;
            # the counters' task saves what it counted as it stops.
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _consumer(
    settings: ScribeSettings, subscription: str, ingestion: Ingestion
) -> Callable[[], Awaitable[None]]:
    return lambda: consume_raw(
        subscription,
        ingestion.handle,
        emulator_host=settings.pubsub_emulator_host,
        project=settings.pubsub_project,
        max_messages=settings.max_messages,
    )


def main() -> None:
    run_service(
        name="scribe",
        services=open_services,
        allowed_callers=CALLERS,
        settings_cls=ScribeSettings,
    )


if __name__ == "__main__":
    main()
