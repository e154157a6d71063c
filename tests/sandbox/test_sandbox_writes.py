"""The sandbox's provider write APIs as the write connectors call them (a real sandbox
process, over HTTP): HubSpot's object and batch writes, Salesforce's sObject and
composite collection writes, their refusals, partial batches and allOrNone, the writes
seen by the next read, the WRITES fault endpoint, and the write counters."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
from ampmesh.sandbox.v1 import sandbox_pb2

from tests.support.sandbox import HS, SF, SF_TOKEN, bearer, client_token, duration, seed_records

OBJECTS = "/hubspot/crm/v3/objects"
CONTACTS = f"{OBJECTS}/contacts"
DATA = "/salesforce/services/data/v59.0"
SOBJECTS = f"{DATA}/sobjects"
COLLECTION = f"{DATA}/composite/sobjects"
BLOCK_DUPLICATES = {"Sforce-Duplicate-Rule-Header": "allowSave=false"}


async def _hubspot(http: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await client_token(http))


async def _salesforce(http: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await client_token(http, SF_TOKEN))


async def _list(http: httpx.AsyncClient, headers: dict[str, str], name: str) -> list[Any]:
    response = await http.get(f"{OBJECTS}/{name}", params={"limit": "100"}, headers=headers)
    assert response.status_code == 200, response.text
    assert "paging" not in response.json()
    return list(response.json()["results"])


async def _soql(http: httpx.AsyncClient, headers: dict[str, str], soql: str) -> list[Any]:
    response = await http.get(f"{DATA}/query", params={"q": soql}, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["records"])


async def _tick() -> None:
    """Let the clock pass a millisecond, the providers' time resolution."""
    await asyncio.sleep(0.005)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- HubSpot -------------------------------------------------------------------------


async def test_hubspot_create_update_archive(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 3)
    headers = await _hubspot(http)
    created = await http.post(
        CONTACTS,
        json={"properties": {"email": "ada@example.org", "firstname": "Ada", "phone": None}},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    record = created.json()
    assert set(record) == {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert record["archived"] is False and record["createdAt"] == record["updatedAt"]
    assert record["properties"] == {
        "hs_object_id": record["id"],
        "createdate": record["createdAt"],
        "hs_lastmodifieddate": record["updatedAt"],
        "email": "ada@example.org",
        "firstname": "Ada",
    }
    listed = {r["id"]: r for r in await _list(http, headers, "contacts")}
    assert len(listed) == 4 and listed[record["id"]] == record

    await _tick()
    updated = await http.patch(
        f"{CONTACTS}/{record['id']}",
        json={"properties": {"lastname": "Lovelace", "firstname": None}},
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    changed = updated.json()
    assert _time(changed["updatedAt"]) > _time(record["updatedAt"])
    assert changed["createdAt"] == record["createdAt"]
    assert changed["properties"]["lastname"] == "Lovelace"
    assert "firstname" not in changed["properties"]  # null clears a property
    # The next search finds it by its new modification time.
    found = await http.post(
        f"{CONTACTS}/search",
        json={
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GTE",
                            "value": changed["updatedAt"],
                        }
                    ]
                }
            ],
            "properties": ["lastname", "firstname"],
        },
        headers=headers,
    )
    assert [r["id"] for r in found.json()["results"]] == [record["id"]]
    assert found.json()["results"][0]["properties"]["firstname"] is None

    archived = await http.delete(f"{CONTACTS}/{record['id']}", headers=headers)
    assert archived.status_code == 204
    assert record["id"] not in {r["id"] for r in await _list(http, headers, "contacts")}
    for again in (
        await http.delete(f"{CONTACTS}/{record['id']}", headers=headers),
        await http.patch(f"{CONTACTS}/{record['id']}", json={"properties": {}}, headers=headers),
    ):
        assert again.status_code == 404
        assert again.json()["category"] == "OBJECT_NOT_FOUND"
        assert again.json()["message"] == "resource not found"


