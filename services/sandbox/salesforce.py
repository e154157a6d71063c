"""Salesforce's query API as the sandbox answers it:

    /salesforce/services/data/vNN.0/query?q=SOQL     query (any API version; soql.py)
    /salesforce/services/data/vNN.0/query/{locator}  next page (nextRecordsUrl)
    /salesforce/services/data/vNN.0/queryAll?q=SOQL  the same, deleted records included
                                                     (IsDeleted true; a deletion moved
                                                     their SystemModstamp on)
    /salesforce/services/data/vNN.0/queryAll/{locator}  its next page

A query opens a cursor (its records, in answer order, and its SELECT list); pages are
slices of it, their size from Sforce-Query-Options: batchSize. Mirrors the connector in
services/domain/connectors/salesforce.py. The writes are salesforce_writes.py's; a cursor
keeps the records it found, so a page after a write shows them as they were then.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.sandbox.errors import ApiError, provider_error
from services.sandbox.providers import Provider
from services.sandbox.record_api import RecordApi
from services.sandbox.records import ObjectRecords, Record, micros, window
from services.sandbox.soql import MalformedQuery, Soql, object_of, parse_soql, satisfies

BATCH_SIZE = 2000
# Open query cursors kept (oldest dropped first): enough for many concurrent reads; a
# dropped one answers INVALID_QUERY_LOCATOR, as an expired one does.
MAX_CURSORS = 1000
_VERSION = re.compile(r"^v\d{2}\.0$")


@dataclass
class _Cursor:
    """An open query: its records (rendered page by page) and SELECT list."""

    records: list[Record]
    object_name: str
    fields: list[str]
    # A queryAll cursor (its next pages are queryAll/{locator}).
    everything: bool = False


class SalesforceApi:
    """Salesforce's routes over the record pipeline."""

    def __init__(self, records: RecordApi) -> None:
        self.records = records
        self.state = records.state
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()

    def routes(self) -> list[Route]:
        return [
            Route("/salesforce/services/data/{version}/query", self.query, methods=["GET"]),
            Route(
                "/salesforce/services/data/{version}/query/{locator}",
                self.more,
                methods=["GET"],
            ),
            Route("/salesforce/services/data/{version}/queryAll", self.query_all, methods=["GET"]),
            Route(
                "/salesforce/services/data/{version}/queryAll/{locator}",
                self.more,
                methods=["GET"],
            ),
        ]

    async def query(self, request: Request) -> Response:
        # The object named for faults scoped to one object.
        object_name = object_of(request.query_params.get("q", ""))
        return await self.records.serve(request, Provider.SALESFORCE, object_name, self._query)

    async def query_all(self, request: Request) -> Response:
        object_name = object_of(request.query_params.get("q", ""))
        return await self.records.serve(request, Provider.SALESFORCE, object_name, self._query_all)

    async def more(self, request: Request) -> Response:
        cursor = self._cursors.get(request.path_params["locator"].rpartition("-")[0])
        object_name = cursor.object_name if cursor is not None else ""
        return await self.records.serve(request, Provider.SALESFORCE, object_name, self._more)

    async def _query_all(self, request: Request, _: str) -> bytes:
        return await self._query(request, _, everything=True)

    async def _query(self, request: Request, _: str, *, everything: bool = False) -> bytes:
        version = _version(request)
        try:
            query = parse_soql(request.query_params.get("q", ""))
        except MalformedQuery as error:
            raise ApiError(400, _error("MALFORMED_QUERY", str(error))) from None
        found = self.state.records.object(Provider.SALESFORCE, query.object_name)
        ordered_by_time, keys = found.by_modified()
        start, stop = window(keys, query.lower, True, query.upper, True)
        records = ordered_by_time[start:stop]
        if everything:
            buried, buried_keys = found.tombstones.by_modified()
            start, stop = window(buried_keys, query.lower, True, query.upper, True)
            if start < stop:
                records = sorted(
                    [*records, *buried[start:stop]],
                    key=lambda r: (micros(r.modified), r.id),
                )
        if query.equals:
            # A search: the names as the rows spell them (SOQL's are case-insensitive).
            names = _fields(query, [name for name, _ in query.equals], self._columns(query, found))
            equals = list(zip(names, (value for _, value in query.equals), strict=True))
            records = [r for r in records if satisfies(r.salesforce_values(), equals)]
        if query.order_by_id:
            records.sort(key=lambda r: r.id)
        if query.descending:
            records.reverse()
        if query.limit is not None:
            records = records[: query.limit]
        fields = _fields(query, query.fields, self._columns(query, found))
        locator = "01g" + secrets.token_hex(8).upper()
        self._cursors[locator] = _Cursor(records, query.object_name, fields, everything)
        while len(self._cursors) > MAX_CURSORS:
            self._cursors.popitem(last=False)
        return self._page(version, locator, 0, _batch_size(request))

    def _columns(self, query: Soql, found: ObjectRecords) -> list[str] | None:
        """The object's field names: its records' and its schema's (a custom field made
        through the Tooling API is a column whose value is null until set); None when the
        sandbox knows neither (every name is then accepted)."""
        columns = list(found.in_order[0].salesforce_values()) if found.in_order else []
        # Every sObject has it (true only in the recycle bin, which queryAll reads).
        columns.append("IsDeleted")
        described = self.state.schemas.salesforce_object(query.object_name)
        if described is not None:
            columns += described.fields
        return columns or None

    async def _more(self, request: Request, _: str) -> bytes:
        version = _version(request)
        locator, _sep, offset = request.path_params["locator"].rpartition("-")
        if locator not in self._cursors or not offset.isdigit():
            raise ApiError(400, _error("INVALID_QUERY_LOCATOR", "invalid query locator"))
        return self._page(version, locator, int(offset), _batch_size(request))

    def _page(self, version: str, locator: str, offset: int, batch: int) -> bytes:
        cursor = self._cursors[locator]
        total = len(cursor.records)
        page = cursor.records[offset : offset + batch]
        done = offset + batch >= total
        body: dict[str, Any] = {"totalSize": total, "done": done}
        if not done:
            path = "queryAll" if cursor.everything else "query"
            body["nextRecordsUrl"] = f"/services/data/{version}/{path}/{locator}-{offset + batch}"
        body["records"] = [_row(version, cursor.object_name, r, cursor.fields) for r in page]
        return orjson.dumps(body)


