"""The Search API end to end, over REST through the edge's search host: a builder looks up
the records of an object an installation reads, by exact field values (mapped or
provider names), in the customer's HubSpot (CRM search) and Salesforce (SOQL WHERE) as
the sandbox plays them; each record comes back as reads deliver it, in the reference's
shape (search.yaml); what cannot be searched is refused naming the field."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2_grpc

from tests.e2e.conformance import assert_conforms
from tests.e2e.reads_world import Fields, ReadsWorld, make_world, sandbox_token, seed
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

SEARCH = "/projects/{projectIdOrName}/integrations/{integrationId}"
# Nothing is delivered: the installations read no history and have no schedule.
HOOK = "http://127.0.0.1:9/ampmesh-search"
GROUP = "acme"


@pytest.fixture
async def search_http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.endpoints["search"], headers={"x-api-key": stack.admin_api_key}, timeout=30
    ) as client:
        yield client


async def installed(stack: Stack, prefix: str, **args: Any) -> ReadsWorld:
    world = await make_world(
        stack, HOOK, f"{prefix}_{uuid.uuid4().hex[:8]}", backfill=False, **args
    )
    await world.install(GROUP, backfill=False)
    return world


async def search(
    http: httpx.AsyncClient, world: ReadsWorld, body: dict[str, Any], group: str = GROUP
) -> httpx.Response:
    return await http.post(
        f"/v1/projects/{world.project_id}/integrations/{world.integration['id']}",
        params={"groupRef": group},
        json=body,
    )


def eq(field: str, value: Any) -> dict[str, Any]:
    return {"fieldName": field, "operator": "eq", "value": value}


async def sandbox_records(stack: Stack, provider: str, path: str) -> Any:
    token = (await sandbox_token(stack, provider))["access_token"]
    async with httpx.AsyncClient(
        base_url=stack.endpoints["sandbox-http"], headers={"authorization": f"Bearer {token}"}
    ) as sandbox:
        answer = await sandbox.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_hubspot_search_finds_records_by_mapped_and_provider_names(
    stack: Stack,
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
    search_http: httpx.AsyncClient,
) -> None:
    world = await installed(stack, "found")
    await seed(sandbox, world.object_name, 40)
    listed = await sandbox_records(
        stack, "hubspot", f"/hubspot/crm/v3/objects/{world.object_name}?limit=100"
    )
    target = listed["results"][11]
    name, amount = target["properties"]["name"], target["properties"]["amount"]

    # `title` is the installation's name for HubSpot's `name`.
    found = await search(
        search_http, world, {"objectName": world.object_name, "fieldFilters": [eq("title", name)]}
    )
    assert found.status_code == 200, found.text
    assert_conforms(found, "POST", SEARCH, host="search")
    (entry,) = found.json()["result"]
    assert entry["raw"]["id"] == target["id"]
    assert entry["mappedFields"] == {"title": name}
    assert entry["fields"] == {"amount": amount}

    # A provider name the installation reads, with a JSON number: every record with it.
    by_amount = await search(
        search_http,
        world,
        {"objectName": world.object_name, "fieldFilters": [eq("amount", int(amount))]},
    )
    assert by_amount.status_code == 200, by_amount.text
    expected = {r["id"] for r in listed["results"] if r["properties"]["amount"] == amount}
    assert {e["raw"]["id"] for e in by_amount.json()["result"]} == expected

    # Filters are ANDed; nothing matching is an empty result, not an error.
    both = await search(
        search_http,
        world,
        {"objectName": world.object_name, "fieldFilters": [eq("title", name), eq("amount", "-1")]},
    )
    assert both.status_code == 200, both.text
    assert both.json() == {} or both.json()["result"] == []


async def test_a_salesforce_search_runs_a_soql_where(
    stack: Stack,
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
    search_http: httpx.AsyncClient,
) -> None:
    # The sandbox gives Salesforce objects other than Account and Contact a `Name`.
    world = await installed(
        stack, "Ledger", provider="salesforce", fields=Fields(("accountName", "Name"), ())
    )
    await seed(sandbox, world.object_name, 30, provider="salesforce")
    rows = (
        await sandbox_records(
            stack,
            "salesforce",
            f"/salesforce/services/data/v60.0/query?q=SELECT+Id,+Name+FROM+{world.object_name}",
        )
    )["records"]
    target = rows[7]

    found = await search(
        search_http,
        world,
        {"objectName": world.object_name, "fieldFilters": [eq("accountName", target["Name"])]},
    )
    assert found.status_code == 200, found.text
    assert_conforms(found, "POST", SEARCH, host="search")
    (entry,) = found.json()["result"]
    assert entry["raw"]["Id"] == target["Id"]
    assert entry["mappedFields"] == {"accountName": target["Name"]}
    assert entry["fields"] == {}  # a mapped field is delivered only mapped

    # A value that would break out of an unescaped SOQL string matches nothing.
    injected = await search(
        search_http,
        world,
        {"objectName": world.object_name, "fieldFilters": [eq("Name", "x' OR Name != '")]},
    )
    assert injected.status_code == 200, injected.text
    assert injected.json().get("result", []) == []


async def test_what_cannot_be_searched_is_refused_naming_it(
    stack: Stack, search_http: httpx.AsyncClient
) -> None:
    world = await installed(stack, "refused")
    body = {"objectName": world.object_name, "fieldFilters": [eq("title", "x")]}

    async def refused(status: int, sent: dict[str, Any], group: str = GROUP) -> dict[str, str]:
        answer = await search(search_http, world, sent, group)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        if status != 400:
            # search.yaml documents its 400 as application/json (the other errors as
            # application/problem+json, which every refusal of ampmesh's is).
            assert_conforms(answer, "POST", SEARCH, host="search")
        return {f"{i['in']}.{i['name']}": i["detail"] for i in answer.json().get("issues", [])}

    unread = await refused(400, {**body, "objectName": "tickets"})
    assert "'tickets' is not an object this installation reads" in unread["body.objectName"]
    unselected = await refused(400, {**body, "fieldFilters": [eq("closedate", "x")]})
    assert (
        "'closedate' is not a field this installation reads"
        in (unselected["body.fieldFilters[0].fieldName"])
    )
    operator = await refused(
        400, {**body, "fieldFilters": [{**eq("title", "x"), "operator": "gt"}]}
    )
    assert "must be one of eq" in operator["body.fieldFilters[0].operator"]
    await refused(404, body, group="nobody")
