"""Semantic validation of amp.yaml: every rule, and every problem names the integration,
the field path and the line."""

from __future__ import annotations

import textwrap

import pytest
from ampmesh.manifest.v1 import manifest_pb2
from ampmesh.platform.v1 import providers_pb2

from services.domain.catalog import load_catalog
from services.domain.catalog.actions import Action
from services.domain.manifest import (
    ManifestIssue,
    load_manifest,
    schedule_problem,
    validate_integration,
    validate_manifest,
)
from tests.support.control_plane import line_of

CATALOG = load_catalog()
DESTINATIONS = {"crmWebhook", "accountWebhook", "schemaWatch"}
# The rules below are checked as if every action were built: whether ampmesh has a
# connector for a section is tests/domain/test_supported_actions.py's to check.
EVERY_ACTION = {name: frozenset(Action) for name in CATALOG}

GOOD = textwrap.dedent(
    """\
    specVersion: 1.0.0
    integrations:
      - name: crm-sync
        displayName: CRM sync
        provider: hubspot
        module: crm
        proxy:
          enabled: true
        read:
          objects:
            - objectName: companies
              mapToName: company
              destination: crmWebhook
              schedule: "*/30 * * * *"
              backfill:
                defaultPeriod:
                  days: 90
              requiredFields:
                - fieldName: name
                  mapToName: company_name
                - mapToName: tier
                  prompt: Which field stores the account tier?
                  default: hs_tier
                - fieldName: $['address']['city']
              optionalFieldsAuto: all
            - objectName: contacts
              destination: crmWebhook
        write:
          objects:
            - objectName: companies
              inheritMapping: true
        subscribe:
          objects:
            - objectName: companies
              destination: crmWebhook
              inheritFieldsAndMapping: true
              updateEvent:
                enabled: always
                requiredWatchFields: [company_name, tier]
        watchSchema:
          destination: schemaWatch
          schedule: "0 */6 * * *"
          allObjects:
            fieldCreated:
              enabled: always
      - name: accounts
        provider: salesforce
        read:
          objects:
            - objectName: account
              destination: accountWebhook
              backfill:
                defaultPeriod:
                  fullHistory: true
    """
)


def _issues(text: str, destinations: set[str] = DESTINATIONS) -> list[ManifestIssue]:
    parsed = load_manifest(text)
    return validate_manifest(
        parsed.manifest, CATALOG, destinations, parsed.lines, actions=EVERY_ACTION
    )


def _one(text: str, destinations: set[str] = DESTINATIONS) -> ManifestIssue:
    issues = _issues(text, destinations)
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


def test_a_reference_style_manifest_is_valid() -> None:
    assert _issues(GOOD) == []


def test_unknown_provider_names_integration_path_line_and_a_suggestion() -> None:
    bad = GOOD.replace("provider: hubspot", "provider: hubspt")
    issues = _issues(bad)
    assert [str(i) for i in issues] == [
        f"integration 'crm-sync': integrations[0].provider (line {line_of(bad, 'hubspt')}): "
        "unknown provider 'hubspt'; did you mean 'hubspot'?"
    ]
    (issue,) = issues
    assert issue.integration == "crm-sync"
    assert issue.detail == (
        "unknown provider 'hubspt'; did you mean 'hubspot'? "
        f"(line {line_of(bad, 'hubspt')}, integration 'crm-sync')"
    )


def test_module_must_be_one_of_the_providers_modules() -> None:
    bad = GOOD.replace("module: crm", "module: marketing")
    issue = _one(bad)
    assert issue.path == "integrations[0].module"
    assert issue.line == line_of(bad, "module: marketing")
    assert "provider 'hubspot' has no module 'marketing'" in issue.message
    assert "known modules: crm" in issue.message
    # A provider without modules takes none.
    no_modules = GOOD.replace("provider: salesforce", "provider: attio\n    module: crm")
    issue = _one(no_modules)
    assert issue.path == "integrations[1].module"
    assert "it has no modules" in issue.message


def test_module_may_be_left_out_for_the_default() -> None:
    assert _issues(GOOD.replace("    module: crm\n", "")) == []


