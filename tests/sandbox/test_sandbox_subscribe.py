"""The sandbox as the providers' subscribe side, as ampmesh's registration, ingress and
reads use it (a real sandbox process, over HTTP, sending to a real local receiver):
token introspection, HubSpot's webhooks API, Salesforce's channel members and event
relays, the change events records raise (signed, batched, relayed), their retries and
faults, and deleted records kept as tombstones."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2

from services.domain.subscribe_names import RELAY_TOKEN_HEADER
from services.sandbox.providers import Provider
from services.sandbox.state import SandboxState
from services.sandbox.webhooks import (
    Change,
    Dispatcher,
    HubSpotSettings,
    HubSpotSubscription,
    flush,
)
from tests.sandbox.receiver import (
    Receiver,
    free_port,
    hubspot_v3_valid,
    receiving,
)
from tests.support.sandbox import (
    CLIENT_SECRET,
    HS,
    SF,
    SF_TOKEN,
    bearer,
    client_token,
    duration,
    password_tokens,
    seed_records,
)

OBJECTS = "/hubspot/crm/v3/objects"
DATA = "/salesforce/services/data/v59.0"
TOOLING = f"{DATA}/tooling/sobjects"
MEMBERS = f"{TOOLING}/PlatformEventChannelMember"
RELAYS = f"{TOOLING}/EventRelayConfig"


async def _app(sandbox: Any) -> tuple[str, str]:
    info = await sandbox.GetSandboxInfo(sandbox_pb2.GetSandboxInfoRequest())
    client = info.clients[0]
    assert client.app_id and client.developer_api_key
    return client.app_id, client.developer_api_key


async def _hubspot_app(
    sandbox: Any, http: httpx.AsyncClient, target: str, subscriptions: list[dict[str, Any]]
) -> tuple[str, dict[str, str]]:
    """Register the app's target URL and subscriptions (on a sandbox whose subscriptions
    were reset); the webhooks base and hapikey."""
    await sandbox.Reset(sandbox_pb2.ResetRequest(scopes=[sandbox_pb2.RESET_SCOPE_SUBSCRIPTIONS]))
    app_id, key = await _app(sandbox)
    base, params = f"/hubspot/webhooks/v3/{app_id}", {"hapikey": key}
    put = await http.put(
        f"{base}/settings",
        params=params,
        json={"targetUrl": target, "throttling": {"maxConcurrentRequests": 10}},
    )
    assert put.status_code == 200, put.text
    for body in subscriptions:
        created = await http.post(f"{base}/subscriptions", params=params, json=body)
        assert created.status_code == 201, created.text
    return base, params


async def _salesforce_relay(
    http: httpx.AsyncClient, headers: dict[str, str], name: str, target: str, token: str
) -> str:
    body = {
        "FullName": name,
        "Metadata": {
            "eventChannel": "ChangeEvents",
            "destinationResourceName": target,
            "state": "RUN",
            "relayOption": f'{{"headers": {{"X-Ampmesh-Relay-Token": "{token}"}}}}',
        },
    }
    created = await http.post(RELAYS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _channel_member(http: httpx.AsyncClient, headers: dict[str, str], entity: str) -> str:
    body = {
        "FullName": f"ChangeEvents_{entity}",
        "Metadata": {"eventChannel": "ChangeEvents", "selectedEntity": entity},
    }
    created = await http.post(MEMBERS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["success"] is True and created.json()["errors"] == []
    return str(created.json()["id"])


async def _flush(sandbox: Any, seconds: float = 30) -> Any:
    """Flush, in waits of at most 3 s (a mesh channel's calls have 5 s deadlines)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        wait = max(0.0, min(3.0, deadline - asyncio.get_running_loop().time()))
        flushed = await sandbox.FlushWebhooks(
            sandbox_pb2.FlushWebhooksRequest(timeout=duration(wait))
        )
        if flushed.pending == 0 or wait < 3.0:
            return flushed


# --- token introspection --------------------------------------------------------------


async def test_tokens_name_the_portal_and_the_org(sandbox: Any, http: httpx.AsyncClient) -> None:
    app_id, _ = await _app(sandbox)
    hubspot = await password_tokens(http)
    found = await http.get(f"/hubspot/oauth/v1/access-tokens/{hubspot['access_token']}")
    assert found.status_code == 200, found.text
    body = found.json()
    assert isinstance(body["hub_id"], int) and body["hub_id"] > 0
    assert body["app_id"] == int(app_id)
    assert body["token"] == hubspot["access_token"]
    assert body["token_type"] == "access" and body["expires_in"] > 0
    assert {"hub_domain", "scopes", "user"} <= set(body)
    unknown = await http.get("/hubspot/oauth/v1/access-tokens/not-a-token")
    assert unknown.status_code == 401

    salesforce = await password_tokens(http, SF_TOKEN)
    info = await http.get(
        "/salesforce/services/oauth2/userinfo", headers=bearer(salesforce["access_token"])
    )
    assert info.status_code == 200, info.text
    org, user = info.json()["organization_id"], info.json()["user_id"]
    assert len(org) == 18 and org.startswith("00D")
    assert info.json()["sub"] == f"https://login.salesforce.com/id/{org}/{user}"
    assert info.json()["preferred_username"]
    # A HubSpot token is no Salesforce session.
    wrong = await http.get(
        "/salesforce/services/oauth2/userinfo", headers=bearer(hubspot["access_token"])
    )
    assert wrong.status_code == 401

    # Revoked or expired tokens answer 401, as on the record reads.
    await http.delete(f"/hubspot/oauth/v1/refresh-tokens/{hubspot['refresh_token']}")
    revoked = await http.get(f"/hubspot/oauth/v1/access-tokens/{hubspot['access_token']}")
    assert revoked.status_code == 401
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_EXPIRED_TOKEN,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
                provider=SF,
            )
        )
    )
    expired = await http.get(
        "/salesforce/services/oauth2/userinfo", headers=bearer(salesforce["access_token"])
    )
    assert expired.status_code == 401


