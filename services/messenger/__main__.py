"""`python -m services.messenger`: the messenger service.

Consumes read-result pages (`ampmesh-read-results.messenger`) and notifications
(`ampmesh-notifications.messenger`), records each delivery in PostgreSQL before acking
its event, and delivers them as signed webhooks with retries
(services/messenger/deliveries.py). MessengerService (services/messenger/service.py) lets
the api, mcpanda and builder-mcp inspect and steer deliveries and endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ampmesh.messenger.v1 import messenger_pb2, messenger_pb2_grpc

from services.messenger.consumers import (
    NOTIFICATIONS_SUBSCRIPTION,
    READ_RESULTS_SUBSCRIPTION,
    Consumers,
)
from services.messenger.deliveries import Deliverer
from services.messenger.recorded_pages import RecordedPages
from services.messenger.service import Messenger
from services.messenger.settings import MessengerSettings
from services.runtime.database import open_pool
from services.runtime.entrypoint import StartupError, run_service
from services.runtime.events import open_event_bus
from services.runtime.identity import AccessPolicy
from services.runtime.secretbox import keyring_from_settings
from services.runtime.server import Service
from services.runtime.subscriber import consume, keep_consuming

# The mesh identities allowed to call it; any other certificate is refused.
CALLERS = ("api", "mcpanda", "builder-mcp")
# The temporal worker asks what was recorded of its reads' pages, and nothing else.
RECORDED_PAGES_CALLERS = ("temporal",)
ACCESS = AccessPolicy(
    allowed=frozenset(CALLERS),
    per_service={
        messenger_pb2.DESCRIPTOR.services_by_name["RecordedPagesService"].full_name: frozenset(
            RECORDED_PAGES_CALLERS
        )
    },
)


@contextlib.asynccontextmanager
async def open_messenger(
    settings: MessengerSettings, *, consume_events: bool = True
) -> AsyncIterator[tuple[Messenger, Deliverer]]:
    """The servicer and its engine, running (consuming too unless consume_events is
    False, as tests that feed the handlers directly want)."""
    if not settings.pubsub_project:
        raise StartupError(
            f"{settings.env_var('pubsub_project')} is required to consume events "
            "(the Pub/Sub project id)"
        )
    box = keyring_from_settings(settings.secret_keys.get_secret_value())
    async with (
        open_pool(
            settings.database_url.get_secret_value(),
            needed_for="record deliveries",
            max_size=20,
        ) as pool,
        open_event_bus(settings, pool, source="messenger") as bus,
    ):
        deliverer = Deliverer(pool, box, bus, settings)
        await deliverer.start()
        consumers = Consumers(pool, deliverer)
        tasks: list[asyncio.Task[None]] = []
        if consume_events:
            for subscription, handler in (
                (READ_RESULTS_SUBSCRIPTION, consumers.read_result),
                (NOTIFICATIONS_SUBSCRIPTION, consumers.notification),
            ):
                tasks.append(
                    asyncio.create_task(
                        keep_consuming(
                            lambda s=subscription, h=handler: consume(  # type: ignore[misc]
                                s,
                                h,
                                emulator_host=settings.pubsub_emulator_host,
                                project=settings.pubsub_project,
                                max_messages=settings.max_messages,
                            ),
                            subscription,
                        ),
                        name="consumer " + subscription,
                    )
                )
        try:
            yield Messenger(pool, deliverer), deliverer
        finally:
            # Before the pool closes: in-flight events are nacked and come back later;
            # unsent deliveries stay in PostgreSQL for the next process.
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await deliverer.stop()


@contextlib.asynccontextmanager
async def open_services(settings: MessengerSettings) -> AsyncIterator[list[Service]]:
    async with open_messenger(settings) as (servicer, deliverer):
        yield [
            Service.from_servicer(
                messenger_pb2.DESCRIPTOR.services_by_name["MessengerService"],
                messenger_pb2_grpc.add_MessengerServiceServicer_to_server,
                servicer,
            ),
            Service.from_servicer(
                messenger_pb2.DESCRIPTOR.services_by_name["RecordedPagesService"],
                messenger_pb2_grpc.add_RecordedPagesServiceServicer_to_server,
                RecordedPages(servicer.pool, deliverer),
            ),
        ]


def main() -> None:
    run_service(
        name="messenger",
        services=open_services,
        allowed_callers=ACCESS,
        settings_cls=MessengerSettings,
    )


if __name__ == "__main__":
    main()