async def test_hubspot_keeps_values_as_text(sandbox: Any, http: httpx.AsyncClient) -> None:
    headers = await _hubspot(http)
    # An object the sandbox has no schema for takes any property.
    created = await http.post(
        f"{OBJECTS}/widgets",
        json={"properties": {"count": 3, "active": True, "ratio": 2.0, "share": 0.25}},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    properties = created.json()["properties"]
    assert (properties["count"], properties["active"], properties["ratio"]) == ("3", "true", "2")
    assert properties["share"] == "0.25"
    listed = await _list(http, headers, "widgets")
    assert listed[0]["properties"]["count"] == "3"


async def test_hubspot_refusals(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 2)
    await seed_records(sandbox, HS, "companies", 1)
    headers = await _hubspot(http)
    contacts = await _list(http, headers, "contacts")
    held = contacts[0]["properties"]["email"]

    unknown = await http.post(CONTACTS, json={"properties": {"foo": "x"}}, headers=headers)
    assert unknown.status_code == 400
    body = unknown.json()
    assert body["category"] == "VALIDATION_ERROR" and body["status"] == "error"
    assert body["message"] == (
        'Property values were not valid: [{"isValid":false,"message":"Property \\"foo\\" '
        'does not exist","error":"PROPERTY_DOESNT_EXIST","name":"foo"}]'
    )
    assert body["errors"] == [
        {
            "message": 'Property "foo" does not exist',
            "code": "PROPERTY_DOESNT_EXIST",
            "context": {"propertyName": ["foo"]},
        }
    ]
    assert body["correlationId"]

    taken = await http.post(CONTACTS, json={"properties": {"email": held.upper()}}, headers=headers)
    assert taken.status_code == 409
    assert taken.json()["category"] == "CONFLICT"
    assert taken.json()["message"] == f"Contact already exists. Existing ID: {contacts[0]['id']}"
    moved = await http.patch(
        f"{CONTACTS}/{contacts[1]['id']}", json={"properties": {"email": held}}, headers=headers
    )
    assert moved.status_code == 409
    assert moved.json()["message"].endswith(f"Existing ID: {contacts[0]['id']}")
    # A contact may keep its own email.
    kept = await http.patch(
        f"{CONTACTS}/{contacts[0]['id']}", json={"properties": {"email": held}}, headers=headers
    )
    assert kept.status_code == 200

    for properties in (
        {"company": "Acme"},  # neither email, firstname nor lastname
        {"email": "x@example.org", "firstname": {"first": "Ada"}},  # not a scalar
        {"email": "y@example.org", "hs_object_id": "1"},  # read-only
    ):
        refused = await http.post(CONTACTS, json={"properties": properties}, headers=headers)
        assert refused.status_code == 400, properties
        assert refused.json()["category"] == "VALIDATION_ERROR"

    company = (await _list(http, headers, "companies"))[0]["id"]
    types = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]
    nowhere = await http.post(
        CONTACTS,
        json={
            "properties": {"email": "z@example.org"},
            "associations": [{"to": {"id": "1"}, "types": types}],
        },
        headers=headers,
    )
    assert nowhere.status_code == 400
    assert nowhere.json()["message"] == "One or more associations are invalid"
    associated = await http.post(
        CONTACTS,
        json={
            "properties": {"email": "z@example.org"},
            "associations": [{"to": {"id": company}, "types": types}],
        },
        headers=headers,
    )
    assert associated.status_code == 201, associated.text
    again = await http.post(
        CONTACTS, json={"properties": {"email": "Z@example.org"}}, headers=headers
    )
    assert again.status_code == 409
    assert again.json()["message"].endswith(f"Existing ID: {associated.json()['id']}")
    # Nothing refused was written.
    assert len(await _list(http, headers, "contacts")) == 3


