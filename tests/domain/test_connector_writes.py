"""The HubSpot and Salesforce writers: against the provider sandbox served in process on a
real socket (its records and counters read, its faults injected directly), and, for the
answers the sandbox never gives (results without trace ids, a short composite answer, a
credential echoed back), against a canned provider answering HubSpot's and Salesforce's
documented bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.domain.connectors.base import ProviderAuth, ProviderUnavailable, TokenRejected
from services.domain.connectors.hubspot_writes import ROLLED_BACK, HubSpotWriter
from services.domain.connectors.registry import NoConnector, writer_for
from services.domain.connectors.salesforce_writes import MAY_HAVE_WRITTEN_TWICE, SalesforceWriter
from services.domain.connectors.write_support import NOT_WRITTEN
from services.domain.connectors.writes import (
    WriteBatch,
    WriteItem,
    WriteOutcome,
    Writer,
    WriteType,
)
from services.runtime.mcp_http import serving_http
from services.sandbox.faults import Endpoint, Fault, FaultKind
from services.sandbox.providers import Provider
from services.sandbox.records import Record
from tests.support.served_sandbox import ServedSandbox

HS, SF = Provider.HUBSPOT, Provider.SALESFORCE
CREATE, UPDATE, DELETE = WriteType.CREATE, WriteType.UPDATE, WriteType.DELETE


def creates(*fields: dict[str, Any]) -> list[WriteItem]:
    return [WriteItem(fields=values) for values in fields]


async def write(
    sandbox: ServedSandbox,
    http: aiohttp.ClientSession,
    provider: Provider,
    batch: WriteBatch,
    *,
    max_wait: float = 20.0,
) -> WriteOutcome:
    writer: Writer = HubSpotWriter() if provider is HS else SalesforceWriter()
    return await writer.write(http, sandbox.auth(provider), batch, max_wait=max_wait)


def stored(sandbox: ServedSandbox, provider: Provider, name: str) -> dict[str, Record]:
    return {record.id: record for record in sandbox.state.records.records(provider, name)}


def write_fault(sandbox: ServedSandbox, **kwargs: Any) -> Fault:
    return sandbox.state.faults.add(Fault(id="", endpoint=Endpoint.WRITES, **kwargs))


@pytest.fixture
def counted(sandbox: ServedSandbox) -> ServedSandbox:
    sandbox.state.reset_counters()
    return sandbox


# HubSpot, against the sandbox ---------------------------------------------------------


async def test_hubspot_single_create_update_delete(
    counted: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox = counted
    created = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts",
            CREATE,
            creates({"email": "ada@example.com", "firstname": "Ada"}),
            single=True,
        ),
    )
    ((item,),) = [created.items]
    assert item.success and item.record_id and created.raw_response is None
    assert item.data is not None and item.data["properties"]["email"] == "ada@example.com"
    record = stored(sandbox, HS, "contacts")[item.record_id]
    assert record.fields["firstname"] == "Ada"

    updated = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts",
            UPDATE,
            [WriteItem(fields={"lastname": "Lovelace"}, record_id=item.record_id)],
            single=True,
        ),
    )
    assert updated.items[0].success and updated.items[0].record_id == item.record_id
    assert stored(sandbox, HS, "contacts")[item.record_id].fields["lastname"] == "Lovelace"

    deleted = await write(
        sandbox,
        http,
        HS,
        WriteBatch("contacts", DELETE, [WriteItem(record_id=item.record_id)], single=True),
    )
    assert deleted.items[0].success and deleted.items[0].record_id == item.record_id
    assert item.record_id not in stored(sandbox, HS, "contacts")
    routes = sandbox.state.counters.providers[HS].write_by_route
    assert (routes["create"], routes["update"], routes["delete"]) == (1, 1, 1)


async def test_hubspot_single_refusals_are_outcomes_with_the_raw_answer(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    unknown = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts", CREATE, creates({"email": "a@example.com", "foo": "x"}), single=True
        ),
    )
    (item,) = unknown.items
    assert not item.success and item.record_id == ""
    assert item.errors[0].startswith("VALIDATION_ERROR: Property values were not valid")
    assert 'Property \\"foo\\" does not exist' in item.errors[0]
    assert unknown.raw_response is not None
    assert orjson.loads(unknown.raw_response)["category"] == "VALIDATION_ERROR"
    assert stored(sandbox, HS, "contacts") == {}

    missing = await write(
        sandbox,
        http,
        HS,
        WriteBatch("contacts", UPDATE, [WriteItem({"firstname": "A"}, "404404")], single=True),
    )
    assert missing.items[0].errors == ["OBJECT_NOT_FOUND: resource not found"]
    assert missing.items[0].record_id == "404404"


async def test_hubspot_associations_go_with_the_create(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    company = await write(
        sandbox, http, HS, WriteBatch("companies", CREATE, creates({"name": "Acme"}), single=True)
    )
    company_id = company.items[0].record_id
    association = {
        "to": {"id": company_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
    }
    contact = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts",
            CREATE,
            [WriteItem({"email": "b@example.com"}, associations=[association])],
            single=True,
        ),
    )
    assert contact.items[0].success
    assert stored(sandbox, HS, "contacts")[contact.items[0].record_id].associations == [association]

    dangling = {**association, "to": {"id": "999999999"}}
    refused = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts",
            CREATE,
            [WriteItem({"email": "c@example.com"}, associations=[dangling])],
            single=True,
        ),
    )
    assert not refused.items[0].success
    assert "One or more associations are invalid" in refused.items[0].errors[0]


async def test_hubspot_partial_batch_create_matches_records_to_inputs(
    counted: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox = counted
    items = creates(
        {"email": "one@example.com", "firstname": "One"},
        {"email": "two@example.com", "nope": "x"},
        {"email": "three@example.com", "firstname": "Three"},
        {"company": "no name at all"},
    )
    outcome = await write(sandbox, http, HS, WriteBatch("contacts", CREATE, items))
    one, two, three, four = outcome.items
    assert one.success and three.success and not two.success and not four.success
    assert 'Property \\"nope\\" does not exist' in two.errors[0]
    assert four.errors[0].startswith("VALIDATION_ERROR")
    records = stored(sandbox, HS, "contacts")
    assert set(records) == {one.record_id, three.record_id}
    assert records[one.record_id].fields["firstname"] == "One"
    assert records[three.record_id].fields["firstname"] == "Three"
    assert outcome.raw_response is None
    counters = sandbox.state.counters.providers[HS]
    assert counters.write_by_route["batch_create"] == 1 and counters.records_written == 2


async def test_hubspot_long_batches_are_split_into_hundreds(
    counted: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox = counted
    items = creates(*({"email": f"c{n}@example.com", "firstname": f"C{n}"} for n in range(250)))
    outcome = await write(sandbox, http, HS, WriteBatch("contacts", CREATE, items))
    assert all(item.success for item in outcome.items)
    records = stored(sandbox, HS, "contacts")
    assert len(records) == 250
    # Each outcome names the record made of its own input, whatever order HubSpot answers.
    assert all(
        records[item.record_id].fields["firstname"] == f"C{n}"
        for n, item in enumerate(outcome.items)
    )
    assert dict(sandbox.state.counters.providers[HS].write_batch_sizes) == {100: 2, 50: 1}

    ids = [item.record_id for item in outcome.items]
    updated = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts",
            UPDATE,
            [WriteItem({"lastname": f"L{n}"}, record_id) for n, record_id in enumerate(ids)],
        ),
    )
    assert [item.record_id for item in updated.items] == ids
    records = stored(sandbox, HS, "contacts")
    assert all(records[record_id].fields["lastname"] == f"L{n}" for n, record_id in enumerate(ids))

    deleted = await write(
        sandbox, http, HS, WriteBatch("contacts", DELETE, [WriteItem(record_id=i) for i in ids])
    )
    assert all(item.success for item in deleted.items)
    assert stored(sandbox, HS, "contacts") == {}


async def test_hubspot_batch_update_reports_unknown_ids_per_record(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    made = await write(
        sandbox, http, HS, WriteBatch("contacts", CREATE, creates({"email": "u@x.io"}))
    )
    known = made.items[0].record_id
    outcome = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts",
            UPDATE,
            [WriteItem({"firstname": "U"}, "777777"), WriteItem({"firstname": "K"}, known)],
        ),
    )
    unknown, ok = outcome.items
    assert not unknown.success and unknown.record_id == "777777"
    assert unknown.errors[0].startswith("OBJECT_NOT_FOUND")
    assert ok.success and ok.record_id == known
    assert stored(sandbox, HS, "contacts")[known].fields["firstname"] == "K"


async def test_hubspot_all_or_none_create_archives_what_it_created(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    items = creates({"email": "keep@example.com"}, {"email": "bad@example.com", "nope": 1})
    outcome = await write(
        sandbox, http, HS, WriteBatch("contacts", CREATE, items, all_or_none=True)
    )
    kept, bad = outcome.items
    assert not kept.success and kept.errors == [ROLLED_BACK]
    assert not bad.success and "nope" in bad.errors[0]
    assert stored(sandbox, HS, "contacts") == {}

    whole = await write(
        sandbox,
        http,
        HS,
        WriteBatch("contacts", CREATE, creates({"email": "a@example.com"}), all_or_none=True),
    )
    assert whole.items[0].success and len(stored(sandbox, HS, "contacts")) == 1


async def test_hubspot_all_or_none_update_is_partial_and_says_so(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    made = await write(
        sandbox, http, HS, WriteBatch("contacts", CREATE, creates({"email": "p@x.io"}))
    )
    known = made.items[0].record_id
    outcome = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts",
            UPDATE,
            [WriteItem({"firstname": "P"}, known), WriteItem({"firstname": "Q"}, "888888")],
            all_or_none=True,
        ),
    )
    assert [item.success for item in outcome.items] == [True, False]
    assert any("all_or_none was ignored" in warning for warning in outcome.warnings)
    assert stored(sandbox, HS, "contacts")[known].fields["firstname"] == "P"


async def test_hubspot_retried_create_takes_the_existing_contact(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    first = await write(
        sandbox,
        http,
        HS,
        WriteBatch("contacts", CREATE, creates({"email": "dup@example.com"}), single=True),
    )
    existing = first.items[0].record_id
    again = WriteBatch("contacts", CREATE, creates({"email": "dup@example.com"}), single=True)
    plain = await write(sandbox, http, HS, again)
    assert not plain.items[0].success
    assert plain.items[0].errors == [f"CONFLICT: Contact already exists. Existing ID: {existing}"]

    retried = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts",
            CREATE,
            creates({"email": "dup@example.com"}),
            single=True,
            may_have_written=True,
        ),
    )
    assert retried.items[0].success and retried.items[0].record_id == existing
    assert retried.raw_response is None
    assert any(existing in warning for warning in retried.warnings)

    batch = await write(
        sandbox,
        http,
        HS,
        WriteBatch(
            "contacts",
            CREATE,
            creates({"email": "new@example.com"}, {"email": "dup@example.com"}),
            may_have_written=True,
        ),
    )
    assert [item.success for item in batch.items] == [True, True]
    assert batch.items[1].record_id == existing
    assert len(stored(sandbox, HS, "contacts")) == 2


async def test_a_create_whose_answer_is_lost_is_not_sent_again(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    kept = await write(
        sandbox, http, HS, WriteBatch("contacts", CREATE, creates({"email": "k@x.io"}))
    )
    existing = kept.items[0].record_id
    sandbox.state.reset_counters()
    write_fault(sandbox, kind=FaultKind.DROP_CONNECTION, count=1)
    with pytest.raises(ProviderUnavailable, match="got no answer"):
        await write(sandbox, http, HS, WriteBatch("contacts", CREATE, creates({"email": "l@x.io"})))
    # Once: a create sent again might be written twice (a retried write, which knows its
    # first attempt may have written, can tell; this call cannot).
    routes = sandbox.state.counters.providers[HS].write_by_route
    assert routes["batch_create"] == 1
    # An update is the same whoever sends it: sent again after a lost answer.
    write_fault(sandbox, kind=FaultKind.DROP_CONNECTION, count=1)
    update = WriteBatch("contacts", UPDATE, [WriteItem({"firstname": "L"}, record_id=existing)])
    outcome = await write(sandbox, http, HS, update)
    assert outcome.items[0].success
    assert routes["batch_update"] == 2
    sandbox.state.faults.clear()


async def test_hubspot_write_retries_rate_limits_and_maps_failures(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    limited = write_fault(sandbox, kind=FaultKind.RATE_LIMIT, count=1, retry_after=0.2)
    outcome = await write(
        sandbox, http, HS, WriteBatch("contacts", CREATE, creates({"email": "r@x.io"}))
    )
    assert outcome.items[0].success and limited.fired == 1
    assert len(stored(sandbox, HS, "contacts")) == 1

    write_fault(sandbox, kind=FaultKind.SERVER_ERROR, http_status=503)
    with pytest.raises(ProviderUnavailable):
        await write(
            sandbox,
            http,
            HS,
            WriteBatch("contacts", CREATE, creates({"email": "s@x.io"})),
            max_wait=0.5,
        )
    sandbox.state.faults.clear()

    writer = HubSpotWriter()
    with pytest.raises(TokenRejected):
        await writer.write(
            http,
            sandbox.auth(HS, token="not-a-token"),
            WriteBatch("contacts", CREATE, creates({"email": "t@x.io"})),
        )


# Salesforce, against the sandbox ------------------------------------------------------


async def test_salesforce_single_create_update_delete(
    counted: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox = counted
    created = await write(
        sandbox,
        http,
        SF,
        WriteBatch("Account", CREATE, creates({"Name": "Acme", "AnnualRevenue": 5}), single=True),
    )
    (item,) = created.items
    assert (
        item.success
        and item.record_id
        and item.data
        == {
            "id": item.record_id,
            "success": True,
            "errors": [],
        }
    )
    assert stored(sandbox, SF, "Account")[item.record_id].fields["Name"] == "Acme"

    updated = await write(
        sandbox,
        http,
        SF,
        WriteBatch("Account", UPDATE, [WriteItem({"Phone": "555"}, item.record_id)], single=True),
    )
    assert updated.items[0].success and updated.items[0].record_id == item.record_id
    assert stored(sandbox, SF, "Account")[item.record_id].fields["Phone"] == "555"

    deleted = await write(
        sandbox,
        http,
        SF,
        WriteBatch("Account", DELETE, [WriteItem(record_id=item.record_id)], single=True),
    )
    assert deleted.items[0].success
    assert stored(sandbox, SF, "Account") == {}
    routes = sandbox.state.counters.providers[SF].write_by_route
    assert (routes["create"], routes["update"], routes["delete"]) == (1, 1, 1)


async def test_salesforce_single_refusals_are_outcomes_with_the_raw_answer(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    nameless = await write(
        sandbox, http, SF, WriteBatch("Account", CREATE, creates({"Phone": "1"}), single=True)
    )
    assert not nameless.items[0].success
    assert nameless.items[0].errors[0].startswith("REQUIRED_FIELD_MISSING: ")
    assert nameless.raw_response is not None
    assert orjson.loads(nameless.raw_response)[0]["errorCode"] == "REQUIRED_FIELD_MISSING"

    unknown = await write(
        sandbox,
        http,
        SF,
        WriteBatch("Account", CREATE, creates({"Name": "A", "Foo": 1}), single=True),
    )
    assert unknown.items[0].errors == [
        "INVALID_FIELD: No such column 'Foo' on sobject of type Account"
    ]

    missing = await write(
        sandbox,
        http,
        SF,
        WriteBatch("Account", DELETE, [WriteItem(record_id="001000000000404AAA")], single=True),
    )
    assert missing.items[0].errors[0].startswith("NOT_FOUND: ")
    retried = await write(
        sandbox,
        http,
        SF,
        WriteBatch(
            "Account",
            DELETE,
            [WriteItem(record_id="001000000000404AAA")],
            single=True,
            may_have_written=True,
        ),
    )
    assert retried.items[0].success and retried.raw_response is None
    assert retried.warnings and "earlier attempt" in retried.warnings[0]
    assert stored(sandbox, SF, "Account") == {}


async def test_salesforce_composite_reports_each_record_in_order(
    counted: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox = counted
    items = creates({"Name": "A"}, {"Phone": "no name"}, {"Name": "C"})
    outcome = await write(sandbox, http, SF, WriteBatch("Account", CREATE, items))
    a, b, c = outcome.items
    assert a.success and c.success and not b.success
    assert b.errors[0].startswith("REQUIRED_FIELD_MISSING: ")
    records = stored(sandbox, SF, "Account")
    assert {records[a.record_id].fields["Name"], records[c.record_id].fields["Name"]} == {"A", "C"}
    assert sandbox.state.counters.providers[SF].write_by_route["composite_create"] == 1

    updated = await write(
        sandbox,
        http,
        SF,
        WriteBatch(
            "Account",
            UPDATE,
            [
                WriteItem({"Phone": "1"}, a.record_id),
                WriteItem({"Phone": "2"}, "001000000000405AAA"),
            ],
        ),
    )
    assert [item.success for item in updated.items] == [True, False]
    assert stored(sandbox, SF, "Account")[a.record_id].fields["Phone"] == "1"

    deleted = await write(
        sandbox,
        http,
        SF,
        WriteBatch(
            "Account", DELETE, [WriteItem(record_id=a.record_id), WriteItem(record_id=c.record_id)]
        ),
    )
    assert all(item.success for item in deleted.items)
    assert stored(sandbox, SF, "Account") == {}


async def test_salesforce_all_or_none_writes_nothing_when_one_fails(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    items = creates({"Name": "A"}, {"Phone": "no name"})
    outcome = await write(sandbox, http, SF, WriteBatch("Account", CREATE, items, all_or_none=True))
    a, b = outcome.items
    assert not a.success and a.errors[0].startswith("ALL_OR_NONE_OPERATION_ROLLED_BACK: ")
    assert b.errors[0].startswith("REQUIRED_FIELD_MISSING: ")
    assert stored(sandbox, SF, "Account") == {}


async def test_salesforce_long_batches_are_split_unless_all_or_none(
    counted: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox = counted
    items = creates(*({"Name": f"N{n}"} for n in range(250)))
    atomic = await write(sandbox, http, SF, WriteBatch("Account", CREATE, items, all_or_none=True))
    assert not any(item.success for item in atomic.items)
    assert "at most 200" in atomic.items[0].errors[0]
    assert sandbox.state.counters.providers[SF].write_by_route == {}

    outcome = await write(sandbox, http, SF, WriteBatch("Account", CREATE, items))
    records = stored(sandbox, SF, "Account")
    assert [records[item.record_id].fields["Name"] for item in outcome.items] == [
        f"N{n}" for n in range(250)
    ]
    assert dict(sandbox.state.counters.providers[SF].write_batch_sizes) == {200: 1, 50: 1}
    assert MAY_HAVE_WRITTEN_TWICE not in outcome.warnings


async def test_salesforce_builder_headers_reach_every_request_but_never_the_credentials(
    counted: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    sandbox = counted
    headers = {
        "Sforce-Duplicate-Rule-Header": "allowSave=false",
        "Authorization": "Bearer not-the-connection",
    }
    first = await write(
        sandbox,
        http,
        SF,
        WriteBatch("Account", CREATE, creates({"Name": "Twin"}), headers=headers, single=True),
    )
    assert first.items[0].success  # the connection's own token was sent
    assert first.warnings == ["header 'Authorization' was not sent: the connector sets it"]
    second = await write(
        sandbox,
        http,
        SF,
        WriteBatch(
            "Account", CREATE, creates({"Name": "Twin"}, {"Name": "Other"}), headers=headers
        ),
    )
    twin, other = second.items
    assert twin.errors[0].startswith("DUPLICATES_DETECTED: ")
    assert other.success
    counters = sandbox.state.counters.providers[SF]
    assert counters.passthrough_headers["sforce-duplicate-rule-header"] == 2

    allowed = await write(
        sandbox, http, SF, WriteBatch("Account", CREATE, creates({"Name": "Twin"}), single=True)
    )
    assert allowed.items[0].success  # without the header, Salesforce allows duplicates


async def test_salesforce_retried_create_warns_it_may_have_written_twice(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    outcome = await write(
        sandbox,
        http,
        SF,
        WriteBatch("Account", CREATE, creates({"Name": "Again"}), may_have_written=True),
    )
    assert outcome.items[0].success and outcome.warnings == [MAY_HAVE_WRITTEN_TWICE]


async def test_salesforce_write_retries_rate_limits_and_maps_failures(
    sandbox: ServedSandbox, http: aiohttp.ClientSession
) -> None:
    limited = write_fault(sandbox, kind=FaultKind.RATE_LIMIT, count=1, retry_after=0.2)
    outcome = await write(sandbox, http, SF, WriteBatch("Account", CREATE, creates({"Name": "R"})))
    assert outcome.items[0].success and limited.fired == 1

    write_fault(sandbox, kind=FaultKind.SERVER_ERROR, http_status=500)
    with pytest.raises(ProviderUnavailable):
        await write(
            sandbox, http, SF, WriteBatch("Account", CREATE, creates({"Name": "S"})), max_wait=0.5
        )
    sandbox.state.faults.clear()
    with pytest.raises(TokenRejected):
        await SalesforceWriter().write(
            http,
            sandbox.auth(SF, token="not-a-token"),
            WriteBatch("Account", CREATE, creates({"Name": "T"}), single=True),
        )
    assert [r.fields["Name"] for r in stored(sandbox, SF, "Account").values()] == ["R"]


# Both, before any call -----------------------------------------------------------------


@pytest.mark.parametrize("provider", [HS, SF])
async def test_records_without_the_id_they_need_are_refused_before_any_call(
    counted: ServedSandbox, http: aiohttp.ClientSession, provider: Provider
) -> None:
    sandbox = counted
    name = "contacts" if provider is HS else "Account"
    batch = WriteBatch(name, UPDATE, [WriteItem({"a": 1}), WriteItem({"a": 2})], all_or_none=True)
    if provider is HS:  # HubSpot's updates are never all-or-none
        batch = WriteBatch(name, DELETE, [WriteItem(record_id="1"), WriteItem()], all_or_none=True)
    outcome = await write(sandbox, http, provider, batch)
    assert [item.success for item in outcome.items] == [False, False]
    assert any("needs its record_id" in error for item in outcome.items for error in item.errors)
    assert any(item.errors == [NOT_WRITTEN] for item in outcome.items) is (provider is HS)
    assert sandbox.state.counters.providers[provider].write_by_route == {}

    empty = await write(sandbox, http, provider, WriteBatch(name, CREATE, []))
    assert empty.items == []


def test_writer_for_names_what_exists() -> None:
    assert writer_for("hubspot").max_batch == 100
    assert writer_for("salesforce").max_batch == 200
    with pytest.raises(NoConnector) as caught:
        writer_for("asana")
    assert str(caught.value) == (
        "writing 'asana' records is not supported yet (writers exist for hubspot, salesforce)"
    )


# Documented answers the sandbox does not give -----------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Canned:
    """A provider that answers each request with the next canned (status, body)."""

    url: str
    answers: list[tuple[int, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def auth(self) -> ProviderAuth:
        return ProviderAuth(self.url, {"Authorization": "Bearer canned-secret-token"})


@pytest.fixture
async def canned() -> AsyncIterator[Canned]:
    provider = Canned(url="")

    async def answer(request: Request) -> Response:
        content = await request.body()
        provider.seen.append(
            Seen(
                request.method,
                request.url.path,
                dict(request.query_params),
                dict(request.headers),
                orjson.loads(content) if content else None,
            )
        )
        status, body = provider.answers.pop(0)
        content = b"" if body is None else orjson.dumps(body)
        return Response(content, status_code=status, media_type="application/json")

    methods = ["GET", "POST", "PATCH", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", answer, methods=methods)])
    async with serving_http(app, "127.0.0.1", 0) as port:
        provider.url = f"http://127.0.0.1:{port}"
        yield provider


def _hubspot_record(record_id: str, **properties: str) -> dict[str, Any]:
    return {"id": record_id, "properties": {"hs_object_id": record_id, **properties}}


async def test_hubspot_results_without_trace_ids_match_the_good_inputs_in_order(
    canned: Canned, http: aiohttp.ClientSession
) -> None:
    # HubSpot before it echoed objectWriteTraceId: results of the good inputs, errors
    # naming theirs.
    canned.answers.append(
        (
            207,
            {
                "status": "COMPLETE",
                "results": [_hubspot_record("11", email="a"), _hubspot_record("13", email="c")],
                "numErrors": 1,
                "errors": [
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": "Property values were not valid",
                        "context": {"objectWriteTraceId": ["1"]},
                    }
                ],
            },
        )
    )
    items = creates({"email": "a"}, {"email": "b"}, {"email": "c"})
    outcome = await HubSpotWriter().write(
        http, canned.auth(), WriteBatch("contacts", CREATE, items)
    )
    assert [(item.success, item.record_id) for item in outcome.items] == [
        (True, "11"),
        (False, ""),
        (True, "13"),
    ]
    assert outcome.items[1].errors == ["VALIDATION_ERROR: Property values were not valid"]
    (request,) = canned.seen
    assert request.path == "/crm/v3/objects/contacts/batch/create"
    assert [i["objectWriteTraceId"] for i in request.body["inputs"]] == ["0", "1", "2"]


async def test_hubspot_update_results_out_of_order_match_by_id(
    canned: Canned, http: aiohttp.ClientSession
) -> None:
    canned.answers.append(
        (
            207,
            {
                "status": "COMPLETE",
                "results": [
                    _hubspot_record("3", firstname="c"),
                    _hubspot_record("1", firstname="a"),
                ],
                "errors": [
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": "resource not found",
                        "context": {"ids": ["2"]},
                    }
                ],
            },
        )
    )
    items = [WriteItem({"firstname": v}, i) for i, v in (("1", "a"), ("2", "b"), ("3", "c"))]
    outcome = await HubSpotWriter().write(
        http, canned.auth(), WriteBatch("contacts", UPDATE, items)
    )
    assert [(item.success, item.record_id) for item in outcome.items] == [
        (True, "1"),
        (False, "2"),
        (True, "3"),
    ]
    assert outcome.items[2].data == _hubspot_record("3", firstname="c")


async def test_hubspot_rollback_that_fails_reports_what_remains(
    canned: Canned, http: aiohttp.ClientSession
) -> None:
    canned.answers += [
        (
            207,
            {
                "status": "COMPLETE",
                "results": [{**_hubspot_record("21"), "objectWriteTraceId": "0"}],
                "errors": [
                    {
                        "category": "VALIDATION_ERROR",
                        "message": "bad",
                        "context": {"objectWriteTraceId": ["1"]},
                    }
                ],
            },
        ),
        (400, {"status": "error", "category": "VALIDATION_ERROR", "message": "cannot archive"}),
    ]
    batch = WriteBatch("deals", CREATE, creates({"name": "a"}, {"name": "b"}), all_or_none=True)
    outcome = await HubSpotWriter().write(http, canned.auth(), batch)
    assert [(item.success, item.record_id) for item in outcome.items] == [(True, "21"), (False, "")]
    assert canned.seen[1].body == {"inputs": [{"id": "21"}]}
    (warning,) = outcome.warnings
    assert "cannot archive" in warning and "remain written" in warning


async def test_salesforce_whole_refusals_and_short_answers_fail_every_record_they_cover(
    canned: Canned, http: aiohttp.ClientSession
) -> None:
    canned.answers += [
        (400, [{"errorCode": "INVALID_BATCH_SIZE", "message": "too many records"}]),
        (200, [{"id": "001A", "success": True, "errors": []}]),
    ]
    batch = WriteBatch("Account", CREATE, creates({"Name": "a"}, {"Name": "b"}))
    refused = await SalesforceWriter().write(http, canned.auth(), batch)
    assert [item.errors for item in refused.items] == [["INVALID_BATCH_SIZE: too many records"]] * 2
    assert refused.raw_response is None  # raw answers are for single-record writes
    short = await SalesforceWriter().write(http, canned.auth(), batch)
    assert short.items[0].success and short.items[0].record_id == "001A"
    assert short.items[1].errors == ["Salesforce's answer did not say what became of this record"]
    assert canned.seen[0].path == "/services/data/v60.0/composite/sobjects"
    assert canned.seen[0].body == {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Account"}, "Name": "a"},
            {"attributes": {"type": "Account"}, "Name": "b"},
        ],
    }


async def test_salesforce_composite_delete_sends_ids_in_the_query(
    canned: Canned, http: aiohttp.ClientSession
) -> None:
    canned.answers.append(
        (
            200,
            [
                {"id": "001A", "success": True, "errors": []},
                {
                    "success": False,
                    "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "gone"}],
                },
            ],
        )
    )
    items = [WriteItem(record_id="001A"), WriteItem(record_id="001B")]
    batch = WriteBatch("Account", DELETE, items, all_or_none=True, may_have_written=True)
    outcome = await SalesforceWriter().write(http, canned.auth(), batch)
    assert [item.success for item in outcome.items] == [True, True]
    (request,) = canned.seen
    assert (request.method, request.query) == ("DELETE", {"ids": "001A,001B", "allOrNone": "true"})


@pytest.mark.parametrize("writer", [HubSpotWriter(), SalesforceWriter()])
async def test_credentials_echoed_back_never_reach_the_outcome(
    canned: Canned, http: aiohttp.ClientSession, writer: Writer
) -> None:
    echo = "token canned-secret-token is not allowed here"
    body: Any = (
        {"status": "error", "category": "VALIDATION_ERROR", "message": echo}
        if writer.provider == "hubspot"
        else [{"errorCode": "INVALID_FIELD", "message": echo}]
    )
    canned.answers.append((400, body))
    headers = {"Sforce-Auto-Assign": "FALSE", "content-type": "text/plain"}
    batch = WriteBatch("Thing", CREATE, creates({"a": 1}), headers=headers, single=True)
    outcome = await writer.write(http, canned.auth(), batch)
    assert "canned-secret-token" not in outcome.items[0].errors[0]
    assert "[redacted]" in outcome.items[0].errors[0]
    assert outcome.raw_response is not None and "canned-secret-token" not in outcome.raw_response
    (request,) = canned.seen
    assert request.headers["sforce-auto-assign"] == "FALSE"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer canned-secret-token"
    assert outcome.warnings == ["header 'content-type' was not sent: the connector sets it"]


@pytest.mark.parametrize("writer", [HubSpotWriter(), SalesforceWriter()])
async def test_a_single_write_carries_one_record(
    canned: Canned, http: aiohttp.ClientSession, writer: Writer
) -> None:
    two: Sequence[WriteItem] = creates({"a": 1}, {"a": 2})
    with pytest.raises(ValueError, match="one record, not 2"):
        await writer.write(http, canned.auth(), WriteBatch("x", CREATE, two, single=True))
    assert canned.seen == []
