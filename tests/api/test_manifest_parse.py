"""amp.yaml parses into the typed Manifest contract; mistakes name integration, field, line."""

from __future__ import annotations

import pytest

from services.domain.manifest import ManifestError, parse_manifest
from tests.support.manifests import GOOD


def test_a_reference_style_manifest_parses_into_typed_messages() -> None:
    manifest = parse_manifest(GOOD)
    assert [i.name for i in manifest.integrations] == ["crm-sync", "accounts"]
    crm = manifest.integrations[0]
    companies = crm.read.objects[0]
    assert companies.schedule == "*/30 * * * *"
    assert companies.backfill.default_period.days == 90
    assert companies.required_fields[0].map_to_name == "company_name"
    assert companies.required_fields[1].prompt.startswith("Which field")
    assert companies.required_fields[2].field_name == "$['address']['city']"
    assert crm.subscribe.objects[0].update_event.required_watch_fields == ["company_name", "tier"]
    assert manifest.integrations[1].read.objects[0].backfill.default_period.full_history


def _issues(text: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    return [str(i) for i in caught.value.issues]


def test_unknown_field_names_integration_path_line_and_a_suggestion() -> None:
    bad = GOOD.replace("schedule: ", "shedule: ")
    assert _issues(bad) == [
        "integration 'crm-sync': integrations[0].read.objects[0].shedule (line 14): "
        "unknown field 'shedule'; did you mean 'schedule'?"
    ]


def test_wrong_types_are_all_reported_with_their_lines() -> None:
    bad = GOOD.replace("days: 90", "days: ninety").replace(
        "inheritMapping: true", "inheritMapping: [yes]"
    )
    assert _issues(bad) == [
        "integration 'crm-sync': integrations[0].read.objects[0].backfill.defaultPeriod.days "
        "(line 17): expected a whole number, found a string",
        "integration 'crm-sync': integrations[0].write.objects[0].inheritMapping (line 29): "
        "expected true or false, found a list",
    ]


def test_yaml_syntax_error_names_the_line() -> None:
    (issue,) = _issues("specVersion: 1.0.0\nintegrations:\n  - name: [unclosed\n")
    assert issue.startswith("manifest (line ")
    assert "invalid YAML" in issue


def test_unsupported_spec_version_and_empty_manifest() -> None:
    assert _issues("specVersion: 2.0.0\nintegrations:\n  - name: a\n    provider: b\n") == [
        "specVersion (line 1): unsupported spec version '2.0.0'; supported: 1.0.0"
    ]
    assert _issues("") == ["manifest: the manifest is empty"]


def test_a_list_where_a_mapping_belongs() -> None:
    assert _issues("specVersion: 1.0.0\nintegrations:\n  - - nested\n") == [
        "integrations[0] (line 3): expected a mapping, found a list"
    ]