# --- registration APIs ----------------------------------------------------------------


async def test_hubspot_webhooks_api(sandbox: Any, http: httpx.AsyncClient) -> None:
    app_id, key = await _app(sandbox)
    base, params = f"/hubspot/webhooks/v3/{app_id}", {"hapikey": key}

    wrong_key = await http.get(f"{base}/subscriptions", params={"hapikey": "nope"})
    assert wrong_key.status_code == 401
    assert wrong_key.json()["category"] == "INVALID_AUTHENTICATION"
    no_app = await http.get("/hubspot/webhooks/v3/999/subscriptions", params=params)
    assert no_app.status_code == 404 and no_app.json()["status"] == "error"
    assert (await http.get(f"{base}/settings", params=params)).status_code == 404

    bad_url = await http.put(f"{base}/settings", params=params, json={"targetUrl": "nowhere"})
    assert bad_url.status_code == 400 and "targetUrl" in bad_url.json()["message"]
    put = await http.put(
        f"{base}/settings",
        params=params,
        json={"targetUrl": "https://example.test/hook", "throttling": {"maxConcurrentRequests": 7}},
    )
    assert put.status_code == 200, put.text
    got = (await http.get(f"{base}/settings", params=params)).json()
    assert got["targetUrl"] == "https://example.test/hook"
    assert got["throttling"]["maxConcurrentRequests"] == 7

    for body in (
        {"eventType": "contact.nonsense"},
        {"eventType": "widget.creation"},
        {"eventType": "contact.propertyChange"},
        {"eventType": "contact.creation", "propertyName": "email"},
    ):
        refused = await http.post(f"{base}/subscriptions", params=params, json=body)
        assert refused.status_code == 400, body
        assert refused.json()["category"] == "VALIDATION_ERROR"

    created = await http.post(
        f"{base}/subscriptions",
        params=params,
        json={"eventType": "contact.propertyChange", "propertyName": "firstname", "active": True},
    )
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["eventType"] == "contact.propertyChange" and sub["propertyName"] == "firstname"
    assert sub["active"] is True and {"id", "createdAt", "updatedAt"} <= set(sub)
    again = await http.post(
        f"{base}/subscriptions",
        params=params,
        json={"eventType": "contact.propertyChange", "propertyName": "firstname"},
    )
    assert again.status_code == 409
    listed = (await http.get(f"{base}/subscriptions", params=params)).json()["results"]
    assert [s["id"] for s in listed] == [sub["id"]]

    patched = await http.patch(
        f"{base}/subscriptions/{sub['id']}", params=params, json={"active": False}
    )
    assert patched.status_code == 200 and patched.json()["active"] is False
    seen = await sandbox.ListWebhookSubscriptions(
        sandbox_pb2.ListWebhookSubscriptionsRequest(provider=HS)
    )
    assert [(s.id, s.object_name, s.property_name, s.active) for s in seen.subscriptions] == [
        (sub["id"], "contacts", "firstname", False)
    ]
    assert seen.subscriptions[0].target_url == "https://example.test/hook"
    assert seen.subscriptions[0].app_id == app_id

    # Registration faults answer as HubSpot's errors do.
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_SUBSCRIPTIONS,
                provider=HS,
                count=1,
            )
        )
    )
    failed = await http.delete(f"{base}/subscriptions/{sub['id']}", params=params)
    assert failed.status_code == 503
    deleted = await http.delete(f"{base}/subscriptions/{sub['id']}", params=params)
    assert deleted.status_code == 204
    gone = await http.get(f"{base}/subscriptions/{sub['id']}", params=params)
    assert gone.status_code == 404


