"""The event bus topology: what the contract declares, and how the emulator behaves with it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from ampmesh.events.v1 import topics_pb2
from google.api_core.exceptions import DeadlineExceeded
from google.pubsub_v1 import PubsubMessage, ReceivedMessage, SubscriberClient

from services.launcher.infra import PubSub
from services.runtime.pubsub_topology import (
    Subscription,
    Topology,
    apply_topology,
    emulator_publisher,
    emulator_subscriber,
    ensure_topology,
    topic_id,
    topology,
)
from tests.support.own_infra import own_component

PROJECT = "ampmesh-test"


def _declared() -> dict[str, list[str]]:
    """Topic id -> subscribing services, read straight from the contract's descriptor."""
    declared: dict[str, list[str]] = {}
    for value in topics_pb2.Topic.DESCRIPTOR.values:
        extensions: Any = value.GetOptions().Extensions  # the .pyi types these loosely
        topic: str = extensions[topics_pb2.pubsub_topic_id]
        if topic:
            declared[topic] = list(extensions[topics_pb2.pubsub_subscribers])
    return declared


def test_topology_is_exactly_what_the_contract_declares() -> None:
    declared = _declared()
    assert declared, "topics.proto declares no topic"
    layout = topology(PROJECT)
    consumed = {f"{t}.{s}" for t, services in declared.items() for s in services}
    dead_letters = {f"{name}.dead-letter" for name in consumed}
    assert set(layout.topics) == set(declared) | dead_letters
    assert {s.name for s in layout.subscriptions} == consumed | dead_letters
    assert len(layout.topics) == len(set(layout.topics))
    assert len(layout.subscriptions) == len({s.name for s in layout.subscriptions})
    for subscription in layout.subscriptions:
        assert subscription.topic in layout.topics
        if subscription.name in consumed:
            assert subscription.dead_letter_topic == f"{subscription.name}.dead-letter"
        else:  # dead letters are kept, never dead-lettered again
            assert subscription.topic == subscription.name
            assert subscription.dead_letter_topic is None


def test_messenger_reads_read_results_with_a_dead_letter_queue() -> None:
    layout = topology(PROJECT)
    assert topic_id(topics_pb2.TOPIC_READ_RESULTS) == "ampmesh-read-results"
    assert topic_id(topics_pb2.TOPIC_UNSPECIFIED) == ""
    messenger = layout.subscription("ampmesh-read-results.messenger")
    assert messenger.topic == "ampmesh-read-results"
    assert messenger.dead_letter_topic == "ampmesh-read-results.messenger.dead-letter"
    assert (messenger.ack_deadline_seconds, messenger.max_delivery_attempts) == (30, 5)
    assert messenger.minimum_backoff < messenger.maximum_backoff
    kept = layout.subscription("ampmesh-read-results.messenger.dead-letter")
    assert kept.topic == "ampmesh-read-results.messenger.dead-letter"
    assert layout.subscription_path(messenger.name) == (
        f"projects/{PROJECT}/subscriptions/ampmesh-read-results.messenger"
    )


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[str]:
    async with own_component(PubSub, "pubsub") as component:
        yield component.endpoint


async def test_ensure_topology_twice_is_idempotent(emulator: str) -> None:
    first = await ensure_topology(emulator, PROJECT)
    second = await ensure_topology(emulator, PROJECT)
    assert first == second == topology(PROJECT)
    with emulator_publisher(emulator) as publisher:
        topics = {t.name for t in publisher.list_topics(project=f"projects/{PROJECT}")}
    with emulator_subscriber(emulator) as subscriber:
        listed = {s.name: s for s in subscriber.list_subscriptions(project=f"projects/{PROJECT}")}
    assert topics == {first.topic_path(t) for t in first.topics}
    assert set(listed) == {first.subscription_path(s.name) for s in first.subscriptions}
    messenger = listed[first.subscription_path("ampmesh-read-results.messenger")]
    assert messenger.topic == first.topic_path("ampmesh-read-results")
    assert messenger.ack_deadline_seconds == 30
    assert not messenger.enable_message_ordering
    assert messenger.dead_letter_policy.dead_letter_topic == first.topic_path(
        "ampmesh-read-results.messenger.dead-letter"
    )
    assert messenger.dead_letter_policy.max_delivery_attempts == 5
    assert messenger.retry_policy.minimum_backoff == timedelta(seconds=10)


