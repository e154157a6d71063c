"""An installation's config content against its integration's latest revision
(services/api/platform/config_checks.py): each rule, each problem keyed by its REST field
name under the prefix given, without a database."""

from __future__ import annotations

from typing import Any

from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from google.protobuf import json_format

from services.api.platform.config_checks import ContentChecker

REVISION = json_format.ParseDict(
    {
        "name": "crm-sync",
        "provider": "hubspot",
        "read": {"objects": [{"objectName": "companies"}, {"objectName": "contacts"}]},
        "write": {"objects": [{"objectName": "deals"}]},
        "subscribe": {"objects": [{"objectName": "companies"}]},
    },
    manifest_pb2.Integration(),
)
DESTINATIONS = {"crmWebhook"}
AT = "body.config.content."
COMPANIES = {"objectName": "companies", "destination": "crmWebhook", "schedule": "0 * * * *"}
SUBSCRIBED = {
    "objectName": "companies",
    "destination": "crmWebhook",
    "inheritFieldsAndMappings": True,
    "createEvent": {"enabled": "always"},
}


def problems(content: dict[str, Any]) -> dict[str, str]:
    checker = ContentChecker(REVISION, DESTINATIONS, AT, {})
    checker.check_all(json_format.ParseDict(content, config_pb2.ConfigContent()))
    return checker.problems


def read(**fields: Any) -> dict[str, Any]:
    return {"read": {"objects": {"companies": {**COMPANIES, **fields}}}}


def test_a_good_config_has_no_problems() -> None:
    good = {
        "provider": "hubspot",
        "read": {"objects": {"companies": COMPANIES}},
        "write": {
            "objects": {
                "deals": {
                    "objectName": "deals",
                    "deletionSettings": {"enabled": True},
                    "selectedFieldSettings": {
                        "amount": {"default": {"integerValue": 5}, "writeOnUpdate": "ifEmpty"}
                    },
                    "selectedValueDefaults": {
                        "stage": "new",
                        "owner": {"value": 3, "applyOnUpdate": "never"},
                    },
                }
            }
        },
        "subscribe": {"objects": {"companies": SUBSCRIBED}},
    }
    assert problems(good) == {}
    assert problems({}) == {}


def test_objects_must_be_declared_in_the_same_section() -> None:
    found = problems({"write": {"objects": {"companies": {"objectName": "companies"}}}})
    assert list(found) == [f"{AT}write.objects.companies"]
    assert "declares no write object 'companies'" in found[f"{AT}write.objects.companies"]
    assert "(declared: deals)" in found[f"{AT}write.objects.companies"]
    typo = problems({"read": {"objects": {"compnies": {"objectName": "compnies"}}}})
    assert "did you mean 'companies'?" in typo[f"{AT}read.objects.compnies"]


def test_the_object_name_must_be_its_key() -> None:
    at = f"{AT}read.objects.companies.objectName"
    assert "is required" in problems(read(objectName=""))[at]
    assert (
        "is 'contacts' but the object's key is 'companies'"
        in (problems(read(objectName="contacts"))[at])
    )


def test_provider_and_proxy_follow_the_revision() -> None:
    found = problems({"provider": "salesforce", "proxy": {"enabled": True}})
    assert "the integration's provider is 'hubspot'" in found[f"{AT}provider"]
    assert "does not enable proxy" in found[f"{AT}proxy.enabled"]


def test_read_rules() -> None:
    at = f"{AT}read.objects.companies."
    assert f"{at}schedule" in problems(read(schedule="* * * * *"))
    assert (
        "no destination named 'crmWebhok'; did you mean 'crmWebhook'?"
        in (problems(read(destination="crmWebhok"))[f"{at}destination"])
    )
    assert problems(read(destination="")) == {}  # a read's destination is optional
    assert f"{at}selectedFields" in problems(read(selectedFields={" bad": True}))
    assert f"{at}selectedFieldMappings" in problems(read(selectedFieldMappings={"a b": "name"}))
    assert f"{at}selectedValueMappings.stage" in problems(
        read(selectedValueMappings={"stage": {"a": 1}})
    )
    assert f"{at}selectedFieldsAuto" in problems(read(selectedFieldsAuto="some"))
    assert f"{at}backfill.defaultPeriod" in problems(read(backfill={}))
    assert f"{at}backfill.defaultPeriod.days" in problems(
        read(backfill={"defaultPeriod": {"days": -1}})
    )
    assert problems(read(backfill={"defaultPeriod": {"fullHistory": True}})) == {}