async def test_salesforce_channel_members_and_relays(sandbox: Any, http: httpx.AsyncClient) -> None:
    headers = bearer(await client_token(http, SF_TOKEN))
    assert (await http.post(MEMBERS, json={"FullName": "x"})).status_code == 401

    member = await _channel_member(http, headers, "AccountChangeEvent")
    duplicate = await http.post(
        MEMBERS,
        json={
            "FullName": "Another",
            "Metadata": {"eventChannel": "ChangeEvents", "selectedEntity": "AccountChangeEvent"},
        },
        headers=headers,
    )
    assert duplicate.status_code == 400
    assert duplicate.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    assert set(duplicate.json()[0]) == {"message", "errorCode", "fields"}
    not_an_entity = await http.post(
        MEMBERS,
        json={
            "FullName": "Bad",
            "Metadata": {"eventChannel": "ChangeEvents", "selectedEntity": "Account"},
        },
        headers=headers,
    )
    assert not_an_entity.status_code == 400
    assert not_an_entity.json()[0]["fields"] == ["selectedEntity"]

    relay = await _salesforce_relay(http, headers, "ampmesh_abc", "https://example.test/r", "t")
    bad_option = await http.post(
        RELAYS,
        json={
            "FullName": "ampmesh_bad",
            "Metadata": {
                "eventChannel": "ChangeEvents",
                "destinationResourceName": "https://example.test/r",
                "state": "RUN",
                "relayOption": "not json",
            },
        },
        headers=headers,
    )
    assert bad_option.status_code == 400 and bad_option.json()[0]["fields"] == ["relayOption"]

    got = await http.get(f"{MEMBERS}/{member}", headers=headers)
    assert got.status_code == 200 and got.json()["SelectedEntity"] == "AccountChangeEvent"
    queried = await http.get(
        f"{DATA}/tooling/query",
        params={"q": "SELECT Id, SelectedEntity FROM PlatformEventChannelMember"},
        headers=headers,
    )
    assert queried.status_code == 200, queried.text
    body = queried.json()
    assert (body["size"], body["totalSize"], body["done"]) == (1, 1, True)
    assert body["records"][0]["Id"] == member
    # Registration finds an existing member by its entity (the org has one per entity).
    where = await http.get(
        f"{DATA}/tooling/query",
        params={
            "q": "SELECT Id FROM PlatformEventChannelMember "
            "WHERE SelectedEntity = 'AccountChangeEvent'"
        },
        headers=headers,
    )
    assert [r["Id"] for r in where.json()["records"]] == [member]
    none = await http.get(
        f"{DATA}/tooling/query",
        params={
            "q": "SELECT Id FROM PlatformEventChannelMember "
            "WHERE SelectedEntity = 'ContactChangeEvent'"
        },
        headers=headers,
    )
    assert none.json()["records"] == [] and none.json()["totalSize"] == 0
    relays = await http.get(
        f"{DATA}/tooling/query",
        params={"q": "SELECT Id, DestinationResourceName, State FROM EventRelayConfig"},
        headers=headers,
    )
    assert [r["Id"] for r in relays.json()["records"]] == [relay]
    assert relays.json()["records"][0]["State"] == "RUN"

    listed = await sandbox.ListWebhookSubscriptions(
        sandbox_pb2.ListWebhookSubscriptionsRequest(provider=SF)
    )
    assert [(s.id, s.object_name, s.target_url) for s in listed.subscriptions] == [
        (member, "Account", "https://example.test/r")
    ]
    org = (await http.get("/salesforce/services/oauth2/userinfo", headers=headers)).json()[
        "organization_id"
    ]
    assert listed.subscriptions[0].account_id == org

    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_SUBSCRIPTIONS,
                provider=SF,
                count=1,
            )
        )
    )
    limited = await http.delete(f"{RELAYS}/{relay}", headers=headers)
    assert limited.status_code == 429
    assert (await http.delete(f"{RELAYS}/{relay}", headers=headers)).status_code == 204
    assert (await http.delete(f"{RELAYS}/{relay}", headers=headers)).status_code == 404
    assert (await http.delete(f"{MEMBERS}/{member}", headers=headers)).status_code == 204

    # The CustomField Tooling API still answers beside these.
    fields = await http.get(
        f"{DATA}/tooling/query",
        params={
            "q": "SELECT Id FROM CustomField "
            "WHERE TableEnumOrId = 'Account' AND DeveloperName = 'X'"
        },
        headers=headers,
    )
    assert fields.status_code == 200 and fields.json()["records"] == []


