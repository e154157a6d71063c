"""The provider sandbox end to end: its process, its OAuth server, record APIs, faults."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2

from tests.support.sandbox import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACTS,
    HS,
    HS_TOKEN,
    REDIRECT,
    SF,
    SF_QUERY,
    SF_TOKEN,
    UNTIL,
    USERNAME,
    bearer,
    client_token,
    duration,
    password_tokens,
    seed_records,
    token_request,
)


async def test_info_describes_providers_clients_and_users(sandbox: Any, http: Any) -> None:
    info = await sandbox.GetSandboxInfo(sandbox_pb2.GetSandboxInfoRequest())
    by_name = {p.catalog_name: p for p in info.providers}
    assert set(by_name) == {"hubspot", "salesforce"}
    assert by_name["hubspot"].token_url == f"{http.base_url}".rstrip("/") + HS_TOKEN
    assert [c.client_id for c in info.clients] == [CLIENT_ID]
    assert [u.username for u in info.users] == [USERNAME]
    assert info.rotates_refresh_tokens


async def test_auth_code_with_pkce_end_to_end(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 3)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    authorize = await http.get(
        "/hubspot/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": "crm.objects.contacts.read",
            "state": "xyz",
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        },
    )
    assert authorize.status_code == 302, authorize.text
    location = urlsplit(authorize.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    code = query["code"][0]

    exchange = dict(grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    wrong = await token_request(http, HS_TOKEN, **exchange, code_verifier="not-the-verifier" * 3)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # The failed attempt did not spend the code; the right verifier gets tokens.
    tokens = await token_request(http, HS_TOKEN, **exchange, code_verifier=verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"].lower() == "bearer" and body["refresh_token"]

    records = await http.get(CONTACTS, headers=bearer(body["access_token"]))
    assert records.status_code == 200
    assert len(records.json()["results"]) == 3
    # A code works once.
    again = await token_request(http, HS_TOKEN, **exchange, code_verifier=verifier)
    assert again.status_code == 400


async def test_client_credentials_and_missing_token(sandbox: Any, http: Any) -> None:
    await seed_records(sandbox, HS, "contacts", 2)
    assert (await http.get(CONTACTS)).status_code == 401
    assert (await http.get(CONTACTS, headers=bearer("nonsense"))).status_code == 401
    bad = await http.post(
        HS_TOKEN, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, "wrong")
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    token = await client_token(http)
    assert (await http.get(CONTACTS, headers=bearer(token))).status_code == 200
    # A HubSpot token is no Salesforce session.
    assert (
        await http.get(SF_QUERY, params={"q": "SELECT Id FROM Account"}, headers=bearer(token))
    ).status_code == 401


async def test_refresh_rotates(sandbox: Any, http: httpx.AsyncClient) -> None:
    first = await password_tokens(http)
    refreshed = await token_request(
        http, HS_TOKEN, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    reused = await token_request(
        http, HS_TOKEN, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    again = await token_request(
        http, HS_TOKEN, grant_type="refresh_token", refresh_token=second["refresh_token"]
    )
    assert again.status_code == 200


async def test_revocation(sandbox: Any, http: httpx.AsyncClient) -> None:
    tokens = await password_tokens(http)
    assert (await http.get(CONTACTS, headers=bearer(tokens["access_token"]))).status_code == 200
    revoked = await http.post(
        "/hubspot/oauth/v1/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert revoked.status_code == 200
    # Revoking the refresh token revokes the grant: its access token too.
    assert (await http.get(CONTACTS, headers=bearer(tokens["access_token"]))).status_code == 401
    refresh = await token_request(
        http, HS_TOKEN, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refresh.status_code == 400


async def test_hubspot_paging_is_complete_ordered_and_deterministic(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    seeded = await seed_records(sandbox, HS, "contacts", 25)
    assert (seeded.created, seeded.total) == (25, 25)
    token = await client_token(http)

    async def read_all() -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        params = {"limit": "10", "properties": "email,firstname"}
        while True:
            page = await http.get(CONTACTS, params=params, headers=bearer(token))
            assert page.status_code == 200, page.text
            body = page.json()
            results += body["results"]
            if "paging" not in body:
                return results
            params["after"] = body["paging"]["next"]["after"]

    first = await read_all()
    assert len(first) == 25
    ids = [int(r["id"]) for r in first]
    assert ids == sorted(ids) and len(set(ids)) == 25
    record = first[0]
    assert set(record) == {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert record["archived"] is False
    assert {"email", "firstname", "hs_object_id"} <= set(record["properties"])
    assert "lastname" not in record["properties"]

    await seed_records(sandbox, HS, "contacts", 25)  # same seed, replace
    assert await read_all() == first
    await seed_records(sandbox, HS, "contacts", 25, seed=8)
    assert await read_all() != first


async def test_salesforce_query_pages_with_next_records_url(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    await seed_records(sandbox, SF, "Account", 7)
    answer = await password_tokens(http, SF_TOKEN)
    assert answer["instance_url"] == "https://ampmesh-sandbox.my.salesforce.com"
    token = answer["access_token"]
    headers = {**bearer(token), "Sforce-Query-Options": "batchSize=3"}
    soql = "SELECT Id, Name, LastModifiedDate FROM Account ORDER BY LastModifiedDate"
    page = await http.get(SF_QUERY, params={"q": soql}, headers=headers)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["totalSize"] == 7 and body["done"] is False
    records = list(body["records"])
    while not body["done"]:
        page = await http.get("/salesforce" + body["nextRecordsUrl"], headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        records += body["records"]
    assert len(records) == 7
    assert records[0]["attributes"]["type"] == "Account"
    assert set(records[0]) == {"attributes", "Id", "Name", "LastModifiedDate"}
    stamps = [r["LastModifiedDate"] for r in records]
    assert stamps == sorted(stamps)

    # Incremental: only records modified after the fourth one's time.
    since = datetime.strptime(stamps[3], "%Y-%m-%dT%H:%M:%S.%f%z").isoformat()
    newer = await http.get(
        SF_QUERY,
        params={"q": f"SELECT Id FROM Account WHERE LastModifiedDate > {since}"},  # noqa: S608
        headers=bearer(token),
    )
    assert [r["Id"] for r in newer.json()["records"]] == [r["Id"] for r in records[4:]]

    touched = await sandbox.TouchRecords(
        sandbox_pb2.TouchRecordsRequest(provider=SF, object_name="Account", count=2, seed=1)
    )
    after_touch = await http.get(
        SF_QUERY,
        params={"q": f"SELECT Id FROM Account WHERE LastModifiedDate > {UNTIL.isoformat()}"},  # noqa: S608
        headers=bearer(token),
    )
    assert sorted(r["Id"] for r in after_touch.json()["records"]) == sorted(touched.ids)

    malformed = await http.get(SF_QUERY, params={"q": "DELETE Account"}, headers=bearer(token))
    assert malformed.status_code == 400
    assert malformed.json()[0]["errorCode"] == "MALFORMED_QUERY"


async def test_rate_limit_then_success_and_counters(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 2)
    token = await client_token(http)
    fault = await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
                provider=HS,
                count=2,
                retry_after=duration(7),
            )
        )
    )
    listed = await sandbox.ListFaults(sandbox_pb2.ListFaultsRequest())
    assert [f.id for f in listed.faults] == [fault.id]
    statuses = []
    for _ in range(3):
        response = await http.get(CONTACTS, headers=bearer(token))
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["retry-after"] == "7"
    assert statuses == [429, 429, 200]
    assert not (await sandbox.ListFaults(sandbox_pb2.ListFaultsRequest())).faults

    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest(reset=True))
    assert dict(counters.api_requests_by_status) == {429: 2, 200: 1}
    assert dict(counters.token_requests_by_grant_type) == {"client_credentials": 1}
    assert counters.faults_fired == 2
    assert counters.api_latency.count == 3
    hubspot = next(p for p in counters.providers if p.provider == HS)
    assert dict(hubspot.token_requests_by_status) == {200: 1}
    zeroed = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    assert not zeroed.api_requests_by_status and zeroed.faults_fired == 0


async def test_server_error_skip_and_token_endpoint_faults(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_TOKEN,
                grant_type="client_credentials",
                http_status=502,
                skip=1,
                count=1,
            )
        )
    )
    first = await token_request(http, SF_TOKEN, grant_type="client_credentials")
    second = await token_request(http, SF_TOKEN, grant_type="client_credentials")
    third = await token_request(http, SF_TOKEN, grant_type="client_credentials")
    assert [first.status_code, second.status_code, third.status_code] == [200, 502, 200]
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    salesforce = next(p for p in counters.providers if p.provider == SF)
    assert dict(salesforce.token_requests_by_status) == {200: 2, 502: 1}
    assert dict(salesforce.token_requests_by_grant_type) == {"client_credentials": 3}


async def test_expired_token_fault_until_refresh(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 1)
    tokens = await password_tokens(http)
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(kind=sandbox_pb2.FAULT_KIND_EXPIRED_TOKEN, count=1)
        )
    )
    for _ in range(2):  # expired stays expired
        response = await http.get(CONTACTS, headers=bearer(tokens["access_token"]))
        assert response.status_code == 401
        assert response.json()["category"] == "INVALID_AUTHENTICATION"
    refreshed = await token_request(
        http, HS_TOKEN, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refreshed.status_code == 200
    ok = await http.get(CONTACTS, headers=bearer(refreshed.json()["access_token"]))
    assert ok.status_code == 200


async def test_revoked_token_fault_refuses_refresh(sandbox: Any, http: httpx.AsyncClient) -> None:
    tokens = await password_tokens(http)
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_REVOKED_TOKEN, grant_type="refresh_token"
            )
        )
    )
    refresh = await token_request(
        http, HS_TOKEN, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    assert (await http.get(CONTACTS, headers=bearer(tokens["access_token"]))).status_code == 401


async def test_bad_control_requests_are_invalid_argument(sandbox: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await sandbox.SeedRecords(sandbox_pb2.SeedRecordsRequest(provider=HS, count=1))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await sandbox.InjectFault(sandbox_pb2.InjectFaultRequest(fault=sandbox_pb2.Fault()))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_slow_response_is_answered_late_and_measured(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    token = await client_token(http)
    await sandbox.GetCounters(sandbox_pb2.GetCountersRequest(reset=True))
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_SLOW_RESPONSE,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
                object_name="contacts",
                delay=duration(0.3),
                count=1,
            )
        )
    )
    response = await http.get(CONTACTS, headers=bearer(token))
    assert response.status_code == 200
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    # The sandbox's own measure includes the injected delay (a lower bound, not a timing).
    assert counters.api_latency.max.ToTimedelta() >= timedelta(seconds=0.3)
    assert counters.faults_fired == 1
