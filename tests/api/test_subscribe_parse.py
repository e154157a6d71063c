"""Providers' webhook bodies become events.v1.ProviderEvent, and what is not one is
refused naming the field (services/api/subscribe/parse.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format

from services.api.subscribe.parse import Malformed, parse_hubspot, parse_salesforce


def hubspot_event(**changes: Any) -> dict[str, Any]:
    event = {
        "eventId": 1001,
        "subscriptionId": 55,
        "portalId": 62515,
        "appId": 77,
        "occurredAt": 1765000000123,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 123,
        "propertyName": "firstname",
        "propertyValue": "Zoë",
        "changeSource": "CRM",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


def test_a_hubspot_batch_is_one_event_each_in_order() -> None:
    created = hubspot_event(
        eventId=1002,
        subscriptionType="deal.creation",
        objectId=9,
        propertyName=None,
        propertyValue=None,
    )
    events = parse_hubspot(json.dumps([hubspot_event(), created]).encode())
    update, creation = events
    assert (update.event_id, update.account_id, update.record_id) == ("1001", "62515", "123")
    assert (update.object_name, update.subscribe_event_type) == ("contacts", "update")
    assert update.provider_event_type == "contact.propertyChange"
    assert list(update.fields_updated) == ["firstname"]
    assert json_format.MessageToDict(update.values) == {"firstname": "Zoë"}
    assert json_format.MessageToDict(update.raw_event)["changeSource"] == "CRM"
    assert update.occur_time.ToMilliseconds() == 1765000000123
    assert (creation.object_name, creation.subscribe_event_type) == ("deals", "create")
    assert list(creation.fields_updated) == []
    assert parse_hubspot(b"[]") == []


def test_unknown_hubspot_objects_and_kinds_pass_as_other() -> None:
    merged, product = parse_hubspot(
        json.dumps(
            [
                hubspot_event(subscriptionType="contact.merge", propertyName=None),
                hubspot_event(eventId=2, subscriptionType="product.creation", propertyName=None),
            ]
        ).encode()
    )
    assert (merged.object_name, merged.subscribe_event_type) == ("contacts", "other")
    assert (product.object_name, product.subscribe_event_type) == ("product", "other")


@pytest.mark.parametrize(
    ("body", "field", "why"),
    [
        (b"{not json", "body", "is not JSON"),
        (b"\xff\xfe", "body", "is not JSON"),
        (b'{"eventId": 1}', "body", "must be a list"),
        (b"[1]", "body[0]", "must be an object"),
        (json.dumps([hubspot_event(eventId=None)]).encode(), "body[0].eventId", "is required"),
        (json.dumps([hubspot_event(portalId=True)]).encode(), "body[0].portalId", "must be an id"),
        (
            json.dumps([hubspot_event(), hubspot_event(subscriptionType=None)]).encode(),
            "body[1].subscriptionType",
            "is required",
        ),
        (json.dumps([hubspot_event(objectId=None)]).encode(), "body[0].fromObjectId", "required"),
        (json.dumps([hubspot_event(occurredAt="today")]).encode(), "body[0].occurredAt", "milli"),
        (json.dumps([hubspot_event(propertyName=3)]).encode(), "body[0].propertyName", "string"),
        (json.dumps([hubspot_event()] * 1001).encode(), "body", "at most 1000"),
    ],
)
def test_malformed_hubspot_bodies_name_the_field(body: bytes, field: str, why: str) -> None:
    with pytest.raises(Malformed, match=why) as raised:
        parse_hubspot(body)
    assert raised.value.field == field


ORG = "00D5g000004fGhIEAU"


def salesforce_event(record_ids: list[Any], **header: Any) -> dict[str, Any]:
    change_header = {
        "entityName": "Account",
        "recordIds": record_ids,
        "changeType": "UPDATE",
        "changedFields": ["Name", "LastModifiedDate"],
        "changeOrigin": "",
        "transactionKey": "0001",
        "sequenceNumber": 1,
        "commitTimestamp": 1765000000456,
        "commitNumber": 10,
        "commitUser": "005000000000001",
    }
    change_header.update(header)
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "AccountChangeEvent",
        "source": f"aws.partner/salesforce.com/{ORG}/0YLxx0000000001",
        "account": "000000000000",
        "time": "2026-12-07T19:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "payload": {
                "ChangeEventHeader": change_header,
                "Name": "Acme",
                "LastModifiedDate": "2026-12-07T19:00:00Z",
            },
            "schema": "s",
            "event": {"replayId": "5", "EventUuid": "uuid-1"},
        },
    }


def test_a_salesforce_change_is_one_event_per_record() -> None:
    org, (only,) = parse_salesforce(json.dumps(salesforce_event(["001A"])).encode())
    assert org == ORG
    assert (only.event_id, only.account_id, only.record_id) == ("uuid-1", ORG, "001A")
    assert (only.object_name, only.provider_event_type, only.subscribe_event_type) == (
        "Account",
        "UPDATE",
        "update",
    )
    assert list(only.fields_updated) == ["Name", "LastModifiedDate"]
    assert json_format.MessageToDict(only.values)["Name"] == "Acme"
    assert "ChangeEventHeader" not in json_format.MessageToDict(only.values)
    assert only.occur_time.ToMilliseconds() == 1765000000456

    _, events = parse_salesforce(
        json.dumps(salesforce_event(["001A", "001B"], changeType="DELETE")).encode()
    )
    assert [e.event_id for e in events] == ["uuid-1/001A", "uuid-1/001B"]
    assert [e.record_id for e in events] == ["001A", "001B"]
    assert {e.subscribe_event_type for e in events} == {"delete"}
    assert all(not e.fields_updated for e in events)


def test_salesforce_custom_objects_and_gaps() -> None:
    _, (event,) = parse_salesforce(
        json.dumps(
            salesforce_event(["a01X"], entityName="Invoice__c", changeType="GAP_UPDATE")
        ).encode()
    )
    assert (event.object_name, event.subscribe_event_type) == ("Invoice__c", "other")


def _without(path: list[str]) -> bytes:
    event = salesforce_event(["001A"])
    holder: Any = event
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    return json.dumps(event).encode()


HEADER = "body.detail.payload.ChangeEventHeader"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", "body"),
        (b"nope", "body"),
        (_without(["source"]), "body.source"),
        (
            json.dumps({**salesforce_event(["1"]), "source": "aws.partner/other/x"}).encode(),
            "body.source",
        ),
        (_without(["detail"]), "body.detail"),
        (_without(["detail", "payload", "ChangeEventHeader"]), HEADER),
        (
            _without(["detail", "payload", "ChangeEventHeader", "entityName"]),
            f"{HEADER}.entityName",
        ),
        (
            _without(["detail", "payload", "ChangeEventHeader", "changeType"]),
            f"{HEADER}.changeType",
        ),
        (json.dumps(salesforce_event([])).encode(), f"{HEADER}.recordIds"),
        (json.dumps(salesforce_event([7])).encode(), f"{HEADER}.recordIds"),
        (
            json.dumps(salesforce_event(["1"], changedFields="Name")).encode(),
            f"{HEADER}.changedFields",
        ),
        (_without(["detail", "event", "EventUuid"]), "body.detail.event.EventUuid"),
    ],
)
def test_malformed_salesforce_events_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(Malformed) as raised:
        parse_salesforce(body)
    assert raised.value.field == field
