"""How a record event becomes an `action: "subscribe"` delivery: one ReadResultPage per
(installation, record event), its body the reference's WebhookMessage with one
ResultEntry, rendered once with orjson as read pages are (reads.shape), published on
TOPIC_READ_RESULTS under `subscribe/<installation id>/<provider event id>` so messenger
records each event's delivery once however often the batch is processed.

The entry is the record as a read delivers it (`fields`, `mappedFields`, `raw`, `id`,
through the read action's plan) plus the event: `subscribeEventType`,
`providerEventType`, `rawEvent`, `fieldsUpdated` (updates) and `deleted` (deletes,
which carry the id alone: the provider has nothing left to fetch). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from ampmesh.events.v1 import read_result_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.events.v1.provider_events_pb2 import ProviderEvent
from google.protobuf import json_format, struct_pb2

from services.domain import subscribe_names
from services.domain.connectors.base import Connector
from services.domain.read_bodies import set_body
from services.domain.record_shape import result_entry
from services.runtime.envelopes import new_envelope
from services.temporal.reads.events import stamp
from services.temporal.reads.shape import pack_bodies
from services.temporal.subscribe.targets import ObjectRoute, Target

SOURCE = "temporal"
ACTION = "subscribe"
# Bodies up to this size travel as plain JSON (BODY_ENCODING_UNSPECIFIED).
COMPRESS_ABOVE = 16_384


@dataclass
class RecordEvent:
    """One record's event for one installation: a provider event, or several HubSpot
    property changes of one record coalesced (their fields' union, the smallest id)."""

    event: ProviderEvent
    fields_updated: list[str] = field(default_factory=list)

    @property
    def record_id(self) -> str:
        return self.event.record_id

    @property
    def event_type(self) -> str:
        return self.event.subscribe_event_type


def idempotency_key(installation_id: str, event_id: str) -> str:
    return f"subscribe/{installation_id}/{event_id}"


def event_order(event_id: str) -> tuple[int, int, str]:
    """Sorts provider event ids numerically when they are numbers (HubSpot's)."""
    return (0, int(event_id), "") if event_id.isdigit() else (1, 0, event_id)


def header(target: Target, route: ObjectRoute, provider: str) -> dict[str, Any]:
    """WebhookMessage's JSON mapping without result: what a read page's header says,
    without an operation, its time or a read type (the reference leaves them to reads)."""
    shown = route.shown_name
    made: dict[str, Any] = {
        "projectId": target.project_id,
        "provider": provider,
        "workspace": target.workspace,
        "groupRef": target.group_ref,
        "groupName": target.group_name,
        "installationId": target.installation_id,
        "installationUpdateTime": stamp(target.installation_time),
        "objectName": shown,
        "rawObjectName": route.object_name if shown != route.object_name else "",
        "action": ACTION,
        "consumerRef": target.consumer_ref,
        "consumerName": target.consumer_name,
    }
    return {key: value for key, value in made.items() if value}


def entry(
    connector: Connector,
    route: ObjectRoute,
    record_event: RecordEvent,
    raw: dict[str, Any] | None,
) -> dict[str, Any]:
    """The delivered ResultEntry; raw None for a delete (the id alone)."""
    event = record_event.event
    made: dict[str, Any] = result_entry(connector, raw, route.selection) if raw is not None else {}
    made["id"] = event.record_id
    made["subscribeEventType"] = event.subscribe_event_type
    made["providerEventType"] = event.provider_event_type
    made["rawEvent"] = struct_dict(event.raw_event)
    if event.subscribe_event_type == subscribe_names.UPDATE and record_event.fields_updated:
        made["fieldsUpdated"] = record_event.fields_updated
    if event.subscribe_event_type == subscribe_names.DELETE:
        made["deleted"] = True
    return made


def envelope(
    target: Target,
    route: ObjectRoute,
    head: dict[str, Any],
    message: read_result_pb2.WebhookMessage,
    record_event: RecordEvent,
    rendered: dict[str, Any],
) -> Envelope:
    """The ReadResultPage of one record event. head and message: header(...) as a dict
    and parsed (shared by every event of the installation's object)."""
    ((body, count),) = pack_bodies(head, [orjson.dumps(rendered)], limit=2**31)
    page = read_result_pb2.ReadResultPage(
        message=message,
        destination_id=route.destination_id,
        destination_name=route.destination_name,
        integration_id=target.integration_id,
        connection_id=target.connection_id,
        page_number=1,
        part_number=1,
        part_count=1,
    )
    page.message.result_info.type = "inline"
    page.message.result_info.num_records = count
    if len(body) > COMPRESS_ABOVE:
        set_body(page, body)
    else:
        # One record's body: zlib's setup costs more than its few bytes save.
        page.body = body
    return new_envelope(
        project_id=target.project_id,
        idempotency_key=idempotency_key(target.installation_id, record_event.event.event_id),
        source=SOURCE,
        read_result_page=page,
    )


def struct_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as JSON-like data, whole numbers as ints (a Struct keeps every number as
    a double, and `"eventId": 1.0` is not what the provider sent); json_format's
    MessageToDict, which keeps the floats, costs several times more."""
    return {key: _value(value) for key, value in struct.fields.items()}


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_dict(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    return None


def message_of(head: dict[str, Any]) -> read_result_pb2.WebhookMessage:
    message = read_result_pb2.WebhookMessage()
    json_format.ParseDict(head, message, ignore_unknown_fields=True)
    return message
