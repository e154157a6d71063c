"""What the metadata connectors share: an object's description in the reference's shape,
the custom-field definitions a builder may ask for, and what an upsert did.

A metadata connector reads one object's fields from the provider (HubSpot's CRM
properties, Salesforce's sObject describe) and creates or updates custom fields there.
Field descriptions are the contract's FieldMetadata message itself
(ampmesh.platform.v1.object_metadata_pb2), so the api answers them as they are; the
normalized value types are the reference's (api.yaml, FieldMetadata.valueType).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from ampmesh.platform.v1 import object_metadata_pb2 as om

from services.domain.connectors.base import ProviderAuth

# The reference's normalized value types of a field it reads (FieldMetadata.valueType).
VALUE_TYPES = (
    "string",
    "boolean",
    "singleSelect",
    "multiSelect",
    "date",
    "datetime",
    "int",
    "float",
    "reference",
    "other",
)
# The value types a custom field may be created with (FieldDefinition.valueType).
DEFINABLE_TYPES = (
    "string",
    "boolean",
    "date",
    "datetime",
    "singleSelect",
    "multiSelect",
    "int",
    "float",
    "reference",
)
# Seconds one metadata call may spend retrying a provider that limits or fails: the
# caller (an install UI) is waiting.
MAX_WAIT = 15.0
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


@dataclass
class ObjectDescription:
    """One object of a customer's instance and its fields, keyed by field name (as the
    provider's read API names them: HubSpot's as they are, Salesforce's lower-cased)."""

    name: str
    display_name: str
    fields: dict[str, om.FieldMetadata] = field(default_factory=dict)


@dataclass
class FieldOutcome:
    """What upserting one field did (the contract's FieldUpsertResult)."""

    field_name: str
    action: str  # "create", "update" or "none"
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class MetadataConnector(Protocol):
    """One provider's metadata API."""

    provider: str

    async def describe(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, object_name: str
    ) -> ObjectDescription:
        """The object's fields; ProviderRequestError with status 404 when the instance
        has no such object."""
        ...

    def definition_problems(
        self, object_name: str, definition: om.FieldDefinition
    ) -> dict[str, str]:
        """What the provider cannot create of definition, by the definition's field
        (camelCase, relative to the definition), beyond definition_problems below."""
        ...

    async def upsert(
        self,
        http: aiohttp.ClientSession,
        auth: ProviderAuth,
        object_name: str,
        definitions: Sequence[om.FieldDefinition],
    ) -> list[FieldOutcome]:
        """Creates each custom field, or updates it when it exists; one outcome each."""
        ...


def definition_problems(definition: om.FieldDefinition) -> dict[str, str]:
    """What is wrong with a custom-field definition whatever the provider, by field."""
    problems: dict[str, str] = {}
    if not definition.field_name:
        problems["fieldName"] = "is required"
    elif not _FIELD_NAME.match(definition.field_name):
        problems["fieldName"] = (
            f"{definition.field_name!r} is not a field name: letters, digits and underscores, "
            "starting with a letter, at most 80 characters"
        )
    if not definition.display_name.strip():
        problems["displayName"] = "is required"
    if not definition.value_type:
        problems["valueType"] = f"is required: one of {', '.join(DEFINABLE_TYPES)}"
    elif definition.value_type not in DEFINABLE_TYPES:
        problems["valueType"] = (
            f"{definition.value_type!r} is not a value type: one of {', '.join(DEFINABLE_TYPES)}"
        )
    selects = ("singleSelect", "multiSelect")
    if definition.value_type in selects and not definition.string_options.values:
        problems["stringOptions.values"] = f"a {definition.value_type} field needs its values"
    if definition.value_type == "reference" and not definition.association.target_object:
        problems["association.targetObject"] = "a reference field needs the object it refers to"
    if definition.string_options.HasField("length") and definition.string_options.length <= 0:
        problems["stringOptions.length"] = "must be a positive number of characters"
    return problems


def field_values(pairs: Sequence[tuple[str, str]]) -> list[om.FieldValue]:
    """Select options as FieldValues (value, label), blanks left out."""
    return [
        om.FieldValue(value=value, display_value=label or value) for value, label in pairs if value
    ]
