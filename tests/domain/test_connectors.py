"""The HubSpot and Salesforce connectors against the provider sandbox, served in process on
a real socket (its state seeded and its faults injected directly)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2

from services.domain.connectors import http as provider_http
from services.domain.connectors.base import (
    Connector,
    Page,
    PageTokenExpired,
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    ReadRequest,
    TokenRejected,
)
from services.domain.connectors.hubspot import HubSpotConnector
from services.domain.connectors.registry import NoConnector, connector_for, provider_auth
from services.domain.connectors.salesforce import SalesforceConnector
from services.sandbox.faults import FaultKind
from services.sandbox.providers import Provider
from tests.support.served_sandbox import ACCESS_TOKEN, ServedSandbox

UNTIL = datetime(2026, 11, 1, tzinfo=UTC)
START = UNTIL - timedelta(days=10)


async def _read_all(
    connector: Connector, http: aiohttp.ClientSession, auth: ProviderAuth, request: ReadRequest
) -> tuple[list[dict[str, Any]], list[Page]]:
    records: list[dict[str, Any]] = []
    pages: list[Page] = []
    token = ""
    while True:
        page = await connector.read_page(http, auth, _with_token(request, token))
        pages.append(page)
        records += page.records
        token = page.next_page_token
        if not token:
            return records, pages


def _with_token(request: ReadRequest, token: str) -> ReadRequest:
    return ReadRequest(
        request.object_name,
        request.fields,
        request.since,
        request.until,
        page_token=token,
        page_size=request.page_size,
    )


def _seed(sandbox: ServedSandbox, provider: Provider, name: str, count: int) -> None:
    sandbox.state.records.seed(provider, name, count, 7, START, UNTIL, replace=True)


def _expected(
    sandbox: ServedSandbox,
    provider: Provider,
    name: str,
    since: datetime | None,
    until: datetime | None,
) -> set[str]:
    return {
        r.id
        for r in sandbox.state.records.records(provider, name)
        if (since is None or r.modified >= since) and (until is None or r.modified < until)
    }


async def test_hubspot_full_history_lists_every_record_once(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    _seed(sandbox, Provider.HUBSPOT, "contacts", 250)
    connector = HubSpotConnector()
    request = ReadRequest("contacts", ["email", "firstname"], None, None)
    records, pages = await _read_all(connector, http, sandbox.auth(Provider.HUBSPOT), request)
    ids = [connector.record_id(r) for r in records]
    # Three pages of live records, then the (empty) archived phase.
    assert len(pages) == 4 and not pages[-1].records
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == _expected(sandbox, Provider.HUBSPOT, "contacts", None, None)
    values = connector.field_values(records[0])
    assert {"email", "firstname", "hs_lastmodifieddate"} <= set(values)
    assert "lastname" not in values
    assert connector.modified_time(records[0]) is not None


async def test_hubspot_window_beyond_the_search_cap(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    _seed(sandbox, Provider.HUBSPOT, "contacts", 26_000)
    # A few records share one instant at a page boundary region too.
    touched = sandbox.state.records.touch(
        Provider.HUBSPOT, "contacts", [], 300, 1, START + timedelta(days=5)
    )
    assert len(touched) == 300
    since, until = START + timedelta(hours=1), UNTIL  # the newest record lies at UNTIL
    expected = _expected(sandbox, Provider.HUBSPOT, "contacts", since, until)
    assert len(expected) > 2 * 10_000

    connector = HubSpotConnector()
    request = ReadRequest("contacts", [], since, until)
    records, pages = await _read_all(connector, http, sandbox.auth(Provider.HUBSPOT), request)
    ids = [connector.record_id(r) for r in records]
    assert set(ids) == expected
    assert [id_ for id_, n in Counter(ids).items() if n > 1] == []
    times = [connector.modified_time(r) for r in records]
    assert times == sorted(times)  # type: ignore[type-var]
    assert pages[0].estimated_total == len(expected)


async def test_hubspot_crowded_instant_beyond_the_cap(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    """More than 10,000 records modified in the same millisecond: read by id, none lost."""
    moment = START + timedelta(days=3)
    sandbox.state.records.seed(
        Provider.HUBSPOT, "contacts", 10_500, 3, moment, moment, replace=True
    )
    sandbox.state.records.seed(
        Provider.HUBSPOT, "contacts", 50, 4, moment, UNTIL - timedelta(days=1), replace=False
    )
    since, until = START, UNTIL
    connector = HubSpotConnector()
    request = ReadRequest("contacts", [], since, until, page_size=500)  # capped at 200
    records, pages = await _read_all(connector, http, sandbox.auth(Provider.HUBSPOT), request)
    assert all(len(page.records) <= 200 for page in pages)
    assert set(connector.record_id(r) for r in records) == _expected(
        sandbox, Provider.HUBSPOT, "contacts", since, until
    )


async def test_salesforce_window_and_full_history(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    _seed(sandbox, Provider.SALESFORCE, "Account", 5000)
    connector = SalesforceConnector()
    auth = sandbox.auth(Provider.SALESFORCE)
    since, until = START + timedelta(days=2, microseconds=1500), START + timedelta(days=7)
    request = ReadRequest("Account", ["Name", "industry"], since, until, page_size=1000)
    records, pages = await _read_all(connector, http, auth, request)
    expected = _expected(sandbox, Provider.SALESFORCE, "Account", since, until)
    ids = [connector.record_id(r) for r in records]
    assert sorted(ids) == sorted(expected)
    assert len(pages) == -(-len(expected) // 1000)
    assert pages[0].estimated_total == len(expected)
    stamps = [connector.modified_time(r) for r in records]
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert all(since <= s < until for s in stamps)  # type: ignore[operator]
    assert set(records[0]) == {
        "attributes",
        "Id",
        "SystemModstamp",
        "Name",
        "Industry",
        "IsDeleted",
    }
    assert set(connector.field_values(records[0])) == {
        "id",
        "systemmodstamp",
        "name",
        "industry",
        "isdeleted",
    }

    everything, _ = await _read_all(connector, http, auth, ReadRequest("Account", [], None, None))
    assert {connector.record_id(r) for r in everything} == _expected(
        sandbox, Provider.SALESFORCE, "Account", None, None
    )
    assert {"Name", "Industry", "CreatedDate", "LastModifiedDate"} <= set(everything[0])


async def test_salesforce_refusals(sandbox: ServedSandbox, http: aiohttp.ClientSession) -> None:
    _seed(sandbox, Provider.SALESFORCE, "Account", 10)
    connector = SalesforceConnector()
    auth = sandbox.auth(Provider.SALESFORCE)
    gone = ReadRequest(
        "Account", [], None, None, page_token="/services/data/v60.0/query/01gFFFF-2000"
    )
    with pytest.raises(PageTokenExpired) as refused:
        await connector.read_page(http, auth, gone)
    assert refused.value.code == "INVALID_QUERY_LOCATOR"
    assert "restart the window" in str(refused.value)

    with pytest.raises(ProviderRequestError) as bad_field:
        await connector.read_page(http, auth, ReadRequest("Account", ["Nope"], None, None))
    assert bad_field.value.status == 400 and bad_field.value.code == "INVALID_FIELD"
    assert "Nope" in str(bad_field.value) and ACCESS_TOKEN not in str(bad_field.value)

    with pytest.raises(ProviderRequestError):
        await connector.read_page(http, auth, ReadRequest("Account; DROP", [], None, None))

    wrong = ProviderAuth(auth.base_url, {"Authorization": "Bearer not-a-token"})
    with pytest.raises(TokenRejected) as rejected:
        await connector.read_page(http, wrong, ReadRequest("Account", [], None, None))
    assert "INVALID_SESSION_ID" in str(rejected.value) and "not-a-token" not in str(rejected.value)


async def test_rate_limit_honours_retry_after(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    _seed(sandbox, Provider.HUBSPOT, "contacts", 5)
    connector = HubSpotConnector()
    auth = sandbox.auth(Provider.HUBSPOT)
    request = ReadRequest("contacts", [], START, UNTIL + timedelta(seconds=1))
    fault = sandbox.fault(kind=FaultKind.RATE_LIMIT, count=1, retry_after=1.0)
    started = time.monotonic()
    page = await connector.read_page(http, auth, request)
    waited = time.monotonic() - started
    assert len(page.records) == 5 and fault.fired == 1
    # The wait follows Retry-After (1 s), not the first backoff step (0.25 s).
    assert waited >= 0.9
    statuses = sandbox.state.counters.providers[Provider.HUBSPOT].api_by_status
    assert statuses[429] >= 1

    # A Retry-After beyond the budget is handed to the caller instead of waited for.
    sandbox.fault(kind=FaultKind.RATE_LIMIT, count=1, retry_after=30.0)
    with pytest.raises(ProviderUnavailable) as unavailable:
        await provider_http.send(
            http,
            "POST",
            f"{auth.base_url}/crm/v3/objects/contacts/search",
            auth=auth,
            json={},
            max_wait=5,
        )
    assert unavailable.value.retry_after == 30.0
    assert "RATE_LIMITS" in str(unavailable.value)


async def test_server_errors_are_retried_then_given_up(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    _seed(sandbox, Provider.SALESFORCE, "Account", 3)
    connector = SalesforceConnector()
    auth = sandbox.auth(Provider.SALESFORCE)
    request = ReadRequest("Account", [], None, None)
    fault = sandbox.fault(kind=FaultKind.SERVER_ERROR, count=2, http_status=503)
    page = await connector.read_page(http, auth, request)
    assert len(page.records) == 3 and fault.fired == 2

    endless = sandbox.fault(kind=FaultKind.SERVER_ERROR, http_status=500)
    with pytest.raises(ProviderUnavailable) as unavailable:
        await provider_http.send(
            http,
            "GET",
            f"{auth.base_url}/services/data/v60.0/query",
            auth=auth,
            params={"q": "SELECT Id FROM Account"},
            max_wait=1.0,
        )
    assert endless.fired >= 2
    assert "500 SERVER_UNAVAILABLE" in str(unavailable.value)


async def test_network_errors_are_retried_then_given_up(http: aiohttp.ClientSession) -> None:
    auth = ProviderAuth("http://127.0.0.1:9", {"Authorization": "Bearer x"})
    with pytest.raises(ProviderUnavailable) as unavailable:
        await provider_http.send(
            http, "GET", f"{auth.base_url}/x?api_key=secret", auth=auth, max_wait=0.5
        )
    assert "ClientConnectorError" in str(unavailable.value) and "secret" not in str(
        unavailable.value
    )


def test_retry_after_forms() -> None:
    assert provider_http.retry_after("3") == 3.0
    assert provider_http.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    later = datetime.now(UTC) + timedelta(seconds=120)
    parsed = provider_http.retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert parsed is not None and 100 < parsed <= 120
    assert provider_http.retry_after("soon") is None
    assert provider_http.retry_after(None) is None


def test_registry() -> None:
    assert connector_for("hubspot").provider == "hubspot"
    assert connector_for("salesforce").provider == "salesforce"
    with pytest.raises(NoConnector, match="'pipedrive' records is not supported"):
        connector_for("pipedrive")

    info = providers_pb2.ProviderInfo(
        name="salesforce", base_url="https://{{.workspace}}.my.salesforce.com/"
    )
    answer = token_manager_pb2.GetTokenResponse()
    answer.token.token = "abc"
    answer.token.attachments.add(
        location=token_manager_pb2.ATTACHMENT_LOCATION_HEADER,
        name="Authorization",
        value="Bearer abc",
    )
    answer.token.attachments.add(
        location=token_manager_pb2.ATTACHMENT_LOCATION_QUERY, name="hapikey", value="k"
    )
    auth = provider_auth(info, "acme", answer)
    assert auth.base_url == "https://acme.my.salesforce.com"
    assert dict(auth.headers) == {"Authorization": "Bearer abc"}
    assert dict(auth.query) == {"hapikey": "k"}
    with pytest.raises(ValueError, match="needs workspace"):
        provider_auth(info, "", answer)

    bare = token_manager_pb2.GetTokenResponse()
    bare.token.token, bare.token.token_type = "xyz", "Bearer"
    plain = providers_pb2.ProviderInfo(name="hubspot", base_url="https://api.hubapi.com")
    assert dict(provider_auth(plain, "", bare).headers) == {"Authorization": "Bearer xyz"}