def test_integration_names_follow_the_rule_and_are_unique() -> None:
    bad = GOOD.replace("name: crm-sync", "name: CRM Sync")
    issue = _one(bad)
    assert (issue.path, issue.line) == ("integrations[0].name", line_of(bad, "CRM Sync"))
    assert "lowercase letters" in issue.message
    twice = GOOD.replace("name: accounts", "name: crm-sync")
    issue = _one(twice)
    assert (issue.path, issue.line) == ("integrations[1].name", line_of(twice, "crm-sync", 2))
    assert "declared twice" in issue.message


def test_display_name_length() -> None:
    bad = GOOD.replace("displayName: CRM sync", "displayName: " + "x" * 101)
    assert _one(bad).path == "integrations[0].displayName"


def test_unknown_destination_is_named_with_its_line() -> None:
    bad = GOOD.replace("destination: accountWebhook", "destination: acountWebhook")
    issue = _one(bad)
    assert issue.integration == "accounts"
    assert issue.path == "integrations[1].read.objects[0].destination"
    assert issue.line == line_of(bad, "acountWebhook")
    assert issue.message == (
        "the project has no destination named 'acountWebhook'; did you mean "
        "'accountWebhook'?; create it first"
    )


def test_every_place_a_destination_is_named_is_checked() -> None:
    issues = _issues(GOOD, destinations=set())
    assert sorted(i.path for i in issues) == [
        "integrations[0].read.objects[0].destination",
        "integrations[0].read.objects[1].destination",
        "integrations[0].subscribe.objects[0].destination",
        "integrations[0].watchSchema.destination",
        "integrations[1].read.objects[0].destination",
    ]


def test_a_missing_destination_is_reported_at_the_line_of_its_object() -> None:
    bad = GOOD.replace("          destination: accountWebhook\n", "")
    issue = _one(bad)
    assert issue.path == "integrations[1].read.objects[0].destination"
    assert issue.line == line_of(bad, "- objectName: account")
    assert issue.message.startswith("is required")


