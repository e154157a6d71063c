"""The sandbox's object schemas: which fields each object has, in each provider's own
shape (HubSpot property definitions, Salesforce describe fields), and the custom fields
created through the metadata APIs.

The standard fields match the records the sandbox serves (records.py): HubSpot contacts,
companies and deals; Salesforce Account, Contact, Opportunity and Lead. Any other object
that has seeded records is described from its records' fields, as text, so every object
the record APIs read is also one the metadata APIs know. Salesforce object names are
case-insensitive, as Salesforce's are; HubSpot's standard objects also answer to their
singular names.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.sandbox.providers import Provider
from services.sandbox.records import RecordStore, hubspot_time

_CREATED = hubspot_time(datetime(2020, 1, 1, tzinfo=UTC))
_ORDER = itertools.count()


def _options(*labels: str) -> list[dict[str, Any]]:
    return [
        {"label": label, "value": label.lower().replace(" ", "_"), "displayOrder": i}
        for i, label in enumerate(labels)
    ]


def hubspot_property(
    name: str,
    label: str,
    kind: str = "string",
    field_type: str = "text",
    *,
    group: str = "",
    options: list[dict[str, Any]] | None = None,
    read_only: bool = False,
    calculated: bool = False,
    custom: bool = False,
    description: str = "",
    unique: bool = False,
) -> dict[str, Any]:
    """A property definition as GET /crm/v3/properties answers it."""
    return {
        "name": name,
        "label": label,
        "type": kind,
        "fieldType": field_type,
        "description": description,
        "groupName": group,
        "options": options or [],
        "displayOrder": next(_ORDER),
        "calculated": calculated,
        "externalOptions": False,
        "hasUniqueValue": unique,
        "hidden": False,
        "hubspotDefined": not custom,
        "modificationMetadata": {
            "archivable": custom,
            "readOnlyDefinition": not custom,
            "readOnlyValue": read_only,
        },
        "formField": not read_only,
        "createdAt": _CREATED,
        "updatedAt": _CREATED,
        "archived": False,
    }


def _hubspot_system(group: str) -> list[dict[str, Any]]:
    return [
        hubspot_property(
            "createdate", "Create Date", "datetime", "date", group=group, read_only=True
        ),
        hubspot_property(
            "hs_lastmodifieddate",
            "Last Modified Date",
            "datetime",
            "date",
            group=group,
            read_only=True,
            calculated=True,
        ),
        hubspot_property(
            "hs_object_id", "Record ID", "number", "number", group=group, read_only=True
        ),
    ]


def _hubspot_defaults() -> dict[str, list[dict[str, Any]]]:
    contact, company, deal = "contactinformation", "companyinformation", "dealinformation"
    return {
        "contacts": [
            hubspot_property("firstname", "First Name", group=contact),
            hubspot_property("lastname", "Last Name", group=contact),
            hubspot_property("email", "Email", group=contact),
            hubspot_property("company", "Company Name", group=contact),
            hubspot_property("phone", "Phone Number", "string", "phonenumber", group=contact),
            hubspot_property(
                "lifecyclestage",
                "Lifecycle Stage",
                "enumeration",
                "radio",
                group=contact,
                options=_options("Lead", "Opportunity", "Customer"),
            ),
            *_hubspot_system(contact),
        ],
        "companies": [
            hubspot_property("name", "Company name", group=company),
            hubspot_property("domain", "Company Domain Name", group=company),
            hubspot_property(
                "industry",
                "Industry",
                "enumeration",
                "select",
                group=company,
                options=_options(
                    "Technology", "Retail", "Finance", "Healthcare", "Energy", "Media"
                ),
            ),
            hubspot_property("city", "City", group=company),
            *_hubspot_system(company),
        ],
        "deals": [
            hubspot_property("name", "Deal Name", group=deal),
            hubspot_property("amount", "Amount", "number", "number", group=deal),
            hubspot_property(
                "dealstage",
                "Deal Stage",
                "enumeration",
                "radio",
                group=deal,
                options=_options("Appointment Scheduled", "Closed Won", "Closed Lost"),
            ),
            *_hubspot_system(deal),
        ],
    }


_HUBSPOT_ALIASES = {"contact": "contacts", "company": "companies", "deal": "deals"}


def salesforce_field(
    name: str,
    label: str,
    kind: str = "string",
    *,
    required: bool = False,
    read_only: bool = False,
    defaulted: bool = False,
    custom: bool = False,
    picklist: tuple[str, ...] = (),
    reference_to: tuple[str, ...] = (),
    length: int = 0,
    precision: int = 0,
    scale: int = 0,
    unique: bool = False,
) -> dict[str, Any]:
    """A field as the sObject describe answers it (the attributes clients read)."""
    if not length and kind in ("string", "textarea", "email", "phone", "url", "picklist"):
        length = 255
    if kind == "id":
        length = 18
    return {
        "name": name,
        "label": label,
        "type": kind,
        "length": length,
        "precision": precision,
        "scale": scale,
        "createable": not read_only,
        "updateable": not read_only,
        "custom": custom,
        "nillable": not required and kind != "boolean",
        "defaultedOnCreate": defaulted or read_only,
        "unique": unique,
        "picklistValues": [
            {"active": True, "defaultValue": False, "label": value, "value": value}
            for value in picklist
        ],
        "referenceTo": list(reference_to),
        "relationshipName": name.removesuffix("Id") if reference_to else None,
    }


def _salesforce_system() -> list[dict[str, Any]]:
    return [
        salesforce_field("CreatedDate", "Created Date", "datetime", read_only=True),
        salesforce_field("LastModifiedDate", "Last Modified Date", "datetime", read_only=True),
        salesforce_field("SystemModstamp", "System Modstamp", "datetime", read_only=True),
    ]


def _salesforce_defaults() -> dict[str, tuple[str, str, list[dict[str, Any]]]]:
    """Object -> (label, plural label, fields)."""
    record_id = salesforce_field("Id", "Record ID", "id", read_only=True)
    owner = salesforce_field(
        "OwnerId", "Owner ID", "reference", reference_to=("User",), defaulted=True
    )
    account_id = salesforce_field("AccountId", "Account ID", "reference", reference_to=("Account",))
    return {
        "Account": (
            "Account",
            "Accounts",
            [
                record_id,
                salesforce_field("Name", "Account Name", required=True),
                salesforce_field(
                    "Industry",
                    "Industry",
                    "picklist",
                    picklist=("Technology", "Retail", "Finance", "Healthcare", "Energy", "Media"),
                ),
                salesforce_field("Phone", "Account Phone", "phone", length=40),
                salesforce_field("BillingCity", "Billing City", length=40),
                salesforce_field("AnnualRevenue", "Annual Revenue", "currency", precision=18),
                owner,
                *_salesforce_system(),
            ],
        ),
        "Contact": (
            "Contact",
            "Contacts",
            [
                record_id,
                salesforce_field("FirstName", "First Name", length=40),
                salesforce_field("LastName", "Last Name", required=True, length=80),
                salesforce_field("Email", "Email", "email", length=80),
                salesforce_field("Phone", "Business Phone", "phone", length=40),
                account_id,
                owner,
                *_salesforce_system(),
            ],
        ),
        "Opportunity": (
            "Opportunity",
            "Opportunities",
            [
                record_id,
                salesforce_field("Name", "Name", required=True, length=120),
                salesforce_field(
                    "StageName",
                    "Stage",
                    "picklist",
                    required=True,
                    picklist=("Prospecting", "Negotiation", "Closed Won", "Closed Lost"),
                ),
                salesforce_field("CloseDate", "Close Date", "date", required=True),
                salesforce_field("Amount", "Amount", "currency", precision=18, scale=2),
                account_id,
                owner,
                *_salesforce_system(),
            ],
        ),
        "Lead": (
            "Lead",
            "Leads",
            [
                record_id,
                salesforce_field("FirstName", "First Name", length=40),
                salesforce_field("LastName", "Last Name", required=True, length=80),
                salesforce_field("Company", "Company", required=True),
                salesforce_field("Email", "Email", "email", length=80),
                salesforce_field(
                    "Status",
                    "Lead Status",
                    "picklist",
                    required=True,
                    defaulted=True,
                    picklist=("Open", "Working", "Qualified", "Unqualified"),
                ),
                owner,
                *_salesforce_system(),
            ],
        ),
    }


@dataclass
class SalesforceObject:
    name: str
    label: str
    plural: str
    fields: dict[str, dict[str, Any]]  # by API name, in describe order
    # Custom fields made through the Tooling API: id -> API name.
    custom_ids: dict[str, str] = field(default_factory=dict)


class SchemaStore:
    """Each provider's objects and their fields, standard and custom."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records
        self.reset()

    def reset(self) -> None:
        self.hubspot: dict[str, dict[str, dict[str, Any]]] = {
            name: {p["name"]: p for p in properties}
            for name, properties in _hubspot_defaults().items()
        }
        self.salesforce: dict[str, SalesforceObject] = {
            name: SalesforceObject(name, label, plural, {f["name"]: f for f in fields})
            for name, (label, plural, fields) in _salesforce_defaults().items()
        }

    # --- HubSpot ---------------------------------------------------------------------

    def hubspot_object(self, object_name: str) -> dict[str, dict[str, Any]] | None:
        """The object's properties by name (created from its records' fields on first
        use for an object that has records); None when HubSpot would not know it."""
        name = _HUBSPOT_ALIASES.get(object_name, object_name)
        found = self.hubspot.get(name)
        if found is None:
            sample = self.records.records(Provider.HUBSPOT, name)[:1]
            if not sample:
                return None
            group = f"{name}information"
            found = self.hubspot[name] = {
                p["name"]: p
                for p in (
                    *(hubspot_property(f, f.capitalize(), group=group) for f in sample[0].fields),
                    *_hubspot_system(group),
                )
            }
        return found

    # --- Salesforce ------------------------------------------------------------------

    def salesforce_object(self, object_name: str) -> SalesforceObject | None:
        """The sObject (named in any case); None when the org has no such object."""
        lowered = object_name.lower()
        for name, found in self.salesforce.items():
            if name.lower() == lowered:
                return found
        sample = self.records.records(Provider.SALESFORCE, object_name)[:1]
        if not sample:
            return None
        fields = [
            salesforce_field("Id", "Record ID", "id", read_only=True),
            *(salesforce_field(f, f) for f in sample[0].fields),
            *_salesforce_system(),
        ]
        created = self.salesforce[object_name] = SalesforceObject(
            object_name, object_name, f"{object_name}s", {f["name"]: f for f in fields}
        )
        return created

    def custom_field_owner(self, field_id: str) -> tuple[SalesforceObject, str] | None:
        """The object and API name of a custom field by its Tooling id."""
        for found in self.salesforce.values():
            if field_id in found.custom_ids:
                return found, found.custom_ids[field_id]
        return None


def new_custom_field_id() -> str:
    """A CustomField id: key prefix 00N, then 15 characters."""
    return "00N" + secrets.token_hex(8)[:12].upper() + "AAA"