def _error(code: str, message: str, status: int = 400) -> Any:
    return provider_error(Provider.SALESFORCE, status, code, message)


def _version(request: Request) -> str:
    version = str(request.path_params["version"])
    if not _VERSION.match(version):
        raise ApiError(404, _error("NOT_FOUND", "The requested resource does not exist", 404))
    return version


def _fields(query: Soql, names: list[str], columns: list[str] | None) -> list[str]:
    """Field names of the query (its SELECT list, its WHERE) in the object's own spelling
    (field names are case-insensitive)."""
    if columns is None:
        return names
    by_lower = {name.lower(): name for name in columns}
    fields = []
    for name in names:
        canonical = by_lower.get(name.lower())
        if canonical is None:
            message = f"No such column {name!r} on entity {query.object_name!r}"
            raise ApiError(400, _error("INVALID_FIELD", message))
        fields.append(canonical)
    return fields


def _row(version: str, object_name: str, record: Record, fields: list[str]) -> dict[str, Any]:
    values = record.salesforce_values()
    row: dict[str, Any] = {
        "attributes": {
            "type": object_name,
            "url": f"/services/data/{version}/sobjects/{object_name}/{record.id}",
        }
    }
    for name in fields:
        row[name] = values.get(name)
    return row


def _batch_size(request: Request) -> int:
    """Sforce-Query-Options: batchSize=N (the sandbox accepts any N from 1 to 2000)."""
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    if match is None:
        return BATCH_SIZE
    return max(1, min(BATCH_SIZE, int(match.group(1))))
