"""The event bus's consuming side: one subscription's Envelopes, handled in asyncio.

google-cloud-pubsub's streaming pull keeps leases, reconnects and applies flow control,
but calls back on its own threads. `consume` hands each message to the service's event
loop (`run_coroutine_threadsafe`), acks once the handler returned and nacks when it
raised (the subscription's retry and dead-letter policies take it from there). A message
that is not an Envelope is logged and acked: redelivering it could never succeed.

    async def handle(envelope, attributes, delivery_attempt): ...
    await consume("ampmesh-connections.scribe", handle, emulator_host=h, project=p)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Awaitable, Callable, Mapping

import grpc
from ampmesh.events.v1.envelope_pb2 import Envelope
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.message import Message as PubSubMessage
from google.protobuf.message import DecodeError
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from services.runtime.logs import get_logger

__all__ = ["Handler", "consume", "subscriber_client"]

# (envelope, the message's attributes, its delivery attempt: None without a dead-letter
# policy, else 1 on the first delivery).
Handler = Callable[[Envelope, Mapping[str, str], int | None], Awaitable[None]]

_log = get_logger("ampmesh.subscriber")


def subscriber_client(emulator_host: str) -> pubsub_v1.SubscriberClient:
    """The streaming subscriber: bound to the emulator over an insecure channel when a host
    is given (without PUBSUB_EMULATOR_HOST, which redirects every client of the process),
    else Cloud Pub/Sub with the deployment's default credentials."""
    if emulator_host:
        channel = grpc.insecure_channel(emulator_host)
        return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
    return pubsub_v1.SubscriberClient()


async def consume(
    subscription_id: str,
    handler: Handler,
    *,
    emulator_host: str,
    project: str,
    max_messages: int = 100,
) -> None:
    """Handle the subscription's messages until cancelled (then stop pulling and return
    the cancellation); raises when the stream ends for good (e.g. no such subscription).

    At most max_messages are leased at a time, so a slow handler slows the pull rather
    than piling messages up in memory."""
    loop = asyncio.get_running_loop()
    path = f"projects/{project}/subscriptions/{subscription_id}"

    def on_message(message: PubSubMessage) -> None:  # on the client's threads
        try:
            envelope = Envelope.FromString(message.data)
        except DecodeError:
            _log.error(
                "message is not an Envelope; dropped",
                subscription=subscription_id,
                message_id=message.message_id,
                attributes=dict(message.attributes),
            )
            message.ack()
            return
        handled = asyncio.run_coroutine_threadsafe(
            _handle(handler, envelope, message, subscription_id), loop
        )
        handled.add_done_callback(lambda done: _settle(done, message))

    client = subscriber_client(emulator_host)
    streaming = client.subscribe(
        path,
        on_message,
        flow_control=pubsub_v1.types.FlowControl(max_messages=max_messages),
    )
    _log.info("consuming", subscription=subscription_id)
    try:
        # result() blocks until the stream fails for good or is cancelled.
        await asyncio.to_thread(streaming.result)
    finally:
        streaming.cancel()
        # Waits for the stream's threads; messages in flight are redelivered (handlers
        # are idempotent).
        await asyncio.to_thread(_wait_stopped, streaming)
        await asyncio.to_thread(client.close)


async def _handle(
    handler: Handler, envelope: Envelope, message: PubSubMessage, subscription: str
) -> bool:
    """Run the handler; False (logged) when it raised."""
    try:
        await handler(envelope, dict(message.attributes), message.delivery_attempt)
    except Exception:
        _log.exception(
            "event handler failed; the message will be redelivered",
            subscription=subscription,
            event_id=envelope.meta.id,
            event_type=envelope.meta.type,
            delivery_attempt=message.delivery_attempt,
        )
        return False
    return True


def _settle(done: concurrent.futures.Future[bool], message: PubSubMessage) -> None:
    # Cancelled (the loop is shutting down) counts as not handled.
    if not done.cancelled() and done.exception() is None and done.result():
        message.ack()
    else:
        message.nack()


def _wait_stopped(streaming: concurrent.futures.Future[None]) -> None:
    # The stream's end was already reported, or it was cancelled on purpose.
    with contextlib.suppress(concurrent.futures.CancelledError, Exception):
        streaming.result()
