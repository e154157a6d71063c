"""HubSpot CRM v3 record writes.

One record: `POST /crm/v3/objects/{object}` (properties and associations), `PATCH
.../{id}`, `DELETE .../{id}` (archive). A batch: `POST .../batch/create`, `.../batch/update`,
`.../batch/archive`, up to 100 inputs a request. A batch answer may be partial (207): the
good inputs are written, the others named in `errors`. Results are not in input order, so
each input carries `objectWriteTraceId` = its index in the WriteBatch, and results and
errors are matched back by it (an update's also by record id; positionally among the good
inputs only when HubSpot echoes neither).

HubSpot has no all-or-none write. For creates the connector makes one: when some input
of an all-or-none batch fails, the ones created are archived again and every record is
reported failed. Updates cannot be undone that way (the old values are gone), so an
all-or-none update is written record by record, with a warning saying so. Archive is
all-or-nothing per request already (it refuses a request as a whole or not at all).

A retried create (`may_have_written`) that HubSpot refuses as a duplicate naming the
existing record (contacts are unique by email: 409 `Contact already exists. Existing ID:
N`) is that record's success: the earlier attempt wrote it. Objects without a unique
property cannot be told apart that way, so their retried creates may write twice.

Property values go as given: HubSpot takes JSON strings, numbers and booleans alike.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import aiohttp

from services.domain.connectors.base import (
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    TokenRejected,
)
from services.domain.connectors.http import ProviderResponse, json_body
from services.domain.connectors.write_support import (
    Prepared,
    WriteCall,
    prepare,
    raw_text,
    refusal,
)
from services.domain.connectors.writes import ItemOutcome, WriteBatch, WriteOutcome, WriteType

MAX_BATCH = 100
ROLLED_BACK = "rolled back: another record of the batch failed"
UPDATES_ARE_PARTIAL = (
    "all_or_none was ignored: HubSpot has no all-or-none update and an update cannot be "
    "undone, so each record was written on its own"
)
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
_BATCH_PATHS = {
    WriteType.CREATE: "batch/create",
    WriteType.UPDATE: "batch/update",
    WriteType.DELETE: "batch/archive",
}


class HubSpotWriter:
    provider = "hubspot"
    max_batch = MAX_BATCH

    async def write(
        self,
        http: aiohttp.ClientSession,
        auth: ProviderAuth,
        batch: WriteBatch,
        *,
        max_wait: float = 20.0,
    ) -> WriteOutcome:
        # All-or-none holds for creates (rolled back here) and archives (HubSpot's own).
        atomic = batch.all_or_none and batch.type is not WriteType.UPDATE
        prepared = prepare(batch, auth, max_batch=MAX_BATCH, atomic=atomic, provider="HubSpot")
        if batch.all_or_none and batch.type is WriteType.UPDATE:
            prepared.warnings.append(UPDATES_ARE_PARTIAL)
        if batch.type is not WriteType.CREATE and any(item.associations for item in batch.items):
            prepared.warnings.append(
                "associations were ignored: HubSpot creates them with a record, "
                f"not on {batch.type}"
            )
        call = _Call(http, auth, batch, prepared, max_wait)
        if batch.single:
            return await call.send_single() if prepared.chunks else prepared.finished()
        for chunk in prepared.chunks:
            for index, outcome in (await call.send_batch(chunk)).items():
                prepared.outcomes[index] = outcome
        if atomic and batch.type is WriteType.CREATE:
            await call.roll_back_if_any_failed()
        return prepared.finished()


class _Call(WriteCall):
    """One WriteBatch's requests."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        auth: ProviderAuth,
        batch: WriteBatch,
        prepared: Prepared,
        max_wait: float,
    ) -> None:
        super().__init__(http, auth, batch, prepared, max_wait)
        self.url = f"{auth.base_url}/crm/v3/objects/{quote(batch.object_name, safe='')}"
        # Items found already written by an earlier attempt (not created by this call).
        self.recovered: set[int] = set()

    async def send_single(self) -> WriteOutcome:
        index = self.prepared.chunks[0][0]
        item = self.batch.items[index]
        kind = self.batch.type
        if kind is WriteType.CREATE:
            response = await self._send("POST", self.url, _create_input(index, self.batch))
        else:
            url = f"{self.url}/{quote(item.record_id, safe='')}"
            if kind is WriteType.UPDATE:
                response = await self._send("PATCH", url, {"properties": dict(item.fields)})
            else:
                response = await self._send("DELETE", url)
        raw = None
        if response.status >= 300:
            outcome = self._refused(index, _error_body(response), response.status, own=True)
            raw = None if outcome.success else raw_text(response.content, self.auth)
        elif kind is WriteType.DELETE:
            outcome = ItemOutcome(success=True, record_id=item.record_id)
        else:
            outcome = _written(json_body(response))
        self.prepared.outcomes[index] = outcome
        return self.prepared.finished(raw)

    async def send_batch(self, indices: list[int]) -> dict[int, ItemOutcome]:
        items, kind = self.batch.items, self.batch.type
        inputs: list[dict[str, Any]]
        if kind is WriteType.CREATE:
            inputs = [_create_input(index, self.batch) for index in indices]
        elif kind is WriteType.UPDATE:
            inputs = [
                {
                    "id": items[index].record_id,
                    "properties": dict(items[index].fields),
                    "objectWriteTraceId": str(index),
                }
                for index in indices
            ]
        else:
            inputs = [{"id": items[index].record_id} for index in indices]
        url = f"{self.url}/{_BATCH_PATHS[kind]}"
        response = await self._send("POST", url, {"inputs": inputs})
        if response.status >= 300:
            # The request refused as a whole: nothing of it was written.
            error = _error_body(response)
            return {
                index: self._refused(index, error, response.status, own=False) for index in indices
            }
        if kind is WriteType.DELETE:
            return {
                index: ItemOutcome(success=True, record_id=items[index].record_id)
                for index in indices
            }
        return self._match(indices, json_body(response))

    def _match(self, indices: list[int], body: dict[str, Any]) -> dict[int, ItemOutcome]:
        """A batch answer's results and errors matched back to the inputs."""
        by_trace = {str(index): index for index in indices}
        by_id = (
            {self.batch.items[index].record_id: index for index in indices}
            if self.batch.type is WriteType.UPDATE
            else {}
        )
        outcomes: dict[int, ItemOutcome] = {}
        unattributed: list[str] = []
        for error in body.get("errors") or []:
            context = error.get("context") or {}
            targets = [
                by_trace[t] for t in context.get("objectWriteTraceId") or [] if t in by_trace
            ]
            targets = targets or [by_id[i] for i in context.get("ids") or [] if i in by_id]
            if not targets:
                unattributed.append(refusal(error.get("category"), error.get("message"), self.auth))
            for index in targets:
                outcomes[index] = self._refused(index, error, None, own=True)
        leftovers: list[dict[str, Any]] = []
        for result in body.get("results") or []:
            found = by_trace.get(str(result.get("objectWriteTraceId")))
            found = by_id.get(str(result.get("id"))) if found is None else found
            if found is None or found in outcomes:
                leftovers.append(result)
            else:
                outcomes[found] = _written(result)
        unmatched = [index for index in indices if index not in outcomes]
        if leftovers and len(leftovers) == len(unmatched) and not unattributed:
            # No trace ids echoed: the results are the good inputs', in input order.
            outcomes.update(zip(unmatched, map(_written, leftovers), strict=True))
            unmatched = []
        for index in unmatched:
            outcomes[index] = ItemOutcome(
                success=False,
                record_id=self.batch.items[index].record_id,
                errors=unattributed or ["HubSpot's answer did not say what became of this record"],
            )
        return outcomes

    def _refused(
        self, index: int, error: dict[str, Any], status: int | None, *, own: bool
    ) -> ItemOutcome:
        """One input's refusal, unless a retried write finds its record already there
        (`own`: the error is this input's, not a whole batch's, which names one record
        at most and so says nothing certain about the others)."""
        category = str(error.get("category") or "")
        message = str(error.get("message") or "") or _first_detail(error)
        kind, item = self.batch.type, self.batch.items[index]
        if self.batch.may_have_written and own:
            existing = _EXISTING_ID.search(message)
            if kind is WriteType.CREATE and existing and (category == "CONFLICT" or status == 409):
                self.recovered.add(index)
                self.prepared.warnings.append(
                    f"record {index}: HubSpot already holds it as {existing.group(1)}, "
                    "taken as written by an earlier attempt of this write"
                )
                return ItemOutcome(success=True, record_id=existing.group(1))
            if kind is WriteType.DELETE and (category == "OBJECT_NOT_FOUND" or status == 404):
                self.prepared.warnings.append(
                    f"record {index}: HubSpot no longer has {item.record_id}, "
                    "taken as deleted by an earlier attempt of this write"
                )
                return ItemOutcome(success=True, record_id=item.record_id)
        return ItemOutcome(
            success=False,
            record_id=item.record_id,
            errors=[refusal(category, message, self.auth)],
        )

    async def roll_back_if_any_failed(self) -> None:
        """HubSpot's batch create is partial: an all-or-none one that was not wholly
        written has what it created archived again, so that none of it is."""
        outcomes = self.prepared.outcomes
        written = {
            index: outcome.record_id
            for index, outcome in enumerate(outcomes)
            if outcome is not None and outcome.success
        }
        if len(written) == len(outcomes):
            return
        for index in sorted(self.recovered):
            # Not archived: it may be a record the customer had before this write.
            outcomes[index] = ItemOutcome(
                success=False,
                errors=[
                    "not written: another record of the batch failed; HubSpot already held "
                    f"this record as {written.pop(index)}, which was left in place"
                ],
            )
        if not written:
            return
        ids = [{"id": record_id} for record_id in written.values()]
        reason = ""
        try:
            response = await self._send("POST", f"{self.url}/batch/archive", {"inputs": ids})
            if response.status >= 300:
                reason = refusal(*_code_and_message(_error_body(response)), self.auth)
        except (ProviderUnavailable, TokenRejected) as error:
            reason = str(error)
        if reason:
            self.prepared.warnings.append(
                f"all_or_none: HubSpot has no all-or-none create and archiving the "
                f"{len(ids)} records created failed ({reason}); they remain written"
            )
            return
        for index in written:
            outcomes[index] = ItemOutcome(success=False, errors=[ROLLED_BACK])


def _create_input(index: int, batch: WriteBatch) -> dict[str, Any]:
    item = batch.items[index]
    body: dict[str, Any] = {"properties": dict(item.fields)}
    if item.associations:
        body["associations"] = [dict(association) for association in item.associations]
    if not batch.single:
        body["objectWriteTraceId"] = str(index)
    return body


def _written(record: dict[str, Any]) -> ItemOutcome:
    return ItemOutcome(success=True, record_id=str(record.get("id", "")), data=record)


def _error_body(response: ProviderResponse) -> dict[str, Any]:
    """HubSpot's error body, or its text as the message when it is not JSON."""
    try:
        body = json_body(response)
    except ProviderRequestError:  # not JSON: its text is the message
        body = None
    if isinstance(body, dict):
        return body
    text = response.content.decode("utf-8", "replace").strip()
    return {"message": text or f"HubSpot answered {response.status}"}


def _first_detail(error: dict[str, Any]) -> str:
    details = error.get("errors")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("message") or "")
    return ""


def _code_and_message(error: dict[str, Any]) -> tuple[str, str]:
    return str(error.get("category") or ""), str(error.get("message") or _first_detail(error))
