"""An amp.yaml is read within limits (size, nesting, anchors, aliases and what they expand
to), and any text that is not YAML is refused as a ManifestError naming the line and column,
never an exception from ruamel or Python; the check runs in a worker process, bounded in
CPU time."""

from __future__ import annotations

import asyncio

import pytest

from services.api.manifest_parsing import (
    ManifestCheckers,
    ManifestCheckersBusy,
    check_manifest_here,
)
from services.domain.catalog import load_catalog
from services.domain.manifest import MANIFEST_LIMITS, ManifestError, load_manifest
from tests.support.manifests import GOOD


def _issue(text: str) -> str:
    with pytest.raises(ManifestError) as caught:
        load_manifest(text)
    (issue,) = caught.value.issues
    assert issue.path == ""  # the whole source: REST names it body.sourceYaml
    return str(issue)


def test_a_control_character_is_named_with_its_line_and_column() -> None:
    text = GOOD.replace("displayName: CRM sync", "displayName: CRM \x16sync")
    assert _issue(text) == (
        "manifest (line 4, column 22): invalid YAML: character U+0016 is not allowed in YAML"
    )
    assert "U+0000" in _issue("specVersion: '1.0.0\x00'\n")


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1000 + "]" * 1000,  # a RecursionError before the limit
        "[" * 100_000,
        "{a: " * 300 + "}" * 300,
        "- " * 300 + "x\n",
        "".join(" " * i + "a:\n" for i in range(300)),
        "integrations:\n  - a:\n      - " + "[" * 30,
    ],
    ids=["flow-1000", "flow-unclosed", "flow-maps", "block-sequences", "block-maps", "mixed"],
)
def test_nesting_deeper_than_the_limit_is_refused(text: str) -> None:
    assert f"nests collections more than {MANIFEST_LIMITS.depth} levels deep" in _issue(text)


def test_the_deepest_field_of_the_contract_is_far_within_the_depth_limit() -> None:
    deep = (
        "specVersion: 1.0.0\nintegrations:\n  - name: a\n    provider: hubspot\n"
        "    subscribe:\n      objects:\n        - objectName: companies\n"
        "          updateEvent:\n            requiredWatchFields: [name]\n"
    )
    manifest = load_manifest(deep).manifest
    watched = manifest.integrations[0].subscribe.objects[0].update_event.required_watch_fields
    assert watched == ["name"]


def test_a_text_over_the_size_limit_is_refused_before_it_is_read() -> None:
    text = "# " + "x" * MANIFEST_LIMITS.chars
    assert _issue(text) == (
        f"manifest: is {len(text)} characters long; the limit is {MANIFEST_LIMITS.chars}"
    )


def test_too_many_anchors_or_aliases() -> None:
    anchors = "a:\n" + "".join(f"  - &a{i} x\n" for i in range(MANIFEST_LIMITS.anchors + 1))
    assert f"defines more than {MANIFEST_LIMITS.anchors} anchors" in _issue(anchors)
    aliases = "a: &a x\nb: [" + "*a, " * (MANIFEST_LIMITS.aliases + 1) + "]\n"
    assert f"uses more than {MANIFEST_LIMITS.aliases} aliases" in _issue(aliases)


def test_an_alias_bomb_of_values_is_refused_before_anything_expands_it() -> None:
    # Thirty integrations of thirty objects of thirty fields, written once: nine
    # hundred thousand field entries for the typed parse, validation and the message.
    k = 30
    field = "&f {fieldName: a}" + ", *f" * (k - 1)
    obj = f"&o {{objectName: x, destination: d, requiredFields: [{field}]}}" + ", *o" * (k - 1)
    integration = f"&i {{name: a, provider: hubspot, read: {{objects: [{obj}]}}}}"
    bomb = f"specVersion: 1.0.0\nintegrations: [{integration}" + ", *i" * (k - 1) + "]\n"
    assert len(bomb) < 1000
    issue = _issue(bomb)
    assert issue.startswith("manifest (line 2, column ")
    assert f"holds more than {MANIFEST_LIMITS.values} values, counting each alias" in issue


def test_an_alias_bomb_of_characters_is_refused() -> None:
    lol = "x" * 20_000
    bomb = f"a: &a {lol}\nb: &b [{', '.join(['*a'] * 10)}]\nc: [{', '.join(['*b'] * 10)}]\n"
    assert (
        f"holds more than {MANIFEST_LIMITS.value_chars} characters of values, counting each alias"
    ) in _issue(bomb)


def test_an_alias_to_the_node_that_contains_it_is_refused() -> None:
    assert _issue("specVersion: 1.0.0\nintegrations: &a [*a]\n") == (
        "manifest (line 2, column 19): alias *a is inside the node it names"
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("2020-13-45", "timestamp"),
        ("2020-01-01 25:00:00", "timestamp"),
        ("1" * 5000, "int"),  # past Python's 4,300-digit conversion limit
        ("!!float x", "float"),
    ],
)
def test_values_python_cannot_hold_are_refused_at_their_line(value: str, kind: str) -> None:
    text = f"specVersion: 1.0.0\nintegrations:\n  - name: {value}\n"
    assert _issue(text) == (
        f"manifest (line 3, column 11): invalid YAML: not a valid {kind} "
        "(quote it to make it a string)"
    )


