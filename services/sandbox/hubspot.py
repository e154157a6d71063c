"""HubSpot's record APIs and its own token revocation, as the sandbox answers them:

    /hubspot/oauth/v1/refresh-tokens/T       DELETE  HubSpot's documented revocation
    /hubspot/crm/v3/objects/{object}         GET     list: limit, after, properties;
                                                     archived=true lists only the
                                                     archived records (archivedAt)
    /hubspot/crm/v3/objects/{object}/{id}    GET     one record: properties, archived
    /hubspot/crm/v3/objects/{object}/search  POST    CRM search (hubspot_search.py)
    /hubspot/crm/v3/objects/{object}/batch/read  POST  records by id (live ones only)

Pages are slices of the object's sorted indexes, rendered with orjson. Mirrors the
connector in services/domain/connectors/hubspot.py. The writes to the same objects are
hubspot_writes.py's.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.sandbox.errors import ApiError, provider_error
from services.sandbox.faults import Endpoint, RequestInfo, apply_faults, oauth_error
from services.sandbox.hubspot_search import InvalidSearch, matching, parse_search
from services.sandbox.providers import Provider
from services.sandbox.record_api import RecordApi
from services.sandbox.records import Record, hubspot_time

MAX_LIMIT = 100  # of the list API (HubSpot's documented maximum)
# Search answers kept (each holds up to every record of an object).
MAX_SEARCHES = 64


class HubSpotApi:
    """HubSpot's routes over the record pipeline."""

    def __init__(self, records: RecordApi) -> None:
        self.records = records
        self.state = records.state
        # Recent search answers: a reader repeats one search with a growing `after`, so
        # each page is then a slice instead of a new search.
        self._searches: OrderedDict[tuple[Any, ...], Sequence[Record]] = OrderedDict()

    def routes(self) -> list[Route]:
        return [
            # HubSpot's own way to revoke (its documented API), beside the RFC 7009 one.
            Route(
                "/hubspot/oauth/v1/refresh-tokens/{token}",
                self.delete_refresh_token,
                methods=["DELETE"],
            ),
            Route("/hubspot/crm/v3/objects/{object_name}", self.list, methods=["GET"]),
            Route("/hubspot/crm/v3/objects/{object_name}/{record_id}", self.one, methods=["GET"]),
            Route("/hubspot/crm/v3/objects/{object_name}/search", self.search, methods=["POST"]),
            Route(
                "/hubspot/crm/v3/objects/{object_name}/batch/read",
                self.batch_read,
                methods=["POST"],
            ),
        ]

    async def delete_refresh_token(self, request: Request) -> Response:
        """DELETE /oauth/v1/refresh-tokens/{token}: revokes the grant, 204; unknown, 404."""
        info = RequestInfo(Endpoint.REVOKE, Provider.HUBSPOT)
        response = await apply_faults(self.state, info, oauth_error)
        if response is not None:
            return response
        token = self.state.tokens.by_refresh.get(request.path_params["token"])
        if token is None or token.provider is not Provider.HUBSPOT:
            return JSONResponse(
                provider_error(Provider.HUBSPOT, 404, "NOT_FOUND", "refresh token not found"),
                status_code=404,
            )
        self.state.tokens.revoke_grant(token.grant_id)
        return Response(status_code=204)

    async def list(self, request: Request) -> Response:
        object_name = request.path_params["object_name"]
        return await self.records.serve(request, Provider.HUBSPOT, object_name, self._page)

    async def one(self, request: Request) -> Response:
        object_name = request.path_params["object_name"]
        return await self.records.serve(request, Provider.HUBSPOT, object_name, self._one)

    async def search(self, request: Request) -> Response:
        object_name = request.path_params["object_name"]
        return await self.records.serve(request, Provider.HUBSPOT, object_name, self._search)

    async def batch_read(self, request: Request) -> Response:
        object_name = request.path_params["object_name"]
        return await self.records.serve(request, Provider.HUBSPOT, object_name, self._batch_read)

    async def _batch_read(self, request: Request, object_name: str) -> bytes:
        """HubSpot's batch read: the live records of the ids given (unknown ones are
        left out and listed as errors), in input order."""
        started = hubspot_time(datetime.now(UTC))
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            raise invalid("Invalid input JSON: the body is not JSON") from None
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(
            isinstance(item, dict) and item.get("id") is not None for item in inputs
        ):
            raise invalid("inputs must be a list of objects with an id")
        if not 1 <= len(inputs) <= MAX_LIMIT:
            raise invalid(f"inputs must hold 1 to {MAX_LIMIT} items, not {len(inputs)}")
        if body.get("idProperty"):
            raise invalid("the sandbox reads by record id only (no idProperty)")
        wanted = body.get("properties") or []
        if not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted):
            raise invalid("properties must be a list of property names")
        found = self.state.records.object(Provider.HUBSPOT, object_name)
        results, missing = [], []
        for item in inputs:
            record = found.get(str(item["id"]))
            if record is None:
                missing.append(str(item["id"]))
            else:
                results.append(hubspot_record(record, wanted))
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some records",
                    "context": {"ids": missing},
                }
            ]
        answer |= {"startedAt": started, "completedAt": hubspot_time(datetime.now(UTC))}
        return orjson.dumps(answer)

    async def _page(self, request: Request, object_name: str) -> bytes:
        params = request.query_params
        try:
            limit = int(params.get("limit", "10"))
            after = int(params["after"]) if params.get("after") else None
        except ValueError:
            raise invalid("limit and after must be integers") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise invalid(f"limit must be between 1 and {MAX_LIMIT}")
        wanted = [p for p in params.get("properties", "").split(",") if p]
        found = self.state.records.object(Provider.HUBSPOT, object_name)
        if params.get("archived", "false").lower() == "true":
            found = found.tombstones
        records, keys = found.by_id()
        start = 0 if after is None else bisect.bisect_right(keys, after)
        page = records[start : start + limit]
        body: dict[str, Any] = {"results": [hubspot_record(r, wanted) for r in page]}
        if start + limit < len(records):
            body["paging"] = {"next": {"after": page[-1].id}}
        return orjson.dumps(body)

    async def _one(self, request: Request, object_name: str) -> bytes:
        """GET one record by id: every property, or the system ones and those asked."""
        record_id = request.path_params["record_id"]
        found = self.state.records.object(Provider.HUBSPOT, object_name)
        if request.query_params.get("archived", "false").lower() == "true":
            found = found.tombstones
        record = found.get(record_id)
        if record is None:
            raise ApiError(
                404,
                provider_error(Provider.HUBSPOT, 404, "OBJECT_NOT_FOUND", "resource not found"),
            )
        wanted = [p for p in request.query_params.get("properties", "").split(",") if p]
        return orjson.dumps(hubspot_record(record, wanted))

    async def _search(self, request: Request, object_name: str) -> bytes:
        try:
            search = parse_search(await request.body())
        except InvalidSearch as error:
            raise invalid(str(error)) from None
        found = self.state.records.object(Provider.HUBSPOT, object_name)
        key = (found.generation, repr(search.groups), search.sort_by_modified)
        matches = self._searches.get(key)
        if matches is None:
            matches = self._searches[key] = matching(found, search, descending=False)
            while len(self._searches) > MAX_SEARCHES:
                self._searches.popitem(last=False)
        if search.descending:
            matches = matches[::-1]
        page = matches[search.after : search.after + search.limit]
        body: dict[str, Any] = {
            "total": len(matches),
            "results": [hubspot_record(r, search.properties) for r in page],
        }
        if search.after + search.limit < len(matches):
            # Like HubSpot, the next offset is offered even past the 10,000 cap; asking
            # for it is what fails.
            body["paging"] = {"next": {"after": str(search.after + search.limit)}}
        return orjson.dumps(body)


def invalid(message: str) -> ApiError:
    """HubSpot's refusal of a bad request: 400 VALIDATION_ERROR."""
    return ApiError(400, provider_error(Provider.HUBSPOT, 400, "VALIDATION_ERROR", message))


def hubspot_record(record: Record, wanted: list[str]) -> dict[str, Any]:
    """A record as HubSpot answers it: every property, or the system ones and those asked."""
    system, whole = record.hubspot_parts()
    if not wanted:
        return whole
    everything = whole["properties"]
    properties = system.copy()
    for name in wanted:
        properties[name] = everything.get(name)
    return {**whole, "properties": properties}