def _pull_once(
    subscriber: SubscriberClient, subscription: str, wait: float
) -> list[ReceivedMessage]:
    try:
        response = subscriber.pull(
            subscription=subscription, max_messages=10, retry=None, timeout=wait
        )
    except DeadlineExceeded:  # the emulator holds an empty pull open until the deadline
        return []
    return list(response.received_messages)


def _pull(subscriber: SubscriberClient, subscription: str, within: float) -> ReceivedMessage:
    """The next message on subscription; fails the test if none comes within `within` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        received = _pull_once(subscriber, subscription, wait=5.0)
        if received:
            return received[0]
    pytest.fail(f"nothing arrived on {subscription} within {within:.0f}s")


async def test_a_published_message_arrives_on_its_subscription(emulator: str) -> None:
    layout = await ensure_topology(emulator, PROJECT)
    topic = layout.topic_path(topic_id(topics_pb2.TOPIC_OPERATIONS))
    subscription = layout.subscription_path("ampmesh-operations.scribe")
    with emulator_publisher(emulator) as publisher:
        published = publisher.publish(
            topic=topic,
            messages=[PubsubMessage(data=b"envelope", attributes={"event_type": "test"})],
        )
    with emulator_subscriber(emulator) as subscriber:
        received = _pull(subscriber, subscription, within=30)
        subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])
    assert received.message.message_id == published.message_ids[0]
    assert received.message.data == b"envelope"
    assert received.message.attributes["event_type"] == "test"


async def test_a_message_nacked_five_times_lands_on_the_dead_letter_subscription(
    emulator: str,
) -> None:
    # The contract's 10 s minimum backoff would make this test wait a minute: the same
    # shape with a short backoff, on a topic of its own. (A maximum of 0 s makes the
    # emulator hold the fifth nack's message back for good.)
    name = "dead-letter-test.consumer"
    layout = Topology(
        PROJECT,
        ("dead-letter-test", f"{name}.dead-letter"),
        (
            replace(
                Subscription(name, "dead-letter-test", f"{name}.dead-letter"),
                minimum_backoff=timedelta(0),
                maximum_backoff=timedelta(seconds=1),
            ),
            Subscription(f"{name}.dead-letter", f"{name}.dead-letter"),
        ),
    )
    apply_topology(emulator, layout)
    subscription = layout.subscription_path(name)
    dead_letters = layout.subscription_path(f"{name}.dead-letter")
    with emulator_publisher(emulator) as publisher:
        publisher.publish(
            topic=layout.topic_path("dead-letter-test"), messages=[PubsubMessage(data=b"poison")]
        )
    attempts: list[int] = []
    dead: ReceivedMessage | None = None
    deadline = time.monotonic() + 60
    with emulator_subscriber(emulator) as subscriber:
        # Pull as a consumer does, nacking every delivery: the emulator moves the message
        # to the dead-letter topic when a pull would deliver it a sixth time.
        while dead is None and time.monotonic() < deadline:
            for received in _pull_once(subscriber, subscription, wait=1.0):
                attempts.append(received.delivery_attempt)
                subscriber.modify_ack_deadline(  # a nack
                    subscription=subscription, ack_ids=[received.ack_id], ack_deadline_seconds=0
                )
            kept = _pull_once(subscriber, dead_letters, wait=1.0)
            dead = kept[0] if kept else None
        assert dead is not None, f"nothing dead-lettered after {len(attempts)} deliveries"
        subscriber.acknowledge(subscription=dead_letters, ack_ids=[dead.ack_id])
    assert attempts == [1, 2, 3, 4, 5]
    assert dead.message.data == b"poison"
    assert dead.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
