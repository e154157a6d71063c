"""HubSpot object metadata through the CRM properties API:

    GET   /crm/v3/properties/{objectType}                 every property of the object
    POST  /crm/v3/properties/{objectType}                 create a custom property
    PATCH /crm/v3/properties/{objectType}/{propertyName}  update one

A property is read-only when HubSpot says its value is (modificationMetadata.
readOnlyValue) or computes it (calculated); custom when not hubspotDefined. HubSpot has
no "required" flag on properties, so isRequired is false. An upsert creates the property
and, when HubSpot answers 409 (a property of that name exists), updates it instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from ampmesh.platform.v1 import object_metadata_pb2 as om

from services.domain.connectors.base import ProviderAuth, ProviderRequestError
from services.domain.connectors.http import json_body, send
from services.domain.connectors.metadata import (
    MAX_WAIT,
    FieldOutcome,
    ObjectDescription,
    field_values,
)

# (type, fieldType) of a HubSpot property -> the reference's value type; a type alone
# when any fieldType maps the same.
_VALUE_TYPES: dict[tuple[str, str] | str, str] = {
    ("enumeration", "checkbox"): "multiSelect",
    ("enumeration", "booleancheckbox"): "boolean",
    "enumeration": "singleSelect",
    "bool": "boolean",
    "string": "string",
    "phone_number": "string",
    "number": "float",
    "date": "date",
    "datetime": "datetime",
}
# The value type of a definition -> (type, fieldType) of the property created.
_PROPERTY_TYPES = {
    "string": ("string", "text"),
    "boolean": ("bool", "booleancheckbox"),
    "int": ("number", "number"),
    "float": ("number", "number"),
    "date": ("date", "date"),
    "datetime": ("datetime", "date"),
    "singleSelect": ("enumeration", "select"),
    "multiSelect": ("enumeration", "checkbox"),
}
# The property group a new property joins (HubSpot requires one); each standard object
# has an "…information" group, other objects get the first group of their own.
_GROUPS = {
    "contacts": "contactinformation",
    "contact": "contactinformation",
    "companies": "companyinformation",
    "company": "companyinformation",
    "deals": "dealinformation",
    "deal": "dealinformation",
}
_SINGULAR_LABELS = {"contacts": "Contact", "companies": "Company", "deals": "Deal"}


class HubSpotMetadata:
    provider = "hubspot"

    async def describe(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, object_name: str
    ) -> ObjectDescription:
        url = f"{auth.base_url}/crm/v3/properties/{object_name}"
        body = json_body(
            await send(http, "GET", url, auth=auth, params={"archived": "false"}, max_wait=MAX_WAIT)
        )
        fields = {}
        for raw in body.get("results") or []:
            metadata = field_metadata(raw)
            fields[metadata.field_name] = metadata
        label = _SINGULAR_LABELS.get(object_name, object_name[:1].upper() + object_name[1:])
        return ObjectDescription(name=object_name, display_name=label, fields=fields)

    def definition_problems(
        self, object_name: str, definition: om.FieldDefinition
    ) -> dict[str, str]:
        if definition.value_type == "reference":
            return {
                "valueType": "HubSpot properties cannot refer to other objects (use "
                "associations): reference is not supported for HubSpot"
            }
        return {}

    async def upsert(
        self,
        http: aiohttp.ClientSession,
        auth: ProviderAuth,
        object_name: str,
        definitions: Sequence[om.FieldDefinition],
    ) -> list[FieldOutcome]:
        outcomes = []
        url = f"{auth.base_url}/crm/v3/properties/{object_name}"
        for definition in definitions:
            name = definition.field_name.lower()
            body = property_body(object_name, definition)
            try:
                answer = await send(http, "POST", url, auth=auth, json=body, max_wait=MAX_WAIT)
                action = "create"
            except ProviderRequestError as error:
                if error.status != 409:
                    raise
                changes = {k: v for k, v in body.items() if k not in ("name", "groupName")}
                answer = await send(
                    http, "PATCH", f"{url}/{name}", auth=auth, json=changes, max_wait=MAX_WAIT
                )
                action = "update"
            saved = json_body(answer)
            warnings = []
            if definition.required:
                warnings.append("HubSpot properties cannot be required; created as optional")
            if definition.string_options.pattern:
                warnings.append("HubSpot properties have no value pattern; pattern ignored")
            outcomes.append(
                FieldOutcome(
                    field_name=str(saved.get("name") or name),
                    action=action,
                    metadata={
                        "type": saved.get("type", body["type"]),
                        "fieldType": saved.get("fieldType", body["fieldType"]),
                        "groupName": saved.get("groupName", body["groupName"]),
                    },
                    warnings=warnings,
                )
            )
        return outcomes


def field_metadata(raw: Mapping[str, Any]) -> om.FieldMetadata:
    """One HubSpot property as the reference's FieldMetadata."""
    kind, field_type = str(raw.get("type") or ""), str(raw.get("fieldType") or "")
    value_type = _VALUE_TYPES.get((kind, field_type)) or _VALUE_TYPES.get(kind, "other")
    modification = raw.get("modificationMetadata") or {}
    metadata = om.FieldMetadata(
        field_name=str(raw["name"]),
        display_name=str(raw.get("label") or raw["name"]),
        value_type=value_type,
        provider_type=kind,
        read_only=bool(modification.get("readOnlyValue")) or bool(raw.get("calculated")),
        is_custom=not raw.get("hubspotDefined", False),
        is_required=False,
    )
    if value_type in ("singleSelect", "multiSelect"):
        options = [
            (str(o.get("value", "")), str(o.get("label", "")))
            for o in raw.get("options") or []
            if not o.get("hidden")
        ]
        metadata.values.extend(field_values(options))
    return metadata


def property_body(object_name: str, definition: om.FieldDefinition) -> dict[str, Any]:
    """The create body of a property from a definition (HubSpot names are lower-case)."""
    kind, field_type = _PROPERTY_TYPES[definition.value_type]
    body: dict[str, Any] = {
        "name": definition.field_name.lower(),
        "label": definition.display_name,
        "type": kind,
        "fieldType": field_type,
        "groupName": _GROUPS.get(object_name, f"{object_name}information"),
    }
    if definition.description:
        body["description"] = definition.description
    if definition.unique:
        body["hasUniqueValue"] = True
    if kind == "enumeration":
        body["options"] = [
            {"label": value, "value": value, "displayOrder": index}
            for index, value in enumerate(definition.string_options.values)
        ]
    elif kind == "bool":
        body["options"] = [
            {"label": "Yes", "value": "true", "displayOrder": 0},
            {"label": "No", "value": "false", "displayOrder": 1},
        ]
    return body
