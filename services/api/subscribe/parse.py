"""Providers' webhook bodies -> events.v1.ProviderEvent, refusing what is not one.

- HubSpot: a JSON array of events (at most 100 per request, several records and several
  properties of one record among them), each
  `{"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "subscriptionType",
  "objectId", "propertyName"?, "propertyValue"?, ...}`.
- Salesforce (change data capture through an event relay): one EventBridge event whose
  `detail.payload` holds the change event, `ChangeEventHeader` naming the entity, the
  change type and every record id the change touched (one ProviderEvent each), beside
  the changed fields' new values; the org id is in `source`
  (`aws.partner/salesforce.com/<orgId>/<relayId>`).

Malformed raises Malformed(field, why): the field as a JSON path into the body
(`body[2].portalId`, `body.detail.payload.ChangeEventHeader.recordIds`), which the api
answers 400 with. Nothing here logs or quotes the body's values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ampmesh.events.v1 import provider_events_pb2
from google.protobuf import struct_pb2

from services.domain import subscribe_names

# More than HubSpot ever sends in one request (100), less than would let one request
# hold the api's loop for long.
MAX_HUBSPOT_EVENTS = 1000
# Salesforce lists at most a few hundred record ids per change event.
MAX_RECORD_IDS = 10000
SALESFORCE_SOURCE_PREFIX = "aws.partner/salesforce.com/"


class Malformed(Exception):
    """The body is not the provider's event shape; field says where."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise Malformed("body", "is not JSON") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _id(item: dict[str, Any], name: str, at: str, *, required: bool = True) -> str:
    """A provider id: an integer (HubSpot's are) or a non-empty string, as text."""
    value = item.get(name)
    if value is None and not required:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is None:
        raise Malformed(f"{at}.{name}", "is required")
    raise Malformed(f"{at}.{name}", f"must be an id (a number or a string), not {_kind(value)}")


def _text(item: dict[str, Any], name: str, at: str) -> str:
    value = item.get(name)
    if isinstance(value, str) and value:
        return value
    if value is None:
        raise Malformed(f"{at}.{name}", "is required")
    raise Malformed(f"{at}.{name}", f"must be a non-empty string, not {_kind(value)}")


