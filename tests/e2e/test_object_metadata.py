"""Object metadata over REST through the edge, against the stack's provider sandbox: an
object's fields for an installation (by mapped or native name) and for a connection,
read-only fields left out on request, and custom fields upserted at the provider, which
then show in the object's metadata (the cached description is dropped)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.control_plane import (
    as_key,
    client,
    create_api_key,
    database_url,
    problem,
)
from tests.support.metadata import MetadataWorld, custom_name, metadata_world, shown
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[MetadataWorld]:
    made = await metadata_world(stack)
    await made.install("crm", "acme")
    await made.install("accounts", "acme")
    try:
        yield made
    finally:
        await made.http.aclose()


def metadata_path(world: MetadataWorld, integration: str, object_name: str) -> str:
    return f"/integrations/{world.integration(integration)['id']}/objects/{object_name}/metadata"


async def fields_of(world: MetadataWorld, path: str, **query: str) -> dict[str, Any]:
    response = await world.http.get(path, params={"groupRef": "acme", **query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = shown(response.json())
    return body


async def test_an_installation_describes_an_object_by_its_mapped_or_native_name(
    world: MetadataWorld,
) -> None:
    by_mapped = await fields_of(world, metadata_path(world, "crm", "people"))
    by_native = await fields_of(world, metadata_path(world, "crm", "contacts"))
    assert by_mapped == by_native
    assert (by_mapped["name"], by_mapped["displayName"], by_mapped["mappedObjectName"]) == (
        "contacts",
        "Contact",
        "people",
    )
    email = by_mapped["fields"]["email"]
    assert email == {
        "fieldName": "email",
        "displayName": "Email",
        "valueType": "string",
        "providerType": "string",
        "readOnly": False,
        "isCustom": False,
        "isRequired": False,
    }
    stage = by_mapped["fields"]["lifecyclestage"]
    assert stage["valueType"] == "singleSelect"
    assert {"value": "customer", "displayValue": "Customer"} in stage["values"]


async def test_excluding_read_only_fields(world: MetadataWorld) -> None:
    path = metadata_path(world, "crm", "contacts")
    everything = (await fields_of(world, path))["fields"]
    writable = (await fields_of(world, path, excludeReadOnly="true"))["fields"]
    read_only = {name for name, f in everything.items() if f["readOnly"]}
    assert {"hs_lastmodifieddate", "createdate", "hs_object_id"} <= read_only
    assert set(writable) == set(everything) - read_only


async def test_a_connection_describes_salesforce_fields_lower_cased(world: MetadataWorld) -> None:
    body = await fields_of(world, "/providers/salesforce/objects/Account/metadata")
    assert body["name"] == "Account" and "mappedObjectName" not in body
    fields = body["fields"]
    assert fields["billingcity"]["displayName"] == "Billing City"
    assert fields["name"]["isRequired"] is True
    assert fields["industry"]["providerType"] == "picklist"
    assert fields["ownerid"]["referenceTo"] == ["User"]


async def test_an_object_the_instance_does_not_have_is_not_found(world: MetadataWorld) -> None:
    for path in (
        "/providers/hubspot/objects/spaceships/metadata",
        metadata_path(world, "accounts", "Spaceship__c"),
    ):
        body = problem(await world.http.get(path, params={"groupRef": "acme"}), 404)
        assert "could not describe object" in body["detail"], body


async def test_an_installation_whose_connection_was_deleted_says_so(world: MetadataWorld) -> None:
    installation = await world.install("crm", "orphaned")
    connection_id = installation["connection"]["id"]
    # DeleteConnection refuses while an installation uses the connection; one can still
    # lose it to a race (deleted as the installation took it up), as the row's removal
    # here does.
    problem(await world.http.delete(f"/connections/{connection_id}"), 400)
    database = await asyncpg.connect(database_url(world.stack))
    try:
        await database.execute("DELETE FROM connections WHERE id = $1", uuid.UUID(connection_id))
    finally:
        await database.close()
    answer = await world.http.get(
        metadata_path(world, "crm", "contacts"), params={"groupRef": "orphaned"}
    )
    body = problem(answer, 400)
    assert "has no connection" in body["detail"], body
    # A group without any installation is still simply not found.
    missing = await world.http.get(
        metadata_path(world, "crm", "contacts"), params={"groupRef": "nobody"}
    )
    problem(missing, 404)


async def test_an_upsert_creates_then_updates_a_hubspot_property_seen_in_the_metadata(
    world: MetadataWorld,
) -> None:
    path = metadata_path(world, "crm", "people")
    before = await fields_of(world, path)  # cached now: the upsert must drop it
    name = custom_name("tier")
    definition = {
        "fieldName": name,
        "displayName": "Customer tier",
        "valueType": "singleSelect",
        "stringOptions": {"values": ["gold", "silver"]},
    }
    upsert_path = f"/integrations/{world.integration('crm')['id']}/object-metadata"
    created = await world.http.put(
        upsert_path, json={"groupRef": "acme", "fields": {"people": [definition]}}
    )
    assert created.status_code == 200, created.text
    result = created.json()
    assert result["success"] is True
    assert result["fields"]["people"][name]["action"] == "create"
    assert result["fields"]["people"][name]["fieldName"] == name.lower()
    assert name.lower() not in before["fields"]
    after = (await fields_of(world, path))["fields"][name.lower()]
    assert (after["displayName"], after["isCustom"], after["valueType"]) == (
        "Customer tier",
        True,
        "singleSelect",
    )

    definition["displayName"] = "Tier"
    updated = await world.http.put(
        upsert_path, json={"groupRef": "acme", "fields": {"contacts": [definition]}}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["fields"]["contacts"][name]["action"] == "update"
    assert (await fields_of(world, path))["fields"][name.lower()]["displayName"] == "Tier"


async def test_an_upsert_through_a_connection_creates_a_salesforce_custom_field(
    world: MetadataWorld,
) -> None:
    name = custom_name("Score")
    upserted = await world.http.put(
        "/providers/salesforce/object-metadata",
        json={
            "groupRef": "acme",
            "fields": {
                "Account": [
                    {
                        "fieldName": name,
                        "displayName": "Score",
                        "valueType": "float",
                        "numericOptions": {"precision": 5, "scale": 2},
                    }
                ]
            },
        },
    )
    assert upserted.status_code == 200, upserted.text
    result = upserted.json()["fields"]["Account"][name]
    assert result["action"] == "create"
    assert result["metadata"]["fullName"] == f"Account.{name}__c"
    fields = (await fields_of(world, "/providers/salesforce/objects/Account/metadata"))["fields"]
    assert fields[f"{name}__c".lower()]["isCustom"] is True


async def test_a_frontend_key_reads_metadata_but_cannot_change_the_instance(
    stack: Stack, admin: httpx.AsyncClient, world: MetadataWorld
) -> None:
    key = await create_api_key(admin, world.project_id, ["frontend"], label="ui")
    async with client(stack, f"/v1/projects/{world.project_id}", as_key(key)) as frontend:
        read = await frontend.get(
            metadata_path(world, "crm", "contacts"), params={"groupRef": "acme"}
        )
        assert read.status_code == 200, read.text
        refused = await frontend.put(
            "/providers/hubspot/object-metadata",
            json={
                "groupRef": "acme",
                "fields": {
                    "contacts": [{"fieldName": "x", "displayName": "X", "valueType": "string"}]
                },
            },
        )
        problem(refused, 403)


async def test_a_bad_definition_is_refused_naming_the_field_and_nothing_is_created(
    world: MetadataWorld,
) -> None:
    name = custom_name("bad")
    refused = await world.http.put(
        "/providers/hubspot/object-metadata",
        json={
            "groupRef": "acme",
            "fields": {
                "contacts": [
                    {"fieldName": name, "displayName": "Fine", "valueType": "string"},
                    {"fieldName": "also_fine", "displayName": "Y", "valueType": "money"},
                ]
            },
        },
    )
    body = problem(refused, 400)
    issues = {f"{i['in']}.{i['name']}": i["detail"] for i in body["issues"]}
    assert set(issues) == {"body.fields.contacts[1].valueType"}, body
    assert "'money' is not a value type" in issues["body.fields.contacts[1].valueType"]
    fields = (await fields_of(world, metadata_path(world, "crm", "contacts")))["fields"]
    assert name.lower() not in fields