# --- change events --------------------------------------------------------------------


async def test_hubspot_events_are_signed_batched_and_subscribed_only(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    async with receiving(Receiver(verify_secret=CLIENT_SECRET)) as receiver:
        target = receiver.url + "/v1/projects/p/integrations/i"
        await _hubspot_app(
            sandbox,
            http,
            target,
            [
                {"eventType": "contact.creation", "active": True},
                {"eventType": "contact.deletion", "active": True},
                {"eventType": "contact.propertyChange", "propertyName": "firstname"},
                {"eventType": "contact.propertyChange", "propertyName": "lastname"},
                # Paused: raises nothing.
                {"eventType": "contact.propertyChange", "propertyName": "email", "active": False},
            ],
        )
        seeded = await seed_records(sandbox, HS, "contacts", 150)
        await seed_records(sandbox, HS, "companies", 5)  # nothing subscribes to companies
        flushed = await _flush(sandbox)
        assert (flushed.delivered, flushed.pending, flushed.abandoned) == (150, 0, 0)
        created = receiver.events()
        assert len(created) == 150
        assert all(len(request.json()) <= 100 for request in receiver.requests)
        assert len(receiver.requests) < 150  # several records per request
        first = created[0]
        assert first["subscriptionType"] == "contact.creation"
        assert {"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "objectId"} <= set(
            first
        )
        assert "propertyName" not in first
        assert seeded.first_id in {str(event["objectId"]) for event in created}
        ids = [event["eventId"] for event in created]
        assert len(set(ids)) == 150
        for request in receiver.requests:  # increasing within each request
            batch = [event["eventId"] for event in request.json()]
            assert batch == sorted(batch)
        for request in receiver.requests:
            assert request.path == "/v1/projects/p/integrations/i"
            assert hubspot_v3_valid(CLIENT_SECRET, target, request)
            assert not hubspot_v3_valid("another-secret", target, request)

        receiver.requests.clear()
        touched = await sandbox.TouchRecords(
            sandbox_pb2.TouchRecordsRequest(provider=HS, object_name="contacts", count=3, seed=5)
        )
        await _flush(sandbox)
        events = receiver.events()
        assert {e["subscriptionType"] for e in events} == {"contact.propertyChange"}
        assert {e["propertyName"] for e in events} <= {"firstname", "lastname"}
        assert {str(e["objectId"]) for e in events} <= set(touched.ids)
        by_record: dict[int, set[int]] = {}
        for number, request in enumerate(receiver.requests):
            for event in request.json():
                by_record.setdefault(event["objectId"], set()).add(number)
        # All property events of one record change travel in one request.
        assert all(len(requests) == 1 for requests in by_record.values())
        record = (
            await http.get(
                f"{OBJECTS}/contacts/{events[0]['objectId']}",
                headers=bearer(await client_token(http)),
            )
        ).json()
        assert events[0]["propertyValue"] == record["properties"][events[0]["propertyName"]]

        receiver.requests.clear()
        deleted = await sandbox.DeleteRecords(
            sandbox_pb2.DeleteRecordsRequest(provider=HS, object_name="contacts", count=2, seed=1)
        )
        await _flush(sandbox)
        assert sorted(str(e["objectId"]) for e in receiver.events()) == sorted(deleted.ids)
        assert {e["subscriptionType"] for e in receiver.events()} == {"contact.deletion"}

        # The write endpoints raise events too.
        receiver.requests.clear()
        headers = bearer(await client_token(http))
        made = await http.post(
            f"{OBJECTS}/contacts",
            json={"properties": {"firstname": "Ada", "email": "ada@example.test"}},
            headers=headers,
        )
        assert made.status_code == 201
        changed = await http.patch(
            f"{OBJECTS}/contacts/{made.json()['id']}",
            json={"properties": {"lastname": "Lovelace", "email": "ada2@example.test"}},
            headers=headers,
        )
        assert changed.status_code == 200
        await _flush(sandbox)
        kinds = [(e["subscriptionType"], e.get("propertyName")) for e in receiver.events()]
        assert kinds == [("contact.creation", None), ("contact.propertyChange", "lastname")]
        counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
        assert counters.webhook_events_delivered == 150 + len(events) + 2 + 2
        assert counters.webhook_requests_by_status[200] >= 4


async def test_salesforce_events_reach_every_running_relay(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    headers = bearer(await client_token(http, SF_TOKEN))
    await seed_records(sandbox, SF, "Account", 5)
    await seed_records(sandbox, SF, "Contact", 2)
    async with receiving() as receiver:
        await _channel_member(http, headers, "AccountChangeEvent")
        first = await _salesforce_relay(http, headers, "ampmesh_one", receiver.url + "/one", "t1")
        await _salesforce_relay(http, headers, "ampmesh_two", receiver.url + "/two", "t2")
        stopped = await http.post(
            RELAYS,
            json={
                "FullName": "ampmesh_stopped",
                "Metadata": {
                    "eventChannel": "ChangeEvents",
                    "destinationResourceName": receiver.url + "/stopped",
                    "state": "STOP",
                },
            },
            headers=headers,
        )
        assert stopped.status_code == 201
        touched = await sandbox.TouchRecords(
            sandbox_pb2.TouchRecordsRequest(provider=SF, object_name="Account", count=1, seed=2)
        )
        await sandbox.TouchRecords(  # no channel member selects Contact
            sandbox_pb2.TouchRecordsRequest(provider=SF, object_name="Contact", count=1, seed=2)
        )
        flushed = await _flush(sandbox)
        assert flushed.delivered == 2 and flushed.pending == 0
        by_path = {request.path: request for request in receiver.requests}
        assert sorted(by_path) == ["/one", "/two"]
        one, two = by_path["/one"], by_path["/two"]
        assert one.headers[RELAY_TOKEN_HEADER] == "t1" and two.headers[RELAY_TOKEN_HEADER] == "t2"
        event = one.json()
        assert event["detail-type"] == "AccountChangeEvent"
        org = (await http.get("/salesforce/services/oauth2/userinfo", headers=headers)).json()[
            "organization_id"
        ]
        assert event["source"] == f"aws.partner/salesforce.com/{org}/{first}"
        header = event["detail"]["payload"]["ChangeEventHeader"]
        assert header["entityName"] == "Account" and header["changeType"] == "UPDATE"
        assert header["recordIds"] == list(touched.ids)
        assert "LastModifiedDate" in header["changedFields"]
        for name in header["changedFields"]:
            assert name in event["detail"]["payload"]
        assert isinstance(header["commitTimestamp"], int)
        # One change, one EventUuid, whichever relay carries it.
        assert event["detail"]["event"]["EventUuid"] == two.json()["detail"]["event"]["EventUuid"]

        receiver.requests.clear()
        made = await http.post(
            f"{DATA}/sobjects/Account", json={"Name": "Relayed Ltd"}, headers=headers
        )
        assert made.status_code == 201
        assert (
            await http.delete(f"{DATA}/sobjects/Account/{made.json()['id']}", headers=headers)
        ).status_code == 204
        await _flush(sandbox)
        kinds = [
            r.json()["detail"]["payload"]["ChangeEventHeader"]["changeType"]
            for r in receiver.requests
            if r.path == "/one"
        ]
        assert kinds == ["CREATE", "DELETE"]
        create = next(r.json() for r in receiver.requests if r.path == "/one")
        assert create["detail"]["payload"]["Name"] == "Relayed Ltd"


async def test_a_receiver_down_then_up_gets_everything(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    port = free_port()
    target = f"http://127.0.0.1:{port}/hook"
    await _hubspot_app(sandbox, http, target, [{"eventType": "contact.creation"}])
    await seed_records(sandbox, HS, "contacts", 3)
    await asyncio.sleep(1.5)  # the first attempts meet a closed port
    async with receiving(Receiver(statuses=[503]), port=port) as receiver:
        flushed = await _flush(sandbox)
        assert (flushed.delivered, flushed.pending, flushed.abandoned) == (3, 0, 0)
        delivered = [e for r in receiver.requests[1:] for e in r.json()]
        assert len(delivered) == 3
        assert all(e["attemptNumber"] >= 2 for e in delivered)
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    hubspot = next(p for p in counters.providers if p.provider == HS)
    assert hubspot.webhook_requests_by_status[0] >= 1  # nobody listening
    assert hubspot.webhook_requests_by_status[503] == 1
    assert hubspot.webhook_requests_by_status[200] == 1


# --- webhook faults -------------------------------------------------------------------


async def _webhook_fault(
    sandbox: Any, kind: sandbox_pb2.FaultKind, count: int = 1, skip: int = 0
) -> None:
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=kind,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_WEBHOOKS,
                provider=HS,
                count=count,
                skip=skip,
            )
        )
    )


