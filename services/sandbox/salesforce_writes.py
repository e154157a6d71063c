"""Salesforce's record writes, as the sandbox answers them:

    /salesforce/services/data/vNN.N/sobjects/{sObject}[/]     POST    create, 201 {id, success}
    /salesforce/services/data/vNN.N/sobjects/{sObject}/{id}   PATCH   update, 204
    /salesforce/services/data/vNN.N/sobjects/{sObject}/{id}   DELETE  delete, 204
    /salesforce/services/data/vNN.N/composite/sobjects        POST    create up to 200
    /salesforce/services/data/vNN.N/composite/sobjects        PATCH   update up to 200
    /salesforce/services/data/vNN.N/composite/sobjects?ids=   DELETE  delete up to 200

Through the record pipeline (record_api.py) under the WRITES fault endpoint. Every record
of a request is checked first (against the store and the records before it in the
request) and only then written, so allOrNone is what it is in Salesforce: one failure and
nothing is written, the others answering ALL_OR_NONE_OPERATION_ROLLED_BACK. A collection
answers 200 with one result per record in request order; a single-record refusal is 400
(404 for an unknown id) with Salesforce's error list. The refusals: a field the sObject's
describe (schemas.py) lacks (INVALID_FIELD) or that is read-only, a required field
missing, an unknown (NOT_FOUND) or malformed (MALFORMED_ID) id, and an Account whose Name
an Account holds when Sforce-Duplicate-Rule-Header says allowSave=false
(DUPLICATES_DETECTED). An sObject unknown to the org takes any field; one with records is
described from them (schemas.py). Values keep their JSON types, as Salesforce's do; an empty string
is stored as null, as Salesforce stores it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.sandbox.errors import ApiError
from services.sandbox.faults import Endpoint
from services.sandbox.providers import Provider
from services.sandbox.record_api import RecordApi, Render
from services.sandbox.records import Record, changed_fields, to_millis
from services.sandbox.schemas import SalesforceObject
from services.sandbox.state import SandboxState
from services.sandbox.webhooks import Change

MAX_RECORDS = 200
_JSON = "application/json"
_VERSION = re.compile(r"^v\d{2}\.\d$")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_ALLOW_SAVE = re.compile(r"allowSave\s*=\s*(true|false)", re.IGNORECASE)
_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request "
    "was using AllOrNone header",
    "fields": [],
}


class Failure(Exception):
    """One record refused: Salesforce's status code, message and fields (and the HTTP
    status a single-record call answers with)."""

    def __init__(
        self,
        code: str,
        message: str,
        fields: list[str] | None = None,
        *,
        status: int = 400,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.fields, self.status = code, message, fields or [], status
        self.extra = extra or {}

    def item(self) -> dict[str, Any]:
        """As a collection's result lists it."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def api_error(self) -> ApiError:
        """As a single-record call answers it."""
        body = [{"message": self.message, "errorCode": self.code, "fields": self.fields}]
        body[0] |= self.extra
        return ApiError(self.status, body)


def _not_found() -> Failure:
    return Failure("NOT_FOUND", "The requested resource does not exist", status=404)


def _deleted() -> Failure:
    """A record in the recycle bin: Salesforce names it so rather than not finding it."""
    return Failure("ENTITY_IS_DELETED", "entity is deleted", status=404)


@dataclass
class _Outcome:
    """One record's result: the id to show (none for a create that failed), or why it
    failed."""

    record_id: str | None
    failure: Failure | None = None
    # A create: its id is only shown when it was written.
    created: bool = False

    def result(self, rolled_back: bool) -> dict[str, Any]:
        shown = self.record_id is not None and not (self.created and rolled_back)
        answer: dict[str, Any] = {"id": self.record_id} if shown else {}
        if self.failure is not None:
            return answer | {"success": False, "errors": [self.failure.item()]}
        if rolled_back:
            return answer | {"success": False, "errors": [_ROLLED_BACK]}
        return answer | {"success": True, "errors": []}


