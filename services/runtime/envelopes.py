"""Envelopes, the event bus's one message: built one way (`new_envelope`: meta filled, one
payload), and read one way (`payload_of`, `topic_id_of`, `attributes_of`). Which topic a
payload goes to is the contract's `(topic)` option on its Envelope field (topics.proto),
looked up here, so publishers never name topics.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from ampmesh.events.v1 import notifications_pb2, topics_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
from google.protobuf.message import Message

from services.runtime import tracing
from services.runtime.pubsub_topology import topic_id

if TYPE_CHECKING:
    from google.protobuf.descriptor import FieldDescriptor
    from google.protobuf.descriptor_pb2 import FieldOptions
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

# The generated .pyi types extensions as plain FieldDescriptors; say what this one holds.
_TOPIC = cast("_ExtensionFieldDescriptor[FieldOptions, int]", topics_pb2.topic)
_PAYLOAD = "payload"  # the Envelope oneof

# --- envelopes -------------------------------------------------------------------------


def _payload_fields() -> dict[str, FieldDescriptor]:
    oneof = Envelope.DESCRIPTOR.oneofs_by_name[_PAYLOAD]
    return {field.name: cast("FieldDescriptor", field) for field in oneof.fields}


_PAYLOAD_FIELDS = _payload_fields()


def _topic_of_field(field: FieldDescriptor) -> str:
    topic = topic_id(field.GetOptions().Extensions[_TOPIC])
    if not topic:
        raise ValueError(f"Envelope.{field.name} declares no (topic) option in topics.proto")
    return topic


_TOPICS = {name: _topic_of_field(field) for name, field in _PAYLOAD_FIELDS.items()}


def payload_of(envelope: Envelope) -> tuple[str, Message]:
    """The payload field that is set and its message; ValueError when none is."""
    name = envelope.WhichOneof(_PAYLOAD)
    if name is None:
        raise ValueError("the envelope has no payload")
    return name, cast(Message, getattr(envelope, name))


def topic_id_of(envelope: Envelope) -> str:
    """The Pub/Sub topic id the contract gives the envelope's payload."""
    name, _ = payload_of(envelope)
    return _TOPICS[name]


def _notification_type(notification: notifications_pb2.Notification) -> str:
    """The reference type of a notification (`connection.created`…), filled in when unset.

    Every typed notification holds `notification_type`, always its reference type, and
    the oneof field names are those types with dots as underscores
    (`read_backfill_done` is `read.backfill.done`).
    """
    name = notification.WhichOneof(_PAYLOAD)
    if name is None:
        raise ValueError("the notification has no payload")
    typed = getattr(notification, name)
    if not typed.notification_type:
        typed.notification_type = name.replace("_", ".")
    return str(typed.notification_type)


def new_envelope(
    *,
    project_id: str,
    idempotency_key: str,
    source: str,
    request_id: str = "",
    **payload: Message,
) -> Envelope:
    """An Envelope with its meta filled (new id, type, time now, source, the current
    span's trace context) and one payload, passed as the keyword named like its Envelope
    field (`connection_error=…`)."""
    if len(payload) != 1:
        raise TypeError(f"pass exactly one payload keyword, got {sorted(payload) or 'none'}")
    ((name, message),) = payload.items()
    field = _PAYLOAD_FIELDS.get(name)
    if field is None:
        raise TypeError(f"{name!r} is not an Envelope payload; one of {sorted(_PAYLOAD_FIELDS)}")
    expected = field.message_type
    if expected is None or message.DESCRIPTOR is not expected:
        wanted = expected.full_name if expected is not None else "message"
        raise TypeError(f"{name} takes a {wanted}, not {message.DESCRIPTOR.full_name}")
    if not project_id or not idempotency_key:
        raise ValueError("project_id and idempotency_key are required on every event")
    envelope = Envelope()
    getattr(envelope, name).CopyFrom(message)
    meta = envelope.meta
    meta.id = str(uuid.uuid4())
    if name == "notification":
        meta.type = _notification_type(envelope.notification)
    else:
        meta.type = message.DESCRIPTOR.full_name
    meta.time.FromDatetime(datetime.now(UTC))
    meta.project_id = project_id
    meta.idempotency_key = idempotency_key
    meta.request_id = request_id
    meta.source = source
    if tracing.TRACER is not None:
        # The span that made the event; consumers' spans continue its trace.
        carrier: dict[str, str] = {}
        tracing.inject(carrier)
        meta.traceparent = carrier.get(tracing.TRACEPARENT, "")
        meta.tracestate = carrier.get(tracing.TRACESTATE, "")
    return envelope


def attributes_of(envelope: Envelope) -> dict[str, str]:
    """The Pub/Sub attributes topics.proto asks publishers to copy from meta."""
    meta = envelope.meta
    return {"event_id": meta.id, "event_type": meta.type, "project_id": meta.project_id}


def payload_names(*fields: str) -> frozenset[str]:
    """Envelope payload field names, checked against the contract (a typo fails at import)."""
    unknown = set(fields) - set(_PAYLOAD_FIELDS)
    if unknown:
        raise ValueError(f"not Envelope payloads: {sorted(unknown)}")
    return frozenset(fields)
