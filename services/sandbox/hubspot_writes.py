"""HubSpot's CRM v3 object writes, as the sandbox answers them:

    /hubspot/crm/v3/objects/{object}                POST    create, 201 with the record
    /hubspot/crm/v3/objects/{object}/{id}           PATCH   update, 200 with the record
    /hubspot/crm/v3/objects/{object}/{id}           DELETE  archive, 204 (kept archived:
                                                            ?archived=true lists it)
    /hubspot/crm/v3/objects/{object}/batch/create   POST    201, or 207 when inputs failed
    /hubspot/crm/v3/objects/{object}/batch/update   POST    200, or 207 when inputs failed
    /hubspot/crm/v3/objects/{object}/batch/archive  POST    204 (unknown ids ignored)

Through the record pipeline (record_api.py) under the WRITES fault endpoint. The refusals
are HubSpot's: a property the object's schema (schemas.py) lacks or that is read-only, a
value that is not a JSON scalar, a contact without email, firstname or lastname, a
contact email another contact holds (409, naming it: `Existing ID: <id>`), an unknown id
(404), an association to no record. An object the sandbox has no schema for takes any
property; one with records is described from them (schemas.py) as the properties API
describes it, so its first record's properties are its schema. In a batch the good
inputs are written and each bad one is an error carrying its objectWriteTraceId; results
are ordered by id, not input, as HubSpot promises no order, and echo their input's trace
id. HubSpot keeps text only, so a number or boolean is stored as the string HubSpot
answers with; null clears a property. Every write raises the change events the app's
webhook subscriptions ask for (webhooks.py): creation, propertyChange per changed
property, deletion.
"""

from __future__ import annotations

import uuid
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
from services.sandbox.records import Record, changed_fields, hubspot_time, to_millis
from services.sandbox.state import SandboxState
from services.sandbox.webhooks import Change

MAX_BATCH = 100
_JSON = "application/json"
# Kept by HubSpot itself, whatever the object's schema says.
_SYSTEM = frozenset({"hs_object_id", "createdate", "hs_lastmodifieddate", "lastmodifieddate"})
# A contact needs one of these (HubSpot's own rule is looser; this is the sandbox's
# missing-required-field case).
_CONTACT_NAMES = ("email", "firstname", "lastname")


class Refusal(Exception):
    """One input refused: the status and HubSpot category, and the error's details."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.details = details or []
        self.context = context or {}

    def api_error(self) -> ApiError:
        """The refusal of a whole request (a single-record call, a bad batch)."""
        body = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
            "errors": self.details,
        }
        return ApiError(self.status, body)

    def batch_error(self, trace: str | None) -> dict[str, Any]:
        """The refusal of one input of a batch."""
        context = dict(self.context)
        if trace is not None:
            context["objectWriteTraceId"] = [trace]
        return {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": context,
        }


def invalid(message: str, details: list[dict[str, Any]] | None = None) -> Refusal:
    return Refusal(400, "VALIDATION_ERROR", message, details=details)


def not_found(record_id: str) -> Refusal:
    return Refusal(404, "OBJECT_NOT_FOUND", "resource not found", context={"ids": [record_id]})


def _invalid_properties(problems: list[tuple[str, str, str]]) -> Refusal:
    """HubSpot's refusal of property values: (name, message, error code) each."""
    listed = [
        {"isValid": False, "message": message, "error": code, "name": name}
        for name, message, code in problems
    ]
    details = [
        {"message": message, "code": code, "context": {"propertyName": [name]}}
        for name, message, code in problems
    ]
    text = "Property values were not valid: " + orjson.dumps(listed).decode()
    return invalid(text, details)


