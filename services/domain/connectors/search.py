"""Searching a provider's records by exact field values: one page, answered while the
caller waits (the Search API, services/api/search).

- HubSpot: CRM search, `POST /crm/v3/objects/{object}/search` with one filter group whose
  filters (ANDed) are `{propertyName, operator: "EQ", value}`; HubSpot takes every value
  as a string and at most 6 filters in a group.
- Salesforce: a SOQL `WHERE` of `Field = literal` conditions ANDed, through the REST query
  resource. Values become SOQL literals (strings quoted and escaped per the SOQL rules,
  booleans and numbers bare); object and field names are checked, never spliced unchecked.

The caller gives provider names (the api maps an installation's mapped names back) and
the fields to answer with (the read plan's; none: the connector's default set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import aiohttp

from services.domain.connectors.base import ProviderAuth, ProviderRequestError
from services.domain.connectors.http import json_body, send
from services.domain.connectors.salesforce import API_VERSION, select_list

# A filter value, as the reference's FieldFilter allows: a string, a boolean or a number.
FilterValue = str | bool | int | float
# Records answered per search: one provider page (HubSpot's search allows at most 200).
PAGE_SIZE = 200


@dataclass(frozen=True)
class SearchRequest:
    """One search of one object."""

    # The provider's object name (e.g. `contacts`, `Account`).
    object_name: str
    # (provider field name, value) pairs a record must all equal.
    equals: Sequence[tuple[str, FilterValue]]
    # Provider field names to answer with; empty asks for the connector's default set.
    fields: Sequence[str] = ()
    limit: int = PAGE_SIZE


class Searcher(Protocol):
    """One provider's search."""

    provider: str
    # The most filters one search may carry (the provider's own limit).
    max_filters: int

    async def search(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: SearchRequest
    ) -> list[dict[str, Any]]:
        """The matching records exactly as the provider returned them (one page)."""
        ...


class HubSpotSearcher:
    provider = "hubspot"
    max_filters = 6

    async def search(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: SearchRequest
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": name, "operator": "EQ", "value": hubspot_value(value)}
                        for name, value in request.equals
                    ]
                }
            ],
            "limit": max(1, min(request.limit, PAGE_SIZE)),
        }
        if request.fields:
            body["properties"] = list(request.fields)
        url = f"{auth.base_url}/crm/v3/objects/{request.object_name}/search"
        answer = json_body(await send(http, "POST", url, auth=auth, json=body))
        return list(answer.get("results") or [])


class SalesforceSearcher:
    provider = "salesforce"
    # SOQL has no such limit; this keeps one search a reasonable query.
    max_filters = 20

    async def search(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: SearchRequest
    ) -> list[dict[str, Any]]:
        url = f"{auth.base_url}/services/data/{API_VERSION}/query"
        answer = json_body(await send(http, "GET", url, auth=auth, params={"q": soql(request)}))
        return list(answer.get("records") or [])


def hubspot_value(value: FilterValue) -> str:
    """HubSpot's string form of a filter value (its booleans are "true"/"false")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def soql(request: SearchRequest) -> str:
    """The search's query: `SELECT … FROM … WHERE F = v [AND …] LIMIT n`."""
    _check_name(request.object_name, "object")
    conditions = []
    for name, value in request.equals:
        _check_name(name, "field")
        conditions.append(f"{name} = {soql_literal(value)}")
    fields = ", ".join(select_list(request.object_name, request.fields))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    limit = max(1, min(request.limit, PAGE_SIZE))
    return f"SELECT {fields} FROM {request.object_name}{where} LIMIT {limit}"  # noqa: S608 (names checked, values escaped)


# SOQL's escape sequences in quoted strings (Salesforce's "Quoted String Escape Sequences").
_SOQL_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\b": "\\b",
        "\f": "\\f",
    }
)


def soql_literal(value: FilterValue) -> str:
    """A value as a SOQL literal: a quoted, escaped string; true/false; a plain number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(float(value)) if isinstance(value, float) else str(value)
    return "'" + value.translate(_SOQL_ESCAPES) + "'"


def _number(value: float) -> str:
    """A JSON number as the providers write it: 5, not 5.0; no exponent."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number a provider can compare with")
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _check_name(name: str, what: str) -> None:
    # As salesforce.py checks the names it splices: API names are letters, digits and
    # underscores (custom ones end in __c; relationship fields use dots).
    if not name or not all(part.replace("_", "").isalnum() for part in name.split(".")):
        raise ProviderRequestError(f"{name!r} is not a valid Salesforce {what} name")
