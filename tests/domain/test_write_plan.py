"""The write plan: how a builder's record becomes what the connector writes, from the
manifest and the installation's config (services/domain/write_plan.py). Pure, so these run
without any infrastructure."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from google.protobuf import json_format

from services.domain.connectors.writes import WriteItem, WriteType
from services.domain.write_plan import (
    FieldDefault,
    FieldRefusal,
    ObjectNotWritten,
    OnUpdate,
    PreparedRecord,
    RecordRefused,
    WritePlan,
    fill_if_empty,
    json_value,
    prepare,
    write_plan,
)

CREATE, UPDATE, DELETE = WriteType.CREATE, WriteType.UPDATE, WriteType.DELETE


def revision(
    writes: list[dict[str, Any]], reads: list[dict[str, Any]] | None = None
) -> manifest_pb2.Integration:
    return json_format.ParseDict(
        {
            "name": "crm",
            "provider": "hubspot",
            "read": {"objects": reads or []},
            "write": {"objects": writes},
        },
        manifest_pb2.Integration(),
    )


def config(
    write: dict[str, dict[str, Any]] | None = None,
    read: dict[str, dict[str, Any]] | None = None,
) -> config_pb2.ConfigContent:
    def section(objects: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
        return {"objects": {k: {"objectName": k, **v} for k, v in (objects or {}).items()}}

    return json_format.ParseDict(
        {"provider": "hubspot", "read": section(read), "write": section(write)},
        config_pb2.ConfigContent(),
    )


def plan(**overrides: Any) -> WritePlan:
    return dataclasses.replace(WritePlan("contacts", "contacts", False), **overrides)


def refusals(write_type: WriteType, record: dict[str, Any], **kwargs: Any) -> list[str]:
    the_plan = kwargs.pop("the_plan", None) or plan()
    with pytest.raises(RecordRefused) as refused:
        prepare(the_plan, write_type, record, **kwargs)
    return [str(r) for r in refused.value.refusals]


# Companies, mapped to "company" for reads, with every kind of field entry.
COMPANIES_READ = {
    "objectName": "companies",
    "destination": "hooks",
    "mapToName": "company",
    "requiredFields": [
        {"fieldName": "name", "mapToName": "company_name"},
        {"fieldName": "domain"},
        {"mapToName": "tier", "prompt": "Which field holds the tier?"},
    ],
    "optionalFields": [
        {"fieldName": "phone", "mapToName": "telephone"},
        {"mapToName": "notes", "prompt": "Where do notes go?"},
        {"mapToName": "owner_name"},
    ],
}
INHERITS = {"objectName": "companies", "inheritMapping": True}


# --- finding the object -------------------------------------------------------------------


def test_an_object_by_its_provider_name_without_a_config() -> None:
    found = write_plan(revision([{"objectName": "contacts"}]), None, "contacts")
    assert found == WritePlan("contacts", "contacts", deletion_enabled=False)


def test_an_object_by_its_read_objects_mapped_name_when_it_inherits_mappings() -> None:
    manifest = revision([INHERITS], [COMPANIES_READ])
    by_mapped = write_plan(manifest, None, "company")
    by_provider = write_plan(manifest, None, "companies")
    assert by_mapped == by_provider
    assert (by_mapped.object_name, by_mapped.shown_name) == ("companies", "company")


def test_the_mapped_name_does_not_name_an_object_that_does_not_inherit() -> None:
    manifest = revision([{"objectName": "companies"}], [COMPANIES_READ])
    with pytest.raises(ObjectNotWritten, match=r"no object 'company' \('company' is the mapped"):
        write_plan(manifest, None, "company")
    # By its provider name it is written, under that name and without mappings.
    plain = write_plan(manifest, None, "companies")
    assert plain.shown_name == "companies" and not plain.mappings and not plain.dropped


def test_an_object_the_revision_does_not_write() -> None:
    manifest = revision([{"objectName": "contacts"}], [COMPANIES_READ])
    with pytest.raises(ObjectNotWritten, match=r"writes no object 'deals'$"):
        write_plan(manifest, config(write={"deals": {}}), "deals")
    # Read-only objects are not writable either.
    with pytest.raises(ObjectNotWritten):
        write_plan(manifest, None, "companies")


def test_the_provider_name_wins_over_a_mapped_name() -> None:
    # The read object of "companies" is mapped to "contacts", which is also a write object.
    manifest = revision(
        [INHERITS, {"objectName": "contacts"}], [{**COMPANIES_READ, "mapToName": "contacts"}]
    )
    assert write_plan(manifest, None, "contacts").object_name == "contacts"


def test_inheriting_without_a_read_object_maps_nothing() -> None:
    found = write_plan(revision([INHERITS]), None, "companies")
    assert found.shown_name == "companies" and not found.mappings


def test_deletes_are_off_unless_the_config_enables_them() -> None:
    manifest = revision([{"objectName": "contacts"}])
    assert not write_plan(manifest, config(write={"contacts": {}}), "contacts").deletion_enabled
    off = config(write={"contacts": {"deletionSettings": {"enabled": False}}})
    assert not write_plan(manifest, off, "contacts").deletion_enabled
    on = config(write={"contacts": {"deletionSettings": {"enabled": True}}})
    assert write_plan(manifest, on, "contacts").deletion_enabled


# --- mappings -----------------------------------------------------------------------------


def test_mappings_from_the_manifest_and_the_config() -> None:
    found = write_plan(
        revision([INHERITS], [COMPANIES_READ]),
        config(
            read={
                "companies": {
                    # The customer's picks; an empty pick maps nothing. The config's pick
                    # wins over the manifest's pair for the same builder name.
                    "selectedFieldMappings": {
                        "tier": "account_tier",
                        "owner_name": "",
                        "telephone": "mobilephone",
                        "extra": "custom_field",
                    }
                }
            }
        ),
        "company",
    )
    assert found.mappings == {
        "company_name": "name",
        "tier": "account_tier",
        "telephone": "mobilephone",
        "extra": "custom_field",
    }
    # Optional customer-picked mappings left unmapped are stripped; no required one is left.
    assert found.dropped == {"notes", "owner_name"}
    assert found.unmapped_required == frozenset()


def test_a_required_mapping_the_customer_never_completed() -> None:
    found = write_plan(revision([INHERITS], [COMPANIES_READ]), None, "companies")
    assert found.unmapped_required == {"tier"}
    # The manifest's own pairs need no config; optional ones apply even unselected.
    assert found.mappings == {"company_name": "name", "telephone": "phone"}


def test_without_inherit_mapping_the_read_mappings_do_not_apply() -> None:
    found = write_plan(
        revision([{"objectName": "companies", "inheritMapping": False}], [COMPANIES_READ]),
        config(read={"companies": {"selectedFieldMappings": {"tier": "account_tier"}}}),
        "companies",
    )
    assert not found.mappings and not found.dropped and not found.unmapped_required
    # A builder name is then just a provider name, for the caller's metadata check to judge.
    assert prepare(found, CREATE, {"tier": "gold"}).item.fields == {"tier": "gold"}


def test_a_record_in_builder_names_is_written_in_provider_names() -> None:
    the_plan = write_plan(
        revision([INHERITS], [COMPANIES_READ]),
        config(read={"companies": {"selectedFieldMappings": {"tier": "account_tier"}}}),
        "company",
    )
    prepared = prepare(
        the_plan,
        CREATE,
        {"company_name": "Acme", "tier": "gold", "domain": "acme.test", "notes": "dropped"},
    )
    assert prepared.item == WriteItem(
        fields={"name": "Acme", "account_tier": "gold", "domain": "acme.test"}
    )
    assert prepared.origins == {
        "name": "record.company_name",
        "account_tier": "record.tier",
        "domain": "record.domain",
    }
    assert prepared.provider_fields == {"name", "account_tier", "domain"}


def test_a_record_may_name_a_mapped_field_by_its_provider_name() -> None:
    the_plan = plan(mappings={"company_name": "name"})
    assert prepare(the_plan, CREATE, {"name": "Acme"}).item.fields == {"name": "Acme"}


def test_a_record_giving_a_required_mapping_the_customer_never_completed() -> None:
    the_plan = plan(unmapped_required=frozenset({"tier"}))
    assert refusals(CREATE, {"tier": "gold"}, the_plan=the_plan) == [
        "record.tier: this installation maps no field of its own to it: the customer has "
        "not completed this required mapping"
    ]


def test_two_fields_landing_on_one_provider_field_are_refused_naming_both() -> None:
    the_plan = plan(mappings={"company_name": "name", "title": "name", "mail": "Email"})
    assert refusals(CREATE, {"company_name": "A", "title": "B"}, the_plan=the_plan) == [
        "record.title: writes the provider's field 'name', as record.company_name does: "
        "send only one of them"
    ]
    # A mapped name and the provider name it maps to; provider names ignore case.
    assert refusals(CREATE, {"name": "A", "company_name": "B"}, the_plan=the_plan) == [
        "record.company_name: writes the provider's field 'name', as record.name does: "
        "send only one of them"
    ]
    assert refusals(
        UPDATE, {"id": "1", "email": "a@x.test", "mail": "b@x.test"}, the_plan=the_plan
    ) == [
        "record.mail: writes the provider's field 'Email', as record.email does: "
        "send only one of them"
    ]


def test_refusals_are_named_under_the_callers_prefix_and_all_listed() -> None:
    listed = refusals(
        UPDATE,
        {"a": float("nan"), "b": object(), "c": "fine"},
        field_prefix="body.batch[3].record",
    )
    assert listed == [
        "body.batch[3].record.id: is required to update a record: the provider's id of it, "
        "a non-empty string (missing)",
        "body.batch[3].record.a: must be a finite number",
        "body.batch[3].record.b: must be a string, a number, a boolean, null, an object or "
        "an array (found object)",
    ]
    refused = RecordRefused([FieldRefusal("body.record.a", "why"), FieldRefusal("x", "because")])
    assert str(refused) == "body.record.a: why; x: because"


# --- ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "found"),
    [({}, "missing"), ({"id": ""}, "empty"), ({"id": " "}, "empty"), ({"id": 12}, "found int")],
)
def test_update_and_delete_need_a_non_empty_string_id(record: dict[str, Any], found: str) -> None:
    for write_type in (UPDATE, DELETE):
        assert refusals(write_type, record) == [
            f"record.id: is required to {write_type.value} a record: the provider's id of "
            f"it, a non-empty string ({found})"
        ]


def test_an_update_takes_the_id_out_of_the_fields() -> None:
    prepared = prepare(plan(), UPDATE, {"id": "501", "email": "a@x.test"})
    assert prepared.item == WriteItem(fields={"email": "a@x.test"}, record_id="501")
    assert prepared.provider_fields == {"email"}


def test_a_delete_writes_the_id_alone() -> None:
    the_plan = plan(
        mappings={"company_name": "name"},
        unmapped_required=frozenset({"tier"}),
        defaults={"source": FieldDefault("app", on_create=True, on_update=OnUpdate.ALWAYS)},
    )
    # Other keys are ignored, even ones that could not be written.
    prepared = prepare(
        the_plan, DELETE, {"id": "501", "company_name": "A", "tier": 1, "bad": float("inf")}
    )
    assert prepared.item == WriteItem(record_id="501")
    assert not prepared.if_empty and not prepared.origins


def test_a_create_carries_no_id_unless_the_builder_mapped_one() -> None:
    assert refusals(CREATE, {"id": "7", "email": "a@x.test"}) == [
        "record.id: a record to create has no id: the provider assigns it"
    ]
    mapped = plan(mappings={"id": "external_id"})
    assert prepare(mapped, CREATE, {"id": "7"}).item == WriteItem(fields={"external_id": "7"})


# --- values -------------------------------------------------------------------------------


def test_values_are_json_and_whole_numbers_are_integers() -> None:
    record = {
        "s": "text",
        "n": None,
        "t": True,
        "i": 5.0,
        "f": 2.5,
        "big": 2.0**60,
        "list": [1.0, "a", {"x": 3.0}],
        "obj": {"street": "Main", "no": 12.0},
    }
    fields = prepare(plan(), CREATE, record).item.fields
    assert fields == {
        "s": "text",
        "n": None,
        "t": True,
        "i": 5,
        "f": 2.5,
        "big": 2.0**60,  # beyond doubles' exact integers: left a double
        "list": [1, "a", {"x": 3}],
        "obj": {"street": "Main", "no": 12},
    }
    assert type(fields["i"]) is int and type(fields["t"]) is bool
    assert type(fields["big"]) is float
    assert json_value((1.0, {"a": -0.0})) == [1, {"a": 0}]


def test_values_that_are_not_json_are_refused_with_where() -> None:
    assert refusals(
        CREATE,
        {
            "a": {"ok": [1, {"deep": float("-inf")}]},
            "b": {1: "x"},
            "c": [b"bytes"],
            "": "x",
        },
    ) == [
        "record.a: must be a finite number at ['ok'][1]['deep']",
        "record.b: object keys must be strings (found int)",
        "record.c: must be a string, a number, a boolean, null, an object or an array at "
        "[0] (found bytes)",
        "record.: field names must be non-empty strings",
    ]


# --- nested fields ------------------------------------------------------------------------


def test_nested_provider_fields_are_written_nested_and_merged() -> None:
    the_plan = plan(
        mappings={"city": "$['address']['city']", "zip": "$['Address']['postal']['code']"}
    )
    prepared = prepare(the_plan, CREATE, {"city": "Oslo", "zip": "0150", "name": "A"})
    assert prepared.item.fields == {
        "address": {"city": "Oslo", "postal": {"code": "0150"}},
        "name": "A",
    }
    assert prepared.origins == {"address": "record.city", "name": "record.name"}
    assert prepared.provider_fields == {"address", "name"}


def test_a_field_and_a_field_nested_in_it_are_refused() -> None:
    the_plan = plan(mappings={"city": "$['address']['city']"})
    assert refusals(CREATE, {"address": {"city": "Bergen"}, "city": "Oslo"}, the_plan=the_plan) == [
        "record.city: writes \"$['address']['city']\", which overlaps 'address', as "
        "record.address does: send only one of them"
    ]


# --- defaults -----------------------------------------------------------------------------


def settings_plan(**settings: dict[str, Any]) -> WritePlan:
    return write_plan(
        revision([{"objectName": "contacts"}]),
        config(write={"contacts": {"selectedFieldSettings": settings}}),
        "contacts",
    )


def test_field_settings_become_defaults() -> None:
    found = settings_plan(
        source={"default": {"stringValue": "app"}},
        score={"default": {"integerValue": 5}, "writeOnCreate": "never"},
        vip={"default": {"booleanValue": False}, "writeOnUpdate": "ifEmpty"},
        stage={"default": {"stringValue": "new"}, "writeOnUpdate": "never"},
        nothing={"writeOnUpdate": "never"},  # no value to write
    )
    assert found.defaults == {
        "source": FieldDefault("app", on_create=True, on_update=OnUpdate.ALWAYS),
        "score": FieldDefault(5, on_create=False, on_update=OnUpdate.ALWAYS),
        "vip": FieldDefault(False, on_create=True, on_update=OnUpdate.IF_EMPTY),
        "stage": FieldDefault("new", on_create=True, on_update=OnUpdate.NEVER),
    }


def test_defaults_on_create() -> None:
    the_plan = settings_plan(
        source={"default": {"stringValue": "app"}},
        score={"default": {"integerValue": 5}, "writeOnCreate": "never"},
        vip={"default": {"booleanValue": False}, "writeOnUpdate": "ifEmpty"},
    )
    prepared = prepare(the_plan, CREATE, {"name": "A"})
    assert prepared.item.fields == {"name": "A", "source": "app", "vip": False}
    assert not prepared.if_empty
    # Defaults are not the record's: origins name the record's fields only.
    assert prepared.origins == {"name": "record.name"}
    assert prepared.provider_fields == {"name", "source", "vip"}


def test_defaults_on_update() -> None:
    the_plan = settings_plan(
        source={"default": {"stringValue": "app"}},
        score={"default": {"integerValue": 5}, "writeOnCreate": "never"},
        vip={"default": {"booleanValue": False}, "writeOnUpdate": "ifEmpty"},
        stage={"default": {"stringValue": "new"}, "writeOnUpdate": "never"},
    )
    prepared = prepare(the_plan, UPDATE, {"id": "9", "name": "A"})
    # writeOnCreate never says nothing about updates.
    assert prepared.item.fields == {"name": "A", "source": "app", "score": 5}
    assert prepared.if_empty == {"vip": False}
    assert prepared.provider_fields == {"name", "source", "score", "vip"}


def test_the_record_wins_over_a_default_even_with_null() -> None:
    the_plan = settings_plan(
        source={"default": {"stringValue": "app"}},
        vip={"default": {"booleanValue": False}, "writeOnUpdate": "ifEmpty"},
    )
    prepared = prepare(the_plan, UPDATE, {"id": "9", "Source": None, "VIP": True})
    assert prepared.item.fields == {"Source": None, "VIP": True}
    assert not prepared.if_empty


def test_a_default_after_mapping_and_nested() -> None:
    the_plan = WritePlan(
        "contacts",
        "people",
        False,
        mappings={"origin": "source", "town": "$['address']['city']"},
        defaults={
            "source": FieldDefault("app", True, OnUpdate.ALWAYS),
            "$['address']['country']": FieldDefault("NO", True, OnUpdate.ALWAYS),
            "$['address']['city']": FieldDefault("Oslo", True, OnUpdate.ALWAYS),
        },
    )
    # The builder's "origin" is the provider's "source": the default stays out.
    prepared = prepare(the_plan, CREATE, {"origin": "web", "town": "Bergen"})
    assert prepared.item.fields == {
        "source": "web",
        "address": {"city": "Bergen", "country": "NO"},
    }
    # A record giving the whole parent object keeps its nested defaults out.
    whole = prepare(the_plan, CREATE, {"address": {"street": "Main"}})
    assert whole.item.fields == {"source": "app", "address": {"street": "Main"}}


def test_legacy_value_defaults() -> None:
    found = write_plan(
        revision([{"objectName": "contacts"}]),
        config(
            write={
                "contacts": {
                    "selectedValueDefaults": {
                        "source": "legacy",
                        "score": {"value": 3},
                        "ratio": {"value": 0.5, "applyOnUpdate": "always"},
                        "vip": {"value": True, "applyOnUpdate": "never"},
                        "odd": {"value": "x", "applyOnUpdate": "sometimes"},
                        "bad": 4,
                    }
                }
            }
        ),
        "contacts",
    )
    assert found.defaults == {
        "source": FieldDefault("legacy", on_create=True, on_update=OnUpdate.ALWAYS),
        "score": FieldDefault(3, on_create=True, on_update=OnUpdate.ALWAYS),
        "ratio": FieldDefault(0.5, on_create=True, on_update=OnUpdate.ALWAYS),
        "vip": FieldDefault(True, on_create=True, on_update=OnUpdate.NEVER),
    }
    assert type(found.defaults["score"].value) is int
    assert prepare(found, UPDATE, {"id": "1"}).item.fields == {
        "source": "legacy",
        "score": 3,
        "ratio": 0.5,
    }
    assert prepare(found, CREATE, {}).item.fields == {
        "source": "legacy",
        "score": 3,
        "ratio": 0.5,
        "vip": True,
    }


def test_field_settings_win_over_legacy_defaults_for_the_same_field() -> None:
    found = write_plan(
        revision([{"objectName": "contacts"}]),
        config(
            write={
                "contacts": {
                    "selectedValueDefaults": {"Source": "legacy", "stage": "legacy"},
                    "selectedFieldSettings": {
                        "source": {"default": {"stringValue": "new"}, "writeOnUpdate": "never"},
                        # A setting without a value leaves the legacy default in place.
                        "stage": {"writeOnUpdate": "never"},
                    },
                }
            }
        ),
        "contacts",
    )
    assert found.defaults == {
        "source": FieldDefault("new", on_create=True, on_update=OnUpdate.NEVER),
        "stage": FieldDefault("legacy", on_create=True, on_update=OnUpdate.ALWAYS),
    }


def test_a_setting_it_does_not_know_writes_nothing() -> None:
    found = settings_plan(
        a={"default": {"stringValue": "x"}, "writeOnCreate": "sometimes"},
        b={"default": {"stringValue": "y"}, "writeOnUpdate": "whenever"},
    )
    assert prepare(found, CREATE, {}).item.fields == {"b": "y"}
    assert prepare(found, UPDATE, {"id": "1"}).item.fields == {"a": "x"}


# --- ifEmpty ------------------------------------------------------------------------------


def test_fill_if_empty_writes_defaults_where_the_provider_has_nothing() -> None:
    the_plan = plan(
        defaults={
            name: FieldDefault("d", True, OnUpdate.IF_EMPTY)
            for name in ("missing", "nulled", "blank", "Taken", "zero", "$['addr']['city']")
        }
    )
    prepared = prepare(the_plan, UPDATE, {"id": "1", "name": "A"})
    assert set(prepared.if_empty) == {
        "missing",
        "nulled",
        "blank",
        "Taken",
        "zero",
        "$['addr']['city']",
    }
    assert prepared.provider_fields == {
        "name",
        "missing",
        "nulled",
        "blank",
        "Taken",
        "zero",
        "addr",
    }
    current = {"nulled": None, "blank": "", "taken": "kept", "zero": 0, "addr": {"city": ""}}
    item = fill_if_empty(prepared, current)
    assert item == WriteItem(
        fields={
            "name": "A",
            "missing": "d",
            "nulled": "d",
            "blank": "d",
            "addr": {"city": "d"},
        },
        record_id="1",
    )
    # The prepared record itself is left as it was.
    assert prepared.item.fields == {"name": "A"}
    assert fill_if_empty(prepare(plan(), UPDATE, {"id": "1"}), {}) == WriteItem(record_id="1")


def test_fill_if_empty_never_replaces_what_the_item_holds() -> None:
    # Only a hand-made record can hold both (prepare keeps such defaults out).
    prepared = PreparedRecord(
        item=WriteItem(fields={"addr": "Main 1", "name": "A"}, record_id="1"),
        if_empty={"$['addr']['city']": "d", "NAME": "d"},
    )
    assert fill_if_empty(prepared, {}) == prepared.item
