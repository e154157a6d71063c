"""The sandbox's metadata APIs in the providers' documented shapes: HubSpot's CRM
properties (list, create, update) and Salesforce's sObject describe with Tooling API custom
fields; unknown objects, duplicates and bad definitions refused as the providers refuse
them; the same token and fault checks as the record APIs; a reset forgets custom fields."""

from __future__ import annotations

from typing import Any

import httpx
from ampmesh.sandbox.v1 import sandbox_pb2

from tests.support.sandbox import HS, SF, bearer, client_token, duration, seed_records

PROPERTIES = "/hubspot/crm/v3/properties"
DATA = "/salesforce/services/data/v60.0"
SF_TOKEN = "/salesforce/services/oauth2/token"


async def sf_token(http: httpx.AsyncClient) -> str:
    return await client_token(http, SF_TOKEN)


async def test_hubspot_lists_a_standard_objects_properties(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    token = await client_token(http)
    listed = await http.get(f"{PROPERTIES}/companies", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    by_name = {p["name"]: p for p in listed.json()["results"]}
    # The fields the sandbox's company records hold, and HubSpot's system properties.
    assert {"name", "domain", "industry", "city", "hs_lastmodifieddate"} <= set(by_name)
    industry = by_name["industry"]
    assert (industry["type"], industry["fieldType"], industry["hubspotDefined"]) == (
        "enumeration",
        "select",
        True,
    )
    assert {"label": "Retail", "value": "retail", "displayOrder": 1} in industry["options"]
    assert by_name["hs_lastmodifieddate"]["modificationMetadata"]["readOnlyValue"] is True


async def test_hubspot_creates_updates_and_refuses_properties(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    headers = bearer(await client_token(http))
    body = {
        "name": "tier",
        "label": "Tier",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
    }
    created = await http.post(f"{PROPERTIES}/contacts", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["hubspotDefined"] is False
    again = await http.post(f"{PROPERTIES}/contacts", json=body, headers=headers)
    assert again.status_code == 409 and again.json()["category"] == "CONFLICT"
    renamed = await http.patch(
        f"{PROPERTIES}/contacts/tier", json={"label": "Customer tier"}, headers=headers
    )
    assert renamed.status_code == 200 and renamed.json()["label"] == "Customer tier"
    listed = (await http.get(f"{PROPERTIES}/contact", headers=headers)).json()["results"]
    assert {"tier": "Customer tier"}.items() <= {p["name"]: p["label"] for p in listed}.items()

    standard = await http.patch(
        f"{PROPERTIES}/contacts/email", json={"label": "E"}, headers=headers
    )
    assert standard.status_code == 400
    no_group = await http.post(
        f"{PROPERTIES}/contacts", json={**body, "name": "x", "groupName": ""}, headers=headers
    )
    assert no_group.status_code == 400 and "groupName" in no_group.json()["message"]
    bad_type = await http.post(
        f"{PROPERTIES}/contacts",
        json={**body, "name": "y", "type": "enumeration", "fieldType": "select"},
        headers=headers,
    )
    assert bad_type.status_code == 400 and "options" in bad_type.json()["message"]
    unknown = await http.get(f"{PROPERTIES}/spaceships", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["category"] == "OBJECT_NOT_FOUND"


async def test_salesforce_describes_and_adds_custom_fields_through_the_tooling_api(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    headers = bearer(await sf_token(http))
    described = await http.get(f"{DATA}/sobjects/opportunity/describe", headers=headers)
    assert described.status_code == 200, described.text
    assert (described.json()["name"], described.json()["labelPlural"]) == (
        "Opportunity",
        "Opportunities",
    )
    fields = {f["name"]: f for f in described.json()["fields"]}
    assert fields["StageName"]["type"] == "picklist" and not fields["StageName"]["nillable"]
    assert fields["Id"]["createable"] is False

    field = {
        "FullName": "Opportunity.Score__c",
        "Metadata": {"label": "Score", "type": "Number", "precision": 5, "scale": 2},
    }
    created = await http.post(f"{DATA}/tooling/sobjects/CustomField", json=field, headers=headers)
    assert created.status_code == 201, created.text
    field_id = created.json()["id"]
    duplicate = await http.post(f"{DATA}/tooling/sobjects/CustomField", json=field, headers=headers)
    assert duplicate.status_code == 400
    assert duplicate.json()[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    found = await http.get(
        f"{DATA}/tooling/query",
        params={
            "q": "SELECT Id FROM CustomField WHERE TableEnumOrId = 'Opportunity' "
            "AND DeveloperName = 'Score'"
        },
        headers=headers,
    )
    assert [r["Id"] for r in found.json()["records"]] == [field_id]
    updated = await http.patch(
        f"{DATA}/tooling/sobjects/CustomField/{field_id}",
        json={"Metadata": {**field["Metadata"], "label": "Deal score"}},  # type: ignore[dict-item]
        headers=headers,
    )
    assert updated.status_code == 204
    fields = {
        f["name"]: f
        for f in (await http.get(f"{DATA}/sobjects/Opportunity/describe", headers=headers)).json()[
            "fields"
        ]
    }
    assert (fields["Score__c"]["label"], fields["Score__c"]["custom"]) == ("Deal score", True)

    text_without_length = {
        "FullName": "Opportunity.Note__c",
        "Metadata": {"label": "Note", "type": "Text"},
    }
    refused = await http.post(
        f"{DATA}/tooling/sobjects/CustomField", json=text_without_length, headers=headers
    )
    assert refused.status_code == 400 and "length" in refused.json()[0]["message"]
    unknown = await http.get(f"{DATA}/sobjects/Spaceship__c/describe", headers=headers)
    assert unknown.status_code == 404 and unknown.json()[0]["errorCode"] == "NOT_FOUND"

    # A reset of the records is a fresh org: its custom fields are gone.
    await sandbox.Reset(sandbox_pb2.ResetRequest(scopes=[sandbox_pb2.RESET_SCOPE_RECORDS]))
    described = await http.get(f"{DATA}/sobjects/Opportunity/describe", headers=headers)
    assert "Score__c" not in {f["name"] for f in described.json()["fields"]}


async def test_objects_with_seeded_records_are_described_from_their_fields(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    await seed_records(sandbox, SF, "Ledger__c", 2)
    headers = bearer(await sf_token(http))
    described = await http.get(f"{DATA}/sobjects/Ledger__c/describe", headers=headers)
    assert described.status_code == 200, described.text
    assert {"Id", "Name", "SystemModstamp"} <= {f["name"] for f in described.json()["fields"]}


async def test_metadata_calls_pass_the_same_token_and_fault_checks(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    unauthenticated = await http.get(f"{PROPERTIES}/contacts")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["category"] == "INVALID_AUTHENTICATION"
    described = await http.get(f"{DATA}/sobjects/Account/describe", headers=bearer("nope"))
    assert described.status_code == 401
    assert described.json()[0]["errorCode"] == "INVALID_SESSION_ID"

    token = await client_token(http)
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
                provider=HS,
                object_name="deals",
                count=1,
                retry_after=duration(2),
            )
        )
    )
    limited = await http.get(f"{PROPERTIES}/deals", headers=bearer(token))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert (await http.get(f"{PROPERTIES}/deals", headers=bearer(token))).status_code == 200


async def test_a_custom_field_is_a_column_soql_can_select(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    await seed_records(sandbox, SF, "Account", 2)
    headers = bearer(await sf_token(http))
    query = {"q": "SELECT Id, Tier__c FROM Account"}
    before = await http.get(f"{DATA}/query", params=query, headers=headers)
    assert before.status_code == 400 and before.json()[0]["errorCode"] == "INVALID_FIELD"
    field = {
        "FullName": "Account.Tier__c",
        "Metadata": {"label": "Tier", "type": "Text", "length": 20},
    }
    created = await http.post(f"{DATA}/tooling/sobjects/CustomField", json=field, headers=headers)
    assert created.status_code == 201, created.text
    rows = (await http.get(f"{DATA}/query", params=query, headers=headers)).json()["records"]
    # As in Salesforce, a field no record has set reads as null.
    assert [row["Tier__c"] for row in rows] == [None, None]
