"""The read plan: one object of one installation resolved from the manifest and the config
(services/domain/read_plan.py). Pure, so these run without any infrastructure."""

from __future__ import annotations

from typing import Any

import pytest
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from google.protobuf import json_format

from services.domain.read_plan import (
    ObjectNotRead,
    configured_plans,
    find_plan,
    read_plan,
    selection,
)


def revision(*objects: dict[str, Any]) -> manifest_pb2.Integration:
    return json_format.ParseDict(
        {"name": "crm", "provider": "hubspot", "read": {"objects": list(objects)}},
        manifest_pb2.Integration(),
    )


def config(**objects: dict[str, Any]) -> config_pb2.ConfigContent:
    return json_format.ParseDict(
        {
            "provider": "hubspot",
            "read": {"objects": {k: {"objectName": k, **v} for k, v in objects.items()}},
        },
        config_pb2.ConfigContent(),
    )


CONTACTS = {
    "objectName": "contacts",
    "destination": "hooks",
    "schedule": "*/30 * * * *",
    "backfill": {"defaultPeriod": {"days": 30}},
    "delivery": {"pageSize": 200},
}


def test_the_manifest_decides_what_the_config_leaves_out() -> None:
    plan = read_plan(revision(CONTACTS), config(contacts={}), "contacts", config_id="c1")
    assert plan.config_id == "c1"
    assert plan.integration_name == "crm"
    assert (plan.object_name, plan.mapped_name) == ("contacts", "")
    assert plan.declared and not plan.disabled
    assert plan.schedule == "*/30 * * * *"
    assert plan.backfill.days == 30 and not plan.backfill.full_history
    assert plan.page_size == 200
    assert plan.destination_name == "hooks"
    assert plan.destination_id == ""  # nobody said
    assert not plan.selection.all_fields


def test_an_object_the_config_does_not_configure_reads_with_the_manifest_alone() -> None:
    plan = read_plan(revision(CONTACTS), None, "contacts")
    assert plan.schedule == "*/30 * * * *" and plan.backfill.days == 30


def test_the_config_overrides_schedule_backfill_and_destination() -> None:
    plan = read_plan(
        revision(CONTACTS),
        config(
            contacts={
                "schedule": "0 * * * *",
                "destination": "other",
                "backfill": {"defaultPeriod": {"fullHistory": True}},
            }
        ),
        "contacts",
        destination_ids={"hooks": "d-hooks", "other": "d-other"},
    )
    assert plan.schedule == "0 * * * *"
    assert plan.backfill.full_history
    assert (plan.destination_name, plan.destination_id) == ("other", "d-other")


def test_a_period_of_no_days_reads_no_history() -> None:
    plan = read_plan(
        revision(CONTACTS),
        config(contacts={"backfill": {"defaultPeriod": {"days": 0}}}),
        "contacts",
    )
    assert not plan.HasField("backfill")
    bare = read_plan(revision({"objectName": "contacts", "destination": "hooks"}), None, "contacts")
    assert not bare.HasField("backfill") and bare.page_size == 0 and bare.schedule == ""


def test_fields_and_mappings_from_manifest_and_config() -> None:
    manifest = {
        "objectName": "contacts",
        "destination": "hooks",
        "mapToName": "people",
        "requiredFields": [
            {"fieldName": "lastname", "mapToName": "surname"},
            {"fieldName": "phone"},
            {"mapToName": "stage", "prompt": "Which field is the stage?"},
        ],
        "optionalFields": [{"fieldName": "email", "mapToName": "mail"}, {"fieldName": "city"}],
    }
    plan = read_plan(
        revision(manifest),
        config(
            contacts={
                "selectedFields": {"Email": True, "firstname": True, "company": False},
                "selectedFieldMappings": {"stage": "lifecyclestage"},
                "selectedValueMappings": {"stage": {"won": "closedwon", "odd": 3}},
            }
        ),
        "contacts",
    )
    assert plan.mapped_name == "people"
    chosen = plan.selection
    assert sorted(chosen.requested_fields) == sorted(
        ["Email", "firstname", "lifecyclestage", "lastname", "phone"]
    )
    # Mapped fields are delivered under the builder's name only.
    assert list(chosen.fields) == ["firstname", "phone"]
    assert {(m.map_to_name, m.field_name) for m in chosen.mappings} == {
        ("stage", "lifecyclestage"),
        ("surname", "lastname"),
        ("mail", "email"),
    }
    # Value mappings in the reading direction, string values only.
    (stage,) = chosen.value_mappings
    assert (stage.field, dict(stage.values)) == ("stage", {"closedwon": "won"})


def test_all_fields() -> None:
    chosen = selection(
        config_pb2.ReadConfigObject(object_name="contacts", selected_fields_auto="all"), None
    )
    assert chosen.all_fields and not chosen.fields


def test_a_disabled_object_has_a_plan_that_says_so() -> None:
    plan = read_plan(revision(CONTACTS), config(contacts={"disabled": True}), "contacts")
    assert plan.disabled and plan.declared


def test_an_object_the_manifest_does_not_declare() -> None:
    with pytest.raises(ObjectNotRead, match="no object 'deals'"):
        read_plan(revision(CONTACTS), config(contacts={}), "deals")
    # A config may still hold it (disabled by a destructive deploy): a plan reading nothing.
    plans = configured_plans(revision(CONTACTS), config(contacts={}, deals={"disabled": True}))
    assert sorted(plans) == ["contacts", "deals"]
    assert plans["contacts"].declared
    assert not plans["deals"].declared and plans["deals"].disabled


def test_find_plan_by_provider_or_mapped_name() -> None:
    plans = configured_plans(revision({**CONTACTS, "mapToName": "people"}), config(contacts={}))
    assert find_plan(plans, "contacts") is plans["contacts"]
    assert find_plan(plans, "people") is plans["contacts"]
    assert find_plan(plans, "deals") is None
