"""The sandbox's record APIs as incremental readers use them: HubSpot CRM search (filters,
sorts, paging, the 10,000-result cap) and Salesforce SOQL windows, their faults, and their
speed (printed, not asserted)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from ampmesh.sandbox.v1 import sandbox_pb2

from tests.support.sandbox import (
    HS,
    SF,
    UNTIL,
    UTC_START,
    bearer,
    client_token,
    duration,
    seed_records,
    timestamp,
)

SEARCH = "/hubspot/crm/v3/objects/contacts/search"
CONTACTS = "/hubspot/crm/v3/objects/contacts"
SF_QUERY = "/salesforce/services/data/v60.0/query"
SF_TOKEN = "/salesforce/services/oauth2/token"


def _millis(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _list_all(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    params = {"limit": "100"}
    while True:
        response = await http.get(CONTACTS, params=params, headers=bearer(token))
        body = orjson.loads(response.content)  # the stdlib parser would be what is timed
        records += body["results"]
        if "paging" not in body:
            return records
        params["after"] = body["paging"]["next"]["after"]


async def _search(http: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    return await http.post(SEARCH, json=body, headers=bearer(token))


def _window(since: datetime, until: datetime) -> list[dict[str, Any]]:
    return [
        {
            "filters": [
                {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": _millis(since)},
                {
                    "propertyName": "hs_lastmodifieddate",
                    "operator": "LT",
                    "value": until.isoformat(),
                },
            ]
        }
    ]


async def test_hubspot_search_filters_sorts_and_pages(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    await seed_records(sandbox, HS, "contacts", 500)
    token = await client_token(http)
    everything = await _list_all(http, token)
    since, until = UTC_START + timedelta(days=2), UTC_START + timedelta(days=6)
    expected = [
        r for r in everything if since <= _time(r["properties"]["hs_lastmodifieddate"]) < until
    ]
    expected.sort(key=lambda r: (r["properties"]["hs_lastmodifieddate"], int(r["id"])))
    assert 100 < len(expected) < 500

    found: list[dict[str, Any]] = []
    after = None
    while True:
        body: dict[str, Any] = {
            "filterGroups": _window(since, until),
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["email"],
            "limit": 200,
        }
        if after:
            body["after"] = after
        response = await _search(http, token, **body)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(expected)
        found += page["results"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    assert [r["id"] for r in found] == [r["id"] for r in expected]
    assert set(found[0]["properties"]) == {
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "email",
    }
    assert set(found[0]) == {"id", "properties", "createdAt", "updatedAt", "archived"}

    newest_first = await _search(
        http, token, filterGroups=_window(since, until), sorts=["-hs_lastmodifieddate"], limit=5
    )
    assert [r["id"] for r in newest_first.json()["results"]] == [
        r["id"] for r in expected[::-1][:5]
    ]

    # Groups are ORed, filters ANDed; a filter on a plain property is honoured too.
    pivot = int(expected[10]["id"])
    email = everything[0]["properties"]["email"]
    either = await _search(
        http,
        token,
        filterGroups=[
            {
                "filters": [
                    {"propertyName": "hs_object_id", "operator": "LTE", "value": str(pivot)},
                    *_window(since, until)[0]["filters"],
                ]
            },
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]},
        ],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        limit=200,
    )
    ids = [int(r["id"]) for r in either.json()["results"]]
    wanted = {int(r["id"]) for r in expected if int(r["id"]) <= pivot}
    wanted |= {int(r["id"]) for r in everything if r["properties"]["email"] == email}
    assert ids == sorted(wanted)

    for bad in (
        {"limit": 201},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE"}]}]},
        {"sorts": ["email"]},
        {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "x"}]}
            ]
        },
    ):
        refused = await _search(http, token, **bad)
        assert refused.status_code == 400, bad
        assert refused.json()["category"] == "VALIDATION_ERROR"


async def test_hubspot_search_refuses_paging_past_10000(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    await seed_records(sandbox, HS, "contacts", 10_100)
    token = await client_token(http)
    body = {"filterGroups": _window(UTC_START, UNTIL + timedelta(seconds=1)), "limit": 200}
    last = await _search(http, token, after="9800", **body)
    assert last.status_code == 200
    page = last.json()
    assert page["total"] == 10_100 and len(page["results"]) == 200
    assert page["paging"]["next"]["after"] == "10000"  # offered, as HubSpot does
    beyond = await _search(http, token, after="10000", **body)
    assert beyond.status_code == 400
    assert "10000" in beyond.json()["message"]


async def test_touch_keeps_the_indexes_right(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 300)
    token = await client_token(http)
    when = UNTIL + timedelta(hours=1)
    touched = await sandbox.TouchRecords(
        sandbox_pb2.TouchRecordsRequest(
            provider=HS, object_name="contacts", count=4, seed=2, modify_time=timestamp(when)
        )
    )
    recent = await _search(
        http,
        token,
        filterGroups=[
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GT",
                        "value": _millis(UNTIL),
                    }
                ]
            }
        ],
        limit=100,
    )
    assert sorted(r["id"] for r in recent.json()["results"]) == sorted(touched.ids)
    assert {r["properties"]["hs_lastmodifieddate"] for r in recent.json()["results"]} == {
        when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    }
    listed = await _list_all(http, token)
    assert len(listed) == len({r["id"] for r in listed}) == 300


async def test_soql_windows_and_versions(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, SF, "Account", 60)
    token = (
        await http.post(
            SF_TOKEN,
            data={"grant_type": "client_credentials"},
            auth=("sandbox-client", "sandbox-secret"),
        )
    ).json()["access_token"]
    headers = {**bearer(token), "Sforce-Query-Options": "batchSize=7"}

    async def query(soql: str, path: str = SF_QUERY) -> list[dict[str, Any]]:
        response = await http.get(path, params={"q": soql}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        rows = list(body["records"])
        while not body["done"]:
            assert body["nextRecordsUrl"].startswith(path.removeprefix("/salesforce") + "/")
            body = (await http.get("/salesforce" + body["nextRecordsUrl"], headers=headers)).json()
            rows += body["records"]
        assert body["totalSize"] == len(rows)
        return rows

    everything = await query(
        "SELECT Id, SystemModstamp FROM Account ORDER BY SystemModstamp ASC, Id ASC"
    )
    stamps = [(r["SystemModstamp"], r["Id"]) for r in everything]
    assert len(stamps) == 60 and stamps == sorted(stamps)
    low, high = everything[10]["SystemModstamp"], everything[40]["SystemModstamp"]
    low_iso, high_iso = _time(low).isoformat(), _time(high).isoformat()
    window = await query(
        f"SELECT Id, Name FROM Account WHERE SystemModstamp >= {low_iso} "  # noqa: S608
        f"AND SystemModstamp < {high_iso} ORDER BY SystemModstamp ASC"
    )
    assert [r["Id"] for r in window] == [r["Id"] for r in everything[10:40]]
    assert set(window[0]) == {"attributes", "Id", "Name"}
    assert window[0]["attributes"]["url"].startswith("/services/data/v60.0/sobjects/Account/")
    exclusive = await query(
        f"SELECT Id FROM Account WHERE LastModifiedDate > {low_iso} "  # noqa: S608
        f"AND LastModifiedDate <= {high_iso} ORDER BY LastModifiedDate DESC LIMIT 5",
        path="/salesforce/services/data/v59.0/query",
    )
    assert [r["Id"] for r in exclusive] == [r["Id"] for r in everything[11:41][::-1][:5]]
    upper_only = await query(f"SELECT Id FROM Account WHERE SystemModstamp < {low_iso}")  # noqa: S608
    assert {r["Id"] for r in upper_only} == {r["Id"] for r in everything[:10]}

    wrong_version = await http.get(
        "/salesforce/services/data/latest/query",
        params={"q": "SELECT Id FROM Account"},
        headers=headers,
    )
    assert wrong_version.status_code == 404
    unsupported = await http.get(
        SF_QUERY, params={"q": "SELECT Id FROM Account WHERE Name LIKE 'x'"}, headers=headers
    )
    assert unsupported.status_code == 400
    assert unsupported.json()[0]["errorCode"] == "MALFORMED_QUERY"


async def test_faults_on_search_and_query_more(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 3)
    await seed_records(sandbox, SF, "Contact", 5)
    token = await client_token(http)
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
                provider=HS,
                object_name="contacts",
                count=1,
                retry_after=duration(3),
            )
        )
    )
    limited = await _search(http, token, limit=10)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.json()["category"] == "RATE_LIMITS"
    assert len((await _search(http, token, limit=10)).json()["results"]) == 3

    sf_token = (
        await http.post(
            SF_TOKEN,
            data={"grant_type": "client_credentials"},
            auth=("sandbox-client", "sandbox-secret"),
        )
    ).json()["access_token"]
    headers = {**bearer(sf_token), "Sforce-Query-Options": "batchSize=2"}
    first = await http.get(SF_QUERY, params={"q": "SELECT Id FROM Contact"}, headers=headers)
    # A fault scoped to the object also meets its cursor's next pages.
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
                provider=SF,
                object_name="Contact",
                http_status=503,
                count=1,
            )
        )
    )
    more = "/salesforce" + first.json()["nextRecordsUrl"]
    failed = await http.get(more, headers=headers)
    assert failed.status_code == 503
    assert (await http.get(more, headers=headers)).status_code == 200


async def test_seed_and_page_speed(sandbox: Any, http: httpx.AsyncClient) -> None:
    """50,000 records seeded and read back; the figures are printed, not asserted."""
    started = time.perf_counter()
    seeded = await sandbox.SeedRecords(
        sandbox_pb2.SeedRecordsRequest(
            provider=HS,
            object_name="contacts",
            count=50_000,
            seed=1,
            modified_from=timestamp(UTC_START),
            modified_until=timestamp(UNTIL),
            replace=True,
        )
    )
    seed_took = time.perf_counter() - started
    assert seeded.total == 50_000
    token = await client_token(http)
    started = time.perf_counter()
    listed = await _list_all(http, token)
    list_took = time.perf_counter() - started
    assert len(listed) == 50_000

    started = time.perf_counter()
    searched = 0
    body: dict[str, Any] = {
        "filterGroups": _window(UTC_START, UNTIL),
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 200,
    }
    for after in range(0, 10_000, 200):
        response = await _search(http, token, after=str(after), **body)
        searched += len(response.json()["results"])
    search_took = time.perf_counter() - started
    assert searched == 10_000
    print(
        f"\nseed 50,000: {seed_took:.2f} s; list: {50_000 / list_took:,.0f} records/s; "
        f"search: {searched / search_took:,.0f} records/s (client parsing included)"
    )
