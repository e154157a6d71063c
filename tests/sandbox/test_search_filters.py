"""The sandbox answers searches as the providers do: SOQL `WHERE Field = literal`
(quoted strings with SOQL's escapes, booleans, numbers) and HubSpot's EQ filters, as the
search connectors (services/domain/connectors/search.py) send them."""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
import pytest

from services.domain.connectors.base import ProviderAuth
from services.domain.connectors.search import (
    HubSpotSearcher,
    SalesforceSearcher,
    SearchRequest,
    soql,
)
from services.sandbox.soql import MalformedQuery, parse_soql, satisfies
from tests.support.sandbox import HS, SF, bearer, client_token, seed_records

SF_QUERY = "/salesforce/services/data/v60.0/query"
SF_TOKEN = "/salesforce/services/oauth2/token"


def test_equality_conditions_parse_with_their_values_unescaped() -> None:
    query = parse_soql(
        "SELECT Id FROM Contact WHERE Email = 'o\\'brien AND x\\\\y\\n' "
        "AND IsDeleted = false AND Amount = 12.5 ORDER BY Id LIMIT 3"
    )
    assert query.equals == (("Email", "o'brien AND x\\y\n"), ("IsDeleted", False), ("Amount", 12.5))
    assert query.order_by_id and query.limit == 3


def test_a_window_and_a_search_combine() -> None:
    query = parse_soql(
        "SELECT Id FROM Account WHERE SystemModstamp >= 2026-01-01T00:00:00Z AND Name = 'A'"
    )
    assert query.lower is not None and query.equals == (("Name", "A"),)


@pytest.mark.parametrize(
    ("condition", "says"),
    [
        ("Name != 'x'", "unsupported condition \"Name != 'x'\""),
        ("Name = x", "unsupported condition 'Name = x'"),
        ("Name = 'x\\q'", "invalid escape sequence \\q"),
        ("Name = 'unterminated", "cannot read"),
        ("Name = 'a' OR Name = 'b'", "unsupported condition"),
    ],
)
def test_what_a_search_may_not_say_is_refused(condition: str, says: str) -> None:
    with pytest.raises(MalformedQuery) as refused:
        parse_soql("SELECT Id FROM Account WHERE " + condition)  # noqa: S608 (parsed, not run)
    assert str(refused.value).startswith(says)


def test_values_compare_as_the_row_keeps_them() -> None:
    row = {"Name": "Acme", "IsDeleted": "false", "Amount": "12.50"}
    assert satisfies(row, [("Name", "Acme"), ("IsDeleted", False), ("Amount", 12.5)])
    assert not satisfies(row, [("Name", "acme")])
    assert not satisfies(row, [("IsDeleted", True)])
    assert not satisfies(row, [("Missing", "x")])


def test_what_the_connector_writes_the_sandbox_reads_back() -> None:
    tricky = "it's \\ \"quoted\"\n AND Name = 'x'"
    written = soql(SearchRequest("Contact", [("Email", tricky), ("Score", 3.0)], ["Email"]))
    assert parse_soql(written).equals == (("Email", tricky), ("Score", 3.0))


async def _salesforce_token(http: httpx.AsyncClient) -> str:
    answer = await http.post(
        SF_TOKEN,
        data={"grant_type": "client_credentials"},
        auth=("sandbox-client", "sandbox-secret"),
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def test_a_soql_search_finds_exactly_the_matching_rows(
    sandbox: Any, http: httpx.AsyncClient, sandbox_process: Any
) -> None:
    await seed_records(sandbox, SF, "Contact", 40)
    token = await _salesforce_token(http)
    everything = (
        await http.get(
            SF_QUERY, params={"q": "SELECT Id, Email, LastName FROM Contact"}, headers=bearer(token)
        )
    ).json()["records"]
    target = everything[17]
    auth = ProviderAuth(base_url=f"{sandbox_process.http_url}/salesforce", headers=bearer(token))
    async with aiohttp.ClientSession() as session:
        searcher = SalesforceSearcher()
        found = await searcher.search(
            session,
            auth,
            SearchRequest("Contact", [("email", target["Email"])], ["Email", "LastName"]),
        )
        assert [row["Id"] for row in found] == [target["Id"]]
        assert found[0]["LastName"] == target["LastName"]
        same_name = await searcher.search(
            session, auth, SearchRequest("Contact", [("LastName", target["LastName"])])
        )
        assert {row["Id"] for row in same_name} == {
            row["Id"] for row in everything if row["LastName"] == target["LastName"]
        }
        nobody = await searcher.search(
            session, auth, SearchRequest("Contact", [("Email", "x' OR Email != '")])
        )
        assert nobody == []
    unknown = await http.get(
        SF_QUERY,
        params={"q": "SELECT Id FROM Contact WHERE Nickname = 'x'"},
        headers=bearer(token),
    )
    assert unknown.status_code == 400
    assert unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "Nickname" in unknown.json()[0]["message"]


async def test_a_hubspot_search_finds_the_record_by_a_property(
    sandbox: Any, http: httpx.AsyncClient, sandbox_process: Any
) -> None:
    await seed_records(sandbox, HS, "contacts", 40)
    token = await client_token(http)
    listed = (
        await http.get(
            "/hubspot/crm/v3/objects/contacts",
            params={"limit": "100", "properties": "email,lastname"},
            headers=bearer(token),
        )
    ).json()["results"]
    target = listed[23]
    auth = ProviderAuth(base_url=f"{sandbox_process.http_url}/hubspot", headers=bearer(token))
    async with aiohttp.ClientSession() as session:
        found = await HubSpotSearcher().search(
            session,
            auth,
            SearchRequest("contacts", [("email", target["properties"]["email"])], ["email"]),
        )
    assert [record["id"] for record in found] == [target["id"]]
    assert found[0]["properties"]["email"] == target["properties"]["email"]
