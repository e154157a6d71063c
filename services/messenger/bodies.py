"""Webhook bodies messenger builds itself: notifications and TestDestination's samples.
Read results need none: their producer rendered the exact bytes (ReadResultPage.body)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from ampmesh.events.v1 import notifications_pb2, read_result_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

# Notification oneof field name -> its reference type (`read_backfill_done` ->
# `read.backfill.done`).
NOTIFICATION_TYPES: dict[str, str] = {
    field.name: field.name.replace("_", ".")
    for field in notifications_pb2.Notification.DESCRIPTOR.oneofs_by_name["payload"].fields
}
FIELD_OF_TYPE = {kind: name for name, kind in NOTIFICATION_TYPES.items()}


def _integral(value: Any) -> Any:
    """Whole-number doubles as integers: Struct holds every number as a double, and strict
    receivers (Go's encoding/json) refuse `1.0` for an integer field."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def json_body(message: Message) -> bytes:
    """A message in its JSON mapping (lowerCamel names), as a webhook sends it."""
    return orjson.dumps(_integral(json_format.MessageToDict(message)))


def notification_body(notification: notifications_pb2.Notification) -> tuple[str, bytes]:
    """(type, body) of a notification: the typed message (`notificationType` + `data`)."""
    name = notification.WhichOneof("payload")
    if name is None:
        raise ValueError("the notification has no payload")
    typed = getattr(notification, name)
    if not typed.notification_type:
        typed.notification_type = NOTIFICATION_TYPES[name]
    return str(typed.notification_type), json_body(typed)


def sample_body(event_type: str, project_id: str) -> bytes:
    """TestDestination's sample: a notification of event_type with its data's project
    set, or (empty event_type) a read-result page of one record. KeyError when event_type
    is not a notification type."""
    if event_type:
        field = FIELD_OF_TYPE[event_type]
        notification = notifications_pb2.Notification()
        typed = getattr(notification, field)
        typed.notification_type = event_type
        if "project_id" in typed.data.DESCRIPTOR.fields_by_name:
            typed.data.project_id = project_id
        return json_body(typed)
    message = read_result_pb2.WebhookMessage(
        project_id=project_id,
        provider="sandbox",
        installation_id=str(uuid.uuid4()),
        object_name="contacts",
        operation_id=str(uuid.uuid4()),
        action="read",
        read_type="triggered",
        result_info=read_result_pb2.ResultInfo(type="inline", num_records=1),
    )
    message.operation_time.FromDatetime(datetime.now(UTC))
    entry = message.result.add(id="sample-1")
    entry.fields.update({"id": "sample-1", "email": "ada@example.com", "test": True})
    return json_body(message)
