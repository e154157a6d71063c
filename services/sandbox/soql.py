"""The SOQL the sandbox understands, parsed into a Soql (a pure function: text in, a query
or MalformedQuery out; salesforce.py answers the error as Salesforce does, 400
MALFORMED_QUERY).

    SELECT <fields> FROM <object>
      [WHERE SystemModstamp|LastModifiedDate <op> <datetime> [AND ...]]
      [ORDER BY SystemModstamp|LastModifiedDate|Id [ASC|DESC][, Id [ASC|DESC]]]
      [LIMIT n]

That is what a connector reading changed records sends; anything else is refused, saying
what is understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from services.sandbox.records import micros


class MalformedQuery(ValueError):
    """The query is not SOQL the sandbox understands; the message says why."""


@dataclass(frozen=True)
class Soql:
    """A query the sandbox understands: the SELECT list, the object, a window on the
    modification time, the order and a limit."""

    fields: list[str]
    object_name: str
    # Inclusive bounds on the modification time, in microseconds (None: unbounded).
    lower: int | None
    upper: int | None
    order_by_id: bool
    descending: bool
    limit: int | None


_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SOQL_CONDITION = re.compile(
    r"^(?P<field>SystemModstamp|LastModifiedDate)\s*(?P<op>>=|<=|>|<|=)\s*(?P<value>\S+)$",
    re.IGNORECASE,
)
_SOQL_ORDER = re.compile(r"^(?P<field>\w+)(?:\s+(?P<dir>ASC|DESC))?$", re.IGNORECASE)
_SOQL_TIMES = frozenset({"systemmodstamp", "lastmodifieddate"})
HELP = (
    "the sandbox understands SELECT <fields> FROM <object> "
    "[WHERE SystemModstamp|LastModifiedDate <op> <datetime> [AND ...]] "
    "[ORDER BY SystemModstamp|LastModifiedDate|Id [ASC|DESC][, Id [ASC|DESC]]] [LIMIT n]"
)


def parse_soql(soql: str) -> Soql:
    match = _SOQL.match(soql)
    if match is None:
        raise MalformedQuery(HELP)
    lower: int | None = None
    upper: int | None = None
    if match["where"]:
        for condition in re.split(r"\s+AND\s+", match["where"].strip(), flags=re.IGNORECASE):
            found = _SOQL_CONDITION.match(condition.strip())
            if found is None:
                raise MalformedQuery(f"unsupported condition {condition.strip()!r}; {HELP}")
            value = micros(_soql_datetime(found["value"]))
            op = found["op"]
            if op in {">", ">=", "="}:
                low = value + 1 if op == ">" else value
                lower = low if lower is None else max(lower, low)
            if op in {"<", "<=", "="}:
                high = value - 1 if op == "<" else value
                upper = high if upper is None else min(upper, high)
    order_by_id, descending = False, False
    if match["order"]:
        items = [_SOQL_ORDER.match(item.strip()) for item in match["order"].split(",")]
        if any(item is None for item in items) or len(items) > 2:
            raise MalformedQuery(HELP)
        first = items[0]
        assert first is not None
        name = first["field"].lower()
        if name not in _SOQL_TIMES | {"id"} or (
            len(items) == 2 and (items[1] is None or items[1]["field"].lower() != "id")
        ):
            raise MalformedQuery(HELP)
        order_by_id = name == "id"
        descending = (first["dir"] or "").upper() == "DESC"
    fields = [name.strip() for name in match["fields"].split(",")]
    if not all(fields):
        raise MalformedQuery("empty field in the SELECT list")
    return Soql(
        fields=fields,
        object_name=match["object"],
        lower=lower,
        upper=upper,
        order_by_id=order_by_id,
        descending=descending,
        limit=int(match["limit"]) if match["limit"] else None,
    )


def _soql_datetime(literal: str) -> datetime:
    try:
        moment = datetime.fromisoformat(literal)
    except ValueError:
        raise MalformedQuery(f"invalid datetime literal {literal!r}") from None
    if moment.tzinfo is None:
        raise MalformedQuery(f"datetime literal {literal!r} needs a time zone (Z)")
    return moment


def object_of(soql: str) -> str:
    """The object a query reads (its FROM), or "" when there is none: for faults scoped to
    one object, worked out before the query is parsed (a malformed query still counts)."""
    match = re.search(r"\bFROM\s+(\w+)", soql, re.IGNORECASE)
    return match.group(1) if match else ""
