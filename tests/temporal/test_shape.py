"""Record shaping: selection from config and manifest, ResultEntry rendering, body packing."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
from ampmesh.manifest.v1 import config_pb2

from services.domain.connectors.hubspot import HubSpotConnector
from services.domain.connectors.salesforce import SalesforceConnector
from services.temporal.reads import shape

HUBSPOT = HubSpotConnector()
SALESFORCE = SalesforceConnector()


def _contact(number: int) -> dict[str, Any]:
    return {
        "id": str(1000 + number),
        "properties": {
            "createdate": "2026-10-01T00:00:00.000Z",
            "hs_lastmodifieddate": "2026-10-30T12:00:00.123Z",
            "hs_object_id": str(1000 + number),
            "firstname": "Ada",
            "lastname": "Lovelace",
            "email": f"ada{number}@example.com",
            "company": "Acme",
            "phone": "+1-555-1234",
            "lifecyclestage": "customer",
        },
        "createdAt": "2026-10-01T00:00:00.000Z",
        "updatedAt": "2026-10-30T12:00:00.123Z",
        "archived": False,
    }


def _config(**kwargs: Any) -> config_pb2.ReadConfigObject:
    value_mappings = kwargs.pop("selected_value_mappings", {})
    read = config_pb2.ReadConfigObject(object_name="contacts", **kwargs)
    for name, mapping in value_mappings.items():
        read.selected_value_mappings[name].update(mapping)
    return read


def test_selected_and_mapped_fields() -> None:
    read = _config(
        selected_fields={"Email": True, "firstname": True, "company": False},
        selected_field_mappings={"stage": "lifecyclestage"},
    )
    manifest = {
        "objectName": "contacts",
        "requiredFields": [
            {"fieldName": "lastname", "mapToName": "surname"},
            {"fieldName": "phone"},
            {"mapToName": "stage", "prompt": "Which field is the stage?"},
        ],
        "optionalFields": [{"fieldName": "email", "mapToName": "mail"}, {"fieldName": "city"}],
    }
    selection = shape.selection_for(read, manifest)
    assert sorted(selection.provider_fields()) == sorted(
        ["Email", "firstname", "lifecyclestage", "lastname", "phone"]
    )
    entry = orjson.loads(shape.render_record(HUBSPOT, _contact(1), selection))
    assert list(entry) == ["fields", "mappedFields", "raw", "id"]
    assert entry["id"] == "1001"
    assert entry["fields"] == {"firstname": "Ada", "phone": "+1-555-1234"}
    assert entry["mappedFields"] == {
        "stage": "customer",
        "surname": "Lovelace",
        "mail": "ada1@example.com",
    }
    assert entry["raw"] == _contact(1)


def test_all_fields_and_value_mappings() -> None:
    read = _config(
        selected_fields_auto="all",
        selected_field_mappings={"stage": "lifecyclestage"},
        # Delivered value -> provider value, as the reference defines it.
        selected_value_mappings={"stage": {"won": "customer"}, "Company": {"ACME": "Acme"}},
    )
    selection = shape.selection_for(read, None)
    assert selection.fields is None and selection.provider_fields() == []
    entry = orjson.loads(shape.render_record(HUBSPOT, _contact(2), selection))
    assert entry["mappedFields"] == {"stage": "won"}
    assert "lifecyclestage" not in entry["fields"]
    assert entry["fields"]["company"] == "ACME"  # an unmapped field named by the key
    assert entry["fields"]["email"] == "ada2@example.com"
    assert entry["raw"]["properties"]["lifecyclestage"] == "customer"  # raw untouched

    other = _contact(3)
    other["properties"]["lifecyclestage"] = "lead"  # no mapping for it: unchanged
    assert orjson.loads(shape.render_record(HUBSPOT, other, selection))["mappedFields"] == {
        "stage": "lead"
    }


def test_salesforce_fields_are_lower_cased_without_attributes() -> None:
    raw = {
        "attributes": {"type": "Account", "url": "/services/data/v60.0/sobjects/Account/001x"},
        "Id": "001x",
        "Name": "Acme 1",
        "Industry": "Retail",
        "SystemModstamp": "2026-10-30T12:00:00.000+0000",
    }
    read = config_pb2.ReadConfigObject(
        object_name="Account",
        selected_fields={"Name": True, "industry": True},
        selected_field_mappings={"sector": "Industry"},
    )
    selection = shape.selection_for(read, None)
    entry = orjson.loads(shape.render_record(SALESFORCE, raw, selection))
    assert entry == {
        "fields": {"name": "Acme 1"},
        "mappedFields": {"sector": "Retail"},
        "raw": raw,
        "id": "001x",
    }


HEADER = {
    "projectId": "p1",
    "provider": "hubspot",
    "objectName": "contacts",
    "action": "read",
    "readType": "backfill",
}


def test_pack_bodies_splits_in_order_under_the_limit() -> None:
    selection = shape.selection_for(_config(selected_fields_auto="all"), None)
    records = [shape.render_record(HUBSPOT, _contact(n), selection) for n in range(1000)]
    limit = 50_000
    parts = shape.pack_bodies(HEADER, records, limit)
    assert len(parts) > 1
    seen: list[str] = []
    for body, count in parts:
        assert len(body) <= limit
        message = json.loads(body)  # the standard parser, not orjson
        assert message["resultInfo"] == {"type": "inline", "numRecords": count}
        assert len(message["result"]) == count
        assert {k: message[k] for k in HEADER} == HEADER
        seen += [entry["id"] for entry in message["result"]]
    assert seen == [str(1000 + n) for n in range(1000)]
    # Greedy: each part but the last could not take the next record.
    sizes = [len(body) for body, _ in parts]
    first_of_next = len(records[parts[0][1]])
    assert sizes[0] + first_of_next + 1 > limit


def test_pack_bodies_edge_cases() -> None:
    header = {**HEADER, "resultInfo": {"type": "url"}, "result": [{"stale": True}]}
    big = orjson.dumps({"id": "big", "fields": {"blob": "x" * 5000}})
    small = orjson.dumps({"id": "small"})
    parts = shape.pack_bodies(header, [small, big, small], limit=1000)
    assert [count for _, count in parts] == [1, 1, 1]
    assert len(parts[1][0]) > 1000  # an oversized record still goes, alone
    assert [json.loads(body)["result"][0]["id"] for body, _ in parts] == ["small", "big", "small"]
    assert json.loads(parts[0][0])["resultInfo"] == {"type": "inline", "numRecords": 1}

    (empty, count), *_ = shape.pack_bodies({}, [])
    assert count == 0 and json.loads(empty) == {
        "resultInfo": {"type": "inline", "numRecords": 0},
        "result": [],
    }


def test_render_and_pack_speed() -> None:
    """Prints records/s for HubSpot-contact-sized records (no timed assertion)."""
    read = _config(
        selected_fields={"email": True, "firstname": True, "lastname": True},
        selected_field_mappings={"stage": "lifecyclestage"},
    )
    selection = shape.selection_for(read, None)
    raws = [_contact(n) for n in range(50_000)]
    started = time.perf_counter()
    rendered = [shape.render_record(HUBSPOT, raw, selection) for raw in raws]
    parts = shape.pack_bodies(HEADER, rendered)
    took = time.perf_counter() - started
    assert sum(count for _, count in parts) == len(raws)
    print(f"\nrender + pack: {len(raws) / took:,.0f} records/s ({len(parts)} bodies)")
