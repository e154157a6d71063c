"""Projects through the edge, as a builder's tools call them: REST with the org admin key
`ampmesh up` made, and every refusal as problem+json that changes nothing."""

from __future__ import annotations

import grpc
import httpx
import pytest
from ampmesh.platform.v1 import projects_pb2, projects_pb2_grpc

from tests.support.control_plane import problem, unique
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def test_create_get_by_id_and_name_list_and_update(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    name = unique("proj")
    created = await admin.post("/v1/projects", json={"name": name, "appName": "Acme Sync"})
    assert created.status_code == 201, created.text
    project = created.json()
    assert project["name"] == name and project["appName"] == "Acme Sync"
    assert project["orgId"] == stack.org_id
    assert (await admin.get(f"/v1/projects/{project['id']}")).json() == project
    assert (await admin.get(f"/v1/projects/{name.upper()}")).json() == project  # names: any case
    listed = (await admin.get("/v1/projects")).json()
    assert project in listed  # the reference answers a bare array

    updated = await admin.patch(
        f"/v1/projects/{name}",
        json={"updateMask": ["appName"], "project": {"appName": "Acme Sync 2", "name": "x"}},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["appName"] == "Acme Sync 2"
    assert updated.json()["name"] == name  # not in the mask: unchanged
    assert "updateTime" in updated.json()


async def test_grpc_clients_reach_the_same_projects(stack: Stack, admin: httpx.AsyncClient) -> None:
    name = unique("proj")
    await admin.post("/v1/projects", json={"name": name, "appName": "Both ways"})
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        stub = projects_pb2_grpc.ProjectServiceStub(channel)
        got = await stub.GetProject(
            projects_pb2.GetProjectRequest(project_id_or_name=name),
            metadata=(("x-api-key", stack.admin_api_key),),
            timeout=10,
        )
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.GetProject(projects_pb2.GetProjectRequest(project_id_or_name=name))
    assert got.app_name == "Both ways"
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_bad_requests_are_refused_and_change_nothing(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    name = unique("proj")
    await admin.post("/v1/projects", json={"name": name, "appName": "Original"})
    before = (await admin.get("/v1/projects")).json()

    duplicate = problem(
        await admin.post("/v1/projects", json={"name": name.upper(), "appName": "x"}), 409
    )
    assert name.upper() in duplicate["detail"]
    invalid = problem(
        await admin.post("/v1/projects", json={"name": "no spaces!", "appName": ""}), 400
    )
    assert {(i["in"], i["name"]) for i in invalid["issues"]} == {
        ("body", "name"),
        ("body", "appName"),
    }
    wrong_type = problem(await admin.post("/v1/projects", json={"name": 5, "appName": []}), 400)
    assert wrong_type["detail"]
    mask = problem(
        await admin.patch(
            f"/v1/projects/{name}", json={"updateMask": ["orgId"], "project": {"orgId": "x"}}
        ),
        400,
    )
    assert mask["issues"][0]["name"] == "updateMask"
    missing = problem(await admin.get(f"/v1/projects/{unique('nope')}"), 404)
    assert "not found" in missing["detail"]

    problem(await anonymous.get("/v1/projects"), 401)
    problem(
        await anonymous.post(
            "/v1/projects",
            json={"name": unique("proj"), "appName": "x"},
            headers={"X-Api-Key": "amp_000000000000_forged"},
        ),
        401,
    )
    assert (await admin.get("/v1/projects")).json() == before
