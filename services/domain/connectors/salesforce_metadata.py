"""Salesforce object metadata: the sObject describe, and custom fields through the Tooling
API.

    GET   /services/data/vNN.N/sobjects/{sObject}/describe       the object and its fields
    POST  /services/data/vNN.N/tooling/sobjects/CustomField      create a custom field
    GET   /services/data/vNN.N/tooling/query?q=SELECT Id FROM CustomField WHERE …
    PATCH /services/data/vNN.N/tooling/sobjects/CustomField/{id} update it

Custom fields go through the Tooling API rather than the Metadata API because it is JSON
over the same REST root and token the record reads use, and answers each field
synchronously; the Metadata API is SOAP (or a deploy of a zip polled until done).
A create that Salesforce refuses as a duplicate (DUPLICATE_DEVELOPER_NAME) is an
update: the field's id is looked up by a Tooling query and the field PATCHed.

Field names are lower-cased, as the read connector keys a record's values (and as the
reference's Salesforce metadata does: `billingcity`). A definition's fieldName gets the
`__c` suffix custom fields need when it lacks it.
"""

from __future__ import annotations

import re
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
from services.domain.connectors.salesforce import API_VERSION

_VALUE_TYPES = {
    "string": "string",
    "textarea": "string",
    "email": "string",
    "phone": "string",
    "url": "string",
    "encryptedstring": "string",
    "id": "string",
    "boolean": "boolean",
    "int": "int",
    "long": "int",
    "double": "float",
    "currency": "float",
    "percent": "float",
    "date": "date",
    "datetime": "datetime",
    "picklist": "singleSelect",
    "multipicklist": "multiSelect",
    "reference": "reference",
}
DUPLICATE = "DUPLICATE_DEVELOPER_NAME"
# An sObject's API name (custom ones end in __c); what may go into a URL or a query.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
# Text fields' longest value; Salesforce's default when none is asked.
MAX_TEXT = 255


class SalesforceMetadata:
    provider = "salesforce"

    async def describe(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, object_name: str
    ) -> ObjectDescription:
        if not _NAME.match(object_name):
            # Not a name Salesforce could have (and it goes into the URL): no such object.
            raise ProviderRequestError(
                f"{object_name!r} is not a Salesforce object name", status=404, code="NOT_FOUND"
            )
        url = f"{auth.base_url}/services/data/{API_VERSION}/sobjects/{object_name}/describe"
        body = json_body(await send(http, "GET", url, auth=auth, max_wait=MAX_WAIT))
        fields = {}
        for raw in body.get("fields") or []:
            metadata = field_metadata(raw)
            fields[metadata.field_name] = metadata
        return ObjectDescription(
            name=object_name, display_name=str(body.get("label") or object_name), fields=fields
        )

    def definition_problems(
        self, object_name: str, definition: om.FieldDefinition
    ) -> dict[str, str]:
        problems = {}
        length = definition.string_options.length
        if definition.string_options.HasField("length") and length > MAX_TEXT:
            problems["stringOptions.length"] = (
                f"Salesforce text fields hold at most {MAX_TEXT} characters"
            )
        numeric = definition.numeric_options
        if numeric.HasField("precision") and not 1 <= numeric.precision <= 18:
            problems["numericOptions.precision"] = "Salesforce numbers have 1 to 18 digits"
        if numeric.HasField("scale") and numeric.scale > numeric.precision:
            problems["numericOptions.scale"] = "cannot exceed the precision"
        return problems

    async def upsert(
        self,
        http: aiohttp.ClientSession,
        auth: ProviderAuth,
        object_name: str,
        definitions: Sequence[om.FieldDefinition],
    ) -> list[FieldOutcome]:
        if not _NAME.match(object_name):
            raise ProviderRequestError(
                f"{object_name!r} is not a Salesforce object name", status=404, code="NOT_FOUND"
            )
        root = f"{auth.base_url}/services/data/{API_VERSION}/tooling"
        outcomes = []
        for definition in definitions:
            api_name = custom_name(definition.field_name)
            metadata = field_definition(definition)
            full_name = f"{object_name}.{api_name}"
            try:
                answer = await send(
                    http,
                    "POST",
                    f"{root}/sobjects/CustomField",
                    auth=auth,
                    json={"FullName": full_name, "Metadata": metadata},
                    max_wait=MAX_WAIT,
                )
                field_id = str(json_body(answer).get("id") or "")
                action = "create"
            except ProviderRequestError as error:
                if error.code != DUPLICATE:
                    raise
                field_id = await _custom_field_id(http, auth, root, object_name, api_name)
                await send(
                    http,
                    "PATCH",
                    f"{root}/sobjects/CustomField/{field_id}",
                    auth=auth,
                    json={"Metadata": metadata},
                    max_wait=MAX_WAIT,
                )
                action = "update"
            warnings = []
            if definition.string_options.pattern:
                warnings.append("Salesforce fields have no value pattern; pattern ignored")
            outcomes.append(
                FieldOutcome(
                    field_name=api_name.lower(),
                    action=action,
                    metadata={"id": field_id, "fullName": full_name, "type": metadata["type"]},
                    warnings=warnings,
                )
            )
        return outcomes


