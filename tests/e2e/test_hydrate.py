"""Hydrated revisions over REST through the edge, against the stack's provider sandbox: a
revision with the live metadata of a customer's instance (display names, every field's
metadata including custom fields made through ampmesh), an object the instance lacks
marked with its error, and the connections a caller may not hydrate with refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.control_plane import (
    bearer,
    client,
    customer_claims,
    new_rsa_key,
    problem,
    register_jwt_key,
    sign_jwt,
    spki_pem,
)
from tests.support.metadata import MetadataWorld, custom_name, metadata_world, shown
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[MetadataWorld]:
    made = await metadata_world(stack)
    await made.connect("hubspot", "acme")
    await made.connect("salesforce", "acme")
    try:
        yield made
    finally:
        await made.http.aclose()


def hydrate_path(world: MetadataWorld, integration: str) -> str:
    found = world.integration(integration)
    return f"/integrations/{found['id']}/revisions/{found['latestRevision']['id']}:hydrate"


async def hydrate(world: MetadataWorld, integration: str, provider: str) -> dict[str, Any]:
    connection = world.connections[(provider, "acme")]
    response = await world.http.get(
        hydrate_path(world, integration), params={"connectionId": connection["id"]}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = shown(response.json())
    return body


async def test_a_hubspot_revision_hydrates_with_display_names_and_custom_fields(
    world: MetadataWorld,
) -> None:
    # A custom field made through ampmesh shows in the hydrated object's metadata.
    name = custom_name("segment")
    upserted = await world.http.put(
        "/providers/hubspot/object-metadata",
        json={
            "groupRef": "acme",
            "fields": {
                "contacts": [{"fieldName": name, "displayName": "Segment", "valueType": "string"}]
            },
        },
    )
    assert upserted.status_code == 200, upserted.text

    body = await hydrate(world, "crm", "hubspot")
    revision = world.integration("crm")["latestRevision"]
    assert (body["id"], body["specVersion"]) == (revision["id"], "1.0.0")
    content = body["content"]
    assert (content["name"], content["displayName"], content["provider"], content["module"]) == (
        "crm",
        "CRM",
        "hubspot",
        "crm",
    )
    assert content["proxy"] == {"enabled": True}
    contacts, spaceships = content["read"]["objects"]
    assert "error" not in contacts
    assert {k: contacts[k] for k in ("objectName", "displayName", "mapToName")} == {
        "objectName": "contacts",
        "displayName": "Contact",
        "mapToName": "people",
    }
    assert contacts["mapToDisplayName"] == "People"
    assert (contacts["destination"], contacts["schedule"]) == ("crmWebhook", "*/30 * * * *")
    assert contacts["backfill"] == {"defaultPeriod": {"days": 30}}
    assert contacts["optionalFieldsAuto"] == "all"
    assert contacts["requiredFields"] == [
        {
            "fieldName": "email",
            "displayName": "Email",
            "mapToName": "emailAddress",
            "mapToDisplayName": "Email address",
        }
    ]
    listed, offered = contacts["optionalFields"][:2], contacts["optionalFields"][2:]
    assert listed == [
        {"fieldName": "firstname", "displayName": "First Name"},
        {
            "mapToName": "segment",
            "mapToDisplayName": "Segment",
            "prompt": "Which field holds the segment?",
            "default": "lifecyclestage",
        },
    ]
    metadata = contacts["allFieldsMetadata"]
    # optionalFieldsAuto: all offers every other field of the instance as optional (install
    # UIs offer only optionalFields), the custom one included, under its label.
    labels = {field["fieldName"]: field["displayName"] for field in offered}
    assert labels[name.lower()] == "Segment"
    assert set(labels) == set(metadata) - {"email", "firstname"}
    assert metadata[name.lower()]["isCustom"] is True
    assert metadata[name.lower()]["displayName"] == "Segment"
    assert metadata["lifecyclestage"]["valueType"] == "singleSelect"
    assert {"fieldName": "email", "displayName": "Email"} in contacts["allFields"]
    assert len(contacts["allFields"]) == len(metadata)

    # The instance has no such object: that object says so, the rest hydrates.
    assert "spaceships" in spaceships["error"]
    assert (spaceships["objectName"], spaceships["displayName"]) == ("spaceships", "spaceships")
    assert not spaceships.get("allFieldsMetadata")


async def test_a_salesforce_revision_hydrates_with_lower_cased_field_metadata(
    world: MetadataWorld,
) -> None:
    name = custom_name("Region")
    upserted = await world.http.put(
        "/providers/salesforce/object-metadata",
        json={
            "groupRef": "acme",
            "fields": {
                "Account": [
                    {
                        "fieldName": name,
                        "displayName": "Region",
                        "valueType": "singleSelect",
                        "stringOptions": {"values": ["EMEA", "APAC"]},
                    }
                ]
            },
        },
    )
    assert upserted.status_code == 200, upserted.text
    (account,) = (await hydrate(world, "accounts", "salesforce"))["content"]["read"]["objects"]
    assert (account["objectName"], account["displayName"]) == ("Account", "Account")
    assert account["requiredFields"] == [{"fieldName": "Name", "displayName": "Account Name"}]
    assert account["optionalFields"] == [
        {"fieldName": "BillingCity", "displayName": "Billing City"}
    ]
    region = account["allFieldsMetadata"][f"{name}__c".lower()]
    assert (region["isCustom"], region["valueType"], region["providerType"]) == (
        True,
        "singleSelect",
        "picklist",
    )
    assert [v["value"] for v in region["values"]] == ["EMEA", "APAC"]
    assert account["allFieldsMetadata"]["name"]["isRequired"] is True


async def test_a_connection_to_another_provider_is_refused(world: MetadataWorld) -> None:
    salesforce = world.connections[("salesforce", "acme")]
    refused = await world.http.get(
        hydrate_path(world, "crm"), params={"connectionId": salesforce["id"]}
    )
    body = problem(refused, 400)
    assert {f"{i['in']}.{i['name']}" for i in body["issues"]} == {"query.connectionId"}
    assert "is a connection to salesforce" in body["detail"]


async def test_another_projects_connection_is_not_found(stack: Stack, world: MetadataWorld) -> None:
    other = await metadata_world(stack)
    try:
        theirs = await other.connect("hubspot", "acme")
    finally:
        await other.http.aclose()
    refused = await world.http.get(
        hydrate_path(world, "crm"), params={"connectionId": theirs["id"]}
    )
    assert f"connection {theirs['id']!r} not found" in problem(refused, 404)["detail"]


async def test_a_customer_of_another_group_cannot_hydrate_with_the_groups_connection(
    stack: Stack, admin: httpx.AsyncClient, world: MetadataWorld
) -> None:
    key = new_rsa_key()
    kid = await register_jwt_key(admin, world.project_id, spki_pem(key.public_key()))

    def token(group: str) -> str:
        return sign_jwt(key, customer_claims(groupRef=group), kid)

    connection = world.connections[("hubspot", "acme")]
    root = f"/v1/projects/{world.project_id}"
    async with client(stack, root, bearer(token("acme"))) as own:
        allowed = await own.get(
            hydrate_path(world, "crm"), params={"connectionId": connection["id"]}
        )
        assert allowed.status_code == 200, allowed.text
    async with client(stack, root, bearer(token("globex"))) as stranger:
        refused = await stranger.get(
            hydrate_path(world, "crm"), params={"connectionId": connection["id"]}
        )
        problem(refused, 404)


async def test_a_missing_connection_id_or_revision_is_named(world: MetadataWorld) -> None:
    body = problem(await world.http.get(hydrate_path(world, "crm")), 400)
    assert {f"{i['in']}.{i['name']}" for i in body["issues"]} == {"query.connectionId"}
    connection = world.connections[("hubspot", "acme")]
    crm, accounts = world.integration("crm"), world.integration("accounts")
    # A revision of another integration is not one of this integration's.
    other_revision = accounts["latestRevision"]["id"]
    missing = await world.http.get(
        f"/integrations/{crm['id']}/revisions/{other_revision}:hydrate",
        params={"connectionId": connection["id"]},
    )
    assert "revision" in problem(missing, 404)["detail"]
