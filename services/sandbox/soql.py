r"""The SOQL the sandbox understands, parsed into a Soql (a pure function: text in, a query
or MalformedQuery out; salesforce.py answers the error as Salesforce does, 400
MALFORMED_QUERY).

    SELECT <fields> FROM <object>
      [WHERE <condition> [AND <condition> ...]]
      [ORDER BY SystemModstamp|LastModifiedDate|Id [ASC|DESC][, Id [ASC|DESC]]]
      [LIMIT n]

    <condition>: SystemModstamp|LastModifiedDate <op> <datetime>   (a read's window)
               | <field> = 'string' | true | false | <number>      (a search)

That is what a connector reading changed records, or searching by exact values, sends;
anything else is refused, saying what is understood. Quoted strings take SOQL's escape
sequences (\\ \' \" \n \r \t \b \f); the WHERE clause is tokenized, so a quoted
value may hold anything, keywords included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.sandbox.records import micros


class MalformedQuery(ValueError):
    """The query is not SOQL the sandbox understands; the message says why."""


# A value a search compares a field with.
Literal = str | bool | float


@dataclass(frozen=True)
class Soql:
    """A query the sandbox understands: the SELECT list, the object, a window on the
    modification time, exact values some fields must have, the order and a limit."""

    fields: list[str]
    object_name: str
    # Inclusive bounds on the modification time, in microseconds (None: unbounded).
    lower: int | None
    upper: int | None
    order_by_id: bool
    descending: bool
    limit: int | None
    # (field as written, value) pairs a record must all equal.
    equals: tuple[tuple[str, Literal], ...] = ()


_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)(?P<rest>(?:\s.*)?)$",
    re.IGNORECASE | re.DOTALL,
)
# Tokens after FROM: quoted strings (with escapes), comparison operators, commas, words.
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')"
    r"|(?P<op>>=|<=|!=|=|>|<)|(?P<comma>,)|(?P<word>[^\s'=<>!,]+))",
    re.DOTALL,
)
_FIELD = re.compile(r"^[A-Za-z][\w.]*$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_SOQL_TIMES = frozenset({"systemmodstamp", "lastmodifieddate"})
_UNESCAPE = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
HELP = (
    "the sandbox understands SELECT <fields> FROM <object> "
    "[WHERE SystemModstamp|LastModifiedDate <op> <datetime> [AND ...]] "
    "[ORDER BY SystemModstamp|LastModifiedDate|Id [ASC|DESC][, Id [ASC|DESC]]] [LIMIT n]"
)


@dataclass(frozen=True)
class _Token:
    kind: str  # string, op, comma or word
    text: str  # as written (a string with its quotes and escapes)

    def keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while text[position:].strip():
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise MalformedQuery(f"cannot read {text[position:].strip()!r}; {HELP}")
        kind = found.lastgroup or "word"
        tokens.append(_Token(kind, found.group(kind)))
        position = found.end()
    return tokens


def parse_soql(soql: str) -> Soql:
    match = _SOQL.match(soql)
    if match is None:
        raise MalformedQuery(HELP)
    tokens = _tokens(match["rest"])
    at = 0
    lower: int | None = None
    upper: int | None = None
    equals: list[tuple[str, Literal]] = []
    if at < len(tokens) and tokens[at].keyword("WHERE"):
        at += 1
        while True:
            condition, at = tokens[at : at + 3], at + 3
            text = " ".join(t.text for t in condition)
            if len(condition) < 3 or condition[0].kind != "word" or condition[1].kind != "op":
                raise MalformedQuery(f"unsupported condition {text!r}; {HELP}")
            name, op, value = condition[0].text, condition[1].text, condition[2]
            if name.lower() in _SOQL_TIMES and value.kind == "word":
                lower, upper = _window(lower, upper, op, micros(_soql_datetime(value.text)))
            elif op == "=" and _FIELD.match(name):
                equals.append((name, _literal(value, text)))
            else:
                raise MalformedQuery(f"unsupported condition {text!r}; {HELP}")
            if at < len(tokens) and tokens[at].keyword("AND"):
                at += 1
                continue
            if at < len(tokens) and not tokens[at].keyword("ORDER", "LIMIT"):
                rest = " ".join(t.text for t in tokens[at - 3 :])
                raise MalformedQuery(f"unsupported condition {rest!r}; {HELP}")
            break
    order_by_id, descending = False, False
    if at + 1 < len(tokens) and tokens[at].keyword("ORDER") and tokens[at + 1].keyword("BY"):
        at += 2
        items: list[tuple[str, str]] = []
        while at < len(tokens) and not tokens[at].keyword("LIMIT"):
            item = tokens[at]
            direction = ""
            at += 1
            if at < len(tokens) and tokens[at].keyword("ASC", "DESC"):
                direction, at = tokens[at].text.upper(), at + 1
            if item.kind != "word":
                raise MalformedQuery(HELP)
            items.append((item.text.lower(), direction))
            if at < len(tokens) and tokens[at].kind == "comma":
                at += 1
        if not items or len(items) > 2 or items[0][0] not in _SOQL_TIMES | {"id"}:
            raise MalformedQuery(HELP)
        if len(items) == 2 and items[1][0] != "id":
            raise MalformedQuery(HELP)
        order_by_id = items[0][0] == "id"
        descending = items[0][1] == "DESC"
    limit: int | None = None
    if at < len(tokens) and tokens[at].keyword("LIMIT"):
        if at + 1 >= len(tokens) or not tokens[at + 1].text.isdigit():
            raise MalformedQuery(HELP)
        limit, at = int(tokens[at + 1].text), at + 2
    if at != len(tokens):
        raise MalformedQuery(HELP)
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
        limit=limit,
        equals=tuple(equals),
    )


def _window(
    lower: int | None, upper: int | None, op: str, value: int
) -> tuple[int | None, int | None]:
    """The inclusive bounds after one more condition on the modification time."""
    if op not in {">", ">=", "=", "<", "<="}:
        raise MalformedQuery(f"unsupported operator {op!r}; {HELP}")
    if op in {">", ">=", "="}:
        low = value + 1 if op == ">" else value
        lower = low if lower is None else max(lower, low)
    if op in {"<", "<=", "="}:
        high = value - 1 if op == "<" else value
        upper = high if upper is None else min(upper, high)
    return lower, upper


def _literal(token: _Token, condition: str) -> Literal:
    """A search's value: a quoted string (unescaped), true/false, or a number."""
    if token.kind == "string":
        return _unescape(token.text[1:-1])
    if token.keyword("TRUE", "FALSE"):
        return token.text.upper() == "TRUE"
    if token.kind == "word" and _NUMBER.match(token.text):
        return float(token.text)
    raise MalformedQuery(f"unsupported condition {condition!r}; {HELP}")


def _unescape(quoted: str) -> str:
    out: list[str] = []
    chars = iter(quoted)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars, "")
        if escaped not in _UNESCAPE:
            raise MalformedQuery(f"invalid escape sequence \\{escaped} in a quoted string")
        out.append(_UNESCAPE[escaped])
    return "".join(out)


def satisfies(values: Mapping[str, Any], equals: Sequence[tuple[str, Literal]]) -> bool:
    """Whether a row (field API name -> value, as the sandbox keeps it: text) has every
    value; `equals` names fields as the row spells them. Text compares exactly, booleans
    with the text "true"/"false", numbers by value."""
    for name, wanted in equals:
        value = values.get(name)
        if value is None:
            return False
        if isinstance(wanted, bool):
            if str(value).lower() != ("true" if wanted else "false"):
                return False
        elif isinstance(wanted, float):
            try:
                if float(value) != wanted:
                    return False
            except ValueError:
                return False
        elif str(value) != wanted:
            return False
    return True


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
