"""Salesforce's subscribe side as the sandbox answers it: the org's user info, change data
capture's channel members and event relays (Tooling API sObjects), and one record by id:

    /salesforce/services/oauth2/userinfo                          GET  organization_id...
    /salesforce/services/data/vNN.0/tooling/sobjects/{kind}       POST 201
    /salesforce/services/data/vNN.0/tooling/sobjects/{kind}/{id}  GET; DELETE 204
        {kind}: PlatformEventChannelMember or EventRelayConfig
    /salesforce/services/data/vNN.0/tooling/query?q=SELECT ... FROM PlatformEventChannelMember
                                                   (or EventRelayConfig; other objects: the
                                                   describe module's Tooling query)
    /salesforce/services/data/vNN.0/sobjects/{sObject}/{id}[?fields=a,b]             GET

A create answers 201 `{"id", "success": true, "errors": []}`; refusals are Salesforce's
`[{"message", "errorCode", "fields"}]`. The subscription routes take the bearer token of
a connection (the org: the sandbox has one) and go through the SUBSCRIPTIONS fault
endpoint; userinfo and the record GET through RECORDS. A deleted record's GET answers
404 ENTITY_IS_DELETED. The relays registered here are where webhooks.py sends events.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.sandbox.errors import ApiError
from services.sandbox.faults import Endpoint
from services.sandbox.providers import SALESFORCE_ORG_ID, SALESFORCE_USER_ID, Provider
from services.sandbox.record_api import RecordApi
from services.sandbox.soql import MalformedQuery, object_of, parse_soql, satisfies
from services.sandbox.webhooks import (
    CHANGE_EVENTS,
    ChannelMember,
    EventRelay,
    WebhookBook,
    now_text,
)

_JSON = "application/json"
_VERSION = re.compile(r"^v\d{2}\.\d$")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_DEVELOPER_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)$")
MEMBER, RELAY = "PlatformEventChannelMember", "EventRelayConfig"
_PREFIXES = {MEMBER: "0v8", RELAY: "7k2"}
_STATES = ("RUN", "STOP", "PAUSE")


def _error(code: str, message: str, fields: list[str] | None = None, status: int = 400) -> ApiError:
    return ApiError(status, [{"message": message, "errorCode": code, "fields": fields or []}])


def _not_found() -> ApiError:
    return _error("NOT_FOUND", "The requested resource does not exist", status=404)


def _version(request: Request) -> str:
    version = str(request.path_params["version"])
    if not _VERSION.match(version):
        raise _not_found()
    return version


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _error("JSON_PARSER_ERROR", "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _error("JSON_PARSER_ERROR", "The request body must be a JSON object")
    return body


def _answer(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON)


def member_row(version: str, member: ChannelMember) -> dict[str, Any]:
    return {
        "attributes": {
            "type": MEMBER,
            "url": f"/services/data/{version}/tooling/sobjects/{MEMBER}/{member.id}",
        },
        "Id": member.id,
        "DeveloperName": member.full_name,
        "FullName": member.full_name,
        "EventChannel": member.event_channel,
        "SelectedEntity": member.selected_entity,
        "CreatedDate": member.created,
        "Metadata": {
            "eventChannel": member.event_channel,
            "selectedEntity": member.selected_entity,
            "enrichedFields": [],
            "filterExpression": None,
        },
    }


def relay_row(version: str, relay: EventRelay) -> dict[str, Any]:
    return {
        "attributes": {
            "type": RELAY,
            "url": f"/services/data/{version}/tooling/sobjects/{RELAY}/{relay.id}",
        },
        "Id": relay.id,
        "DeveloperName": relay.full_name,
        "FullName": relay.full_name,
        "EventChannel": relay.event_channel,
        "DestinationResourceName": relay.destination,
        "State": relay.state,
        "RelayOption": relay.relay_option,
        "CreatedDate": relay.created,
        "Metadata": {
            "eventChannel": relay.event_channel,
            "destinationResourceName": relay.destination,
            "state": relay.state,
            "relayOption": relay.relay_option,
        },
    }


class SalesforceEvents:
    """Salesforce's userinfo, subscription Tooling sObjects and record GET."""

    def __init__(
        self, records: RecordApi, tooling_query: Callable[[Request], Awaitable[Response]]
    ) -> None:
        self.records = records
        self.state = records.state
        # The describe module's Tooling query, for the objects this one does not keep.
        self.tooling_query = tooling_query

    @property
    def book(self) -> WebhookBook:
        return self.state.webhooks

    def routes(self) -> list[Route]:
        """Before the describe module's (they share the Tooling query)."""
        tooling = "/salesforce/services/data/{version}/tooling"
        return [
            Route("/salesforce/services/oauth2/userinfo", self.userinfo, methods=["GET", "POST"]),
            Route(tooling + "/query", self.query, methods=["GET"]),
            *(
                route
                for kind in (MEMBER, RELAY)
                for route in (
                    Route(f"{tooling}/sobjects/{kind}", self.create, methods=["POST"]),
                    Route(
                        f"{tooling}/sobjects/{kind}/{{item_id}}",
                        self.item,
                        methods=["GET", "DELETE"],
                    ),
                )
            ),
        ]

    def late_routes(self) -> list[Route]:
        """After the describe module's (`sobjects/{sObject}/describe` is not an id)."""
        sobject = "/salesforce/services/data/{version}/sobjects/{object_name}/{record_id}"
        return [Route(sobject, self.record, methods=["GET"])]

    # --- userinfo -------------------------------------------------------------------

    async def userinfo(self, request: Request) -> Response:
        return await self.records.serve(request, Provider.SALESFORCE, "", self._userinfo)

    async def _userinfo(self, request: Request, _: str) -> bytes:
        _scheme, _sep, value = request.headers.get("authorization", "").partition(" ")
        token = self.state.tokens.by_access[value.strip()]
        username = token.username or "integration"
        base = str(request.base_url).rstrip("/") + "/salesforce"
        return orjson.dumps(
            {
                "sub": f"https://login.salesforce.com/id/{SALESFORCE_ORG_ID}/{SALESFORCE_USER_ID}",
                "user_id": SALESFORCE_USER_ID,
                "organization_id": SALESFORCE_ORG_ID,
                "preferred_username": f"{username}@sandbox.salesforce.test",
                "nickname": username,
                "name": "Sandbox User",
                "email": f"{username}@sandbox.salesforce.test",
                "email_verified": True,
                "zoneinfo": "Etc/UTC",
                "locale": "en_US",
                "language": "en_US",
                "user_type": "STANDARD",
                "active": True,
                "urls": {
                    "rest": f"{base}/services/data/v{{version}}/",
                    "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
                    "query": f"{base}/services/data/v{{version}}/query/",
                    "tooling_rest": f"{base}/services/data/v{{version}}/tooling/",
                },
            }
        )

    # --- channel members and relays -------------------------------------------------

    async def _serve_subscriptions(self, request: Request, render: Any) -> Response:
        return await self.records.serve(
            request, Provider.SALESFORCE, "", render, endpoint=Endpoint.SUBSCRIPTIONS
        )

    async def query(self, request: Request) -> Response:
        kind = object_of(request.query_params.get("q", ""))
        if kind.lower() not in (MEMBER.lower(), RELAY.lower()):
            return await self.tooling_query(request)
        return await self._serve_subscriptions(request, self._query)

    async def _query(self, request: Request, _: str) -> bytes:
        version = _version(request)
        try:
            query = parse_soql(request.query_params.get("q", ""))
        except MalformedQuery as error:
            raise _error("MALFORMED_QUERY", str(error)) from None
        if query.object_name.lower() == MEMBER.lower():
            rows = [member_row(version, m) for m in self.book.members.values()]
            kind = MEMBER
        else:
            rows = [relay_row(version, r) for r in self.book.relays.values()]
            kind = RELAY
        columns = {
            name.lower(): name
            for name in (member_row if kind == MEMBER else relay_row)(version, _EXAMPLES[kind])
        }
        columns.pop("attributes")

        def canonical(name: str) -> str:
            found = columns.get(name.lower())
            if found is None:
                raise _error("INVALID_FIELD", f"No such column '{name}' on entity '{kind}'", [name])
            return found

        fields = [canonical(name) for name in query.fields]
        equals = [(canonical(name), value) for name, value in query.equals]
        rows = [row for row in rows if satisfies(row, equals)]
        if query.limit is not None:
            rows = rows[: query.limit]
        records = [{"attributes": row["attributes"]} | {f: row[f] for f in fields} for row in rows]
        return orjson.dumps(
            {
                "size": len(records),
                "totalSize": len(records),
                "done": True,
                "queryLocator": None,
                "entityTypeName": kind,
                "records": records,
            }
        )

    async def create(self, request: Request) -> Response:
        return await self._serve_subscriptions(request, self._create)

    async def _create(self, request: Request, _: str) -> Response:
        _version(request)
        kind = self._kind(request)
        body = _body(await request.body())
        full_name = body.get("FullName")
        if not isinstance(full_name, str) or not _DEVELOPER_NAME.match(full_name):
            raise _error(
                "INVALID_FIELD",
                "FullName must begin with a letter and use only letters, digits and single "
                "underscores, not ending with one",
                ["FullName"],
            )
        metadata = body.get("Metadata")
        if not isinstance(metadata, dict):
            raise _error("REQUIRED_FIELD_MISSING", "Metadata is required", ["Metadata"])
        channel = metadata.get("eventChannel")
        if channel != CHANGE_EVENTS:
            raise _error(
                "FIELD_INTEGRITY_EXCEPTION",
                f"Metadata.eventChannel must be {CHANGE_EVENTS} (the sandbox's only channel)",
                ["eventChannel"],
            )
        book = self.book
        existing = book.members if kind == MEMBER else book.relays
        if any(item.full_name == full_name for item in existing.values()):
            raise _error(
                "DUPLICATE_DEVELOPER_NAME",
                f"There's already a {kind} named {full_name}",
                ["FullName"],
            )
        now = now_text()
        item_id = book.new_tooling_id(_PREFIXES[kind])
        if kind == MEMBER:
            book.members[item_id] = self._member(item_id, full_name, metadata, now)
        else:
            book.relays[item_id] = _relay(item_id, full_name, metadata, now)
        book.changed()
        return _answer(
            {"id": item_id, "success": True, "errors": [], "warnings": [], "infos": []}, 201
        )

    def _member(
        self, item_id: str, full_name: str, metadata: dict[str, Any], now: str
    ) -> ChannelMember:
        entity = metadata.get("selectedEntity")
        if not isinstance(entity, str) or not re.match(r"^\w+ChangeEvent$", entity):
            raise _error(
                "FIELD_INTEGRITY_EXCEPTION",
                "Metadata.selectedEntity must name a change event, e.g. AccountChangeEvent",
                ["selectedEntity"],
            )
        for member in self.book.members.values():
            if member.selected_entity == entity and member.event_channel == CHANGE_EVENTS:
                raise _error(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: SelectedEntity duplicates value on record with "
                    f"id: {member.id}",
                    ["selectedEntity"],
                )
        return ChannelMember(item_id, full_name, CHANGE_EVENTS, entity, now)

    async def item(self, request: Request) -> Response:
        return await self._serve_subscriptions(request, self._item)

    async def _item(self, request: Request, _: str) -> Response:
        version = _version(request)
        kind = self._kind(request)
        book = self.book
        kept: dict[str, Any] = book.members if kind == MEMBER else book.relays
        found = kept.get(request.path_params["item_id"])
        if found is None:
            raise _not_found()
        if request.method == "DELETE":
            del kept[found.id]
            book.changed()
            return Response(status_code=204)
        return _answer(member_row(version, found) if kind == MEMBER else relay_row(version, found))

    @staticmethod
    def _kind(request: Request) -> str:
        return MEMBER if f"/{MEMBER}" in request.url.path else RELAY

    # --- one record -------------------------------------------------------------------

    async def record(self, request: Request) -> Response:
        object_name = request.path_params["object_name"]
        return await self.records.serve(request, Provider.SALESFORCE, object_name, self._record)

    async def _record(self, request: Request, object_name: str) -> bytes:
        version = _version(request)
        record_id = str(request.path_params["record_id"])
        if not _ID.match(record_id):
            raise _error("MALFORMED_ID", f"malformed id {record_id}", ["Id"])
        described = self.state.schemas.salesforce_object(object_name)
        if described is not None:
            object_name = described.name
        found = self.state.records.object(Provider.SALESFORCE, object_name)
        record = found.get(record_id)
        if record is None:
            if found.tombstones.get(record_id) is not None:
                raise _error("ENTITY_IS_DELETED", "entity is deleted", status=404)
            raise _not_found()
        values = record.salesforce_values()
        wanted = [name.strip() for name in request.query_params.get("fields", "").split(",")]
        wanted = [name for name in wanted if name]
        if wanted:
            by_lower = {name.lower(): name for name in values}
            if described is not None:
                by_lower |= {name.lower(): name for name in described.fields}
            unknown = [name for name in wanted if name.lower() not in by_lower]
            if unknown:
                raise _error(
                    "INVALID_FIELD",
                    f"No such column '{unknown[0]}' on entity '{object_name}'",
                    unknown,
                )
            values = {by_lower[n.lower()]: values.get(by_lower[n.lower()]) for n in wanted}
        row: dict[str, Any] = {
            "attributes": {
                "type": object_name,
                "url": f"/services/data/{version}/sobjects/{object_name}/{record.id}",
            }
        }
        return orjson.dumps(row | values)


