"""Salesforce records through the REST queryAll resource (SOQL).

One window is one query, `SELECT <fields>, IsDeleted FROM <object> WHERE SystemModstamp
>= since AND SystemModstamp < until ORDER BY SystemModstamp ASC, Id ASC`, read page by
page through `nextRecordsUrl` (the page token). SystemModstamp rather than
LastModifiedDate because it also moves on system changes (a delete among them) and is
indexed. `queryAll` rather than `query` so that the records deleted in the window (in the
recycle bin, which Salesforce empties after about 15 days) come in the same pages, with
`IsDeleted: true`. Page size is the `Sforce-Query-Options: batchSize=` hint (Salesforce
honours 200 to 2,000).

A query cursor that Salesforce has dropped answers 400 INVALID_QUERY_LOCATOR; that is
raised as PageTokenExpired (code INVALID_QUERY_LOCATOR) so the caller restarts the window
from the newest modification time it has read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from services.domain.connectors.base import (
    Page,
    PageTokenExpired,
    ProviderAuth,
    ProviderRequestError,
    ReadRequest,
)
from services.domain.connectors.http import json_body, send

API_VERSION = "v60.0"
MIN_BATCH, MAX_BATCH = 200, 2000
INVALID_QUERY_LOCATOR = "INVALID_QUERY_LOCATOR"
# Fields read when the installation selects none. SOQL has no `SELECT *`, and
# FIELDS(STANDARD) is not what every org (or the sandbox) answers the same way, so each
# known object has a small default; others get the fields every object has.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "Account": ("Name", "Industry", "Phone", "BillingCity", "AnnualRevenue"),
    "Contact": ("FirstName", "LastName", "Email", "Phone"),
    "Opportunity": ("Name",),
}
# Always selected: the record id and the time the window filters on, whatever was asked.
SYSTEM_FIELDS = ("Id", "SystemModstamp")
# Selected by reads, after the others, to tell the deleted rows queryAll returns.
DELETED_FIELD = "IsDeleted"
_COMMON_FIELDS = ("CreatedDate", "LastModifiedDate")


class SalesforceConnector:
    provider = "salesforce"

    async def read_page(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: ReadRequest
    ) -> Page:
        size = MAX_BATCH if request.page_size <= 0 else request.page_size
        headers = {"Sforce-Query-Options": f"batchSize={max(MIN_BATCH, min(MAX_BATCH, size))}"}
        if request.page_token:
            url, params = f"{auth.base_url}{request.page_token}", None
        else:
            url = f"{auth.base_url}/services/data/{API_VERSION}/queryAll"
            params = {"q": soql(request)}
        try:
            response = await send(http, "GET", url, auth=auth, params=params, headers=headers)
        except ProviderRequestError as error:
            if error.code != INVALID_QUERY_LOCATOR:
                raise
            raise PageTokenExpired(
                f"Salesforce dropped the query cursor of {request.object_name} "
                f"({INVALID_QUERY_LOCATOR}): restart the window from the newest record read",
                status=error.status,
                code=error.code,
            ) from None
        body = json_body(response)
        next_url = "" if body.get("done", True) else str(body.get("nextRecordsUrl") or "")
        total = body.get("totalSize")
        return Page(
            records=body.get("records") or [],
            next_page_token=next_url,
            estimated_total=total if isinstance(total, int) else None,
        )

    def record_id(self, raw: Mapping[str, Any]) -> str:
        return str(raw["Id"])

    def modified_time(self, raw: Mapping[str, Any]) -> datetime | None:
        value = raw.get("SystemModstamp") or raw.get("LastModifiedDate")
        if not value:
            return None
        # Salesforce writes `2026-11-01T00:00:00.000+0000`, which fromisoformat reads.
        moment = datetime.fromisoformat(str(value))
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def field_values(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {name.lower(): value for name, value in raw.items() if name != "attributes"}

    def deleted(self, raw: Mapping[str, Any]) -> bool:
        return raw.get(DELETED_FIELD) is True


def soql(request: ReadRequest) -> str:
    """The window's query (object and field names are checked: they are spliced in)."""
    _check_name(request.object_name, "object")
    conditions = []
    if request.since is not None:
        conditions.append(f"SystemModstamp >= {_literal(request.since)}")
    if request.until is not None:
        conditions.append(f"SystemModstamp < {_literal(request.until)}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    selected = select_list(request.object_name, request.fields)
    if DELETED_FIELD.lower() not in {name.lower() for name in selected}:
        selected.append(DELETED_FIELD)
    fields = ", ".join(selected)
    return (
        f"SELECT {fields} FROM {request.object_name}{where}"  # noqa: S608 (names checked)
        " ORDER BY SystemModstamp ASC, Id ASC"
    )


def select_list(object_name: str, fields: Sequence[str]) -> list[str]:
    """Id and SystemModstamp, then the requested (or default) fields, each once."""
    wanted = list(fields) or [*DEFAULT_FIELDS.get(object_name, ()), *_COMMON_FIELDS]
    chosen: list[str] = []
    seen: set[str] = set()
    for name in (*SYSTEM_FIELDS, *wanted):
        _check_name(name, "field")
        if name.lower() not in seen:
            seen.add(name.lower())
            chosen.append(name)
    return chosen


def _check_name(name: str, what: str) -> None:
    # API names are letters, digits and underscores (custom ones end in __c; relationship
    # fields use dots).
    if not name or not all(part.replace("_", "").isalnum() for part in name.split(".")):
        raise ProviderRequestError(f"{name!r} is not a valid Salesforce {what} name")


def _literal(moment: datetime) -> str:
    """A SOQL dateTime literal in UTC, to the millisecond (SystemModstamp's precision);
    a finer bound is rounded up, which admits exactly the same records."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    millis = -(-moment.microsecond // 1000)
    if millis == 1000:
        moment, millis = moment.replace(microsecond=0) + timedelta(seconds=1), 0
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
