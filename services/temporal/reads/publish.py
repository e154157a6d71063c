"""Publishing read results and operation events straight to Pub/Sub.

Not through the outbox: a page is large and no database change must be atomic with it;
what the outbox would give (publish at least once) the read activity gets by moving its
cursor only after every message of a page is acknowledged, so a retried call republishes
under the same idempotency keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ampmesh.events.v1.envelope_pb2 import Envelope
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.types import BatchSettings

from services.runtime.entrypoint import StartupError
from services.runtime.envelopes import attributes_of, topic_id_of
from services.runtime.events import publisher_client
from services.runtime.tracing import publish_span

# Pages are 50-300 KB: a batch of up to 9 MB (Pub/Sub's request limit is 10 MB) carries
# dozens of them in one request; 5 ms lets a page's parts and its progress events share
# a request without delaying the next page much.
BATCH_SETTINGS = BatchSettings(max_messages=100, max_bytes=9_000_000, max_latency=0.005)
# Long enough for the emulator under load; an unacknowledged publish fails the call,
# which is retried (and republishes under the same keys).
PUBLISH_TIMEOUT = 60.0


class Publisher:
    """A batching Pub/Sub publisher of Envelopes for one process."""

    def __init__(self, client: pubsub_v1.PublisherClient, project: str) -> None:
        self._client = client
        self._project = project
        self._paths: dict[str, str] = {}

    @classmethod
    def open(cls, emulator_host: str, project: str) -> Publisher:
        """A publisher bound to the emulator (insecure channel) when a host is given, else
        to Cloud Pub/Sub with the deployment's default credentials."""
        if not project:
            raise StartupError(
                "AMPMESH_PUBSUB_PROJECT is required to publish read results "
                "(the Pub/Sub project id)"
            )
        return cls(publisher_client(emulator_host, BATCH_SETTINGS), project)

    def _path(self, topic: str) -> str:
        path = self._paths.get(topic)
        if path is None:
            path = self._paths[topic] = self._client.topic_path(self._project, topic)
        return path

    def start(self, envelopes: Iterable[Envelope]) -> list[asyncio.Future[str]]:
        """Hand envelopes to the batcher; one future per message, resolved on its ack."""
        futures: list[asyncio.Future[str]] = []
        for envelope in envelopes:
            topic = topic_id_of(envelope)
            attributes = attributes_of(envelope)
            with publish_span(topic, envelope, attributes):
                future = self._client.publish(
                    self._path(topic),
                    envelope.SerializeToString(),
                    timeout=PUBLISH_TIMEOUT,
                    **attributes,
                )
            futures.append(asyncio.wrap_future(future))
        return futures

    async def publish_all(self, envelopes: Iterable[Envelope]) -> None:
        """Publish envelopes and return once Pub/Sub has acknowledged every one (the first
        failure is raised once all have settled)."""
        await wait_all(self.start(envelopes))

    def close(self) -> None:
        self._client.stop()


async def wait_all(futures: list[asyncio.Future[str]]) -> None:
    """Wait for every future; raise the first failure after all have settled (so none is
    left unobserved)."""
    if not futures:
        return
    results = await asyncio.gather(*futures, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