@dataclass
class _Write:
    """One request's writes, checked record by record, written by commit()."""

    state: SandboxState
    block_duplicates: bool
    now: datetime = field(default_factory=lambda: to_millis(datetime.now(UTC)))
    created: dict[str, list[Record]] = field(default_factory=dict)
    updated: dict[str, list[tuple[Record, dict[str, Any]]]] = field(default_factory=dict)
    deleted: dict[str, set[str]] = field(default_factory=dict)
    # Ids this request already names: Salesforce refuses one id twice in a list.
    seen: set[str] = field(default_factory=set)
    # Account names (lower-cased) -> id, for the duplicate rule; built when first needed.
    names: dict[str, str] | None = None

    def create(self, object_name: str, given: dict[str, Any]) -> str:
        described, object_name = self._object(object_name)
        if any(name.lower() == "id" for name in given):
            raise Failure("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        values = _values(object_name, described, given, creating=True)
        _require([name for name in _required(described) if values.get(name) is None])
        self._check_duplicate(object_name, values)
        pending = {record.id for record in self.created.get(object_name, [])}
        record_id = self.state.records.new_id(Provider.SALESFORCE, object_name, pending)
        fields = {name: value for name, value in values.items() if value is not None}
        self.created.setdefault(object_name, []).append(
            Record(record_id, fields, self.now, self.now)
        )
        if self.names is not None and object_name == "Account" and fields.get("Name"):
            self.names[_name_key(fields["Name"])] = record_id
        return record_id

    def update(self, object_name: str, record_id: Any, given: dict[str, Any]) -> str:
        described, object_name = self._object(object_name)
        record_id = self._id(record_id)
        found = self.state.records.object(Provider.SALESFORCE, object_name)
        record = found.get(record_id)
        if record is None:
            raise _deleted() if found.tombstones.get(record_id) is not None else _not_found()
        values = _values(object_name, described, given, creating=False)
        _require([n for n in _required(described) if n in values and values[n] is None])
        self.updated.setdefault(object_name, []).append((record, values))
        return record_id

    def delete(self, record_id: Any, object_name: str | None = None) -> str:
        """Delete by id, from the object named, or whichever object holds it."""
        record_id = self._id(record_id)
        if object_name is None:
            located = self.state.records.locate(Provider.SALESFORCE, record_id)
            object_name = located[0] if located is not None else ""
        else:
            object_name = self._object(object_name)[1]
        records = self.state.records.object(Provider.SALESFORCE, object_name)
        if records.get(record_id) is None:
            raise _deleted() if records.tombstones.get(record_id) is not None else _not_found()
        self.deleted.setdefault(object_name, set()).add(record_id)
        return record_id

    def commit(self) -> int:
        """Write what was checked, raising its change events; the number of records
        written."""
        records = self.state.records
        webhooks = self.state.webhooks
        for object_name, new in self.created.items():
            records.writable(Provider.SALESFORCE, object_name).add(new)
            webhooks.raise_events(Provider.SALESFORCE, object_name, Change.CREATE, new)
        for object_name, updates in self.updated.items():
            changes: dict[str, list[str]] = {}
            for record, values in updates:
                before = record.fields
                record.revise(Provider.SALESFORCE, {**record.fields, **values}, self.now)
                changes[record.id] = changed_fields(before, record.fields)
            records.object(Provider.SALESFORCE, object_name).changed(same_ids=True)
            webhooks.raise_events(
                Provider.SALESFORCE,
                object_name,
                Change.UPDATE,
                [record for record, _ in updates],
                changes,
            )
        for object_name, ids in self.deleted.items():
            # Into the recycle bin: queryAll still finds them (IsDeleted true).
            buried = records.object(Provider.SALESFORCE, object_name).bury(ids, self.now)
            webhooks.raise_events(Provider.SALESFORCE, object_name, Change.DELETE, buried)
        created = sum(len(each) for each in self.created.values())
        updated = sum(len(each) for each in self.updated.values())
        return created + updated + sum(len(each) for each in self.deleted.values())

    def _object(self, object_name: str) -> tuple[SalesforceObject | None, str]:
        """The sObject's describe, if the org has one, and its name as the org spells it
        (names are case-insensitive; the records are kept under the org's spelling)."""
        described = self.state.schemas.salesforce_object(object_name)
        return described, described.name if described is not None else object_name

    def _id(self, record_id: Any) -> str:
        if not isinstance(record_id, str) or not _ID.match(record_id):
            raise Failure("MALFORMED_ID", f"malformed id {record_id}", ["Id"])
        if record_id in self.seen:
            message = f"duplicate value found: Id duplicates value on record with id: {record_id}"
            raise Failure("DUPLICATE_VALUE", message, ["Id"])
        self.seen.add(record_id)
        return record_id

    def _check_duplicate(self, object_name: str, values: dict[str, Any]) -> None:
        """Salesforce's standard Account duplicate rule, when the request blocks saves."""
        name = values.get("Name")
        if not self.block_duplicates or object_name != "Account" or not name:
            return
        if self.names is None:
            self.names = {}
            for record in self.state.records.records(Provider.SALESFORCE, "Account"):
                if record.fields.get("Name"):
                    self.names.setdefault(_name_key(record.fields["Name"]), record.id)
        existing = self.names.get(_name_key(name))
        if existing is not None:
            raise Failure(
                "DUPLICATES_DETECTED",
                "Use one of these records?",
                extra={"duplicateResult": _duplicate_result(existing)},
            )


def _name_key(name: Any) -> str:
    return str(name).strip().lower()


def _duplicate_result(existing: str) -> dict[str, Any]:
    """The duplicateResult Salesforce attaches, naming the record matched."""
    return {
        "allowSave": False,
        "duplicateRule": "Standard_Account_Duplicate_Rule",
        "duplicateRuleEntityType": "Account",
        "errorMessage": "Use one of these records?",
        "matchResults": [
            {
                "entityType": "Account",
                "errors": [],
                "matchEngine": "FuzzyMatchEngine",
                "matchRecords": [
                    {
                        "additionalInformation": [],
                        "fieldDiffs": [],
                        "matchConfidence": 100.0,
                        "record": {"attributes": {"type": "Account"}, "Id": existing},
                    }
                ],
                "rule": "Standard_Account_Match_Rule_v1_0",
                "size": 1,
                "success": True,
            }
        ],
    }


def _values(
    object_name: str, described: SalesforceObject | None, given: dict[str, Any], *, creating: bool
) -> dict[str, Any]:
    """The values to store by the org's field names, or the first refusal: an unknown
    field, a read-only one, a value that is not a JSON scalar."""
    by_lower = {name.lower(): name for name in described.fields} if described else {}
    values: dict[str, Any] = {}
    for name, value in given.items():
        canonical = by_lower.get(name.lower(), name if described is None else None)
        if canonical is None:
            message = f"No such column '{name}' on sobject of type {object_name}"
            raise Failure("INVALID_FIELD", message, [name])
        described_field = described.fields[canonical] if described else None
        allowed = "createable" if creating else "updateable"
        if described_field is not None and not described_field[allowed]:
            message = (
                f"Unable to create/update fields: {canonical}. Please check the security "
                "settings of this field and verify that it is read/write for your profile "
                "or permission set."
            )
            raise Failure("INVALID_FIELD_FOR_INSERT_UPDATE", message, [canonical])
        if value is not None and not isinstance(value, str | int | float | bool):
            kind = "START_ARRAY" if isinstance(value, list) else "START_OBJECT"
            message = f"Cannot deserialize instance of {canonical} from {kind} value"
            raise Failure("JSON_PARSER_ERROR", message, [canonical])
        # Salesforce keeps no empty text: it stores null.
        values[canonical] = None if value == "" else value
    return values


def _required(described: SalesforceObject | None) -> list[str]:
    """The fields a create must give: not nillable, not defaulted, writable (a checkbox
    is never nillable, but defaults to false)."""
    if described is None:
        return []
    return [
        name
        for name, each in described.fields.items()
        if not each["nillable"]
        and not each["defaultedOnCreate"]
        and each["createable"]
        and each["type"] != "boolean"
    ]


def _require(missing: list[str]) -> None:
    if missing:
        message = f"Required fields are missing: [{', '.join(missing)}]"
        raise Failure("REQUIRED_FIELD_MISSING", message, missing)


def _error(code: str, message: str, status: int = 400) -> ApiError:
    return Failure(code, message, status=status).api_error()


def _version(request: Request) -> None:
    if not _VERSION.match(str(request.path_params["version"])):
        raise _error("NOT_FOUND", "The requested resource does not exist", 404)


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _error("JSON_PARSER_ERROR", "The request body is not valid JSON") from None


def _fields_of(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _error("JSON_PARSER_ERROR", "Cannot deserialize the record: not a JSON object")
    return value


def _collection(raw: bytes) -> tuple[list[dict[str, Any]], bool]:
    """A collection's records (1 to 200 objects) and allOrNone, or the refusal."""
    body = _fields_of(_json(raw))
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise _error("JSON_PARSER_ERROR", "records must be a list of sObjects")
    return records, body.get("allOrNone") is True


def _check_size(size: int) -> None:
    if size > MAX_RECORDS:
        message = (
            f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call"
        )
        raise _error("EXCEEDED_ID_LIMIT", message)
    if size == 0:
        raise _error("INVALID_BATCH_SIZE", f"a collection carries 1 to {MAX_RECORDS} records")


def _type_of(record: dict[str, Any]) -> str:
    attributes = record.get("attributes")
    kind = attributes.get("type") if isinstance(attributes, dict) else None
    if not isinstance(kind, str) or not kind:
        raise Failure("INVALID_TYPE", "Must specify a type in the attributes of each record")
    return kind


def _sobject(record: dict[str, Any], *, keep_id: bool) -> dict[str, Any]:
    """A record's fields, without its attributes; an update's without its id (what it
    updates), a create's with it (which create refuses)."""
    return {k: v for k, v in record.items() if k != "attributes" and (keep_id or k.lower() != "id")}


def _record_id(record: dict[str, Any]) -> Any:
    return next((v for k, v in record.items() if k.lower() == "id"), None)


def _blocks_duplicates(request: Request) -> bool:
    found = _ALLOW_SAVE.search(request.headers.get("sforce-duplicate-rule-header", ""))
    return found is not None and found.group(1).lower() == "false"


def _first_type(raw: bytes) -> str:
    """A collection's first record's sObject, for faults scoped to one object ("" when
    the body says none: the pipeline's checks come first, then the body's)."""
    try:
        records = orjson.loads(raw).get("records") or [{}]
        return str(records[0]["attributes"]["type"])
    except (orjson.JSONDecodeError, AttributeError, LookupError, TypeError):
        return ""


class SalesforceWrites:
    """Salesforce's write routes over the record pipeline."""

    def __init__(self, records: RecordApi) -> None:
        self.records = records
        self.state = records.state

    def routes(self) -> list[Route]:
        data = "/salesforce/services/data/{version}"
        sobject = data + "/sobjects/{object_name}"
        collection = data + "/composite/sobjects"
        return [
            Route(sobject, self.create, methods=["POST"]),
            Route(sobject + "/", self.create, methods=["POST"]),
            Route(sobject + "/{record_id}", self.update, methods=["PATCH"]),
            Route(sobject + "/{record_id}", self.delete, methods=["DELETE"]),
            Route(collection, self.composite_create, methods=["POST"]),
            Route(collection, self.composite_update, methods=["PATCH"]),
            Route(collection, self.composite_delete, methods=["DELETE"]),
        ]

    async def create(self, request: Request) -> Response:
        return await self._serve(
            request, "create", request.path_params["object_name"], self._create
        )

    async def update(self, request: Request) -> Response:
        return await self._serve(
            request, "update", request.path_params["object_name"], self._update
        )

    async def delete(self, request: Request) -> Response:
        return await self._serve(
            request, "delete", request.path_params["object_name"], self._delete
        )

    async def composite_create(self, request: Request) -> Response:
        object_name = _first_type(await request.body())
        return await self._serve(request, "composite_create", object_name, self._composite_create)

    async def composite_update(self, request: Request) -> Response:
        object_name = _first_type(await request.body())
        return await self._serve(request, "composite_update", object_name, self._composite_update)

    async def composite_delete(self, request: Request) -> Response:
        ids = _ids(request)
        found = self.state.records.locate(Provider.SALESFORCE, ids[0]) if ids else None
        object_name = found[0] if found is not None else ""
        return await self._serve(request, "composite_delete", object_name, self._composite_delete)

    async def _serve(
        self, request: Request, route: str, object_name: str, render: Render
    ) -> Response:
        self.state.counters.count_write(Provider.SALESFORCE, route, request.headers.keys())
        return await self.records.serve(
            request, Provider.SALESFORCE, object_name, render, endpoint=Endpoint.WRITES
        )

    def _batch(self, size: int) -> None:
        """Count a collection's size (whatever it is: a test sees a writer's split), then
        refuse it if Salesforce would."""
        self.state.counters.count_batch(Provider.SALESFORCE, size)
        _check_size(size)

    def _write(self, request: Request) -> _Write:
        return _Write(self.state, _blocks_duplicates(request))

    def _commit(self, write: _Write) -> None:
        self.state.counters.count_written(Provider.SALESFORCE, write.commit())

    async def _create(self, request: Request, object_name: str) -> Response:
        _version(request)
        given = _fields_of(_json(await request.body()))
        write = self._write(request)
        try:
            record_id = write.create(object_name, _sobject(given, keep_id=True))
        except Failure as failure:
            raise failure.api_error() from None
        self._commit(write)
        body = {"id": record_id, "success": True, "errors": []}
        return Response(orjson.dumps(body), status_code=201, media_type=_JSON)

    async def _update(self, request: Request, object_name: str) -> Response:
        _version(request)
        given = _fields_of(_json(await request.body()))
        given = _sobject(given, keep_id=True)
        write = self._write(request)
        try:
            write.update(object_name, request.path_params["record_id"], given)
        except Failure as failure:
            raise failure.api_error() from None
        self._commit(write)
        return Response(status_code=204)

    async def _delete(self, request: Request, object_name: str) -> Response:
        _version(request)
        write = self._write(request)
        try:
            write.delete(request.path_params["record_id"], object_name)
        except Failure as failure:
            raise failure.api_error() from None
        self._commit(write)
        return Response(status_code=204)

    async def _composite_create(self, request: Request, _: str) -> Response:
        _version(request)
        records, all_or_none = _collection(await request.body())
        self._batch(len(records))
        write = self._write(request)
        outcomes = []
        for record in records:
            try:
                outcomes.append(
                    _Outcome(
                        write.create(_type_of(record), _sobject(record, keep_id=True)), created=True
                    )
                )
            except Failure as failure:
                outcomes.append(_Outcome(None, failure, created=True))
        return self._answer(write, outcomes, all_or_none)

    async def _composite_update(self, request: Request, _: str) -> Response:
        _version(request)
        records, all_or_none = _collection(await request.body())
        self._batch(len(records))
        write = self._write(request)
        outcomes = []
        for record in records:
            record_id = _record_id(record)
            shown = record_id if isinstance(record_id, str) else None
            try:
                if record_id is None:
                    raise Failure("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
                write.update(_type_of(record), record_id, _sobject(record, keep_id=False))
                outcomes.append(_Outcome(shown))
            except Failure as failure:
                outcomes.append(_Outcome(shown, failure))
        return self._answer(write, outcomes, all_or_none)

    async def _composite_delete(self, request: Request, _: str) -> Response:
        _version(request)
        ids = _ids(request)
        self._batch(len(ids))
        all_or_none = request.query_params.get("allOrNone", "").lower() == "true"
        write = self._write(request)
        outcomes = []
        for record_id in ids:
            try:
                outcomes.append(_Outcome(write.delete(record_id)))
            except Failure as failure:
                outcomes.append(_Outcome(record_id, failure))
        return self._answer(write, outcomes, all_or_none)

    def _answer(self, write: _Write, outcomes: list[_Outcome], all_or_none: bool) -> Response:
        """Commit unless allOrNone met a failure; one result per record, in order."""
        rolled_back = all_or_none and any(o.failure is not None for o in outcomes)
        if not rolled_back:
            self._commit(write)
        body = [outcome.result(rolled_back) for outcome in outcomes]
        return Response(orjson.dumps(body), media_type=_JSON)


def _ids(request: Request) -> list[str]:
    return [i.strip() for i in request.query_params.get("ids", "").split(",") if i.strip()]