@pytest.mark.parametrize(
    "text",
    ["a: 1\na: 2\n", "a: b\n---\nc: d\n", "a: *nope\n", "a: [\n  b", "\t- a\n", "a: !!omap [1]\n"],
)
def test_other_yaml_errors_are_issues_with_line_and_column(text: str) -> None:
    issue = _issue(text)
    assert issue.startswith("manifest (line ") and ", column " in issue
    assert "invalid YAML: " in issue


def test_an_integer_out_of_its_fields_range_is_an_issue() -> None:
    text = GOOD.replace("days: 90", "days: 0x" + "f" * 40)
    with pytest.raises(ManifestError) as caught:
        load_manifest(text)
    assert [str(i) for i in caught.value.issues] == [
        "integration 'crm-sync': integrations[0].read.objects[0].backfill.defaultPeriod.days "
        "(line 17): expected a whole number from -2147483648 to 2147483647"
    ]


def test_a_normal_manifest_keeps_its_lines_and_may_share_a_list_through_an_alias() -> None:
    parsed = load_manifest(GOOD)
    assert {
        path: parsed.lines.line(path)
        for path in (
            "specVersion",
            "integrations[0].name",
            "integrations[0].read.objects[0].schedule",
            "integrations[0].read.objects[0].requiredFields[2].fieldName",
            "integrations[0].subscribe.objects[0].updateEvent.requiredWatchFields[1]",
            "integrations[1].read.objects[0].backfill.defaultPeriod.fullHistory",
        )
    } == {
        "specVersion": 1,
        "integrations[0].name": 3,
        "integrations[0].read.objects[0].schedule": 14,
        "integrations[0].read.objects[0].requiredFields[2].fieldName": 24,
        "integrations[0].subscribe.objects[0].updateEvent.requiredWatchFields[1]": 37,
        "integrations[1].read.objects[0].backfill.defaultPeriod.fullHistory": 46,
    }
    shared = GOOD.replace(
        "- fieldName: name\n              mapToName: company_name\n",
        "- &name {fieldName: name, mapToName: company_name}\n",
    ).replace(
        "- objectName: account\n",
        "- objectName: account\n          requiredFields: [*name]\n",
    )
    assert "&name" in shared and "*name" in shared
    account = load_manifest(shared).manifest.integrations[1].read.objects[0]
    assert [(f.field_name, f.map_to_name) for f in account.required_fields] == [
        ("name", "company_name")
    ]


# --- off the event loop ---------------------------------------------------------------


async def test_a_worker_answers_what_the_check_here_answers() -> None:
    catalog = load_catalog()
    checkers = ManifestCheckers(size=1)
    try:
        parsed, issues = await checkers.check(GOOD, catalog, ["crmWebhook"])
        here_parsed, here_issues = check_manifest_here(GOOD, catalog, ["crmWebhook"])
        assert parsed.manifest == here_parsed.manifest
        assert parsed.lines == here_parsed.lines
        assert issues == here_issues
        # accountWebhook is missing.
        assert {i.path for i in issues} == {"integrations[1].read.objects[0].destination"}
        with pytest.raises(ManifestError) as caught:
            await checkers.check("a: \x16", catalog, [])
        assert [str(i) for i in caught.value.issues] == [
            "manifest (line 1, column 4): invalid YAML: character U+0016 is not allowed in YAML"
        ]
    finally:
        await checkers.close()


async def test_a_check_past_its_cpu_time_is_refused_and_the_worker_keeps_serving() -> None:
    catalog = load_catalog()
    checkers = ManifestCheckers(size=1, cpu_seconds=0.05)
    slow = "a: [" + "{a: b}, " * 20_000 + "]\n"
    try:
        with pytest.raises(ManifestError) as caught:
            await checkers.check(slow, catalog, [])
        assert [str(i) for i in caught.value.issues] == [
            "manifest: took more than 0.05 s of CPU to read and check (the limit); "
            "split or simplify the manifest"
        ]
        parsed, _ = await checkers.check(GOOD, catalog, [])
        assert len(parsed.manifest.integrations) == 2
    finally:
        await checkers.close()


async def test_a_worker_that_does_not_answer_in_time_is_replaced() -> None:
    catalog = load_catalog()
    checkers = ManifestCheckers(size=1, wall_seconds=0.2)
    slow = "a: [" + "{a: b}, " * 20_000 + "]\n"
    try:
        with pytest.raises(ManifestCheckersBusy):
            await checkers.check(slow, catalog, [])
        assert checkers.live == 0
        checkers.wall_seconds = 30
        parsed, _ = await checkers.check(GOOD, catalog, [])
        assert len(parsed.manifest.integrations) == 2
        # Its only worker busy, a second caller waits for it at most `wait` seconds.
        checkers.wait = 0.1
        first = asyncio.create_task(checkers.check("a: [" + "{a: b}, " * 3000 + "]", catalog, []))
        await asyncio.sleep(0)
        with pytest.raises(ManifestCheckersBusy):
            await checkers.check(GOOD, catalog, [])
        with pytest.raises(ManifestError):
            await first
    finally:
        await checkers.close()