async def _touch_one(sandbox: Any, record_id: str) -> None:
    await sandbox.TouchRecords(
        sandbox_pb2.TouchRecordsRequest(provider=HS, object_name="contacts", ids=[record_id])
    )
    # Each touch its own request: the sender has taken it before the next is queued.
    await _flush(sandbox)


async def test_webhook_faults(sandbox: Any, http: httpx.AsyncClient) -> None:
    seeded = await seed_records(sandbox, HS, "contacts", 2)
    async with receiving(Receiver(verify_secret=CLIENT_SECRET)) as receiver:
        target = receiver.url + "/hook"
        await _hubspot_app(sandbox, http, target, [{"eventType": "contact.deletion"}])

        # Duplicate: the same event again, in a later request.
        await _webhook_fault(sandbox, sandbox_pb2.FAULT_KIND_DUPLICATE_EVENT)
        await sandbox.DeleteRecords(
            sandbox_pb2.DeleteRecordsRequest(
                provider=HS, object_name="contacts", ids=[seeded.first_id]
            )
        )
        flushed = await _flush(sandbox)
        assert flushed.delivered == 1
        assert len(receiver.requests) == 2
        assert receiver.requests[0].json() == receiver.requests[1].json()

        # Bad signature, then stale timestamp: refused by a receiver that checks, then
        # delivered by the retry.
        for kind in (sandbox_pb2.FAULT_KIND_BAD_SIGNATURE, sandbox_pb2.FAULT_KIND_STALE_TIMESTAMP):
            receiver.requests.clear()
            await sandbox.Reset(sandbox_pb2.ResetRequest(scopes=[sandbox_pb2.RESET_SCOPE_RECORDS]))
            again = await seed_records(sandbox, HS, "contacts", 1, seed=int(kind))
            await _webhook_fault(sandbox, kind)
            await sandbox.DeleteRecords(
                sandbox_pb2.DeleteRecordsRequest(
                    provider=HS, object_name="contacts", ids=[again.first_id]
                )
            )
            flushed = await _flush(sandbox)
            assert flushed.pending == 0
            first, second = receiver.requests
            assert not hubspot_v3_valid(CLIENT_SECRET, target, first)
            assert hubspot_v3_valid(CLIENT_SECRET, target, second)
            if kind == sandbox_pb2.FAULT_KIND_STALE_TIMESTAMP:
                # Signed consistently with its old timestamp: only its age is wrong.
                assert hubspot_v3_valid(CLIENT_SECRET, target, first, max_age_ms=700_000)
            assert first.json()[0]["eventId"] == second.json()[0]["eventId"]

    # Reorder: the first request is held back and arrives after the next.
    await sandbox.Reset(sandbox_pb2.ResetRequest(scopes=[sandbox_pb2.RESET_SCOPE_RECORDS]))
    await seed_records(sandbox, HS, "contacts", 2)
    async with receiving() as receiver:
        await _hubspot_app(
            sandbox, http, receiver.url + "/hook", [{"eventType": "contact.deletion"}]
        )
        await _webhook_fault(sandbox, sandbox_pb2.FAULT_KIND_REORDER_EVENTS)
        live = (
            await http.get(f"{OBJECTS}/contacts", headers=bearer(await client_token(http)))
        ).json()["results"]
        for record in live:
            await sandbox.DeleteRecords(
                sandbox_pb2.DeleteRecordsRequest(
                    provider=HS, object_name="contacts", ids=[record["id"]]
                )
            )
            await asyncio.sleep(0.2)
        await _flush(sandbox)
        arrived = [e["eventId"] for e in receiver.events()]
        assert len(arrived) == 2 and arrived[0] > arrived[1]


