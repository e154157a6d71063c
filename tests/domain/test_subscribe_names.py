"""The names subscribe's sides agree on, as the providers spell them."""

from __future__ import annotations

from services.domain.connectors.salesforce_subscriptions import member_name
from services.domain.subscribe_names import (
    hubspot_event_type,
    parse_hubspot_event_type,
    relay_token_digest,
    salesforce_channel_entity,
    salesforce_event_type,
    salesforce_object_of_entity,
    same_account,
)


def test_hubspot_event_types_round_trip_and_unknown_kinds_are_other() -> None:
    assert hubspot_event_type("contacts", "update") == "contact.propertyChange"
    assert hubspot_event_type("deals", "delete") == "deal.deletion"
    assert hubspot_event_type("quotes", "create") is None
    assert parse_hubspot_event_type("company.creation") == ("companies", "create")
    assert parse_hubspot_event_type("contact.merge") == ("contacts", "other")
    assert parse_hubspot_event_type("quote.creation") is None


def test_salesforce_entities_and_channel_members_of_standard_and_custom_objects() -> None:
    assert salesforce_channel_entity("Account") == "AccountChangeEvent"
    assert salesforce_channel_entity("Invoice__c") == "Invoice__ChangeEvent"
    assert salesforce_object_of_entity("Invoice__ChangeEvent") == "Invoice__c"
    assert salesforce_object_of_entity("AccountChangeEvent") == "Account"
    # Developer names allow no double underscore (the sandbox refuses them as Salesforce does).
    assert member_name("Invoice__ChangeEvent") == "ChangeEvents_Invoice_ChangeEvent"
    assert member_name("AccountChangeEvent") == "ChangeEvents_AccountChangeEvent"
    assert salesforce_event_type("UNDELETE") == "create"
    assert salesforce_event_type("GAP_UPDATE") == "other"


def test_salesforce_org_ids_match_in_either_length_and_case_matters() -> None:
    org18, org15 = "00D5g000004fGhIEAU", "00D5g000004fGhI"
    assert same_account(org18, org18)
    assert same_account(org18, org15)
    assert same_account(org15, org18)
    assert not same_account(org18, "00D5g000004fGhJEAU")
    assert not same_account(org18, "00d5g000004fghieau")
    assert not same_account(org18, org18[:16])  # only the two real forms
    assert not same_account("", "")


def test_the_relay_token_is_kept_as_its_sha256() -> None:
    assert relay_token_digest("t").hex() == (
        "e3b98a4da31a127d4bde6e43033f66ba274cab0eb7eb1c70ec41402bf6273dd8"
    )