async def test_hubspot_batches(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 2)
    headers = await _hubspot(http)
    seeded = await _list(http, headers, "contacts")

    inputs = [
        {"properties": {"email": f"batch{i}@example.org"}, "objectWriteTraceId": str(i)}
        for i in range(3)
    ]
    inputs[1]["properties"] = {"email": "bad@example.org", "foo": "x"}
    partial = await http.post(f"{CONTACTS}/batch/create", json={"inputs": inputs}, headers=headers)
    assert partial.status_code == 207, partial.text
    body = partial.json()
    assert body["status"] == "COMPLETE" and body["numErrors"] == 1
    assert {"startedAt", "completedAt"} <= set(body)
    by_trace = {r["objectWriteTraceId"]: r for r in body["results"]}
    assert set(by_trace) == {"0", "2"}
    assert by_trace["2"]["properties"]["email"] == "batch2@example.org"
    [error] = body["errors"]
    assert error["status"] == "error" and error["category"] == "VALIDATION_ERROR"
    assert error["context"] == {"objectWriteTraceId": ["1"]}
    assert "foo" in error["message"]
    listed = {r["id"] for r in await _list(http, headers, "contacts")}
    assert listed == {r["id"] for r in seeded} | {r["id"] for r in body["results"]}

    # Two inputs with one email: the second meets the first.
    clash = await http.post(
        f"{CONTACTS}/batch/create",
        json={
            "inputs": [
                {"properties": {"email": "same@example.org"}, "objectWriteTraceId": "0"},
                {"properties": {"email": "same@example.org"}, "objectWriteTraceId": "1"},
            ]
        },
        headers=headers,
    )
    assert clash.status_code == 207
    [first] = clash.json()["results"]
    assert clash.json()["errors"][0]["category"] == "CONFLICT"
    assert clash.json()["errors"][0]["message"].endswith(f"Existing ID: {first['id']}")

    complete = await http.post(
        f"{CONTACTS}/batch/create",
        json={"inputs": [{"properties": {"firstname": "Grace"}, "objectWriteTraceId": "0"}]},
        headers=headers,
    )
    assert complete.status_code == 201
    assert "numErrors" not in complete.json() and len(complete.json()["results"]) == 1

    for size in (0, 101):
        batch = [{"properties": {"firstname": f"n{i}"}} for i in range(size)]
        refused = await http.post(
            f"{CONTACTS}/batch/create", json={"inputs": batch}, headers=headers
        )
        assert refused.status_code == 400, size
        assert refused.json()["category"] == "VALIDATION_ERROR"

    await _tick()
    target = seeded[0]["id"]
    updated = await http.post(
        f"{CONTACTS}/batch/update",
        json={
            "inputs": [
                {"id": target, "properties": {"lastname": "Hopper"}, "objectWriteTraceId": "0"},
                {"id": "999", "properties": {"lastname": "Nobody"}, "objectWriteTraceId": "1"},
            ]
        },
        headers=headers,
    )
    assert updated.status_code == 207, updated.text
    [result] = updated.json()["results"]
    assert result["id"] == target and result["objectWriteTraceId"] == "0"
    assert result["properties"]["lastname"] == "Hopper"
    assert _time(result["updatedAt"]) > _time(seeded[0]["updatedAt"])
    [missing] = updated.json()["errors"]
    assert missing["category"] == "OBJECT_NOT_FOUND"
    assert missing["context"] == {"ids": ["999"], "objectWriteTraceId": ["1"]}
    fine = await http.post(
        f"{CONTACTS}/batch/update",
        json={"inputs": [{"id": target, "properties": {"lastname": "Liskov"}}]},
        headers=headers,
    )
    assert fine.status_code == 200 and "objectWriteTraceId" not in fine.json()["results"][0]

    twice = await http.post(
        f"{CONTACTS}/batch/update",
        json={"inputs": [{"id": target, "properties": {}}, {"id": target, "properties": {}}]},
        headers=headers,
    )
    assert twice.status_code == 400 and "Duplicate IDs" in twice.json()["message"]
    not_json = await http.post(f"{CONTACTS}/batch/update", content=b"{", headers=headers)
    assert not_json.status_code == 400 and not_json.json()["category"] == "VALIDATION_ERROR"

    archived = await http.post(
        f"{CONTACTS}/batch/archive",
        json={"inputs": [{"id": target}, {"id": "999"}]},
        headers=headers,
    )
    assert archived.status_code == 204
    assert target not in {r["id"] for r in await _list(http, headers, "contacts")}


# --- Salesforce ----------------------------------------------------------------------


