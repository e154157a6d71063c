"""Salesforce's sObject describe and the Tooling API's custom fields, as the sandbox
answers them:

    /salesforce/services/data/vNN.0/sobjects/{sObject}/describe            GET
    /salesforce/services/data/vNN.0/tooling/sobjects/CustomField           POST  (201)
    /salesforce/services/data/vNN.0/tooling/sobjects/CustomField/{id}      PATCH (204)
    /salesforce/services/data/vNN.0/tooling/query?q=SELECT Id FROM CustomField
        WHERE TableEnumOrId = '…' AND DeveloperName = '…'                  GET

Through the record pipeline (record_api.py): the same token and fault checks. An unknown
sObject answers 404 NOT_FOUND in Salesforce's shape; a custom field whose name exists
answers 400 DUPLICATE_DEVELOPER_NAME. A custom field shows in the describe as Salesforce
shows one (custom, `__c`). Mirrors services/domain/connectors/salesforce_metadata.py.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.sandbox.errors import ApiError, provider_error
from services.sandbox.providers import Provider
from services.sandbox.record_api import RecordApi
from services.sandbox.schemas import (
    SalesforceObject,
    SchemaStore,
    new_custom_field_id,
    salesforce_field,
)

_VERSION = re.compile(r"^v\d{2}\.0$")
_FULL_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z][A-Za-z0-9_]*__c)$")
_FIELD_QUERY = re.compile(
    r"^\s*SELECT\s+Id\s+FROM\s+CustomField\s+WHERE\s+TableEnumOrId\s*=\s*'([A-Za-z0-9_]+)'"
    r"\s+AND\s+DeveloperName\s*=\s*'([A-Za-z0-9_]+)'\s*$",
    re.IGNORECASE,
)
# Tooling type -> the describe's type.
_DESCRIBED = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Email": "email",
    "Phone": "phone",
    "Url": "url",
    "Checkbox": "boolean",
    "Number": "double",
    "Currency": "currency",
    "Percent": "percent",
    "Date": "date",
    "DateTime": "datetime",
    "Picklist": "picklist",
    "MultiselectPicklist": "multipicklist",
    "Lookup": "reference",
}


class SalesforceDescribe:
    """Salesforce's describe and Tooling routes over the record pipeline."""

    def __init__(self, records: RecordApi, schemas: SchemaStore) -> None:
        self.records = records
        self.schemas = schemas

    def routes(self) -> list[Route]:
        data = "/salesforce/services/data/{version}"
        return [
            Route(data + "/sobjects/{object_name}/describe", self.describe, methods=["GET"]),
            Route(data + "/tooling/sobjects/CustomField", self.create, methods=["POST"]),
            Route(
                data + "/tooling/sobjects/CustomField/{field_id}", self.update, methods=["PATCH"]
            ),
            Route(data + "/tooling/query", self.query, methods=["GET"]),
        ]

    async def describe(self, request: Request) -> Response:
        return await self._serve(request, request.path_params["object_name"], self._describe)

    async def create(self, request: Request) -> Response:
        return await self._serve(request, "", self._create)

    async def update(self, request: Request) -> Response:
        return await self._serve(request, "", self._update)

    async def query(self, request: Request) -> Response:
        return await self._serve(request, "", self._query)

    async def _serve(self, request: Request, object_name: str, render: Any) -> Response:
        return await self.records.serve(request, Provider.SALESFORCE, object_name, render)

    def _object(self, object_name: str) -> SalesforceObject:
        found = self.schemas.salesforce_object(object_name)
        if found is None:
            raise ApiError(404, _error("NOT_FOUND", "The requested resource does not exist", 404))
        return found

    async def _describe(self, request: Request, object_name: str) -> bytes:
        _version(request)
        found = self._object(object_name)
        custom = found.name.endswith("__c")
        return orjson.dumps(
            {
                "name": found.name,
                "label": found.label,
                "labelPlural": found.plural,
                "custom": custom,
                "createable": True,
                "updateable": True,
                "queryable": True,
                "fields": list(found.fields.values()),
            }
        )

    async def _create(self, request: Request, _: str) -> Response:
        _version(request)
        body = _json(await request.body())
        match = _FULL_NAME.match(str(body.get("FullName") or ""))
        if match is None:
            raise ApiError(
                400,
                _error(
                    "INVALID_FIELD",
                    "FullName must be Object.Field__c (letters, digits and underscores)",
                ),
            )
        found = self._object(match.group(1))
        api_name = match.group(2)
        if any(name.lower() == api_name.lower() for name in found.fields):
            message = f"duplicate value found: {api_name} duplicates value on {found.name}"
            raise ApiError(400, _error("DUPLICATE_DEVELOPER_NAME", message))
        found.fields[api_name] = _custom_field(api_name, _metadata(body))
        field_id = new_custom_field_id()
        found.custom_ids[field_id] = api_name
        answer = {"id": field_id, "success": True, "errors": [], "warnings": [], "infos": []}
        return Response(orjson.dumps(answer), status_code=201, media_type="application/json")

    async def _update(self, request: Request, _: str) -> Response:
        _version(request)
        owner = self.schemas.custom_field_owner(request.path_params["field_id"])
        if owner is None:
            raise ApiError(404, _error("NOT_FOUND", "The requested resource does not exist", 404))
        found, api_name = owner
        body = _json(await request.body())
        found.fields[api_name] = _custom_field(api_name, _metadata(body))
        return Response(status_code=204)

    async def _query(self, request: Request, _: str) -> bytes:
        version = _version(request)
        match = _FIELD_QUERY.match(request.query_params.get("q", ""))
        if match is None:
            raise ApiError(
                400,
                _error(
                    "MALFORMED_QUERY",
                    "the sandbox's Tooling API answers only SELECT Id FROM CustomField WHERE "
                    "TableEnumOrId = '…' AND DeveloperName = '…'",
                ),
            )
        found = self.schemas.salesforce_object(match.group(1))
        wanted = f"{match.group(2)}__c".lower()
        ids = [
            field_id
            for field_id, name in (found.custom_ids.items() if found else ())
            if name.lower() == wanted
        ]
        records = [
            {
                "attributes": {
                    "type": "CustomField",
                    "url": f"/services/data/{version}/tooling/sobjects/CustomField/{field_id}",
                },
                "Id": field_id,
            }
            for field_id in ids
        ]
        return orjson.dumps(
            {
                "size": len(records),
                "totalSize": len(records),
                "done": True,
                "entityTypeName": "CustomField",
                "records": records,
            }
        )