def _object(value: Any, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(at, f"must be an object, not {_kind(value)}")
    return value


def _millis_time(value: Any, at: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Malformed(at, f"must be milliseconds since the epoch, not {_kind(value)}")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise Malformed(at, "is not a time") from None


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _event(
    *,
    event_id: str,
    account_id: str,
    object_name: str,
    record_id: str,
    provider_event_type: str,
    subscribe_event_type: str,
    fields_updated: list[str],
    raw: dict[str, Any],
    occurred: datetime | None,
    values: dict[str, Any],
) -> provider_events_pb2.ProviderEvent:
    event = provider_events_pb2.ProviderEvent(
        event_id=event_id,
        account_id=account_id,
        object_name=object_name,
        record_id=record_id,
        provider_event_type=provider_event_type,
        subscribe_event_type=subscribe_event_type,
        fields_updated=fields_updated,
        raw_event=_struct(raw),
        values=_struct(values),
    )
    if occurred is not None:
        event.occur_time.FromDatetime(occurred)
    return event


def parse_hubspot(body: bytes) -> list[provider_events_pb2.ProviderEvent]:
    """A HubSpot webhook request's events, in the order sent."""
    items = _json(body)
    if not isinstance(items, list):
        raise Malformed("body", f"must be a list of HubSpot events, not {_kind(items)}")
    if len(items) > MAX_HUBSPOT_EVENTS:
        raise Malformed("body", f"has {len(items)} events (at most {MAX_HUBSPOT_EVENTS})")
    events = []
    for n, value in enumerate(items):
        at = f"body[{n}]"
        item = _object(value, at)
        subscription_type = _text(item, "subscriptionType", at)
        parsed = subscribe_names.parse_hubspot_event_type(subscription_type)
        if parsed is None:
            # An object we have no name for: it reaches no installation's config, but the
            # provider is told it was accepted (it will not stop sending it for a 400).
            object_name, event_type = subscription_type.partition(".")[0], subscribe_names.OTHER
        else:
            object_name, event_type = parsed
        # Association changes name the record they start from.
        record_id = _id(item, "objectId", at, required=False) or _id(item, "fromObjectId", at)
        property_name = item.get("propertyName")
        fields: list[str] = []
        values: dict[str, Any] = {}
        if property_name is not None:
            if not isinstance(property_name, str) or not property_name:
                raise Malformed(f"{at}.propertyName", "must be a non-empty string")
            if event_type == subscribe_names.UPDATE:
                fields.append(property_name)
            if "propertyValue" in item:
                values[property_name] = item["propertyValue"]
        events.append(
            _event(
                event_id=_id(item, "eventId", at),
                account_id=_id(item, "portalId", at),
                object_name=object_name,
                record_id=record_id,
                provider_event_type=subscription_type,
                subscribe_event_type=event_type,
                fields_updated=fields,
                raw=item,
                occurred=_millis_time(item.get("occurredAt"), f"{at}.occurredAt"),
                values=values,
            )
        )
    return events


def salesforce_org(event: dict[str, Any]) -> str:
    """The org id an EventBridge event names in its `source`."""
    source = event.get("source")
    if not isinstance(source, str) or not source.startswith(SALESFORCE_SOURCE_PREFIX):
        raise Malformed("body.source", f"must be {SALESFORCE_SOURCE_PREFIX}<orgId>/<relayId>")
    org = source[len(SALESFORCE_SOURCE_PREFIX) :].split("/", 1)[0]
    if not org.isalnum():
        raise Malformed("body.source", "names no org id")
    return org


def parse_salesforce(body: bytes) -> tuple[str, list[provider_events_pb2.ProviderEvent]]:
    """A relayed Salesforce change event: its org id, and one event per record it names."""
    event = _object(_json(body), "body")
    org = salesforce_org(event)
    detail = _object(event.get("detail"), "body.detail")
    payload = _object(detail.get("payload"), "body.detail.payload")
    at = "body.detail.payload.ChangeEventHeader"
    header = _object(payload.get("ChangeEventHeader"), at)
    entity = _text(header, "entityName", at)
    change_type = _text(header, "changeType", at)
    record_ids = header.get("recordIds")
    if (
        not isinstance(record_ids, list)
        or not record_ids
        or not all(isinstance(r, str) and r for r in record_ids)
    ):
        raise Malformed(f"{at}.recordIds", "must be a non-empty list of record ids")
    if len(record_ids) > MAX_RECORD_IDS:
        raise Malformed(f"{at}.recordIds", f"has more than {MAX_RECORD_IDS} ids")
    changed = header.get("changedFields", [])
    if not isinstance(changed, list) or not all(isinstance(f, str) for f in changed):
        raise Malformed(f"{at}.changedFields", "must be a list of field names")
    uuid = _text(
        _object(detail.get("event"), "body.detail.event"), "EventUuid", "body.detail.event"
    )
    event_type = subscribe_names.salesforce_event_type(change_type)
    values = {k: v for k, v in payload.items() if k != "ChangeEventHeader"}
    occurred = _millis_time(header.get("commitTimestamp"), f"{at}.commitTimestamp")
    several = len(record_ids) > 1
    return org, [
        _event(
            event_id=f"{uuid}/{record_id}" if several else uuid,
            account_id=org,
            object_name=entity,
            record_id=record_id,
            provider_event_type=change_type,
            subscribe_event_type=event_type,
            fields_updated=list(changed) if event_type == subscribe_names.UPDATE else [],
            raw=event,
            occurred=occurred,
            values=values,
        )
        for record_id in dict.fromkeys(record_ids)
    ]