async def test_salesforce_create_update_delete(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, SF, "Account", 3)
    headers = await _salesforce(http)
    created = await http.post(
        f"{SOBJECTS}/Account/",
        json={"Name": "Ampersand", "AnnualRevenue": 5000, "Phone": ""},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["success"] is True and body["errors"] == []
    record_id = body["id"]
    assert record_id.startswith("001") and len(record_id) == 18
    soql = "SELECT Id, Name, AnnualRevenue, Phone, LastModifiedDate FROM Account"
    [row] = [r for r in await _soql(http, headers, soql) if r["Id"] == record_id]
    # Salesforce answers typed values; an empty string is stored as null.
    assert (row["Name"], row["AnnualRevenue"], row["Phone"]) == ("Ampersand", 5000, None)
    assert await _soql(http, headers, f"{soql} WHERE Name = 'Ampersand'") == [row]

    await _tick()
    updated = await http.patch(
        f"{DATA.replace('v59.0', 'v60.0')}/sobjects/Account/{record_id}",
        json={"BillingCity": "Lisbon", "AnnualRevenue": None},
        headers=headers,
    )
    assert updated.status_code == 204, updated.text
    [after] = await _soql(
        http,
        headers,
        "SELECT Id, BillingCity, AnnualRevenue, Name, LastModifiedDate FROM Account "
        "WHERE Name = 'Ampersand'",
    )
    assert (after["BillingCity"], after["AnnualRevenue"]) == ("Lisbon", None)
    assert after["LastModifiedDate"] > row["LastModifiedDate"]

    deleted = await http.delete(f"{SOBJECTS}/Account/{record_id}", headers=headers)
    assert deleted.status_code == 204
    assert await _soql(http, headers, f"{soql} WHERE Name = 'Ampersand'") == []
    # In the recycle bin now: Salesforce says so rather than not finding it.
    gone = await http.delete(f"{SOBJECTS}/Account/{record_id}", headers=headers)
    assert gone.status_code == 404
    assert gone.json() == [
        {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}
    ]
    malformed = await http.patch(f"{SOBJECTS}/Account/nope", json={}, headers=headers)
    assert malformed.status_code == 400
    assert malformed.json()[0]["errorCode"] == "MALFORMED_ID"


async def test_salesforce_refusals(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, SF, "Account", 1)
    headers = await _salesforce(http)
    [existing] = await _soql(http, headers, "SELECT Id, Name FROM Account")

    async def refusal(path: str, body: dict[str, Any], **extra: str) -> dict[str, Any]:
        response = await http.post(path, json=body, headers={**headers, **extra})
        assert response.status_code == 400, response.text
        [error] = response.json()
        return dict(error)

    unknown = await refusal(f"{SOBJECTS}/Account", {"Name": "A", "Foo": 1})
    assert unknown == {
        "message": "No such column 'Foo' on sobject of type Account",
        "errorCode": "INVALID_FIELD",
        "fields": ["Foo"],
    }
    no_name = await refusal(f"{SOBJECTS}/Account", {"Industry": "Retail"})
    assert no_name["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert no_name["message"] == "Required fields are missing: [Name]"
    assert no_name["fields"] == ["Name"]
    no_last = await refusal(f"{SOBJECTS}/Contact", {"FirstName": "Ada"})
    assert no_last["fields"] == ["LastName"]

    duplicate = await refusal(f"{SOBJECTS}/Account", {"Name": existing["Name"]}, **BLOCK_DUPLICATES)
    assert duplicate["errorCode"] == "DUPLICATES_DETECTED"
    assert duplicate["message"] == "Use one of these records?"
    matched = duplicate["duplicateResult"]["matchResults"][0]["matchRecords"][0]
    assert matched["record"]["Id"] == existing["Id"]
    # Without the header, Salesforce allows the duplicate.
    allowed = await http.post(
        f"{SOBJECTS}/Account", json={"Name": existing["Name"]}, headers=headers
    )
    assert allowed.status_code == 201
    missing = await http.patch(f"{SOBJECTS}/Account/001000000000000AAA", json={}, headers=headers)
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"


async def test_salesforce_collections(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, SF, "Account", 2)
    headers = await _salesforce(http)
    count = "SELECT Id, Name FROM Account"
    seeded = await _soql(http, headers, count)

    def account(**fields: Any) -> dict[str, Any]:
        return {"attributes": {"type": "Account"}, **fields}

    partial = await http.post(
        COLLECTION,
        json={
            "allOrNone": False,
            "records": [account(Name="One"), account(Industry="Retail"), account(Name="Three")],
        },
        headers=headers,
    )
    assert partial.status_code == 200, partial.text
    one, bad, three = partial.json()
    assert one["success"] and three["success"] and one["errors"] == []
    assert bad == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Name]",
                "fields": ["Name"],
            }
        ],
    }
    assert len(await _soql(http, headers, count)) == 4

    rolled = await http.post(
        COLLECTION,
        json={"allOrNone": True, "records": [account(Name="Four"), account(Foo="x")]},
        headers=headers,
    )
    assert rolled.status_code == 200
    kept, failed = rolled.json()
    assert kept == {
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the "
                "request was using AllOrNone header",
                "fields": [],
            }
        ],
    }
    assert failed["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert len(await _soql(http, headers, count)) == 4

    await _tick()
    updates = await http.patch(
        COLLECTION,
        json={
            "allOrNone": False,
            "records": [
                account(id=one["id"], Name="Uno"),
                account(id="001000000000000AAA", Name="Nobody"),
                account(id="bad", Name="Bad"),
            ],
        },
        headers=headers,
    )
    assert updates.status_code == 200
    renamed, unknown, malformed = updates.json()
    assert renamed == {"id": one["id"], "success": True, "errors": []}
    assert unknown["errors"][0]["statusCode"] == "NOT_FOUND"
    assert malformed["errors"][0]["statusCode"] == "MALFORMED_ID"
    names = {r["Id"]: r["Name"] for r in await _soql(http, headers, count)}
    assert names[one["id"]] == "Uno"

    ids = [seeded[0]["Id"], "001000000000000AAA"]
    all_or_none = await http.delete(
        COLLECTION, params={"ids": ",".join(ids), "allOrNone": "true"}, headers=headers
    )
    assert [r["success"] for r in all_or_none.json()] == [False, False]
    assert all_or_none.json()[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert len(await _soql(http, headers, count)) == 4
    some = await http.delete(
        COLLECTION, params={"ids": ",".join(ids), "allOrNone": "false"}, headers=headers
    )
    assert some.json()[0] == {"id": seeded[0]["Id"], "success": True, "errors": []}
    assert some.json()[1]["errors"][0]["statusCode"] == "NOT_FOUND"
    assert seeded[0]["Id"] not in {r["Id"] for r in await _soql(http, headers, count)}

    too_many = await http.post(
        COLLECTION,
        json={"records": [account(Name=f"n{i}") for i in range(201)]},
        headers=headers,
    )
    assert too_many.status_code == 400
    assert too_many.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


async def test_salesforce_record_errors_in_a_collection(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    await seed_records(sandbox, SF, "Account", 1)
    headers = await _salesforce(http)
    [existing] = await _soql(http, headers, "SELECT Id, Name FROM Account")
    created = await http.post(
        COLLECTION,
        json={
            "records": [
                {"Name": "No type"},
                {"attributes": {"type": "Account"}, "Id": existing["Id"], "Name": "With id"},
                {"attributes": {"type": "Account"}, "Name": "Old", "CreatedDate": "2020-01-01"},
                {"attributes": {"type": "Account"}, "Name": ["not", "text"]},
                # Object and field names are case-insensitive; kept as the org spells them.
                {"attributes": {"type": "account"}, "name": "Lower"},
            ]
        },
        headers=headers,
    )
    assert created.status_code == 200, created.text
    codes = [r["errors"][0]["statusCode"] if r["errors"] else "" for r in created.json()]
    assert codes == [
        "INVALID_TYPE",
        "INVALID_FIELD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "JSON_PARSER_ERROR",
        "",
    ]
    rows = await _soql(http, headers, "SELECT Id, Name FROM Account WHERE Name = 'Lower'")
    assert [r["Id"] for r in rows] == [created.json()[4]["id"]]

    updated = await http.patch(
        COLLECTION,
        json={
            "records": [
                {"attributes": {"type": "Account"}, "Name": "No id"},
                {"attributes": {"type": "Account"}, "id": existing["Id"], "Name": "First"},
                {"attributes": {"type": "Account"}, "id": existing["Id"], "Name": "Again"},
                {"attributes": {"type": "Account"}, "id": rows[0]["Id"], "Name": None},
            ]
        },
        headers=headers,
    )
    results = updated.json()
    assert results[0]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert results[1] == {"id": existing["Id"], "success": True, "errors": []}
    assert results[2]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    # Clearing a required field is refused on update too.
    assert results[3]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    names = await _soql(http, headers, "SELECT Id, Name FROM Account")
    assert {r["Name"] for r in names} == {"First", "Lower"}


# --- faults and counters -------------------------------------------------------------


async def _inject(sandbox: Any, endpoint: Any, **fault: Any) -> None:
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT, endpoint=endpoint, **fault
            )
        )
    )


