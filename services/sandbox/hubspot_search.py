"""HubSpot CRM search (POST /crm/v3/objects/{object}/search), as documented: the request
body parsed into a Search (a pure function: bytes in, a Search or InvalidSearch out;
hubspot.py answers the error as HubSpot does, 400 VALIDATION_ERROR), and the matching
records found in an object's sorted indexes.

Filter groups are ORed, the filters of a group ANDed; one sort (by modification time or
id); limit up to 200; paging by an offset `after` that may not reach 10,000.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services.sandbox.records import ObjectRecords, Record, micros, window


class InvalidSearch(ValueError):
    """The search body is not one HubSpot (or the sandbox) accepts; the message says why."""


MAX_LIMIT = 200
MAX_RESULTS = 10_000
MODIFIED = frozenset({"hs_lastmodifieddate", "lastmodifieddate"})
OPERATORS = frozenset({"EQ", "NEQ", "GT", "GTE", "LT", "LTE"})


@dataclass(frozen=True)
class Filter:
    """One filter: a property, an operator, and the value (microseconds for times)."""

    name: str
    operator: str
    value: int | str


@dataclass(frozen=True)
class Search:
    """A search body: filter groups (ORed; a group's filters ANDed), the sort, the
    properties to answer with, and the page (limit, offset `after`)."""

    groups: list[list[Filter]]
    sort_by_modified: bool
    descending: bool
    properties: list[str]
    limit: int
    after: int


def parse_search(raw: bytes) -> Search:
    """The search a request body asks for, or InvalidSearch saying what is wrong."""
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidSearch("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidSearch("the request body must be a JSON object")
    try:
        limit = int(body.get("limit", 10))
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise InvalidSearch("limit and after must be integers") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidSearch(f"limit must be between 1 and {MAX_LIMIT}")
    if after < 0:
        raise InvalidSearch("after must not be negative")
    if after >= MAX_RESULTS:
        raise InvalidSearch(
            f"Paging past {MAX_RESULTS} results is not supported; narrow the search with filters"
        )
    groups = [
        [_search_filter(item) for item in _list_of(group, "filters")]
        for group in _list_of(body, "filterGroups")
    ]
    if len(groups) > 5 or any(len(group) > 6 for group in groups):
        raise InvalidSearch("at most 5 filterGroups of at most 6 filters each")
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise InvalidSearch("sorts takes at most one sort")
    sort_name, descending = "hs_object_id", False
    if sorts:
        sort = sorts[0]
        if isinstance(sort, str):
            sort_name, descending = sort.lstrip("-"), sort.startswith("-")
        elif isinstance(sort, dict):
            sort_name = str(sort.get("propertyName", ""))
            descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
        if sort_name not in MODIFIED and sort_name != "hs_object_id":
            raise InvalidSearch(
                "the sandbox sorts searches by hs_lastmodifieddate or hs_object_id only"
            )
    properties = body.get("properties") or []
    if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
        raise InvalidSearch("properties must be a list of property names")
    return Search(groups, sort_name in MODIFIED, descending, properties, limit, after)


def _list_of(container: dict[str, Any], key: str) -> list[Any]:
    value = container.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidSearch(f"{key} must be a list of objects")
    return value


def _search_filter(item: dict[str, Any]) -> Filter:
    name, operator, value = item.get("propertyName"), item.get("operator"), item.get("value")
    if not isinstance(name, str) or operator not in OPERATORS:
        raise InvalidSearch(
            "each filter needs a propertyName and an operator among " + ", ".join(sorted(OPERATORS))
        )
    text = str(value) if value is not None else ""
    if name in MODIFIED or name == "createdate":
        return Filter(name, operator, _search_time(text))
    if name == "hs_object_id":
        if not text.isdigit():
            raise InvalidSearch(f"hs_object_id filter value {text!r} is not a number")
        return Filter(name, operator, int(text))
    return Filter(name, operator, text)


def _search_time(text: str) -> int:
    """A date-time filter value, epoch milliseconds or ISO 8601 (HubSpot takes both),
    in microseconds."""
    if text.lstrip("-").isdigit():
        return int(text) * 1000
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidSearch(f"{text!r} is neither epoch milliseconds nor ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return micros(moment)


def _search_value(record: Record, name: str) -> int | str | None:
    if name in MODIFIED:
        return micros(record.modified)
    if name == "createdate":
        return micros(record.created)
    if name == "hs_object_id":
        return int(record.id)
    return record.fields.get(name)


def _passes(record: Record, rule: Filter) -> bool:
    value = _search_value(record, rule.name)
    if value is None:
        return rule.operator == "NEQ"
    wanted = rule.value
    match rule.operator:
        case "EQ":
            return value == wanted
        case "NEQ":
            return value != wanted
        case "GT":
            return value > wanted  # type: ignore[operator]
        case "GTE":
            return value >= wanted  # type: ignore[operator]
        case "LT":
            return value < wanted  # type: ignore[operator]
        case _:
            return value <= wanted  # type: ignore[operator]


def _bounds(group: list[Filter], names: frozenset[str]) -> tuple[int | None, int | None]:
    """The inclusive integer bounds a group's filters put on one property."""
    lower: int | None = None
    upper: int | None = None
    for rule in group:
        if rule.name not in names or not isinstance(rule.value, int):
            continue
        value = rule.value
        low = {"EQ": value, "GT": value + 1, "GTE": value}.get(rule.operator)
        high = {"EQ": value, "LT": value - 1, "LTE": value}.get(rule.operator)
        if low is not None:
            lower = low if lower is None else max(lower, low)
        if high is not None:
            upper = high if upper is None else min(upper, high)
    return lower, upper


def matching(found: ObjectRecords, search: Search, *, descending: bool) -> Sequence[Record]:
    """The matching records in answer order.

    A group whose filters all bear on the sort property is a slice of that sorted index
    (found by bisection, nothing copied). Otherwise each group is narrowed by whichever
    index (modification time or id) gives the fewer candidates, only those are checked
    against the group's filters, and the union is sorted.
    """
    by_time, time_keys = found.by_modified()
    by_id, id_keys = found.by_id()
    id_names = frozenset({"hs_object_id"})

    def time_span(group: list[Filter]) -> tuple[int, int]:
        lower, upper = _bounds(group, MODIFIED)
        return window(time_keys, lower, True, upper, True)

    def id_span(group: list[Filter]) -> tuple[int, int]:
        lower, upper = _bounds(group, id_names)
        start = 0 if lower is None else bisect.bisect_left(id_keys, lower)
        stop = len(id_keys) if upper is None else bisect.bisect_right(id_keys, upper)
        return start, max(start, stop)

    ordered, names, span = (
        (by_time, MODIFIED, time_span) if search.sort_by_modified else (by_id, id_names, id_span)
    )
    groups = search.groups or [[]]
    if len(groups) == 1 and all(rule.name in names for rule in groups[0]):
        start, stop = span(groups[0])
        matches: Sequence[Record] = ordered[start:stop]
    else:
        chosen: dict[str, Record] = {}
        for group in groups:
            (time_start, time_stop), (id_start, id_stop) = time_span(group), id_span(group)
            if time_stop - time_start <= id_stop - id_start:
                candidates = by_time[time_start:time_stop]
            else:
                candidates = by_id[id_start:id_stop]
            for record in candidates:
                if all(_passes(record, rule) for rule in group):
                    chosen[record.id] = record
        if search.sort_by_modified:
            matches = sorted(chosen.values(), key=lambda r: (r.modified, int(r.id)))
        else:
            matches = sorted(chosen.values(), key=lambda r: int(r.id))
    return matches[::-1] if descending else matches
