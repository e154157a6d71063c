"""HubSpot's CRM properties API as the sandbox answers it:

    /hubspot/crm/v3/properties/{objectType}                 GET   every property
    /hubspot/crm/v3/properties/{objectType}                 POST  create one (201)
    /hubspot/crm/v3/properties/{objectType}/{propertyName}  PATCH update one

Through the record pipeline (record_api.py), so the same token and fault checks apply.
An object HubSpot does not know answers 404 OBJECT_NOT_FOUND; creating a property whose
name exists answers 409 CONFLICT, as HubSpot does. Mirrors the connector in
services/domain/connectors/hubspot_metadata.py.
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
from services.sandbox.schemas import SchemaStore, hubspot_property

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_TYPES = {
    "string": {"text", "textarea", "phonenumber", "html", "file"},
    "number": {"number"},
    "date": {"date"},
    "datetime": {"date"},
    "bool": {"booleancheckbox"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "phone_number": {"phonenumber"},
}
_CHANGEABLE = ("label", "type", "fieldType", "description", "options", "hasUniqueValue")


class HubSpotProperties:
    """HubSpot's property routes over the record pipeline and the schema store."""

    def __init__(self, records: RecordApi, schemas: SchemaStore) -> None:
        self.records = records
        self.schemas = schemas

    def routes(self) -> list[Route]:
        path = "/hubspot/crm/v3/properties/{object_name}"
        return [
            Route(path, self.list, methods=["GET"]),
            Route(path, self.create, methods=["POST"]),
            Route(path + "/{property_name}", self.update, methods=["PATCH"]),
        ]

    async def list(self, request: Request) -> Response:
        return await self._serve(request, self._list)

    async def create(self, request: Request) -> Response:
        return await self._serve(request, self._create)

    async def update(self, request: Request) -> Response:
        return await self._serve(request, self._update)

    async def _serve(self, request: Request, render: Any) -> Response:
        object_name = request.path_params["object_name"]
        return await self.records.serve(request, Provider.HUBSPOT, object_name, render)

    def _object(self, object_name: str) -> dict[str, dict[str, Any]]:
        found = self.schemas.hubspot_object(object_name)
        if found is None:
            message = f"Unable to infer object type from: {object_name}"
            raise ApiError(404, provider_error(Provider.HUBSPOT, 404, "OBJECT_NOT_FOUND", message))
        return found

    async def _list(self, request: Request, object_name: str) -> bytes:
        properties = self._object(object_name)
        return orjson.dumps({"results": list(properties.values())})

    async def _create(self, request: Request, object_name: str) -> Response:
        properties = self._object(object_name)
        body = _json(await request.body())
        name, label = body.get("name"), body.get("label")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _invalid("name must be lower-case letters, digits and underscores")
        if not isinstance(label, str) or not label:
            raise _invalid("label is required")
        if not body.get("groupName"):
            raise _invalid("groupName is required")
        kind, field_type = str(body.get("type", "")), str(body.get("fieldType", ""))
        _check_type(kind, field_type, body.get("options"))
        if name in properties:
            message = f"A property named '{name}' already exists."
            raise ApiError(409, provider_error(Provider.HUBSPOT, 409, "CONFLICT", message))
        created = hubspot_property(
            name,
            label,
            kind,
            field_type,
            group=str(body["groupName"]),
            options=list(body.get("options") or []),
            custom=True,
            description=str(body.get("description") or ""),
            unique=bool(body.get("hasUniqueValue")),
        )
        properties[name] = created
        return Response(orjson.dumps(created), status_code=201, media_type="application/json")

    async def _update(self, request: Request, object_name: str) -> bytes:
        properties = self._object(object_name)
        name = request.path_params["property_name"]
        current = properties.get(name)
        if current is None:
            message = f"Property {name} does not exist"
            raise ApiError(404, provider_error(Provider.HUBSPOT, 404, "OBJECT_NOT_FOUND", message))
        if current["hubspotDefined"]:
            raise _invalid(f"{name} is a HubSpot-defined property and cannot be changed")
        body = _json(await request.body())
        changed = {**current, **{k: body[k] for k in _CHANGEABLE if k in body}}
        _check_type(str(changed["type"]), str(changed["fieldType"]), changed.get("options"))
        properties[name] = changed
        return orjson.dumps(changed)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _invalid("the body is not JSON") from None
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    return body


def _check_type(kind: str, field_type: str, options: Any) -> None:
    allowed = _TYPES.get(kind)
    if allowed is None:
        raise _invalid(f"type {kind!r} is not one of {', '.join(sorted(_TYPES))}")
    if field_type not in allowed:
        raise _invalid(f"fieldType {field_type!r} is not valid for type {kind!r}")
    if kind == "enumeration" and not options:
        raise _invalid("an enumeration property needs options")


def _invalid(message: str) -> ApiError:
    return ApiError(400, provider_error(Provider.HUBSPOT, 400, "VALIDATION_ERROR", message))
