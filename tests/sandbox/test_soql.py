"""The sandbox's SOQL parser, alone: the queries a connector sends parse into bounds, order
and limit; anything else is refused, saying what is understood."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from services.sandbox.records import micros
from services.sandbox.soql import HELP, MalformedQuery, Soql, object_of, parse_soql

JAN = micros(datetime(2026, 1, 1, tzinfo=UTC))
FEB = micros(datetime(2026, 2, 1, tzinfo=UTC))


def test_a_bare_select_reads_everything_in_no_particular_order() -> None:
    assert parse_soql("SELECT Id, Name FROM Account") == Soql(
        fields=["Id", "Name"],
        object_name="Account",
        lower=None,
        upper=None,
        order_by_id=False,
        descending=False,
        limit=None,
    )


def test_a_window_on_the_modification_time_becomes_inclusive_bounds() -> None:
    query = parse_soql(
        "SELECT Id FROM Account WHERE SystemModstamp >= 2026-01-01T00:00:00Z "
        "AND SystemModstamp < 2026-02-01T00:00:00Z ORDER BY SystemModstamp ASC, Id ASC"
    )
    assert (query.lower, query.upper) == (JAN, FEB - 1)
    assert not query.order_by_id and not query.descending


@pytest.mark.parametrize(
    ("condition", "bounds"),
    [
        ("> 2026-01-01T00:00:00Z", (JAN + 1, None)),
        (">= 2026-01-01T00:00:00Z", (JAN, None)),
        ("< 2026-01-01T00:00:00Z", (None, JAN - 1)),
        ("<= 2026-01-01T00:00:00Z", (None, JAN)),
        ("= 2026-01-01T00:00:00.000+00:00", (JAN, JAN)),
    ],
)
def test_each_operator_moves_the_bound_it_names(
    condition: str, bounds: tuple[int | None, int | None]
) -> None:
    # The query text is what is under test, not a query sent anywhere.
    query = parse_soql("SELECT Id FROM Contact WHERE LastModifiedDate " + condition)  # noqa: S608
    assert (query.lower, query.upper) == bounds


def test_two_conditions_on_one_side_keep_the_tighter() -> None:
    query = parse_soql(
        "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00Z "
        "AND SystemModstamp >= 2026-02-01T00:00:00Z"
    )
    assert (query.lower, query.upper) == (FEB, None)


def test_keywords_and_field_names_are_case_insensitive_and_lines_may_break() -> None:
    query = parse_soql(
        "select id\nfrom contact\nwhere lastmodifieddate > 2026-01-01T00:00:00+00:00\n"
        "order by lastmodifieddate desc\nlimit 10"
    )
    assert query.fields == ["id"] and query.object_name == "contact"
    assert query.lower == JAN + 1 and query.descending and query.limit == 10


def test_order_by_id_and_a_limit() -> None:
    query = parse_soql("SELECT Id FROM Account ORDER BY Id DESC LIMIT 5")
    assert query.order_by_id and query.descending and query.limit == 5


@pytest.mark.parametrize(
    "soql",
    [
        "",
        "DELETE FROM Account",
        "SELECT Id FROM Account LIMIT -1",
        "SELECT Id FROM Account ORDER BY Name",
        "SELECT Id FROM Account ORDER BY SystemModstamp, Name",
        "SELECT Id FROM Account ORDER BY SystemModstamp, Id, Name",
    ],
)
def test_what_is_not_understood_is_refused_with_what_is(soql: str) -> None:
    with pytest.raises(MalformedQuery) as refused:
        parse_soql(soql)
    assert str(refused.value) == HELP


@pytest.mark.parametrize(
    ("soql", "says"),
    [
        ("SELECT Id FROM Account WHERE Name LIKE 'x'", "unsupported condition \"Name LIKE 'x'\""),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > 2026-01-01T00:00:00Z "
            "OR SystemModstamp < 2025-01-01T00:00:00Z",
            "unsupported condition",
        ),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > yesterday",
            "invalid datetime literal 'yesterday'",
        ),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > 2026-01-01T00:00:00",
            "datetime literal '2026-01-01T00:00:00' needs a time zone (Z)",
        ),
        ("SELECT Id,, Name FROM Account", "empty field in the SELECT list"),
    ],
)
def test_a_bad_part_is_named(soql: str, says: str) -> None:
    with pytest.raises(MalformedQuery, match="^" + re.escape(says)):
        parse_soql(soql)


def test_the_object_is_found_before_parsing_for_faults_scoped_to_it() -> None:
    assert object_of("select Id from contact where whatever") == "contact"
    assert object_of("not a query") == ""
