"""What the scribe tests share: its subscriptions' names, the installation rows a test makes,
and envelopes and Pub/Sub deliveries as the consumer hands them over."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ampmesh.events.v1.envelope_pb2 import Envelope
from google.protobuf.message import Message

from services.runtime.envelopes import new_envelope
from services.runtime.subscriber import Delivery

OPERATIONS = "ampmesh-operations.scribe"
LOGS = "ampmesh-logs.scribe"
EPOCH = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Installation:
    project_id: str
    integration_id: str
    id: str


def envelope(project_id: str, key: str, when: datetime = EPOCH, **payload: Message) -> Envelope:
    # mypy cannot tell the payload keyword from new_envelope's own str keywords.
    built = new_envelope(
        project_id=project_id,
        idempotency_key=key,
        source="test",
        **payload,  # type: ignore[arg-type]
    )
    built.meta.time.FromDatetime(when)
    return built


def delivery(
    data: Envelope | bytes,
    subscription: str = OPERATIONS,
    attempt: int | None = 1,
    **attributes: Any,
) -> Delivery:
    """A Pub/Sub message as the consumer hands it over (a new message id each time, as a
    republish would have)."""
    raw = data if isinstance(data, bytes) else data.SerializeToString()
    return Delivery(
        subscription=subscription,
        message_id=uuid.uuid4().hex,
        data=raw,
        attributes={k: str(v) for k, v in attributes.items()},
        delivery_attempt=attempt,
    )


def later(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)
