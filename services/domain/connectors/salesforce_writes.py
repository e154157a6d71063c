"""Salesforce REST record writes.

One record: `POST /services/data/vXX.X/sobjects/{Object}/`, `PATCH .../{Object}/{id}`,
`DELETE .../{Object}/{id}`. A batch: sObject Collections (`/composite/sobjects`: POST
creates, PATCH updates, DELETE `?ids=…` deletes), up to 200 records a request, answered
per record in request order, with Salesforce's own `allOrNone` (a failed all-or-none
request writes nothing and marks the other records ALL_OR_NONE_OPERATION_ROLLED_BACK).
The API version is the read connector's.

The builder's headers (`Sforce-Duplicate-Rule-Header`, `Sforce-Auto-Assign`, …) go on
every request; none may replace the credentials or the body's content type.

No recovery of a retried create (`may_have_written`): Salesforce's duplicate rules match
on field values the builder chose, not on the record this write sent, so without an
external id field (an upsert) a record an earlier attempt created cannot be told apart
from another record with the same values. A retried create may therefore write twice,
which the outcome's warnings say. A retried delete whose record is already gone counts
as deleted.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from services.domain.connectors.base import ProviderAuth, ProviderRequestError
from services.domain.connectors.http import ProviderResponse, json_body
from services.domain.connectors.salesforce import API_VERSION
from services.domain.connectors.write_support import (
    Prepared,
    WriteCall,
    prepare,
    raw_text,
    refusal,
)
from services.domain.connectors.writes import ItemOutcome, WriteBatch, WriteOutcome, WriteType

MAX_BATCH = 200
# What Salesforce answers about a record that no longer exists (or never did).
_GONE = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED"})
_COMPOSITE_METHODS = {WriteType.CREATE: "POST", WriteType.UPDATE: "PATCH"}
MAY_HAVE_WRITTEN_TWICE = (
    "an earlier attempt of this write may have reached Salesforce: records it created, "
    "if any, now exist twice (without an external id Salesforce cannot tell them apart)"
)


class SalesforceWriter:
    provider = "salesforce"
    max_batch = MAX_BATCH

    async def write(
        self,
        http: aiohttp.ClientSession,
        auth: ProviderAuth,
        batch: WriteBatch,
        *,
        max_wait: float = 20.0,
    ) -> WriteOutcome:
        prepared = prepare(
            batch, auth, max_batch=MAX_BATCH, atomic=batch.all_or_none, provider="Salesforce"
        )
        if any(item.associations for item in batch.items):
            prepared.warnings.append(
                "associations were ignored: a Salesforce record's relationships are its "
                "lookup fields (set them as fields)"
            )
        call = _Call(http, auth, batch, prepared, max_wait)
        if batch.single:
            outcome = await call.send_single() if prepared.chunks else prepared.finished()
        else:
            for chunk in prepared.chunks:
                for index, item_outcome in zip(chunk, await call.send_batch(chunk), strict=True):
                    prepared.outcomes[index] = item_outcome
            outcome = prepared.finished()
        created = any(item.success for item in outcome.items)
        if batch.may_have_written and batch.type is WriteType.CREATE and created:
            outcome.warnings.append(MAY_HAVE_WRITTEN_TWICE)
        return outcome


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
        self.root = f"{auth.base_url}/services/data/{API_VERSION}"

    async def send_single(self) -> WriteOutcome:
        index = self.prepared.chunks[0][0]
        item = self.batch.items[index]
        url = f"{self.root}/sobjects/{quote(self.batch.object_name, safe='')}/"
        if self.batch.type is WriteType.CREATE:
            response = await self._send("POST", url, dict(item.fields))
        else:
            url += quote(item.record_id, safe="")
            if self.batch.type is WriteType.UPDATE:
                response = await self._send("PATCH", url, dict(item.fields))
            else:
                response = await self._send("DELETE", url)
        raw = None
        if response.status >= 300:
            outcome = self._refused(index, _errors(response), gone_counts=True)
            raw = None if outcome.success else raw_text(response.content, self.auth)
        elif self.batch.type is WriteType.CREATE:
            outcome = self._answered(index, json_body(response))
        else:  # 204: nothing more to say than that it was written
            outcome = ItemOutcome(success=True, record_id=item.record_id)
        self.prepared.outcomes[index] = outcome
        return self.prepared.finished(raw)

    async def send_batch(self, indices: list[int]) -> list[ItemOutcome]:
        items, kind = self.batch.items, self.batch.type
        url = f"{self.root}/composite/sobjects"
        all_or_none = self.batch.all_or_none
        if kind is WriteType.DELETE:
            params = {
                "ids": ",".join(items[index].record_id for index in indices),
                "allOrNone": "true" if all_or_none else "false",
            }
            response = await self._send("DELETE", url, params=params)
        else:
            attributes = {"type": self.batch.object_name}
            records = [
                {"attributes": attributes, **items[index].fields}
                | ({"id": items[index].record_id} if kind is WriteType.UPDATE else {})
                for index in indices
            ]
            body = {"allOrNone": all_or_none, "records": records}
            response = await self._send(_COMPOSITE_METHODS[kind], url, body)
        if response.status >= 300:
            # The request refused as a whole (too many records, say): nothing written.
            errors = _errors(response)
            return [self._refused(index, errors, gone_counts=False) for index in indices]
        answer = json_body(response)
        results = answer if isinstance(answer, list) else []
        # One result per record, in request order.
        return [
            self._answered(index, results[n])
            if n < len(results)
            else self._refused(index, [], gone_counts=False)
            for n, index in enumerate(indices)
        ]

    def _answered(self, index: int, result: Any) -> ItemOutcome:
        """One record's outcome from Salesforce's `{id, success, errors}`."""
        if not isinstance(result, dict):
            return self._refused(index, [], gone_counts=False)
        if not result.get("success"):
            errors = [error for error in result.get("errors") or [] if isinstance(error, dict)]
            return self._refused(index, errors, gone_counts=True, data=result)
        record_id = str(result.get("id") or self.batch.items[index].record_id)
        return ItemOutcome(success=True, record_id=record_id, data=result)

    def _refused(
        self,
        index: int,
        errors: list[dict[str, Any]],
        *,
        gone_counts: bool,
        data: dict[str, Any] | None = None,
    ) -> ItemOutcome:
        """A record Salesforce refused, unless it is a retried delete of a record already
        gone (`gone_counts`: the errors are this record's, not the whole request's)."""
        record_id = self.batch.items[index].record_id
        codes = [str(error.get("statusCode") or error.get("errorCode") or "") for error in errors]
        gone = gone_counts and any(code in _GONE for code in codes)
        if self.batch.type is WriteType.DELETE and self.batch.may_have_written and gone:
            self.prepared.warnings.append(
                f"record {index}: Salesforce no longer has {record_id}, "
                "taken as deleted by an earlier attempt of this write"
            )
            return ItemOutcome(success=True, record_id=record_id)
        messages = [
            refusal(code, error.get("message"), self.auth)
            for code, error in zip(codes, errors, strict=True)
        ]
        return ItemOutcome(
            success=False,
            record_id=record_id,
            data=data,
            errors=messages or ["Salesforce's answer did not say what became of this record"],
        )


def _errors(response: ProviderResponse) -> list[dict[str, Any]]:
    """A refused request's errors: Salesforce's `[{errorCode, message, fields}]`, or the
    body's text as the message when it is not that."""
    try:
        body = json_body(response)
    except ProviderRequestError:  # not JSON: its text is the message
        body = None
    if isinstance(body, dict):
        body = [body]
    if isinstance(body, list) and body and all(isinstance(error, dict) for error in body):
        return body
    text = response.content.decode("utf-8", "replace").strip()
    return [{"message": text or f"Salesforce answered {response.status}"}]
