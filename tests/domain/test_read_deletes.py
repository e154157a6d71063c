"""Reads deliver deleted records: the connectors read the records deleted in a window
(HubSpot's archived list filtered by archivedAt, after the live records; Salesforce's
queryAll with IsDeleted, in the same pages), a resumed HubSpot read continues inside the
archived phase from its page token, and each deleted record is shaped like any other
with `deleted: true` (live ones never carry it). Against the provider sandbox served in
process, its records deleted directly."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from ampmesh.workflows.v1.read_plan_pb2 import ReadSelection

from services.domain import record_shape
from services.domain.connectors.base import Connector, Page, ProviderAuth, ReadRequest
from services.domain.connectors.hubspot import ARCHIVED_PHASE, HubSpotConnector
from services.domain.connectors.salesforce import SalesforceConnector, soql
from services.sandbox.providers import Provider
from tests.support.served_sandbox import ServedSandbox

UNTIL = datetime(2026, 11, 1, tzinfo=UTC)
START = UNTIL - timedelta(days=10)
HUBSPOT = HubSpotConnector()
SALESFORCE = SalesforceConnector()


async def _read_all(
    connector: Connector,
    http: aiohttp.ClientSession,
    auth: ProviderAuth,
    request: ReadRequest,
    token: str = "",
) -> tuple[list[dict[str, Any]], list[Page], list[str]]:
    """Every page from token on, and the token each was fetched with."""
    records: list[dict[str, Any]] = []
    pages: list[Page] = []
    tokens: list[str] = []
    while True:
        tokens.append(token)
        page = await connector.read_page(http, auth, _with_token(request, token))
        pages.append(page)
        records += page.records
        token = page.next_page_token
        if not token:
            return records, pages, tokens


def _with_token(request: ReadRequest, token: str) -> ReadRequest:
    return ReadRequest(
        request.object_name,
        request.fields,
        request.since,
        request.until,
        page_token=token,
        page_size=request.page_size,
    )


def _delete(
    sandbox: ServedSandbox, provider: Provider, name: str, ids: list[str], when: datetime
) -> None:
    buried = sandbox.state.records.object(provider, name).bury(set(ids), when)
    assert len(buried) == len(ids)


def _live(
    sandbox: ServedSandbox, provider: Provider, name: str, since: datetime | None, until: datetime
) -> set[str]:
    return {
        r.id
        for r in sandbox.state.records.records(provider, name)
        if (since is None or r.modified >= since) and r.modified < until
    }


def _split(connector: Connector, records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    live = [connector.record_id(r) for r in records if not connector.deleted(r)]
    deleted = [connector.record_id(r) for r in records if connector.deleted(r)]
    return live, deleted


def _once(ids: list[str]) -> set[str]:
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    return set(ids)


async def test_hubspot_window_reads_deletions_in_it_after_the_live_records(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    records = sandbox.state.records.seed(
        Provider.HUBSPOT, "contacts", 600, 7, START, UNTIL - timedelta(days=1), replace=True
    )
    ids = [r.id for r in records]
    since, until = START + timedelta(days=5), UNTIL
    # Deleted before the window, in it (twice, apart), and after it.
    _delete(sandbox, Provider.HUBSPOT, "contacts", ids[:40], START + timedelta(days=1))
    _delete(sandbox, Provider.HUBSPOT, "contacts", ids[40:70], since)
    _delete(sandbox, Provider.HUBSPOT, "contacts", ids[70:95], UNTIL - timedelta(hours=1))
    _delete(sandbox, Provider.HUBSPOT, "contacts", ids[95:110], UNTIL)
    live_expected = _live(sandbox, Provider.HUBSPOT, "contacts", since, until)

    auth = sandbox.auth(Provider.HUBSPOT)
    request = ReadRequest("contacts", ["email", "firstname"], since, until, page_size=20)
    got, pages, tokens = await _read_all(HUBSPOT, http, auth, request)
    live, deleted = _split(HUBSPOT, got)
    assert _once(live) == live_expected
    assert _once(deleted) == set(ids[40:95])
    # The estimate grows by the deletions found, ending at what the read delivered.
    assert pages[-1].estimated_total == len(got)
    # Deleted ones come after every live one, each archived in the window, with what
    # HubSpot still holds of it.
    assert [HUBSPOT.deleted(r) for r in got] == sorted(HUBSPOT.deleted(r) for r in got)
    for record in got[len(live) :]:
        assert record["archived"] is True
        moment = HUBSPOT.modified_time(record)
        assert moment is not None and since <= moment < until
        assert {"email", "firstname"} <= set(HUBSPOT.field_values(record))

    # A read resumed from a page token inside the archived phase continues there.
    archived_tokens = [
        (i, t) for i, t in enumerate(tokens) if t and orjson.loads(_raw(t)).get("phase")
    ]
    assert len(archived_tokens) >= 3, "the deletions came in one page: nothing to resume"
    index, token = archived_tokens[2]
    rest, _, _ = await _read_all(HUBSPOT, http, auth, request, token)
    assert rest == [r for page in pages[index:] for r in page.records]


async def test_hubspot_full_history_reads_every_deletion(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    records = sandbox.state.records.seed(
        Provider.HUBSPOT, "contacts", 250, 7, START, UNTIL, replace=True
    )
    gone = [r.id for r in records[::10]]
    _delete(sandbox, Provider.HUBSPOT, "contacts", gone, UNTIL + timedelta(days=1))
    request = ReadRequest("contacts", [], None, None)
    got, _, _ = await _read_all(HUBSPOT, http, sandbox.auth(Provider.HUBSPOT), request)
    live, deleted = _split(HUBSPOT, got)
    assert _once(live) == {r.id for r in records} - set(gone)
    assert _once(deleted) == set(gone)


async def test_hubspot_window_without_deletions_costs_one_empty_page(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.state.records.seed(Provider.HUBSPOT, "contacts", 30, 7, START, UNTIL, replace=True)
    request = ReadRequest("contacts", [], START, UNTIL + timedelta(seconds=1))
    got, pages, tokens = await _read_all(HUBSPOT, http, sandbox.auth(Provider.HUBSPOT), request)
    assert len(got) == 30 and not any(HUBSPOT.deleted(r) for r in got)
    assert len(pages) == 2 and pages[-1].records == []
    assert orjson.loads(_raw(tokens[-1])) == {"phase": ARCHIVED_PHASE, "estimate": 30}
    assert pages[-1].estimated_total == 30


async def test_salesforce_window_reads_deleted_rows_in_the_same_pages(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    records = sandbox.state.records.seed(
        Provider.SALESFORCE, "Account", 3000, 7, START, START + timedelta(days=5), replace=True
    )
    ids = [r.id for r in records]
    since, until = START + timedelta(days=3), UNTIL
    # Deleting moves SystemModstamp: records modified before the window, deleted in it,
    # are read as deleted; those deleted after the window are not read at all.
    _delete(sandbox, Provider.SALESFORCE, "Account", ids[:50], START + timedelta(days=6))
    _delete(sandbox, Provider.SALESFORCE, "Account", ids[-30:], UNTIL + timedelta(hours=1))
    live_expected = _live(sandbox, Provider.SALESFORCE, "Account", since, until)
    request = ReadRequest("Account", ["Name"], since, until, page_size=200)
    got, pages, _ = await _read_all(SALESFORCE, http, sandbox.auth(Provider.SALESFORCE), request)
    live, deleted = _split(SALESFORCE, got)
    assert _once(live) == live_expected
    assert _once(deleted) == set(ids[:50])
    assert len(pages) == -(-len(got) // 200)
    stamps = [SALESFORCE.modified_time(r) for r in got]
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert all(since <= s < until for s in stamps)  # type: ignore[operator]
    row = next(r for r in got if SALESFORCE.deleted(r))
    assert row["IsDeleted"] is True and row["Name"]
    assert all(r["IsDeleted"] is False for r in got if not SALESFORCE.deleted(r))


def test_salesforce_selects_is_deleted_once() -> None:
    query = soql(ReadRequest("Account", ["Name", "isdeleted"], None, None))
    assert query.startswith("SELECT Id, SystemModstamp, Name, isdeleted FROM Account")
    query = soql(ReadRequest("Account", ["Name"], None, None))
    assert query.startswith("SELECT Id, SystemModstamp, Name, IsDeleted FROM Account")


def _selection(mapped: tuple[str, str], *fields: str) -> record_shape.Selection:
    planned = ReadSelection(fields=list(fields), requested_fields=[*fields, mapped[1]])
    planned.mappings.add(field_name=mapped[1], map_to_name=mapped[0])
    return record_shape.plan_selection(planned)


@pytest.mark.parametrize(
    ("connector", "raw", "selection"),
    [
        (
            HUBSPOT,
            {
                "id": "51",
                "properties": {"email": "a@example.com", "firstname": "Ada", "lastname": "L"},
                "createdAt": "2026-10-01T00:00:00.000Z",
                "updatedAt": "2026-10-02T00:00:00.000Z",
                "archived": True,
                "archivedAt": "2026-10-03T00:00:00.000Z",
            },
            _selection(("mail", "email"), "firstname"),
        ),
        (
            SALESFORCE,
            {
                "attributes": {"type": "Account"},
                "Id": "001000000000051AAA",
                "SystemModstamp": "2026-10-03T00:00:00.000+0000",
                "IsDeleted": True,
                "Name": "Acme",
                "Industry": "Energy",
            },
            _selection(("accountName", "name"), "industry"),
        ),
    ],
)
def test_a_deleted_record_is_shaped_like_a_live_one_with_deleted(
    connector: Connector, raw: dict[str, Any], selection: record_shape.Selection
) -> None:
    entry = orjson.loads(record_shape.render_record(connector, raw, selection))
    assert entry["deleted"] is True
    assert entry["id"] == connector.record_id(raw)
    assert entry["raw"] == raw
    assert len(entry["fields"]) == 1 and len(entry["mappedFields"]) == 1
    values = connector.field_values(raw)
    (name,) = entry["fields"]
    assert entry["fields"][name] == values[name]

    live = dict(raw, archived=False) if connector is HUBSPOT else dict(raw, IsDeleted=False)
    entry = orjson.loads(record_shape.render_record(connector, live, selection))
    assert "deleted" not in entry
    assert entry["mappedFields"] == {
        builder: values[source] for builder, source in selection.mappings
    }


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token.encode())
