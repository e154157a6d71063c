"""The event bus's consuming side: one subscription's Envelopes, handled in asyncio.

`consume` pulls a batch of messages (unary Pull on the asyncio client: see consume_raw
for why not the streaming pull), runs the handler on each, acks those it handled and
nacks those where it raised (the subscription's retry and dead-letter policies take it
from there). A message that is not an Envelope is logged and acked: redelivering it could
never succeed. Delivery is at least once: handlers are idempotent.

    async def handle(envelope, attributes, delivery_attempt): ...
    await consume("ampmesh-connections.scribe", handle, emulator_host=h, project=p)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import grpc
from ampmesh.events.v1.envelope_pb2 import Envelope
from google.api_core.exceptions import DeadlineExceeded
from google.protobuf.message import DecodeError
from google.pubsub_v1 import ReceivedMessage, SubscriberAsyncClient
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcAsyncIOTransport

from services.runtime.logs import get_logger
from services.runtime.tracing import consume_span

__all__ = [
    "Delivery",
    "Handler",
    "RawHandler",
    "consume",
    "consume_raw",
    "keep_consuming",
    "subscriber_async_client",
]

# (envelope, the message's attributes, its delivery attempt: None without a dead-letter
# policy, else 1 on the first delivery).
Handler = Callable[[Envelope, Mapping[str, str], int | None], Awaitable[None]]

# After a stream ends for good (e.g. the subscription is missing), wait this long before
# subscribing again, doubling up to the cap.
_RESUBSCRIBE_FIRST, _RESUBSCRIBE_CAP = 1.0, 60.0

# Seconds a pull waits for messages before asking again.
_PULL_WAIT = 30.0

_log = get_logger("ampmesh.subscriber")


def subscriber_async_client(emulator_host: str) -> SubscriberAsyncClient:
    """An asyncio subscriber client: bound to the emulator over an insecure channel when a
    host is given (without PUBSUB_EMULATOR_HOST, which redirects every client of the
    process), else Cloud Pub/Sub with the deployment's default credentials."""
    if emulator_host:
        # A pull of many read-result pages (up to 300 KB each) is far beyond gRPC's
        # default 4 MB message limit; the Cloud client's own channels lift it too.
        channel = grpc.aio.insecure_channel(
            emulator_host, options=[("grpc.max_receive_message_length", -1)]
        )
        return SubscriberAsyncClient(transport=SubscriberGrpcAsyncIOTransport(channel=channel))
    return SubscriberAsyncClient()


@dataclass(frozen=True)
class Delivery:
    """One Pub/Sub message as received (for consumers that keep what they cannot decode)."""

    subscription: str
    message_id: str
    data: bytes
    attributes: Mapping[str, str]
    # None without a dead-letter policy on the subscription, else 1 on the first delivery.
    delivery_attempt: int | None


RawHandler = Callable[[Delivery], Awaitable[None]]


async def consume(
    subscription_id: str,
    handler: Handler,
    *,
    emulator_host: str,
    project: str,
    max_messages: int = 100,
) -> None:
    """Handle the subscription's Envelopes until cancelled (then stop pulling and return
    the cancellation); raises when the stream ends for good (e.g. no such subscription).
    A message that is not an Envelope is logged and acked.

    At most max_messages are leased at a time, so a slow handler slows the pull rather
    than piling messages up in memory."""

    async def decoded(delivery: Delivery) -> None:
        try:
            envelope = Envelope.FromString(delivery.data)
        except DecodeError:
            _log.error(
                "message is not an Envelope; dropped",
                subscription=subscription_id,
                message_id=delivery.message_id,
                attributes=dict(delivery.attributes),
            )
            return
        await handler(envelope, delivery.attributes, delivery.delivery_attempt)

    await consume_raw(
        subscription_id,
        decoded,
        emulator_host=emulator_host,
        project=project,
        max_messages=max_messages,
    )


async def consume_raw(
    subscription_id: str,
    handler: RawHandler,
    *,
    emulator_host: str,
    project: str,
    max_messages: int = 100,
) -> None:
    """As `consume`, but every message reaches the handler as received, undecodable ones
    included (scribe keeps those as dead letters, by their message id).

    Unary pulls, not the streaming pull: the emulator sometimes kept the messages a
    killed streaming subscriber had leased for many minutes (its client had extended
    their leases), while a pulled message it was never told about comes back when the
    subscription's ack deadline passes. Each pull takes at most max_messages, handles
    them concurrently, then acks those handled and nacks the others at once (so they are
    retried after the subscription's backoff, then dead-lettered), and pulls again."""
    client = subscriber_async_client(emulator_host)
    path = f"projects/{project}/subscriptions/{subscription_id}"
    batch = _Batch()

    async def run(received: ReceivedMessage) -> None:
        delivery = _delivery(subscription_id, received)
        # The message's attributes carry its publish span's `traceparent` (tracing.py).
        with consume_span(subscription_id, delivery.attributes):
            handled = await _handle(handler, delivery)
        (batch.handled if handled else batch.failed).append(received.ack_id)

    _log.info("consuming", subscription=subscription_id)
    try:
        while True:
            try:
                pulled = await client.pull(
                    subscription=path, max_messages=max_messages, timeout=_PULL_WAIT
                )
            except DeadlineExceeded:
                continue  # nothing arrived while we waited
            batch = _Batch([r.ack_id for r in pulled.received_messages])
            await asyncio.gather(*(run(r) for r in pulled.received_messages))
            await batch.settle(client, path)
    finally:
        # Stopping mid-batch: ack what was handled, give the rest back now rather than at
        # its deadline (shielded: the cancellation that stops us must not stop this).
        with contextlib.suppress(Exception):
            await asyncio.shield(batch.settle(client, path, rpc_timeout=2))
        await client.transport.close()


@dataclass
class _Batch:
    """The messages of one pull, and what became of each."""

    ack_ids: list[str] = field(default_factory=list)
    handled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    async def settle(
        self,
        client: SubscriberAsyncClient,
        path: str,
        rpc_timeout: float | None = None,
    ) -> None:
        """Ack the handled, nack the rest (retried after the subscription's backoff)."""
        handled = set(self.handled)
        rest = [a for a in self.ack_ids if a not in handled]
        self.ack_ids, self.handled, self.failed = [], [], []
        if handled:
            await client.acknowledge(subscription=path, ack_ids=list(handled), timeout=rpc_timeout)
        if rest:
            await client.modify_ack_deadline(
                subscription=path, ack_ids=rest, ack_deadline_seconds=0, timeout=rpc_timeout
            )


def _delivery(subscription: str, received: ReceivedMessage) -> Delivery:
    message = received.message
    return Delivery(
        subscription=subscription,
        message_id=message.message_id,
        data=message.data,
        attributes=dict(message.attributes),
        # 0 when the subscription has no dead-letter policy.
        delivery_attempt=received.delivery_attempt or None,
    )


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


async def _handle(handler: RawHandler, delivery: Delivery) -> bool:
    """Run the handler; False (logged) when it raised."""
    try:
        await handler(delivery)
    except Exception:
        _log.exception(
            "event handler failed; the message will be redelivered",
            subscription=delivery.subscription,
            message_id=delivery.message_id,
            event_type=delivery.attributes.get("event_type", ""),
            delivery_attempt=delivery.delivery_attempt,
        )
        return False
    return True