async def _custom_field_id(
    http: aiohttp.ClientSession, auth: ProviderAuth, root: str, object_name: str, api_name: str
) -> str:
    developer_name = api_name.removesuffix("__c")
    query = (
        "SELECT Id FROM CustomField "  # noqa: S608 (names checked by the definition's rules)
        f"WHERE TableEnumOrId = '{object_name}' AND DeveloperName = '{developer_name}'"
    )
    body = json_body(await send(http, "GET", f"{root}/query", auth=auth, params={"q": query}))
    records = body.get("records") or []
    if not records:
        raise ProviderRequestError(
            f"Salesforce called {object_name}.{api_name} a duplicate but no such custom field "
            "was found",
            status=409,
            code=DUPLICATE,
        )
    return str(records[0]["Id"])


def custom_name(field_name: str) -> str:
    """The API name of a custom field: custom fields end in __c."""
    return field_name if field_name.lower().endswith("__c") else f"{field_name}__c"


def field_metadata(raw: Mapping[str, Any]) -> om.FieldMetadata:
    """One field of a describe as the reference's FieldMetadata."""
    kind = str(raw.get("type") or "")
    value_type = _VALUE_TYPES.get(kind, "other")
    createable, updateable = bool(raw.get("createable")), bool(raw.get("updateable"))
    metadata = om.FieldMetadata(
        field_name=str(raw["name"]).lower(),
        display_name=str(raw.get("label") or raw["name"]),
        value_type=value_type,
        provider_type=kind,
        read_only=not (createable or updateable),
        is_custom=bool(raw.get("custom")),
        is_required=createable
        and not raw.get("nillable", True)
        and not raw.get("defaultedOnCreate", False),
    )
    if value_type == "reference":
        metadata.reference_to.extend(str(name) for name in raw.get("referenceTo") or [])
    if value_type in ("singleSelect", "multiSelect"):
        options = [
            (str(v.get("value", "")), str(v.get("label", "")))
            for v in raw.get("picklistValues") or []
            if v.get("active", True)
        ]
        metadata.values.extend(field_values(options))
    return metadata


def field_definition(definition: om.FieldDefinition) -> dict[str, Any]:
    """The Tooling API's CustomField Metadata of a definition."""
    metadata: dict[str, Any] = {"label": definition.display_name}
    if definition.description:
        metadata["description"] = definition.description
    kind = definition.value_type
    strings, numbers = definition.string_options, definition.numeric_options
    if kind == "string":
        metadata.update(type="Text", length=strings.length if strings.HasField("length") else 255)
        if definition.unique:
            metadata["unique"] = True
        if definition.required:
            metadata["required"] = True
    elif kind == "boolean":
        metadata.update(type="Checkbox", defaultValue="false")
    elif kind in ("int", "float"):
        precision = numbers.precision if numbers.HasField("precision") else 18
        scale = 0 if kind == "int" else (numbers.scale if numbers.HasField("scale") else 2)
        metadata.update(type="Number", precision=precision, scale=scale)
        if definition.required:
            metadata["required"] = True
    elif kind in ("date", "datetime"):
        metadata["type"] = "Date" if kind == "date" else "DateTime"
        if definition.required:
            metadata["required"] = True
    elif kind in ("singleSelect", "multiSelect"):
        metadata["type"] = "Picklist" if kind == "singleSelect" else "MultiselectPicklist"
        if kind == "multiSelect":
            metadata["visibleLines"] = 4
        metadata["valueSet"] = {
            "restricted": bool(strings.values_restricted),
            "valueSetDefinition": {
                "sorted": False,
                "value": [
                    {"fullName": value, "label": value, "default": False}
                    for value in strings.values
                ],
            },
        }
    elif kind == "reference":
        association = definition.association
        metadata.update(
            type="Lookup",
            referenceTo=association.target_object,
            relationshipName=custom_name(definition.field_name).removesuffix("__c"),
            deleteConstraint="SetNull",
        )
    return metadata
