"""Operations through the edge: an installation's operations page by page, one operation,
its logs, and an object's backfill progress, each confined to the caller's project.

The tests put rows into the tables scribe fills, straight into the stack's PostgreSQL,
so each case holds exactly the operations it needs (tests/e2e/test_scribe_operations.py
and test_reads.py cover what scribe writes), and read them back over REST and gRPC.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from ampmesh.platform.v1 import operations_pb2, operations_pb2_grpc
from google.protobuf import json_format

from tests.e2e.conformance import assert_conforms
from tests.support.control_plane import (
    bearer,
    client,
    create_api_key,
    customer_claims,
    database_url,
    new_rsa_key,
    problem,
    register_jwt_key,
    sign_jwt,
    spki_pem,
)
from tests.support.operations import (
    BACKFILL,
    GET,
    LIST,
    LOGS,
    Installation,
    new_installation,
    new_project,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

EPOCH = datetime(2025, 2, 13, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def db(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=2) as pool:
        yield pool


async def new_operation(
    db: asyncpg.Pool,
    installation: Installation,
    created_at: datetime,
    *,
    action_type: str = "read",
    status: str = "success",
    result: str = "[contact] No new data found",
    metadata: dict[str, Any] | None = None,
    operation_id: uuid.UUID | None = None,
) -> str:
    row = await db.fetchval(
        "INSERT INTO operations (id, project_id, integration_id, installation_id, config_id, "
        "action_type, status, result, metadata, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10) RETURNING id",
        operation_id or uuid.uuid4(),
        uuid.UUID(installation.project_id),
        uuid.UUID(installation.integration_id),
        uuid.UUID(installation.id),
        uuid.uuid4(),
        action_type,
        status,
        result,
        json.dumps(metadata or {"objects": ["contact"]}),
        created_at,
    )
    return str(row)


async def test_operations_come_newest_first_a_page_at_a_time(
    admin: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    installation = await new_installation(db, await new_project(admin))
    # Two operations share a start time: the list breaks the tie by id, so paging neither
    # skips nor repeats one of them.
    starts = [EPOCH, EPOCH + timedelta(seconds=1), EPOCH + timedelta(seconds=1)]
    starts += [EPOCH + timedelta(seconds=2), EPOCH + timedelta(seconds=3)]
    created = [(start, await new_operation(db, installation, start)) for start in starts]
    expected = [op for _, op in sorted(created, key=lambda c: (c[0], c[1]), reverse=True)]

    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"pageSize": 2}
    while True:
        response = await admin.get(installation.operations_path(), params=params)
        assert response.status_code == 200, response.text
        assert_conforms(response, "GET", LIST)
        pages.append(response.json())
        # REST prints the proto's unset next_page_token as "" (the edge prints every
        # primitive field), where the reference leaves it out: either way, no next page.
        token = pages[-1]["pagination"].get("nextPageToken")
        if not token:
            break
        params = {"pageSize": 2, "pageToken": token}
        assert len(pages) < 5, "the list does not end"

    assert [len(p["results"]) for p in pages] == [2, 2, 1]
    assert [p["pagination"]["done"] for p in pages] == [False, False, True]
    assert [op["id"] for p in pages for op in p["results"]] == expected
    first = pages[0]["results"][0]
    assert first["projectId"] == installation.project_id
    assert first["integrationId"] == installation.integration_id
    assert first["installationId"] == installation.id
    assert first["actionType"] == "read" and first["status"] == "success"
    assert first["createTime"] == "2025-02-13T10:00:03Z"
    # The edge prints empty repeated fields, so a read shows no successful record ids as [].
    assert first["metadata"] == {"objects": ["contact"], "successfulRecordIds": []}

    # The project's name works in the path as well as its id.
    by_name = await admin.get(installation.operations_path(installation.project_name))
    assert [op["id"] for op in by_name.json()["results"]] == expected


async def test_an_installation_without_operations_lists_an_empty_last_page(
    admin: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    installation = await new_installation(db, await new_project(admin))
    response = await admin.get(installation.operations_path())
    assert response.status_code == 200, response.text
    assert response.json()["results"] == []
    assert response.json()["pagination"]["done"] is True
    assert not response.json()["pagination"].get("nextPageToken")


async def test_page_size_defaults_to_200_and_is_capped_at_1000(
    admin: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    installation = await new_installation(db, await new_project(admin))
    await db.execute(
        "INSERT INTO operations (project_id, integration_id, installation_id, config_id, "
        "action_type, status, created_at) "
        "SELECT $1, $2, $3, gen_random_uuid(), 'read', 'success', "
        "$4::timestamptz + n * interval '1 second' "
        "FROM generate_series(1, 1001) AS n",
        uuid.UUID(installation.project_id),
        uuid.UUID(installation.integration_id),
        uuid.UUID(installation.id),
        EPOCH,
    )
    default = (await admin.get(installation.operations_path())).json()
    assert len(default["results"]) == 200 and default["pagination"]["done"] is False

    capped = (await admin.get(installation.operations_path(), params={"pageSize": 5000})).json()
    assert len(capped["results"]) == 1000 and capped["pagination"]["done"] is False
    rest = (
        await admin.get(
            installation.operations_path(),
            params={"pageSize": 1000, "pageToken": capped["pagination"]["nextPageToken"]},
        )
    ).json()
    assert len(rest["results"]) == 1 and rest["pagination"]["done"] is True
    assert not rest["pagination"].get("nextPageToken")
    assert rest["results"][0]["createTime"] == "2025-02-13T10:00:01Z"  # the oldest

    for bad in (0, -1):
        refused = problem(
            await admin.get(installation.operations_path(), params={"pageSize": bad}), 400
        )
        assert [(i["in"], i["name"]) for i in refused["issues"]] == [("query", "pageSize")]
        assert "1000" in refused["issues"][0]["detail"]
    problem(await admin.get(installation.operations_path(), params={"pageSize": "ten"}), 400)


async def test_page_tokens_of_another_list_or_forged_ones_are_refused(
    admin: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    project = await new_project(admin)
    mine = await new_installation(db, project, "acme")
    other = await new_installation(db, project, "globex")
    for index in range(3):
        await new_operation(db, mine, EPOCH + timedelta(seconds=index))
        await new_operation(db, other, EPOCH + timedelta(seconds=index))
    other_token = (await admin.get(other.operations_path(), params={"pageSize": 1})).json()[
        "pagination"
    ]["nextPageToken"]
    own_token = (await admin.get(mine.operations_path(), params={"pageSize": 1})).json()[
        "pagination"
    ]["nextPageToken"]
    padded = own_token + "=" * (-len(own_token) % 4)
    fields = json.loads(base64.urlsafe_b64decode(padded))
    wrong_version = base64.urlsafe_b64encode(json.dumps([99, *fields[1:]]).encode()).decode()

    for token in (other_token, "not-a-token", "%%%", wrong_version, own_token[:-6]):
        refused = problem(await admin.get(mine.operations_path(), params={"pageToken": token}), 400)
        assert [(i["in"], i["name"]) for i in refused["issues"]] == [("query", "pageToken")]
        assert "nextPageToken" in refused["issues"][0]["detail"]
    # The token of this list still works after the refusals.
    page = await admin.get(mine.operations_path(), params={"pageToken": own_token})
    assert page.status_code == 200 and len(page.json()["results"]) == 2


async def test_get_operation_shows_its_metadata(admin: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    installation = await new_installation(db, await new_project(admin))
    operation_id = uuid.uuid4()
    metadata = {
        "objects": ["contact"],
        "retry": {"attempts": 2, "lastAttempt": "2025-02-13T10:05:00Z"},
        "progress": {
            "installationId": installation.id,
            "objectName": "contact",
            "operationId": str(operation_id),
            "recordsProcessed": 0,
        },
        "successfulRecordIds": [],
        "workflowId": "read-backfill/x/contact",  # scribe's own bookkeeping: not shown
    }
    await new_operation(
        db,
        installation,
        EPOCH,
        status="in_progress",
        result="",
        metadata=metadata,
        operation_id=operation_id,
    )
    response = await admin.get(
        f"/v1/projects/{installation.project_name}/operations/{operation_id}"
    )
    assert response.status_code == 200, response.text
    assert_conforms(response, "GET", GET)
    operation = response.json()
    assert operation["id"] == str(operation_id) and operation["status"] == "in_progress"
    assert operation["metadata"] == {
        "objects": ["contact"],
        "retry": {"attempts": 2, "lastAttempt": "2025-02-13T10:05:00Z"},
        "progress": {
            "installationId": installation.id,
            "objectName": "contact",
            "operationId": str(operation_id),
            "recordsProcessed": 0,  # printed although zero
        },
        "successfulRecordIds": [],
    }

    for missing in (str(uuid.uuid4()), "not-an-id"):
        gone = problem(
            await admin.get(f"/v1/projects/{installation.project_id}/operations/{missing}"), 404
        )
        assert missing in gone["detail"]


async def test_logs_come_oldest_first_as_a_bare_array(
    admin: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    installation = await new_installation(db, await new_project(admin))
    operation = await new_operation(db, installation, EPOCH)
    quiet = await new_operation(db, installation, EPOCH + timedelta(seconds=1))
    entries = [  # written out of order, as concurrent activities may
        (EPOCH + timedelta(seconds=3), "ERROR", {"msg": "page 2 failed", "error": "HTTP 503"}),
        (EPOCH + timedelta(seconds=1), "INFO", {"msg": "read started", "operation_id": operation}),
        (
            EPOCH + timedelta(seconds=2),
            "DEBUG",
            {"msg": "page 1", "details": {"request": "GET /services/data/v60.0/query"}},
        ),
    ]
    for logged_at, severity, message in entries:
        await db.execute(
            "INSERT INTO operation_logs (project_id, operation_id, logged_at, severity, message) "
            "VALUES ($1, $2, $3, $4, $5::jsonb)",
            uuid.UUID(installation.project_id),
            uuid.UUID(operation),
            logged_at,
            severity,
            json.dumps(message),
        )
    path = f"/v1/projects/{installation.project_id}/operations/{operation}/logs"
    response = await admin.get(path)
    assert response.status_code == 200, response.text
    assert_conforms(response, "GET", LOGS)
    logs = response.json()
    assert [log["severity"] for log in logs] == ["INFO", "DEBUG", "ERROR"]
    assert [log["timestamp"] for log in logs] == [
        "2025-02-13T10:00:01Z",
        "2025-02-13T10:00:02Z",
        "2025-02-13T10:00:03Z",
    ]
    assert logs[1]["message"]["details"] == {"request": "GET /services/data/v60.0/query"}
    assert logs[2]["message"]["msg"] == "page 2 failed"
    assert logs[2]["message"]["error"] == "HTTP 503"
    # Every entry names its operation, whether or not its writer did.
    assert {log["message"]["operation_id"] for log in logs} == {operation}

    none = await admin.get(f"/v1/projects/{installation.project_id}/operations/{quiet}/logs")
    assert none.status_code == 200 and none.json() == []
    problem(
        await admin.get(f"/v1/projects/{installation.project_id}/operations/{uuid.uuid4()}/logs"),
        404,
    )


async def test_backfill_progress_is_the_newest_backfills_or_404(
    admin: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    installation = await new_installation(db, await new_project(admin))
    missing = problem(await admin.get(installation.backfill_path("contact")), 404)
    assert "contact" in missing["detail"]

    async def backfill(
        created_at: datetime, processed: int, estimate: int | None, object_name: str = "contact"
    ) -> str:
        operation = await new_operation(db, installation, created_at)
        await db.execute(
            "INSERT INTO backfill_progress (operation_id, object_name, project_id, "
            "installation_id, records_processed, records_estimated_total, created_at, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            uuid.UUID(operation),
            object_name,
            uuid.UUID(installation.project_id),
            uuid.UUID(installation.id),
            processed,
            estimate,
            created_at,
            created_at + timedelta(minutes=5) if processed else None,
        )
        return operation

    first = await backfill(EPOCH, 0, None)
    response = await admin.get(installation.backfill_path("contact"))
    assert response.status_code == 200, response.text
    assert_conforms(response, "GET", BACKFILL)
    assert response.json() == {
        "installationId": installation.id,
        "objectName": "contact",
        "operationId": first,
        "recordsProcessed": 0,  # printed although zero; no estimate: absent
        "createTime": "2025-02-13T10:00:00Z",
        "updateTime": "2025-02-13T10:00:00Z",
    }

    second = await backfill(EPOCH + timedelta(hours=1), 1250, 5000)
    await backfill(EPOCH + timedelta(hours=2), 7, None, object_name="account")
    latest = (await admin.get(installation.backfill_path("contact"))).json()
    assert latest["operationId"] == second
    assert (latest["recordsProcessed"], latest["recordsEstimatedTotal"]) == (1250, 5000)
    assert latest["updateTime"] == "2025-02-13T11:05:00Z"
    problem(await admin.get(installation.backfill_path("lead")), 404)


async def test_nothing_of_a_project_is_visible_to_another_projects_key(
    stack: Stack, admin: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    project_a, project_b = await new_project(admin), await new_project(admin)
    installation = await new_installation(db, project_a)
    operation = await new_operation(db, installation, EPOCH)
    await db.execute(
        "INSERT INTO backfill_progress (operation_id, object_name, project_id, installation_id) "
        "VALUES ($1, 'contact', $2, $3)",
        uuid.UUID(operation),
        uuid.UUID(installation.project_id),
        uuid.UUID(installation.id),
    )
    other_integration = await new_installation(db, project_a)
    key_a = await create_api_key(admin, project_a["id"], ["full"])
    key_b = await create_api_key(admin, project_b["id"], ["full"])

    def paths(project: str, integration: str = installation.integration_id) -> list[str]:
        return [
            f"/v1/projects/{project}/integrations/{integration}/installations/"
            f"{installation.id}/operations",
            f"/v1/projects/{project}/integrations/{integration}/installations/"
            f"{installation.id}/objects/contact/backfill-progress",
            f"/v1/projects/{project}/operations/{operation}",
            f"/v1/projects/{project}/operations/{operation}/logs",
        ]

    async with client(stack) as http:
        for path in paths(project_a["id"]):
            allowed = await http.get(path, headers={"X-Api-Key": key_a})
            assert allowed.status_code == 200, (path, allowed.text)
        # B's key, with A's project in the path or its own: A's things do not exist.
        for path in paths(project_a["id"]) + paths(project_a["name"]) + paths(project_b["id"]):
            refused = problem(await http.get(path, headers={"X-Api-Key": key_b}), 404)
            # The answer tells nothing the caller did not send.
            for secret in (project_a["id"], project_a["name"], installation.group_ref):
                assert secret in path or secret not in refused["detail"]
        # A's installation named under another integration of A's: not found either.
        for path in paths(project_a["id"], other_integration.integration_id)[:2]:
            problem(await http.get(path, headers={"X-Api-Key": key_a}), 404)
        for path in paths(project_a["id"]):
            problem(await http.get(path), 401)


async def test_a_customer_jwt_sees_only_its_own_groups_operations(
    stack: Stack, admin: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    project = await new_project(admin)
    own, other = (
        await new_installation(db, project, "acme"),
        await new_installation(db, project, "globex"),
    )
    own_operation = await new_operation(db, own, EPOCH)
    other_operation = await new_operation(db, other, EPOCH)
    private = new_rsa_key()
    kid = await register_jwt_key(admin, project["id"], spki_pem(private.public_key()))
    token = sign_jwt(private, customer_claims(groupRef="acme"), kid)
    base = f"/v1/projects/{project['id']}"
    async with client(stack, headers=bearer(token)) as customer:
        listed = await customer.get(own.operations_path())
        assert listed.status_code == 200, listed.text
        assert [op["id"] for op in listed.json()["results"]] == [own_operation]
        assert (await customer.get(f"{base}/operations/{own_operation}")).status_code == 200
        problem(await customer.get(other.operations_path()), 404)
        problem(await customer.get(other.backfill_path("contact")), 404)
        problem(await customer.get(f"{base}/operations/{other_operation}"), 404)
        problem(await customer.get(f"{base}/operations/{other_operation}/logs"), 404)


async def test_grpc_clients_read_the_same_operations(
    stack: Stack, admin: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    installation = await new_installation(db, await new_project(admin))
    operation = await new_operation(db, installation, EPOCH, action_type="write")
    rest = (
        await admin.get(f"/v1/projects/{installation.project_id}/operations/{operation}")
    ).json()
    metadata = (("x-api-key", stack.admin_api_key),)
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        stub = operations_pb2_grpc.OperationServiceStub(channel)
        got = await stub.GetOperation(
            operations_pb2.GetOperationRequest(
                project_id_or_name=installation.project_id, operation_id=operation
            ),
            metadata=metadata,
            timeout=10,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListOperations(
                operations_pb2.ListOperationsRequest(
                    project_id_or_name=installation.project_name,
                    integration_id=installation.integration_id,
                    installation_id=installation.id,
                    page_size=0,
                ),
                metadata=metadata,
                timeout=10,
            )
    assert rest == json_format.MessageToDict(got, always_print_fields_with_no_presence=True)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pageSize" in (refused.value.details() or "")