@pytest.mark.parametrize(
    ("schedule", "why"),
    [
        ("*/5 * * * *", "fires 5 minute(s) apart"),
        # The minute field alone looks fine; the closest fires straddle the hour.
        ("*/7 * * * *", "fires 4 minute(s) apart"),
        ("0,55 0,23 * * *", "fires 5 minute(s) apart"),
        ("0,55 0,23 1,31 * *", "fires 5 minute(s) apart"),
        ("*/10 * * * * *", "not a five-field cron expression"),
        ("@hourly", "not a five-field cron expression"),
        ("61 * * * *", "not a valid cron expression"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_bad_schedules(schedule: str, why: str) -> None:
    bad = GOOD.replace('"*/30 * * * *"', f'"{schedule}"')
    issue = _one(bad)
    assert issue.path == "integrations[0].read.objects[0].schedule"
    assert issue.line == line_of(bad, "schedule: ")
    assert why in issue.message


@pytest.mark.parametrize(
    "schedule",
    ["*/10 * * * *", "0 * * * *", "*/30 9-17 * * 1-5", "0,55 0,23 1,15 * *", "5 4 * * sun"],
)
def test_good_schedules(schedule: str) -> None:
    assert schedule_problem(schedule, 10) is None


def test_watch_schema_schedules_fire_at_most_hourly() -> None:
    bad = GOOD.replace('"0 */6 * * *"', '"*/30 * * * *"')
    issue = _one(bad)
    assert issue.path == "integrations[0].watchSchema.schedule"
    assert "at most every 1 hour" in issue.message


@pytest.mark.parametrize(
    ("period", "path", "why"),
    [
        ("{days: -1}", ".days", "must be 0 or more"),
        ("{}", "", "set days (0 or more) or fullHistory: true"),
        ("{fullHistory: false}", "", "set days (0 or more) or fullHistory: true"),
        ("{days: 3, fullHistory: true}", "", "not both"),
    ],
)
def test_bad_backfill_periods(period: str, path: str, why: str) -> None:
    bad = GOOD.replace("defaultPeriod:\n              days: 90", f"defaultPeriod: {period}")
    issue = _one(bad)
    assert issue.path == f"integrations[0].read.objects[0].backfill.defaultPeriod{path}"
    assert issue.line == line_of(bad, "defaultPeriod")
    assert why in issue.message


def test_backfill_needs_a_default_period_and_zero_days_is_valid() -> None:
    assert _issues(GOOD.replace("days: 90", "days: 0")) == []
    bad = GOOD.replace(
        "backfill:\n            defaultPeriod:\n              days: 90", "backfill: {}"
    )
    issue = _one(bad)
    assert issue.path == "integrations[0].read.objects[0].backfill"
    assert issue.line == line_of(bad, "backfill: {}")


def test_object_names_are_required_well_formed_and_unique() -> None:
    twice = GOOD.replace("objectName: contacts", "objectName: companies")
    issue = _one(twice)
    assert issue.path == "integrations[0].read.objects[1].objectName"
    assert issue.line == line_of(twice, "objectName: companies", 2)
    assert "listed twice in read" in issue.message
    spaced = GOOD.replace("objectName: contacts", 'objectName: " contacts"')
    assert _one(spaced).path == "integrations[0].read.objects[1].objectName"
    write_twice = GOOD.replace(
        "inheritMapping: true", "inheritMapping: true\n        - objectName: companies"
    )
    assert _one(write_twice).path == "integrations[0].write.objects[1].objectName"


def test_field_entries() -> None:
    cases = {
        # Existing fields do not take the customer-mapping keys.
        "- fieldName: name\n              mapToName: company_name": (
            "- fieldName: name\n              prompt: Which?",
            "requiredFields[0].prompt",
            "only for a mapping the customer completes",
        ),
        "- fieldName: $['address']['city']": (
            "- fieldName: $['address'][city]",
            "requiredFields[2].fieldName",
            "$['parent']['child']",
        ),
    }
    for old, (new, path, why) in cases.items():
        bad = GOOD.replace(old, new)
        issue = _one(bad)
        assert issue.path == f"integrations[0].read.objects[0].{path}", str(issue)
        assert issue.line == line_of(bad, new.splitlines()[-1].strip())
        assert why in issue.message


def test_a_field_entry_needs_a_field_or_a_mapping_and_names_are_not_repeated() -> None:
    empty = GOOD.replace("- fieldName: $['address']['city']", "- mapToDisplayName: City")
    issue = _one(empty)
    assert issue.path == "integrations[0].read.objects[0].requiredFields[2]"
    assert "needs fieldName" in issue.message
    repeated = GOOD.replace(
        "optionalFieldsAuto: all",
        "optionalFields:\n            - fieldName: name\n          optionalFieldsAuto: all",
    )
    issue = _one(repeated)
    assert issue.path == "integrations[0].read.objects[0].optionalFields[0].fieldName"
    assert "already listed as requiredFields[0]" in issue.message
    same_name = GOOD.replace("- mapToName: tier", "- mapToName: company_name")
    issue = _one(same_name)
    assert issue.path == "integrations[0].read.objects[0].requiredFields[1].mapToName"
    assert "carry 'company_name' twice" in issue.message
    bad_map = GOOD.replace("mapToName: company_name", "mapToName: company name")
    assert _one(bad_map).path == "integrations[0].read.objects[0].requiredFields[0].mapToName"


def test_enumerated_values() -> None:
    for old, new, path in [
        (
            "optionalFieldsAuto: all",
            "optionalFieldsAuto: some",
            "read.objects[0].optionalFieldsAuto",
        ),
        (
            "destination: crmWebhook\n    write",
            "destination: crmWebhook\n          enabled: sometimes\n    write",
            "read.objects[1].enabled",
        ),
        (
            "enabled: always\n            requiredWatch",
            "enabled: never\n            requiredWatch",
            "subscribe.objects[0].updateEvent.enabled",
        ),
        (
            "fieldCreated:\n          enabled: always",
            "fieldCreated:\n          enabled: never",
            "watchSchema.allObjects.fieldCreated.enabled",
        ),
    ]:
        bad = GOOD.replace(old, new)
        assert bad != GOOD, old
        assert _one(bad).path == f"integrations[0].{path}"


def test_delivery_settings() -> None:
    bad = GOOD.replace(
        "optionalFieldsAuto: all",
        "optionalFieldsAuto: all\n          delivery: {mode: push, pageSize: 10}",
    )
    assert sorted(i.path for i in _issues(bad)) == [
        "integrations[0].read.objects[0].delivery.mode",
        "integrations[0].read.objects[0].delivery.pageSize",
    ]


def test_subscribe_rules() -> None:
    not_read = GOOD.replace(
        "- objectName: companies\n          destination: crmWebhook\n          inherit",
        "- objectName: deals\n          destination: crmWebhook\n          inherit",
    )
    issue = _one(not_read)
    assert issue.path == "integrations[0].subscribe.objects[0].objectName"
    assert "must also be declared in read.objects" in issue.message
    no_inherit = GOOD.replace("inheritFieldsAndMapping: true", "inheritFieldsAndMapping: false")
    issue = _one(no_inherit)
    assert issue.path == "integrations[0].subscribe.objects[0].inheritFieldsAndMapping"
    both = GOOD.replace(
        "enabled: always\n            requiredWatch",
        "enabled: always\n            watchFieldsAuto: all\n            requiredWatch",
    )
    assert _one(both).path == "integrations[0].subscribe.objects[0].updateEvent.requiredWatchFields"


def test_subscribe_needs_a_read_section() -> None:
    manifest = manifest_pb2.Manifest(
        spec_version="1.0.0",
        integrations=[
            manifest_pb2.Integration(
                name="subs",
                provider="hubspot",
                subscribe=manifest_pb2.IntegrationSubscribe(
                    objects=[
                        manifest_pb2.IntegrationSubscribeObject(
                            object_name="companies", destination="crmWebhook"
                        )
                    ]
                ),
            )
        ],
    )
    (issue,) = validate_manifest(manifest, CATALOG, DESTINATIONS, actions=EVERY_ACTION)
    assert (issue.integration, issue.path, issue.line) == (
        "subs",
        "integrations[0].subscribe",
        None,
    )


def test_watch_schema_needs_all_objects() -> None:
    bad = GOOD.replace("      allObjects:\n        fieldCreated:\n          enabled: always\n", "")
    issue = _one(bad)
    assert issue.path == "integrations[0].watchSchema.allObjects"
    assert issue.line == line_of(bad, "watchSchema:")


def test_snake_case_keys_keep_their_lines() -> None:
    bad = GOOD.replace("objectName: account\n", "object_name: account\n").replace(
        "accountWebhook", "nowhere"
    )
    issue = _one(bad)
    assert issue.path == "integrations[1].read.objects[0].destination"
    assert issue.line == line_of(bad, "nowhere")


def test_every_problem_is_reported_at_once() -> None:
    bad = (
        GOOD.replace("provider: salesforce", "provider: nope")
        .replace('"*/30 * * * *"', '"* * * * *"')
        .replace("days: 90", "days: -5")
    )
    assert sorted((i.integration, i.path) for i in _issues(bad)) == [
        ("accounts", "integrations[1].provider"),
        ("crm-sync", "integrations[0].read.objects[0].backfill.defaultPeriod.days"),
        ("crm-sync", "integrations[0].read.objects[0].schedule"),
    ]


def test_one_integration_validated_under_another_path() -> None:
    integration = manifest_pb2.Integration(name="x", provider="hubspot", module="nope")
    (issue,) = validate_integration(integration, CATALOG, DESTINATIONS, at="latestRevision.content")
    assert issue.path == "latestRevision.content.module"
    assert issue.line is None


def test_the_catalog_is_the_only_source_of_providers() -> None:
    catalog = {"only": providers_pb2.ProviderInfo(name="only")}
    parsed = load_manifest(GOOD)
    issues = validate_manifest(parsed.manifest, catalog, DESTINATIONS, parsed.lines)
    assert {i.path for i in issues} == {"integrations[0].provider", "integrations[1].provider"}
