"""`python -m services.scribe`: the scribe service.

Built: the connection history (issue #5). Scribe consumes `ampmesh-connections.scribe`
and records every connection event once, with the status it leaves
(services/scribe/connections.py). Its gRPC API (ingestion status, dead letters) and the
persistence of operations, logs and progress are issue #6: those RPCs answer
UNIMPLEMENTED.
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
from services.runtime.server import Service
from services.runtime.subscriber import consume
from services.runtime.unimplemented import partially_built
from services.scribe.connections import ConnectionHistory

# The mesh identities allowed to call it; any other certificate is refused.
CALLERS = ("api", "mcpanda")
NOT_BUILT = "scribe's API and the persistence of operations and logs are built by issue #6"
CONNECTIONS_SUBSCRIPTION = "ampmesh-connections.scribe"
# After the stream ends for good (e.g. the subscription is missing), wait this long
# before subscribing again, doubling up to the cap.
_RESUBSCRIBE_FIRST, _RESUBSCRIBE_CAP = 1.0, 60.0

_log = get_logger("ampmesh.scribe")


class ScribeSettings(PubSubSettings):
    database_url: SecretStr = Field(
        SecretStr(""), description="PostgreSQL URL (postgresql://user:password@host:port/db)"
    )
    max_messages: int = Field(100, ge=1, description="events handled at once per subscription")


class Scribe(scribe_pb2_grpc.ScribeServiceServicer):
    """No RPC is built yet (issue #6); partially_built answers each with UNIMPLEMENTED."""


async def keep_consuming(run: Callable[[], Awaitable[None]], subscription: str) -> None:
    """Run a consumer until cancelled, subscribing again (backing off) whenever its stream
    ends, so a Pub/Sub outage or a late subscription never stops the service."""
    delay = _RESUBSCRIBE_FIRST
    while True:
        try:
            await run()
        except Exception as error:
            _log.warning(
                "subscription stream ended; subscribing again",
                subscription=subscription,
                error=type(error).__name__,
                retry_in=delay,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, _RESUBSCRIBE_CAP)


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
        history = ConnectionHistory(pool)
        consumer = asyncio.create_task(
            keep_consuming(
                lambda: consume(
                    CONNECTIONS_SUBSCRIPTION,
                    history.handle,
                    emulator_host=settings.pubsub_emulator_host,
                    project=settings.pubsub_project,
                    max_messages=settings.max_messages,
                ),
                CONNECTIONS_SUBSCRIPTION,
            ),
            name="consumer " + CONNECTIONS_SUBSCRIPTION,
        )
        try:
            yield [
                partially_built(
                    scribe_pb2.DESCRIPTOR.services_by_name["ScribeService"],
                    scribe_pb2_grpc.add_ScribeServiceServicer_to_server,
                    Scribe(),
                    NOT_BUILT,
                )
            ]
        finally:
            # Before the pool closes: in-flight events are nacked and come back later.
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer


def main() -> None:
    run_service(
        name="scribe",
        services=open_services,
        allowed_callers=CALLERS,
        settings_cls=ScribeSettings,
    )


if __name__ == "__main__":
    main()
