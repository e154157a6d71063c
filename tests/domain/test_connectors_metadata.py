"""The HubSpot and Salesforce metadata connectors against the provider sandbox, served in
process on a real socket: describing objects in the reference's FieldMetadata shape,
unknown objects, refused tokens and faults, and custom fields created then updated."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest
from ampmesh.platform.v1 import object_metadata_pb2 as om

from services.domain.connectors.base import (
    ProviderRequestError,
    ProviderUnavailable,
    TokenRejected,
)
from services.domain.connectors.hubspot_metadata import HubSpotMetadata
from services.domain.connectors.metadata import definition_problems
from services.domain.connectors.metadata_registry import metadata_connector_for
from services.domain.connectors.salesforce_metadata import SalesforceMetadata
from services.sandbox.faults import Endpoint, Fault, FaultKind
from services.sandbox.providers import Provider
from tests.support.served_sandbox import ServedSandbox


def definition(**fields: object) -> om.FieldDefinition:
    message = om.FieldDefinition()
    for name, value in fields.items():
        if isinstance(value, dict):
            getattr(message, name).MergeFrom(type(getattr(message, name))(**value))
        else:
            setattr(message, name, value)
    return message


# --- describing ----------------------------------------------------------------------


async def test_hubspot_properties_describe_contacts_in_the_reference_shape(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    described = await HubSpotMetadata().describe(http, sandbox.auth(Provider.HUBSPOT), "contacts")
    fields = described.fields
    assert described.display_name == "Contact"
    assert fields["email"].display_name == "Email"
    assert fields["email"].value_type == "string"
    assert not fields["email"].read_only and not fields["email"].is_custom
    stage = fields["lifecyclestage"]
    assert (stage.value_type, stage.provider_type) == ("singleSelect", "enumeration")
    assert [(v.value, v.display_value) for v in stage.values][:2] == [
        ("lead", "Lead"),
        ("opportunity", "Opportunity"),
    ]
    # HubSpot computes the modification time: it cannot be written.
    assert fields["hs_lastmodifieddate"].read_only
    assert fields["hs_lastmodifieddate"].value_type == "datetime"
    # Singular names are HubSpot's too.
    singular = await HubSpotMetadata().describe(http, sandbox.auth(Provider.HUBSPOT), "contact")
    assert set(singular.fields) == set(fields)


async def test_salesforce_describe_lower_cases_field_names_and_marks_required_ones(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    described = await SalesforceMetadata().describe(
        http, sandbox.auth(Provider.SALESFORCE), "account"
    )
    fields = described.fields
    assert described.display_name == "Account"
    assert {"id", "name", "billingcity", "industry", "systemmodstamp"} <= set(fields)
    assert fields["billingcity"].display_name == "Billing City"
    assert fields["name"].is_required and not fields["billingcity"].is_required
    assert fields["id"].read_only and not fields["id"].is_required
    assert (fields["industry"].value_type, fields["industry"].provider_type) == (
        "singleSelect",
        "picklist",
    )
    assert "Technology" in [v.value for v in fields["industry"].values]
    assert fields["annualrevenue"].value_type == "float"
    assert list(fields["ownerid"].reference_to) == ["User"]
    assert fields["ownerid"].value_type == "reference"


async def test_an_object_the_provider_does_not_have_is_a_404(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    for connector, provider in (
        (HubSpotMetadata(), Provider.HUBSPOT),
        (SalesforceMetadata(), Provider.SALESFORCE),
    ):
        with pytest.raises(ProviderRequestError) as raised:
            await connector.describe(http, sandbox.auth(provider), "Spaceships")
        assert raised.value.status == 404, connector.provider
    # A name that could not be an sObject never reaches the URL.
    with pytest.raises(ProviderRequestError) as raised:
        await SalesforceMetadata().describe(http, sandbox.auth(Provider.SALESFORCE), "../query")
    assert raised.value.status == 404


async def test_an_object_with_seeded_records_is_described_from_its_fields(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    sandbox.state.records.seed(Provider.HUBSPOT, "tickets", 2, 1, moment, moment, replace=True)
    described = await HubSpotMetadata().describe(http, sandbox.auth(Provider.HUBSPOT), "tickets")
    assert {"name", "amount", "hs_object_id"} <= set(described.fields)


async def test_a_refused_token_and_a_failing_provider_are_told_apart(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(TokenRejected):
        await HubSpotMetadata().describe(
            http, sandbox.auth(Provider.HUBSPOT, "not-a-token"), "contacts"
        )
    sandbox.state.faults.add(
        Fault(
            id="",
            endpoint=Endpoint.RECORDS,
            kind=FaultKind.SERVER_ERROR,
            provider=Provider.SALESFORCE,
            http_status=503,
            retry_after=60,
        )
    )
    with pytest.raises(ProviderUnavailable):
        await SalesforceMetadata().describe(http, sandbox.auth(Provider.SALESFORCE), "Account")


# --- custom fields -------------------------------------------------------------------


async def test_a_hubspot_property_is_created_then_updated(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    connector, auth = HubSpotMetadata(), sandbox.auth(Provider.HUBSPOT)
    tier = definition(
        field_name="Customer_Tier",
        display_name="Customer tier",
        value_type="singleSelect",
        string_options={"values": ["gold", "silver"]},
    )
    (created,) = await connector.upsert(http, auth, "contacts", [tier])
    assert (created.field_name, created.action) == ("customer_tier", "create")
    fields = (await connector.describe(http, auth, "contacts")).fields
    assert fields["customer_tier"].is_custom
    assert [v.value for v in fields["customer_tier"].values] == ["gold", "silver"]

    tier.display_name = "Tier"
    tier.string_options.values.append("bronze")
    (updated,) = await connector.upsert(http, auth, "contacts", [tier])
    assert updated.action == "update"
    fields = (await connector.describe(http, auth, "contacts")).fields
    assert fields["customer_tier"].display_name == "Tier"
    assert [v.value for v in fields["customer_tier"].values] == ["gold", "silver", "bronze"]


async def test_a_salesforce_custom_field_is_created_then_updated_through_the_tooling_api(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    connector, auth = SalesforceMetadata(), sandbox.auth(Provider.SALESFORCE)
    score = definition(
        field_name="Deal_Score",
        display_name="Deal score",
        value_type="float",
        numeric_options={"precision": 5, "scale": 2},
    )
    (created,) = await connector.upsert(http, auth, "Opportunity", [score])
    assert (created.field_name, created.action) == ("deal_score__c", "create")
    assert created.metadata["fullName"] == "Opportunity.Deal_Score__c"
    field = (await connector.describe(http, auth, "Opportunity")).fields["deal_score__c"]
    assert (field.display_name, field.value_type, field.is_custom) == ("Deal score", "float", True)

    score.display_name = "Deal score (0-100)"
    (updated,) = await connector.upsert(http, auth, "Opportunity", [score])
    assert updated.action == "update"
    assert updated.metadata["id"] == created.metadata["id"]
    field = (await connector.describe(http, auth, "Opportunity")).fields["deal_score__c"]
    assert field.display_name == "Deal score (0-100)"


def test_definitions_are_checked_naming_the_field_at_fault() -> None:
    assert definition_problems(definition(display_name="X", value_type="string")) == {
        "fieldName": "is required"
    }
    problems = definition_problems(
        definition(field_name="2bad name", display_name="", value_type="money")
    )
    assert set(problems) == {"fieldName", "displayName", "valueType"}
    assert "money" in problems["valueType"]
    assert set(
        definition_problems(definition(field_name="a", display_name="A", value_type="multiSelect"))
    ) == {"stringOptions.values"}
    reference = definition(field_name="a", display_name="A", value_type="reference")
    assert set(definition_problems(reference)) == {"association.targetObject"}
    hubspot = metadata_connector_for("hubspot")
    assert hubspot is not None
    refs = definition(
        field_name="a", display_name="A", value_type="reference", association={"target_object": "X"}
    )
    assert set(hubspot.definition_problems("contacts", refs)) == {"valueType"}
    assert metadata_connector_for("pipedrive") is None