def test_filters() -> None:
    at = f"{AT}read.objects.companies.fieldFilters"
    found = problems(
        read(
            fieldFilters=[
                {"fieldName": "a", "operator": "eq", "value": "x"},
                {"fieldName": "a", "operator": "eq", "value": 1},
                {"fieldName": "", "operator": "ne", "value": {"no": 1}},
            ]
        )
    )
    assert "already has a condition" in found[f"{at}[1].fieldName"]
    assert f"{at}[2].fieldName" in found
    assert "must be 'eq' (found 'ne')" in found[f"{at}[2].operator"]
    assert "a string, a boolean or a number" in found[f"{at}[2].value"]
    assert f"{at}[0].fieldName" not in found


def test_write_rules() -> None:
    at = f"{AT}write.objects.deals."

    def write(**fields: Any) -> dict[str, str]:
        return problems({"write": {"objects": {"deals": {"objectName": "deals", **fields}}}})

    assert f"{at}deletionSettings.enabled" in write(deletionSettings={})
    settings = write(
        selectedFieldSettings={
            " bad": {},
            "amount": {"writeOnCreate": "maybe", "writeOnUpdate": "sometimes", "default": {}},
        }
    )
    assert set(settings) == {
        f"{at}selectedFieldSettings. bad",
        f"{at}selectedFieldSettings.amount.writeOnCreate",
        f"{at}selectedFieldSettings.amount.writeOnUpdate",
        f"{at}selectedFieldSettings.amount.default",
    }
    defaults = write(
        selectedValueDefaults={
            "a": 1,
            "b": {"value": [1]},
            "c": {"value": "x", "applyOnUpdate": "sometimes"},
            "d": {"value": "x", "extra": 1},
        }
    )
    assert set(defaults) == {f"{at}selectedValueDefaults.{k}" for k in "abcd"}


def test_subscribe_rules() -> None:
    at = f"{AT}subscribe.objects.companies."

    def subscribe(**fields: Any) -> dict[str, str]:
        entry = {**SUBSCRIBED, **fields}
        return problems({"subscribe": {"objects": {"companies": entry}}})

    assert "is required" in subscribe(destination="")[f"{at}destination"]
    bare = {"objectName": "companies", "destination": "crmWebhook"}
    assert f"{at}inheritFieldsAndMappings" in problems(
        {"subscribe": {"objects": {"companies": bare}}}
    )
    assert (
        "found 'sometimes'"
        in subscribe(deleteEvent={"enabled": "sometimes"})[f"{at}deleteEvent.enabled"]
    )
    assert f"{at}updateEvent.watchFieldsAuto" in subscribe(
        updateEvent={"enabled": "always", "watchFieldsAuto": "some"}
    )
    assert f"{at}updateEvent.requiredWatchFields" in subscribe(
        updateEvent={"enabled": "always", "requiredWatchFields": [" bad"]}
    )
    quota = {"quotaOptimization": {"enabled": True}}
    assert f"{at}providerOptions.quotaOptimization.enabled" in subscribe(providerOptions=quota)
    assert (
        subscribe(
            providerOptions=quota,
            updateEvent={"enabled": "always", "requiredWatchFields": ["name"]},
        )
        == {}
    )


def test_one_object_or_section_alone() -> None:
    """UpdateInstallation and JSON Patch check only the parts they change."""
    checker = ContentChecker(REVISION, DESTINATIONS, "", {})
    content = json_format.ParseDict(read(schedule="bad"), config_pb2.ConfigContent())
    checker.check_object("read", "companies", content.read.objects["companies"])
    assert list(checker.problems) == ["read.objects.companies.schedule"]
    checker = ContentChecker(REVISION, DESTINATIONS, "", {})
    checker.check_section(content, "write")
    assert checker.problems == {}
