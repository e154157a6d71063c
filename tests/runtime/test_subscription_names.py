"""Consumers name their subscriptions from topics.proto, as the launcher creates them."""

from __future__ import annotations

import pytest
from ampmesh.events.v1 import topics_pb2

from services.runtime.pubsub_topology import subscription_id, subscriptions_of, topology


def test_every_consumer_subscription_is_one_the_launcher_creates() -> None:
    created = {s.name for s in topology("p").subscriptions}
    for service in ("messenger", "scribe"):
        names = subscriptions_of(service)
        assert names, service
        assert set(names) <= created


def test_subscription_id_is_the_topic_id_and_the_service() -> None:
    assert subscription_id(topics_pb2.TOPIC_CONNECTIONS, "scribe") == "ampmesh-connections.scribe"
    assert subscriptions_of("messenger") == (
        "ampmesh-read-results.messenger",
        "ampmesh-notifications.messenger",
    )


def test_a_service_the_contract_does_not_list_gets_no_subscription() -> None:
    with pytest.raises(ValueError, match="does not list 'messenger' as a subscriber"):
        subscription_id(topics_pb2.TOPIC_CONNECTIONS, "messenger")
    assert subscriptions_of("api") == ()
