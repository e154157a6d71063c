"""Records fetched by id, for subscribe deliveries: a provider's change event names the
record (and at most the changed values), while a delivery carries the record as a read
would, so the subscribe consumer fetches what the read action selects.

- HubSpot: `POST /crm/v3/objects/{object}/batch/read` with every id of one object in one
  call (up to 100 inputs, HubSpot's limit; more are split), `properties` the read's
  fields (none: HubSpot's default set, as a read of "all" fields gets). Ids HubSpot does
  not find (archived since the event) come back as errors in a 207, or a 404 when none is
  found: they are `missing`.
- Salesforce: `GET /services/data/vNN.N/sobjects/{object}/{id}?fields=...` per id,
  concurrently (the REST API has no batch read by id other than SOQL `Id IN (...)`); 404
  NOT_FOUND or ENTITY_IS_DELETED is `missing`.

Errors are the connectors' (connectors.http.send): TokenRejected, ProviderUnavailable,
ProviderRequestError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from services.domain.connectors.base import ProviderAuth, ProviderRequestError
from services.domain.connectors.http import json_body, send
from services.domain.connectors.salesforce import API_VERSION, select_list

__all__ = ["FETCHERS", "Fetched", "fetch_records"]

# HubSpot's batch endpoints take at most this many inputs.
HUBSPOT_BATCH = 100
_NOT_FOUND = 404


@dataclass
class Fetched:
    """The records found, by id, and the ids the provider no longer has."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)


async def fetch_records(
    http: aiohttp.ClientSession,
    auth: ProviderAuth,
    provider: str,
    object_name: str,
    ids: Sequence[str],
    fields: Sequence[str],
    *,
    max_wait: float = 10.0,
) -> Fetched:
    """The records of one object by id. fields: provider field names to ask for (empty:
    the provider's or connector's default set). max_wait: seconds 429/5xx answers are
    retried before ProviderUnavailable (short: the caller holds a Pub/Sub lease). KeyError
    for a provider without a fetcher."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        return Fetched()
    return await FETCHERS[provider](http, auth, object_name, unique, fields, max_wait)


async def _hubspot(
    http: aiohttp.ClientSession,
    auth: ProviderAuth,
    object_name: str,
    ids: list[str],
    fields: Sequence[str],
    max_wait: float,
) -> Fetched:
    chunks = [ids[i : i + HUBSPOT_BATCH] for i in range(0, len(ids), HUBSPOT_BATCH)]
    url = f"{auth.base_url}/crm/v3/objects/{object_name}/batch/read"

    async def one(chunk: list[str]) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"inputs": [{"id": record_id} for record_id in chunk]}
        if fields:
            body["properties"] = list(fields)
        response = await send(
            http, "POST", url, auth=auth, json=body, accept=(_NOT_FOUND,), max_wait=max_wait
        )
        if response.status == _NOT_FOUND:
            return []
        answer = json_body(response)
        results = answer.get("results") if isinstance(answer, dict) else None
        return [r for r in results or [] if isinstance(r, dict)]

    fetched = Fetched()
    for results in await asyncio.gather(*(one(chunk) for chunk in chunks)):
        for record in results:
            fetched.records[str(record.get("id"))] = record
    fetched.missing = {record_id for record_id in ids if record_id not in fetched.records}
    return fetched


async def _salesforce(
    http: aiohttp.ClientSession,
    auth: ProviderAuth,
    object_name: str,
    ids: list[str],
    fields: Sequence[str],
    max_wait: float,
) -> Fetched:
    selected = ",".join(select_list(object_name, fields))
    base = f"{auth.base_url}/services/data/{API_VERSION}/sobjects/{object_name}"

    async def one(record_id: str) -> dict[str, Any] | None:
        if not record_id.isalnum():
            raise ProviderRequestError(f"{record_id!r} is not a Salesforce record id")
        response = await send(
            http,
            "GET",
            f"{base}/{record_id}",
            auth=auth,
            params={"fields": selected},
            accept=(_NOT_FOUND,),
            max_wait=max_wait,
        )
        if response.status == _NOT_FOUND:
            # NOT_FOUND, or ENTITY_IS_DELETED for a record in the recycle bin.
            return None
        record = json_body(response)
        return record if isinstance(record, dict) else None

    fetched = Fetched()
    for record_id, record in zip(ids, await asyncio.gather(*(one(i) for i in ids)), strict=True):
        if record is None:
            fetched.missing.add(record_id)
        else:
            fetched.records[record_id] = record
    return fetched


FETCHERS = {"hubspot": _hubspot, "salesforce": _salesforce}