async def test_reset_forgets_subscriptions_and_unsent_events(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    port = free_port()  # nobody listens: events wait for retries
    base, params = await _hubspot_app(
        sandbox, http, f"http://127.0.0.1:{port}/x", [{"eventType": "contact.creation"}]
    )
    await seed_records(sandbox, HS, "contacts", 4)
    pending = await _flush(sandbox, 0.2)
    assert pending.pending == 4
    await sandbox.Reset(sandbox_pb2.ResetRequest(scopes=[sandbox_pb2.RESET_SCOPE_SUBSCRIPTIONS]))
    assert (await _flush(sandbox, 0.2)).pending == 0
    assert (await http.get(f"{base}/subscriptions", params=params)).json()["results"] == []
    assert (await http.get(f"{base}/settings", params=params)).status_code == 404
    listed = await sandbox.ListWebhookSubscriptions(sandbox_pb2.ListWebhookSubscriptionsRequest())
    assert list(listed.subscriptions) == []


@pytest.mark.parametrize("kind", [sandbox_pb2.FAULT_KIND_DUPLICATE_EVENT])
async def test_webhook_faults_are_refused_elsewhere(
    sandbox: Any, kind: sandbox_pb2.FaultKind
) -> None:
    import grpc

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await sandbox.InjectFault(
            sandbox_pb2.InjectFaultRequest(
                fault=sandbox_pb2.Fault(kind=kind, endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS)
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- tombstones -----------------------------------------------------------------------


async def test_hubspot_archived_records(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 6)
    headers = bearer(await client_token(http))
    deleted = await sandbox.DeleteRecords(
        sandbox_pb2.DeleteRecordsRequest(provider=HS, object_name="contacts", count=2, seed=3)
    )
    live = (await http.get(f"{OBJECTS}/contacts", params={"limit": "100"}, headers=headers)).json()[
        "results"
    ]
    assert len(live) == 4 and not {r["id"] for r in live} & set(deleted.ids)
    written = live[0]["id"]
    assert (await http.delete(f"{OBJECTS}/contacts/{written}", headers=headers)).status_code == 204

    first = await http.get(
        f"{OBJECTS}/contacts", params={"archived": "true", "limit": "2"}, headers=headers
    )
    assert first.status_code == 200
    page = first.json()
    assert all(r["archived"] is True and r["archivedAt"] for r in page["results"])
    rest = await http.get(
        f"{OBJECTS}/contacts",
        params={"archived": "true", "limit": "2", "after": page["paging"]["next"]["after"]},
        headers=headers,
    )
    archived = [r["id"] for r in page["results"] + rest.json()["results"]]
    assert sorted(archived) == sorted([*deleted.ids, written])
    assert "paging" not in rest.json()

    search = await http.post(f"{OBJECTS}/contacts/search", json={"limit": 100}, headers=headers)
    assert search.json()["total"] == 3
    batch = await http.post(
        f"{OBJECTS}/contacts/batch/read",
        json={"properties": ["email"], "inputs": [{"id": live[1]["id"]}, {"id": written}]},
        headers=headers,
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["status"] == "COMPLETE"
    assert [r["id"] for r in batch.json()["results"]] == [live[1]["id"]]
    assert set(batch.json()["results"][0]["properties"]) >= {"email", "hs_object_id"}
    assert (await http.get(f"{OBJECTS}/contacts/{written}", headers=headers)).status_code == 404
    one = await http.get(
        f"{OBJECTS}/contacts/{written}", params={"archived": "true"}, headers=headers
    )
    assert one.status_code == 200 and one.json()["archived"] is True


async def test_salesforce_deleted_records_and_query_all(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    await seed_records(sandbox, SF, "Account", 5)
    headers = bearer(await client_token(http, SF_TOKEN))
    rows = (
        await http.get(
            f"{DATA}/query", params={"q": "SELECT Id, Name FROM Account"}, headers=headers
        )
    ).json()["records"]
    victim = rows[0]["Id"]
    one = await http.get(f"{DATA}/sobjects/Account/{victim}", headers=headers)
    assert one.status_code == 200 and one.json()["Id"] == victim and one.json()["Name"]
    some = await http.get(
        f"{DATA}/sobjects/Account/{victim}", params={"fields": "Name"}, headers=headers
    )
    assert set(some.json()) == {"attributes", "Name"}
    before = datetime.fromisoformat(one.json()["SystemModstamp"].replace("+0000", "+00:00"))

    await sandbox.DeleteRecords(
        sandbox_pb2.DeleteRecordsRequest(provider=SF, object_name="Account", ids=[victim])
    )
    gone = await http.get(f"{DATA}/sobjects/Account/{victim}", headers=headers)
    assert gone.status_code == 404 and gone.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    live = await http.get(f"{DATA}/query", params={"q": "SELECT Id FROM Account"}, headers=headers)
    assert victim not in {r["Id"] for r in live.json()["records"]}

    since = before.isoformat().replace("+00:00", "Z")
    everything = await http.get(
        f"{DATA}/queryAll",
        params={
            "q": f"SELECT Id, IsDeleted, SystemModstamp FROM Account WHERE SystemModstamp > {since}"  # noqa: S608 (SOQL of a test's own values)
        },
        headers=headers,
    )
    assert everything.status_code == 200, everything.text
    found = {r["Id"]: r for r in everything.json()["records"]}
    assert found[victim]["IsDeleted"] is True
    only_deleted = await http.get(
        f"{DATA}/queryAll",
        params={"q": "SELECT Id FROM Account WHERE IsDeleted = true"},
        headers=headers,
    )
    assert [r["Id"] for r in only_deleted.json()["records"]] == [victim]
    paged = await http.get(
        f"{DATA}/queryAll",
        params={"q": "SELECT Id, IsDeleted FROM Account"},
        headers=headers | {"Sforce-Query-Options": "batchSize=2"},
    )
    assert paged.json()["totalSize"] == 5
    assert "/queryAll/" in paged.json()["nextRecordsUrl"]


async def test_events_a_receiver_keeps_refusing_are_abandoned() -> None:
    """In process, with a short backoff: every attempt made, then given up on and counted."""
    state = SandboxState()
    book = state.webhooks
    async with receiving(Receiver(statuses=[500] * 10)) as receiver:
        book.settings = HubSpotSettings(receiver.url + "/h", 10, "SECONDLY", "", "")
        book.subscriptions[1] = HubSpotSubscription(1, "contact.creation", None, True, "", "")
        now = datetime.now(UTC)
        created = state.records.seed(Provider.HUBSPOT, "contacts", 3, 1, now, now, replace=True)
        async with Dispatcher(state, backoff=(0.01, 0.01, 0.01)).running():
            book.raise_events(Provider.HUBSPOT, "contacts", Change.CREATE, created)
            await flush(state, within=10)
        assert book.pending == 0
        assert state.counters.webhooks_abandoned == 3
        assert len(receiver.requests) == 4  # the first attempt and three retries
        assert [r.json()[0]["attemptNumber"] for r in receiver.requests] == [0, 1, 2, 3]
        assert state.counters.providers[Provider.HUBSPOT].webhook_by_status == {500: 4}