def _relay(item_id: str, full_name: str, metadata: dict[str, Any], now: str) -> EventRelay:
    destination = metadata.get("destinationResourceName")
    parts = urlsplit(destination) if isinstance(destination, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        # Real Salesforce names a named credential (callout:...) that leads to AWS; the
        # sandbox sends to the URL itself.
        raise _error(
            "FIELD_INTEGRITY_EXCEPTION",
            "Metadata.destinationResourceName must be an absolute http(s) URL in the sandbox",
            ["destinationResourceName"],
        )
    state = metadata.get("state", "STOP")
    if state not in _STATES:
        raise _error("INVALID_INPUT", f"Metadata.state must be one of {_STATES}", ["state"])
    option = metadata.get("relayOption") or ""
    headers: dict[str, str] = {}
    if option:
        try:
            parsed = orjson.loads(option) if isinstance(option, str) else None
        except orjson.JSONDecodeError:
            parsed = None
        given = parsed.get("headers", {}) if isinstance(parsed, dict) else None
        if not isinstance(given, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in given.items()
        ):
            raise _error(
                "INVALID_INPUT",
                'Metadata.relayOption must be a JSON string like {"headers": {"Name": "value"}}',
                ["relayOption"],
            )
        headers = dict(given)
    return EventRelay(
        item_id, full_name, CHANGE_EVENTS, str(destination), str(state), str(option), headers, now
    )


# One of each, for the names of their columns.
_EXAMPLES: dict[str, Any] = {
    MEMBER: ChannelMember("", "", "", "", ""),
    RELAY: EventRelay("", "", "", "", "", "", {}, ""),
}
