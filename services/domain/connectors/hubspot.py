"""HubSpot CRM v3 records.

A window without bounds (full history) pages the list endpoint
(`GET /crm/v3/objects/{object}`, up to 100 per page, by record id). A window with bounds
uses CRM search (`POST /crm/v3/objects/{object}/search`) on `hs_lastmodifieddate`, sorted
ascending, up to 200 per page.

HubSpot's search refuses to page past 10,000 results of one query. When the next offset
would reach that cap, the connector starts a new search whose lower bound is the last
record's modification time (inclusive, so none is skipped; the ids the previous search
already delivered at that instant are dropped, so none comes twice either). If a whole
10,000 share one modification time that would not move forward, so that instant is then
read on its own, by record id (its records may then come twice), and the window resumes
just after it. The page token carries all of this.

After the live records come the deleted ones: HubSpot archives a deleted record (and
keeps it about 90 days), and only its list endpoint with `archived=true` returns archived
records. That list has no time filter, so the archived phase pages through every archived
record of the object (by id, up to 100 per request) and keeps those whose `archivedAt`
lies in the window: a read costs one list request per 100 archived records, whatever the
window. The phase is part of the page token (`{"phase": "archived", "after": ...}`, with
the live records' estimate and the deletions found so far), so a resumed read continues
inside it; a token without a phase is the live phase's (tokens saved before deletions
were read resume as they were). An archived record's modification time is its
archivedAt.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from services.domain.connectors.base import Page, ProviderAuth, ProviderRequestError, ReadRequest
from services.domain.connectors.http import json_body, send

LIST_LIMIT = 100
SEARCH_LIMIT = 200
# HubSpot answers 400 when a search's `after` reaches this.
SEARCH_CAP = 10_000
MODIFIED = "hs_lastmodifieddate"
# The archived phase's page token marker.
ARCHIVED_PHASE = "archived"
# List requests one archived page may make while every record it got lies outside the
# window, so a window with few deletions among many archived records does not cost one
# empty page (and one read_pages row) per 100 archived records.
ARCHIVED_REQUESTS_PER_PAGE = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HubSpotConnector:
    provider = "hubspot"

    async def read_page(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: ReadRequest
    ) -> Page:
        if request.page_token and _decode(request.page_token).get("phase") == ARCHIVED_PHASE:
            return await self._archived_page(http, auth, request)
        if request.since is None and request.until is None:
            page = await self._list_page(http, auth, request)
        else:
            page = await self._search_page(http, auth, request)
        if not page.next_page_token:
            # The live records are read: the deleted ones of the window come next. The
            # window's estimate goes along, so the archived pages still give one.
            page.next_page_token = _encode(phase=ARCHIVED_PHASE, estimate=page.estimated_total)
        return page

    def record_id(self, raw: Mapping[str, Any]) -> str:
        return str(raw["id"])

    def modified_time(self, raw: Mapping[str, Any]) -> datetime | None:
        # An archived record changed last when it was archived (the archived phase's
        # window is on that time).
        archived_at = raw.get("archivedAt") if raw.get("archived") is True else None
        properties = raw.get("properties") or {}
        value = archived_at or properties.get(MODIFIED) or raw.get("updatedAt")
        return _parse_time(value) if value else None

    def deleted(self, raw: Mapping[str, Any]) -> bool:
        return raw.get("archived") is True

    def field_values(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        # HubSpot's internal property names are lower-case by definition, so the
        # properties are returned as they are (not copied: callers only read them).
        properties: dict[str, Any] = raw.get("properties") or {}
        return properties

    async def _list_page(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: ReadRequest
    ) -> Page:
        params = {"limit": str(_limit(request.page_size, LIST_LIMIT)), "archived": "false"}
        if request.fields:
            params["properties"] = ",".join(request.fields)
        if request.page_token:
            params["after"] = str(_decode(request.page_token).get("after", ""))
        url = f"{auth.base_url}/crm/v3/objects/{request.object_name}"
        body = json_body(await send(http, "GET", url, auth=auth, params=params))
        after = (((body.get("paging") or {}).get("next")) or {}).get("after")
        return Page(
            records=body.get("results") or [], next_page_token=_encode(after=after) if after else ""
        )

    async def _archived_page(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: ReadRequest
    ) -> Page:
        """Archived records of the window, from the archived list (no time filter: the
        window is applied here, on archivedAt)."""
        params = {"limit": str(_limit(request.page_size, LIST_LIMIT)), "archived": "true"}
        if request.fields:
            params["properties"] = ",".join(request.fields)
        state = _decode(request.page_token)
        after = str(state.get("after") or "")
        estimate: int | None = state.get("estimate")
        found = int(state.get("found", 0))
        url = f"{auth.base_url}/crm/v3/objects/{request.object_name}"
        since, until = _millis(request.since), _millis(request.until)
        records: list[dict[str, Any]] = []
        for _ in range(ARCHIVED_REQUESTS_PER_PAGE):
            if after:
                params["after"] = after
            body = json_body(await send(http, "GET", url, auth=auth, params=params))
            for record in body.get("results") or []:
                # The endpoint answers archived records only; a record that is not
                # (another server's answer) is no deletion to deliver.
                if record.get("archived") is not True:
                    continue
                moment = self.modified_time(record)
                if moment is None:
                    # No time to place it in a window: only a read without bounds takes it.
                    if since is None and until is None:
                        records.append(record)
                    continue
                millis = _epoch_millis(moment)
                if (since is None or millis >= since) and (until is None or millis < until):
                    records.append(record)
            after = str((((body.get("paging") or {}).get("next")) or {}).get("after") or "")
            if records or not after:
                break
        # The live records' estimate plus the deletions found so far: never below what
        # the read has delivered (HubSpot cannot count the window's deletions up front).
        found += len(records)
        token = (
            _encode(phase=ARCHIVED_PHASE, after=after, estimate=estimate, found=found or None)
            if after
            else ""
        )
        return Page(
            records=records,
            next_page_token=token,
            estimated_total=None if estimate is None else estimate + found,
        )

    async def _search_page(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: ReadRequest
    ) -> Page:
        limit = _limit(request.page_size, SEARCH_LIMIT)
        state = _decode(request.page_token) if request.page_token else {}
        # Bounds in epoch milliseconds: `since` (inclusive) moves forward as the window
        # is restarted past the 10,000 cap; `until` (exclusive) is the window's.
        since: int | None = state.get("since", _millis(request.since))
        until = _millis(request.until)
        after = int(state.get("after", 0))
        tie_id: int | None = state.get("tie_id")
        # Records delivered before the current search began (for estimated_total).
        before = int(state.get("before", 0))

        if tie_id is None:
            filters = []
            if since is not None:
                filters.append(_filter(MODIFIED, "GTE", since))
            if until is not None:
                filters.append(_filter(MODIFIED, "LT", until))
            sort = MODIFIED
        else:
            filters = [_filter(MODIFIED, "EQ", since), _filter("hs_object_id", "GT", tie_id)]
            sort = "hs_object_id"
        search: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "limit": limit,
            "after": str(after),
        }
        if request.fields:
            search["properties"] = list(request.fields)
        url = f"{auth.base_url}/crm/v3/objects/{request.object_name}/search"
        body = json_body(await send(http, "POST", url, auth=auth, json=search))
        records: list[dict[str, Any]] = body.get("results") or []
        total = body.get("total")
        # `total` counts every record the current search matches, whatever the offset:
        # the records delivered before it began are the only ones to add.
        estimated = before + int(total) if isinstance(total, int) else None
        next_after = (((body.get("paging") or {}).get("next")) or {}).get("after")
        delivered = before + after + len(records)
        # Ids read at the instant a restarted search begins with (the previous search's
        # last ones): dropped here so a restart delivers them once, not twice.
        skip: list[str] = state.get("skip") or []
        if skip:
            last_time = self.modified_time(records[-1]) if records else None
            dropped = set(skip)
            records = [record for record in records if str(record.get("id")) not in dropped]
            if last_time is None or since is None or _epoch_millis(last_time) > since:
                skip = []  # past that instant: nothing more to drop

        if not next_after or not body.get("results"):
            if tie_id is None:
                return Page(records, "", estimated)
            # The crowded instant is read: go on just after it, to the window's end.
            assert since is not None  # a tie search only starts from a lower bound
            return Page(records, _encode(since=since + 1, before=delivered), estimated)
        if int(next_after) < SEARCH_CAP:
            token = _encode(
                since=since, after=int(next_after), tie_id=tie_id, before=before, skip=skip or None
            )
            return Page(records, token, estimated)
        # The next offset would hit the cap: start a new search where this one got to.
        last = body["results"][-1]
        if tie_id is not None:
            return Page(
                records, _encode(since=since, tie_id=int(last["id"]), before=delivered), estimated
            )
        last_modified = self.modified_time(last)
        if last_modified is None:
            raise ProviderRequestError(
                f"HubSpot returned a {request.object_name} record without {MODIFIED}"
            )
        newest = _epoch_millis(last_modified)
        if since is not None and newest <= since:
            # All 10,000 at one instant: read that instant by id (duplicates possible).
            return Page(records, _encode(since=since, tie_id=0, before=delivered), estimated)
        at_newest = [
            str(record["id"])
            for record in body["results"]
            if (moment := self.modified_time(record)) is not None
            and _epoch_millis(moment) == newest
        ]
        return Page(records, _encode(since=newest, before=delivered, skip=at_newest), estimated)


def _filter(name: str, operator: str, value: int | None) -> dict[str, str]:
    return {"propertyName": name, "operator": operator, "value": str(value)}


def _limit(requested: int, cap: int) -> int:
    return cap if requested <= 0 else min(requested, cap)


def _millis(moment: datetime | None) -> int | None:
    return None if moment is None else _epoch_millis(moment)


def _epoch_millis(moment: datetime) -> int:
    """Epoch milliseconds, rounded up: HubSpot times are whole milliseconds, so a bound
    t with a fraction admits exactly the records a bound of ceil(t) does."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return -(-micros // 1000)


def _parse_time(value: Any) -> datetime:
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _encode(**state: Any) -> str:
    """An opaque page token: the paging state as URL-safe base64 JSON."""
    compact = {key: value for key, value in state.items() if value is not None}
    return base64.urlsafe_b64encode(orjson.dumps(compact)).decode()


def _decode(token: str) -> dict[str, Any]:
    try:
        state = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise ProviderRequestError(
            "the HubSpot page token is not one this connector made"
        ) from None
    if not isinstance(state, dict):
        raise ProviderRequestError("the HubSpot page token is not one this connector made")
    return state
