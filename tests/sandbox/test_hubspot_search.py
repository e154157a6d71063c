"""HubSpot CRM search in the sandbox, alone: request bodies parse into a Search or are
refused naming what is wrong, and the matching found through the sorted indexes is what a
plain scan of every record finds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.sandbox.hubspot_search import (
    MAX_LIMIT,
    MAX_RESULTS,
    Filter,
    InvalidSearch,
    Search,
    matching,
    parse_search,
)
from services.sandbox.providers import Provider
from services.sandbox.records import ObjectRecords, Record, RecordStore, micros

START = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = START + timedelta(days=10)


def body(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def where(*filters: tuple[str, str, Any]) -> dict[str, Any]:
    """One filter group of (propertyName, operator, value)."""
    return {"filters": [{"propertyName": n, "operator": o, "value": v} for n, o, v in filters]}


# --- parsing -----------------------------------------------------------------------------


def test_an_empty_body_is_the_first_ten_by_id() -> None:
    assert parse_search(b"") == Search([], False, False, [], 10, 0)


def test_groups_sort_properties_and_paging() -> None:
    search = parse_search(
        body(
            filterGroups=[
                where(
                    ("hs_lastmodifieddate", "GTE", "2026-01-01T00:00:00Z"),
                    ("hs_lastmodifieddate", "LT", str(micros(UNTIL) // 1000)),
                ),
                where(("hs_object_id", "EQ", "42"), ("email", "NEQ", "a@example.com")),
            ],
            sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
            properties=["email"],
            limit=MAX_LIMIT,
            after="100",
        )
    )
    assert search.groups == [
        [
            Filter("hs_lastmodifieddate", "GTE", micros(START)),
            Filter("hs_lastmodifieddate", "LT", micros(UNTIL)),
        ],
        [Filter("hs_object_id", "EQ", 42), Filter("email", "NEQ", "a@example.com")],
    ]
    assert search.sort_by_modified and search.descending
    assert (search.properties, search.limit, search.after) == (["email"], MAX_LIMIT, 100)


@pytest.mark.parametrize(
    ("sort", "by_modified", "descending"),
    [
        ("hs_object_id", False, False),
        ("-hs_lastmodifieddate", True, True),
        ({"propertyName": "lastmodifieddate"}, True, False),
        ({"propertyName": "hs_object_id", "direction": "descending"}, False, True),
    ],
)
def test_a_sort_is_a_name_or_an_object(sort: Any, by_modified: bool, descending: bool) -> None:
    search = parse_search(body(sorts=[sort]))
    assert (search.sort_by_modified, search.descending) == (by_modified, descending)


def test_a_time_filter_takes_epoch_milliseconds_or_iso_8601_naive_meaning_utc() -> None:
    for value in (str(micros(START) // 1000), "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00"):
        (group,) = parse_search(body(filterGroups=[where(("createdate", "GT", value))])).groups
        assert group == [Filter("createdate", "GT", micros(START))]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"nope", "the request body is not valid JSON"),
        (b"[1]", "the request body must be a JSON object"),
        (body(limit="x"), "limit and after must be integers"),
        (body(limit=0), f"limit must be between 1 and {MAX_LIMIT}"),
        (body(limit=MAX_LIMIT + 1), f"limit must be between 1 and {MAX_LIMIT}"),
        (body(after=-1), "after must not be negative"),
        (body(after=MAX_RESULTS), f"Paging past {MAX_RESULTS} results is not supported"),
        (body(filterGroups=[where()] * 6), "at most 5 filterGroups of at most 6 filters each"),
        (
            body(filterGroups=[where(*[("email", "EQ", "x")] * 7)]),
            "at most 5 filterGroups of at most 6 filters each",
        ),
        (body(filterGroups="all"), "filterGroups must be a list of objects"),
        (body(filterGroups=[{"filters": ["x"]}]), "filters must be a list of objects"),
        (
            body(filterGroups=[where(("email", "IN", "x"))]),
            "each filter needs a propertyName and an operator among EQ, GT, GTE, LT, LTE, NEQ",
        ),
        (
            body(filterGroups=[where(("hs_object_id", "EQ", "abc"))]),
            "hs_object_id filter value 'abc' is not a number",
        ),
        (
            body(filterGroups=[where(("hs_lastmodifieddate", "GT", "soon"))]),
            "'soon' is neither epoch milliseconds nor ISO 8601",
        ),
        (body(sorts=["hs_object_id", "createdate"]), "sorts takes at most one sort"),
        (
            body(sorts=[{"propertyName": "email"}]),
            "the sandbox sorts searches by hs_lastmodifieddate or hs_object_id only",
        ),
        (body(properties="email"), "properties must be a list of property names"),
    ],
)
def test_a_bad_body_is_refused_naming_what_is_wrong(raw: bytes, says: str) -> None:
    with pytest.raises(InvalidSearch) as refused:
        parse_search(raw)
    assert str(refused.value).startswith(says)


# --- matching ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contacts() -> ObjectRecords:
    store = RecordStore()
    store.seed(Provider.HUBSPOT, "contacts", 300, 7, START, UNTIL, replace=True)
    return store.object(Provider.HUBSPOT, "contacts")


def scanned(found: ObjectRecords, search: Search) -> list[str]:
    """What a plain scan of every record finds, in answer order."""

    def value(record: Record, name: str) -> Any:
        if name in {"hs_lastmodifieddate", "lastmodifieddate"}:
            return micros(record.modified)
        if name == "createdate":
            return micros(record.created)
        return int(record.id) if name == "hs_object_id" else record.fields.get(name)

    def passes(record: Record, rule: Filter) -> bool:
        got = value(record, rule.name)
        if got is None:
            return rule.operator == "NEQ"
        return {
            "EQ": got == rule.value,
            "NEQ": got != rule.value,
            "GT": got > rule.value,
            "GTE": got >= rule.value,
            "LT": got < rule.value,
            "LTE": got <= rule.value,
        }[rule.operator]

    groups = search.groups or [[]]
    hits = [r for r in found.in_order if any(all(passes(r, f) for f in g) for g in groups)]
    key = (lambda r: (r.modified, int(r.id))) if search.sort_by_modified else lambda r: int(r.id)
    hits.sort(key=key, reverse=search.descending)
    return [r.id for r in hits]


def middle(found: ObjectRecords) -> tuple[str, str]:
    """A record id and an email from the middle of the object."""
    record = found.in_order[len(found.in_order) // 2]
    return record.id, record.fields["email"]


def searches(found: ObjectRecords) -> list[dict[str, Any]]:
    some_id, some_email = middle(found)
    day3 = (START + timedelta(days=3)).isoformat()
    day6 = str(micros(START + timedelta(days=6)) // 1000)
    return [
        {},
        {"sorts": ["-hs_lastmodifieddate"]},
        # A window on the sort property alone: a slice of its index.
        {
            "filterGroups": [
                where(("hs_lastmodifieddate", "GTE", day3), ("lastmodifieddate", "LT", day6))
            ],
            "sorts": ["hs_lastmodifieddate"],
        },
        {"filterGroups": [where(("hs_object_id", "GT", some_id))], "sorts": ["-hs_object_id"]},
        {"filterGroups": [where(("hs_object_id", "EQ", some_id))]},
        # Ids bounded, sorted by time; time bounded, sorted by id.
        {
            "filterGroups": [where(("hs_object_id", "LTE", some_id))],
            "sorts": ["hs_lastmodifieddate"],
        },
        {"filterGroups": [where(("hs_lastmodifieddate", "LT", day3))]},
        # Properties that no index knows, and groups ORed.
        {"filterGroups": [where(("email", "EQ", some_email))]},
        {
            "filterGroups": [
                where(("email", "NEQ", some_email), ("hs_lastmodifieddate", "GT", day6))
            ]
        },
        {
            "filterGroups": [
                where(("hs_lastmodifieddate", "LT", day3)),
                where(("hs_object_id", "EQ", some_id)),
                where(("createdate", "GTE", day6)),
            ],
            "sorts": ["-hs_lastmodifieddate"],
        },
        {"filterGroups": [where(("no_such_property", "NEQ", "x"))]},
        {"filterGroups": [where(("no_such_property", "EQ", "x"))]},
    ]


def test_matching_finds_what_a_scan_finds_in_the_same_order(contacts: ObjectRecords) -> None:
    for wanted in searches(contacts):
        search = parse_search(body(**wanted))
        found = [r.id for r in matching(contacts, search, descending=search.descending)]
        assert found == scanned(contacts, search), wanted
    assert len(scanned(contacts, parse_search(b""))) == 300