def _text(value: str | int | float | bool) -> str:
    """A value as HubSpot keeps and answers it: text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Write:
    """One request's writes to one object: checked input by input, then added at once."""

    def __init__(
        self, state: SandboxState, object_name: str, emails: dict[str, str] | None = None
    ) -> None:
        self.store = state.records
        self.object_name = object_name
        self.records = state.records.object(Provider.HUBSPOT, object_name)
        self.schema = state.schemas.hubspot_object(object_name)
        self.contacts = object_name in ("contacts", "contact")
        self.now = to_millis(datetime.now(UTC))
        self.created: list[Record] = []
        # Updated records and the names of the properties whose values changed.
        self.updated: dict[str, tuple[Record, list[str]]] = {}
        self.written = 0
        # Contact emails (lower-cased) -> id, kept up to date as inputs are written;
        # built when first needed unless the last write's is still true.
        self.emails = emails

    def create(self, given: dict[str, Any]) -> Record:
        values = self._properties(given.get("properties"))
        if self.contacts and not any(values.get(name) for name in _CONTACT_NAMES):
            message = "A contact needs an email, firstname or lastname"
            raise _invalid_properties([("email", message, "REQUIRED_FIELD")])
        associations = self._associations(given.get("associations"))
        pending = {record.id for record in self.created}
        record_id = self.store.new_id(Provider.HUBSPOT, self.object_name, pending)
        self._claim_email(record_id, None, values)
        fields = {name: value for name, value in values.items() if value is not None}
        record = Record(record_id, fields, self.now, self.now, associations=associations)
        self.created.append(record)
        self.written += 1
        return record

    def update(self, record_id: str, given: dict[str, Any]) -> Record:
        record = self.records.get(record_id)
        if record is None:
            raise not_found(record_id)
        values = self._properties(given.get("properties"))
        self._claim_email(record_id, record.fields.get("email"), values)
        fields = {**record.fields, **values}
        before = record.fields
        record.revise(
            Provider.HUBSPOT,
            {name: value for name, value in fields.items() if value is not None},
            self.now,
        )
        earlier = self.updated.get(record.id, (record, []))[1]
        names = [n for n in changed_fields(before, record.fields) if n not in earlier]
        self.updated[record.id] = (record, earlier + names)
        self.written += 1
        return record

    def commit(self) -> int:
        """Add the created records, let the indexes rebuild if anything changed; the
        object's generation now."""
        if self.created:
            self.store.writable(Provider.HUBSPOT, self.object_name).add(self.created)
        elif self.written:
            self.records.changed(same_ids=True)
        return self.store.object(Provider.HUBSPOT, self.object_name).generation

    def _properties(self, given: Any) -> dict[str, str | None]:
        """The values to store (None: clear), or the refusal naming every bad one."""
        if given is None:
            return {}
        if not isinstance(given, dict):
            raise invalid("properties must be an object of property names to values")
        values: dict[str, str | None] = {}
        problems = []
        for name, value in given.items():
            known = self.schema.get(name) if self.schema is not None else None
            read_only = known is not None and known["modificationMetadata"]["readOnlyValue"]
            if name in _SYSTEM or read_only:
                message = f'"{name}" is a read only property; its value cannot be set.'
                problems.append((name, message, "READ_ONLY_VALUE"))
            elif self.schema is not None and known is None:
                problems.append(
                    (name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST")
                )
            elif value is not None and not isinstance(value, str | int | float | bool):
                message = f'Property "{name}" must be a string, number, boolean or null'
                problems.append((name, message, "INVALID_PROPERTY_VALUE"))
            else:
                values[name] = None if value is None else _text(value)
        if problems:
            raise _invalid_properties(problems)
        return values

    def _associations(self, given: Any) -> list[dict[str, Any]]:
        """The associations, each pointing at an existing record of some object."""
        if given is None:
            return []
        if not isinstance(given, list) or not all(isinstance(item, dict) for item in given):
            raise invalid("associations must be a list of objects")
        wrong = [item for item in given if not self._association_ok(item)]
        if wrong:
            details = [
                {
                    "message": f"No record to associate with as {orjson.dumps(item).decode()}",
                    "code": "INVALID_ASSOCIATION",
                }
                for item in wrong
            ]
            raise invalid("One or more associations are invalid", details)
        return given

    def _association_ok(self, item: dict[str, Any]) -> bool:
        """`to.id` names an existing record (of any object) and `types` are given."""
        target = item.get("to")
        target_id = target.get("id") if isinstance(target, dict) else None
        if not isinstance(target_id, str | int) or isinstance(target_id, bool):
            return False
        types = item.get("types")
        return (
            isinstance(types, list)
            and bool(types)
            and self.store.locate(Provider.HUBSPOT, str(target_id)) is not None
        )

    def _claim_email(self, record_id: str, previous: Any, values: dict[str, str | None]) -> None:
        """Contacts: refuse an email another contact holds; else it is this one's now
        (and its previous one free)."""
        if not self.contacts or "email" not in values:
            return
        emails = self.emails
        if emails is None:
            emails = self.emails = {}
            for record in self.records.in_order:
                if record.fields.get("email"):
                    emails[str(record.fields["email"]).lower()] = record.id
        email = (values["email"] or "").lower()
        holder = emails.get(email) if email else None
        if holder is not None and holder != record_id:
            raise Refusal(409, "CONFLICT", f"Contact already exists. Existing ID: {holder}")
        if previous and emails.get(str(previous).lower()) == record_id:
            del emails[str(previous).lower()]
        if email:
            emails[email] = record_id


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise invalid("Invalid input JSON: the body is not JSON").api_error() from None
    if not isinstance(body, dict):
        raise invalid("Invalid input JSON: the body must be an object").api_error()
    return body


def _inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A batch's inputs (1 to 100 objects), or the refusal of the whole batch."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(item, dict) for item in inputs):
        raise invalid("inputs must be a list of objects").api_error()
    if not 1 <= len(inputs) <= MAX_BATCH:
        raise invalid(f"inputs must hold 1 to {MAX_BATCH} items, not {len(inputs)}").api_error()
    return inputs


def _trace(given: dict[str, Any]) -> str | None:
    trace = given.get("objectWriteTraceId")
    return None if trace is None else str(trace)


def _answer(body: Any, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON)


class HubSpotWrites:
    """HubSpot's write routes over the record pipeline."""

    def __init__(self, records: RecordApi) -> None:
        self.records = records
        self.state = records.state
        # The contact emails as the last write left them, and the generation of the
        # object they hold for: a run of contact writes then does not scan every contact
        # per request (a seed, touch or archive moves the generation on, so they are
        # rebuilt).
        self._emails: tuple[int, dict[str, str]] | None = None

    def routes(self) -> list[Route]:
        objects = "/hubspot/crm/v3/objects/{object_name}"
        return [
            Route(objects, self.create, methods=["POST"]),
            Route(objects + "/batch/create", self.batch_create, methods=["POST"]),
            Route(objects + "/batch/update", self.batch_update, methods=["POST"]),
            Route(objects + "/batch/archive", self.batch_archive, methods=["POST"]),
            Route(objects + "/{record_id}", self.update, methods=["PATCH"]),
            Route(objects + "/{record_id}", self.archive, methods=["DELETE"]),
        ]

    async def create(self, request: Request) -> Response:
        return await self._serve(request, "create", self._create)

    async def update(self, request: Request) -> Response:
        return await self._serve(request, "update", self._update)

    async def archive(self, request: Request) -> Response:
        return await self._serve(request, "delete", self._archive)

    async def batch_create(self, request: Request) -> Response:
        return await self._serve(request, "batch_create", self._batch_create)

    async def batch_update(self, request: Request) -> Response:
        return await self._serve(request, "batch_update", self._batch_update)

    async def batch_archive(self, request: Request) -> Response:
        return await self._serve(request, "batch_archive", self._batch_archive)

    async def _serve(self, request: Request, route: str, render: Render) -> Response:
        self.state.counters.count_write(Provider.HUBSPOT, route, request.headers.keys())
        object_name = request.path_params["object_name"]
        return await self.records.serve(
            request, Provider.HUBSPOT, object_name, render, endpoint=Endpoint.WRITES
        )

    def _start(self, object_name: str) -> _Write:
        generation = self.state.records.object(Provider.HUBSPOT, object_name).generation
        kept = self._emails
        emails = kept[1] if kept is not None and kept[0] == generation else None
        return _Write(self.state, object_name, emails)

    def _finish(self, write: _Write) -> None:
        generation = write.commit()
        webhooks = self.state.webhooks
        webhooks.raise_events(Provider.HUBSPOT, write.object_name, Change.CREATE, write.created)
        webhooks.raise_events(
            Provider.HUBSPOT,
            write.object_name,
            Change.UPDATE,
            [record for record, _ in write.updated.values()],
            {record_id: names for record_id, (_, names) in write.updated.items()},
        )
        if write.contacts and write.emails is not None:
            self._emails = (generation, write.emails)
        self.state.counters.count_written(Provider.HUBSPOT, write.written)

    async def _create(self, request: Request, object_name: str) -> Response:
        body = _json_object(await request.body())
        write = self._start(object_name)
        try:
            record = write.create(body)
        except Refusal as refusal:
            raise refusal.api_error() from None
        self._finish(write)
        return _answer(record.hubspot_parts()[1], 201)

    async def _update(self, request: Request, object_name: str) -> Response:
        body = _json_object(await request.body())
        write = self._start(object_name)
        try:
            record = write.update(request.path_params["record_id"], body)
        except Refusal as refusal:
            raise refusal.api_error() from None
        self._finish(write)
        return _answer(record.hubspot_parts()[1], 200)

    async def _archive(self, request: Request, object_name: str) -> Response:
        record_id = request.path_params["record_id"]
        found = self.state.records.object(Provider.HUBSPOT, object_name)
        if found.get(record_id) is None:
            raise not_found(record_id).api_error()
        buried = found.bury({record_id}, datetime.now(UTC))
        self.state.webhooks.raise_events(Provider.HUBSPOT, object_name, Change.DELETE, buried)
        self.state.counters.count_written(Provider.HUBSPOT, 1)
        return Response(status_code=204)

    async def _batch_create(self, request: Request, object_name: str) -> Response:
        return await self._batch(request, object_name, updating=False)

    async def _batch_update(self, request: Request, object_name: str) -> Response:
        return await self._batch(request, object_name, updating=True)

    async def _batch(self, request: Request, object_name: str, *, updating: bool) -> Response:
        started = hubspot_time(datetime.now(UTC))
        inputs = _inputs(_json_object(await request.body()))
        self.state.counters.count_batch(Provider.HUBSPOT, len(inputs))
        if updating:
            ids = [str(given.get("id")) for given in inputs if given.get("id") is not None]
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                raise invalid(f"Duplicate IDs found in batch input: {repeated}").api_error()
        write = self._start(object_name)
        written: list[tuple[Record, str | None]] = []
        errors = []
        for given in inputs:
            trace = _trace(given)
            try:
                if not updating:
                    record = write.create(given)
                elif given.get("id") is None:
                    raise invalid("id is required for an update")
                else:
                    record = write.update(str(given["id"]), given)
                written.append((record, trace))
            except Refusal as refusal:
                errors.append(refusal.batch_error(trace))
        self._finish(write)
        results = []
        for record, trace in sorted(written, key=lambda pair: int(pair[0].id)):
            result = dict(record.hubspot_parts()[1])
            if trace is not None:
                result["objectWriteTraceId"] = trace
            results.append(result)
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body |= {"numErrors": len(errors), "errors": errors}
        body |= {"startedAt": started, "completedAt": hubspot_time(datetime.now(UTC))}
        return _answer(body, 207 if errors else (200 if updating else 201))

    async def _batch_archive(self, request: Request, object_name: str) -> Response:
        inputs = _inputs(_json_object(await request.body()))
        self.state.counters.count_batch(Provider.HUBSPOT, len(inputs))
        found = self.state.records.object(Provider.HUBSPOT, object_name)
        # As HubSpot: an id that names no record is no error.
        ids = {str(given.get("id")) for given in inputs}
        present = {record_id for record_id in ids if found.get(record_id) is not None}
        buried = found.bury(present, datetime.now(UTC))
        self.state.webhooks.raise_events(Provider.HUBSPOT, object_name, Change.DELETE, buried)
        self.state.counters.count_written(Provider.HUBSPOT, len(present))
        return Response(status_code=204)
