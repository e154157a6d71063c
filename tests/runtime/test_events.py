"""Envelopes as the event bus builds them: the topic from the contract's options, the
meta every event carries, and the refusals of a malformed payload (no infrastructure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from ampmesh.events.v1 import connection_events_pb2 as ce
from ampmesh.events.v1 import log_entry_pb2, notifications_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope

from services.runtime.envelopes import (
    attributes_of,
    new_envelope,
    payload_names,
    payload_of,
    topic_id_of,
)
from services.runtime.pubsub_topology import topology

PROJECT = str(uuid.uuid4())


def connection_error() -> ce.ConnectionError:
    return ce.ConnectionError(
        connection=ce.ConnectionInfo(
            connection_id="c-1", status=ce.CONNECTION_STATUS_BAD_CREDENTIALS
        ),
        kind=ce.CONNECTION_ERROR_KIND_INVALID_GRANT,
    )


def test_an_envelope_carries_its_meta_and_one_payload() -> None:
    before = datetime.now(UTC)
    envelope = new_envelope(
        project_id=PROJECT,
        idempotency_key="c-1/error/1",
        source="token-manager",
        request_id="req-1",
        connection_error=connection_error(),
    )
    meta = envelope.meta
    assert uuid.UUID(meta.id)
    assert meta.type == "ampmesh.events.v1.ConnectionError"
    assert before - timedelta(seconds=1) <= meta.time.ToDatetime(tzinfo=UTC)
    assert meta.time.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)
    assert (meta.project_id, meta.idempotency_key, meta.source, meta.request_id) == (
        PROJECT,
        "c-1/error/1",
        "token-manager",
        "req-1",
    )
    assert envelope.connection_error == connection_error()
    assert payload_of(envelope) == ("connection_error", envelope.connection_error)
    assert attributes_of(envelope) == {
        "event_id": meta.id,
        "event_type": "ampmesh.events.v1.ConnectionError",
        "project_id": PROJECT,
    }
    other = new_envelope(
        project_id=PROJECT, idempotency_key="k", source="s", connection_error=connection_error()
    )
    assert other.meta.id != meta.id


def test_topics_come_from_the_contract() -> None:
    def topic(**payload: object) -> str:
        return topic_id_of(
            new_envelope(project_id=PROJECT, idempotency_key="k", source="s", **payload)  # type: ignore[arg-type]
        )

    assert topic(connection_error=connection_error()) == "ampmesh-connections"
    assert topic(connection_deleted=ce.ConnectionDeleted()) == "ampmesh-connections"
    assert topic(log_entry=log_entry_pb2.LogEntry(msg="hi")) == "ampmesh-logs"
    notification = notifications_pb2.Notification(
        connection_created=notifications_pb2.ConnectionCreatedNotification()
    )
    assert topic(notification=notification) == "ampmesh-notifications"
    # Every payload's topic is one the launcher creates.
    created = set(topology("p").topics)
    for name in Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields:
        envelope = Envelope()
        getattr(envelope, name.name).SetInParent()
        assert topic_id_of(envelope) in created


def test_a_notification_is_typed_by_its_reference_type() -> None:
    unset = notifications_pb2.Notification(
        read_backfill_done=notifications_pb2.ReadBackfillDoneNotification()
    )
    envelope = new_envelope(project_id=PROJECT, idempotency_key="k", source="s", notification=unset)
    assert envelope.meta.type == "read.backfill.done"
    assert envelope.notification.read_backfill_done.notification_type == "read.backfill.done"
    given = notifications_pb2.Notification(
        connection_error=notifications_pb2.ConnectionErrorNotification(
            notification_type="connection.error"
        )
    )
    envelope = new_envelope(project_id=PROJECT, idempotency_key="k", source="s", notification=given)
    assert envelope.meta.type == "connection.error"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({}, TypeError),
        (
            {"connection_error": connection_error(), "log_entry": log_entry_pb2.LogEntry()},
            TypeError,
        ),
        ({"connection_eror": connection_error()}, TypeError),
        ({"log_entry": connection_error()}, TypeError),
    ],
)
def test_a_malformed_payload_is_refused(payload: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        new_envelope(project_id=PROJECT, idempotency_key="k", source="s", **payload)  # type: ignore[arg-type]


def test_an_event_needs_its_project_and_key() -> None:
    with pytest.raises(ValueError, match="required"):
        new_envelope(
            project_id="", idempotency_key="k", source="s", log_entry=log_entry_pb2.LogEntry()
        )
    with pytest.raises(ValueError, match="required"):
        new_envelope(
            project_id=PROJECT, idempotency_key="", source="s", log_entry=log_entry_pb2.LogEntry()
        )


def test_an_envelope_without_payload_has_no_topic() -> None:
    with pytest.raises(ValueError, match="no payload"):
        topic_id_of(Envelope())


def test_payload_names_are_checked_against_the_contract() -> None:
    assert payload_names("connection_error") == {"connection_error"}
    with pytest.raises(ValueError, match="connection_eror"):
        payload_names("connection_eror")