async def test_write_faults_spare_reads(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 1)
    headers = await _hubspot(http)
    sf_headers = await _salesforce(http)
    await _inject(sandbox, sandbox_pb2.FAULT_ENDPOINT_WRITES, count=3, retry_after=duration(2))
    limited = await http.post(CONTACTS, json={"properties": {"firstname": "A"}}, headers=headers)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["category"] == "RATE_LIMITS"
    # Reads are not writes: the fault lets them through and does not count them.
    assert len(await _list(http, headers, "contacts")) == 1
    batch = await http.post(
        f"{CONTACTS}/batch/archive", json={"inputs": [{"id": "1"}]}, headers=headers
    )
    assert batch.status_code == 429
    sf_limited = await http.post(f"{SOBJECTS}/Account", json={"Name": "A"}, headers=sf_headers)
    assert sf_limited.status_code == 429 and sf_limited.headers["retry-after"] == "2"
    assert sf_limited.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert len(await _list(http, headers, "contacts")) == 1  # nothing was written

    # A RECORDS fault is the reads': writes pass it by.
    await _inject(sandbox, sandbox_pb2.FAULT_ENDPOINT_RECORDS, count=1)
    written = await http.post(CONTACTS, json={"properties": {"firstname": "B"}}, headers=headers)
    assert written.status_code == 201
    read = await http.get(CONTACTS, headers=headers)
    assert read.status_code == 429

    unauthenticated = await http.post(CONTACTS, json={"properties": {"firstname": "C"}})
    assert unauthenticated.status_code == 401