def _custom_field(api_name: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """The describe's field for a Tooling API CustomField Metadata (checked here)."""
    kind = str(metadata.get("type") or "")
    described = _DESCRIBED.get(kind)
    if described is None:
        raise ApiError(
            400, _error("INVALID_TYPE", f"Metadata.type {kind!r} is not a custom field type")
        )
    label = metadata.get("label")
    if not isinstance(label, str) or not label:
        raise ApiError(400, _error("REQUIRED_FIELD_MISSING", "Metadata.label is required"))
    if kind == "Text" and not 1 <= int(metadata.get("length") or 0) <= 255:
        raise ApiError(400, _error("INVALID_FIELD", "Text fields need a length of 1 to 255"))
    if kind == "Number" and not 1 <= int(metadata.get("precision") or 0) <= 18:
        raise ApiError(400, _error("INVALID_FIELD", "Number fields need a precision of 1 to 18"))
    values: tuple[str, ...] = ()
    if kind in ("Picklist", "MultiselectPicklist"):
        defined = ((metadata.get("valueSet") or {}).get("valueSetDefinition") or {}).get("value")
        if not defined:
            raise ApiError(400, _error("INVALID_FIELD", "picklists need valueSet values"))
        values = tuple(str(v.get("fullName") or "") for v in defined)
    reference_to: tuple[str, ...] = ()
    if kind == "Lookup":
        if not metadata.get("referenceTo"):
            raise ApiError(400, _error("INVALID_FIELD", "Lookup fields need referenceTo"))
        reference_to = (str(metadata["referenceTo"]),)
    return salesforce_field(
        api_name,
        label,
        described,
        required=bool(metadata.get("required")),
        custom=True,
        picklist=values,
        reference_to=reference_to,
        length=int(metadata.get("length") or 0),
        precision=int(metadata.get("precision") or 0),
        scale=int(metadata.get("scale") or 0),
        unique=bool(metadata.get("unique")),
    )


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    metadata = body.get("Metadata")
    if not isinstance(metadata, dict):
        raise ApiError(400, _error("REQUIRED_FIELD_MISSING", "Metadata is required"))
    return metadata


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, _error("JSON_PARSER_ERROR", "the body is not JSON")) from None
    if not isinstance(body, dict):
        raise ApiError(400, _error("JSON_PARSER_ERROR", "the body must be a JSON object"))
    return body


def _error(code: str, message: str, status: int = 400) -> Any:
    return provider_error(Provider.SALESFORCE, status, code, message)


def _version(request: Request) -> str:
    version = str(request.path_params["version"])
    if not _VERSION.match(version):
        raise ApiError(404, _error("NOT_FOUND", "The requested resource does not exist", 404))
    return version