async def test_write_counters(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 2)
    headers = await _hubspot(http)
    sf_headers = await _salesforce(http)
    await http.post(CONTACTS, json={"properties": {"firstname": "A"}}, headers=headers)
    await http.post(
        f"{CONTACTS}/batch/create",
        json={"inputs": [{"properties": {"firstname": f"B{i}"}} for i in range(3)]},
        headers=headers,
    )
    await http.post(
        COLLECTION,
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "X"},
                {"attributes": {"type": "Account"}},
            ],
        },
        headers={**sf_headers, **BLOCK_DUPLICATES, "Sforce-Auto-Assign": "false"},
    )
    await http.post(f"{SOBJECTS}/Account", json={"Name": "Y"}, headers=sf_headers)

    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    assert dict(counters.write_requests_by_route) == {
        "create": 2,
        "batch_create": 1,
        "composite_create": 1,
    }
    # The rolled-back collection wrote nothing.
    assert counters.records_written == 1 + 3 + 1
    assert dict(counters.write_batch_sizes) == {3: 1, 2: 1}
    assert dict(counters.passthrough_headers) == {
        "sforce-duplicate-rule-header": 1,
        "sforce-auto-assign": 1,
    }
    by_provider = {p.provider: p for p in counters.providers}
    assert dict(by_provider[HS].write_requests_by_route) == {"create": 1, "batch_create": 1}
    assert by_provider[HS].records_written == 4
    assert by_provider[SF].records_written == 1
    assert dict(by_provider[SF].passthrough_headers) == dict(counters.passthrough_headers)

    await sandbox.Reset(sandbox_pb2.ResetRequest(scopes=[sandbox_pb2.RESET_SCOPE_COUNTERS]))
    zeroed = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    assert not zeroed.write_requests_by_route and zeroed.records_written == 0
    assert not zeroed.write_batch_sizes and not zeroed.passthrough_headers


async def test_hubspot_reads_one_record_by_id(sandbox: Any, http: httpx.AsyncClient) -> None:
    headers = await _hubspot(http)
    created = await http.post(
        f"{OBJECTS}/deals", json={"properties": {"name": "One", "amount": "5"}}, headers=headers
    )
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]
    got = await http.get(f"{OBJECTS}/deals/{record_id}?properties=amount", headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == record_id
    assert got.json()["properties"]["amount"] == "5"
    missing = await http.get(f"{OBJECTS}/deals/999", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND"
