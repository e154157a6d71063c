"""API keys through the edge: the secret shown once and stored only as a digest, scopes
enforced, every key confined to its project, and a key deleted or deactivated refused at
once. Every refusal is problem+json and changes nothing."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from ampmesh.platform.v1 import api_keys_pb2, api_keys_pb2_grpc

from tests.support.control_plane import (
    as_key,
    create_api_key,
    create_project,
    database_url,
    issue_names,
    listed,
    problem,
    unique,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

SECRET = re.compile(r"^(amp_[0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


@dataclass
class Project:
    id: str
    name: str
    key: str  # a full-scope key of the project


async def new_project(admin: httpx.AsyncClient) -> Project:
    project = await create_project(admin, "keys", "Keys")
    key = await create_api_key(admin, project["id"], ["full"], label="builder")
    return Project(project["id"], project["name"], key)


@pytest.fixture(scope="module")
async def project_a(admin: httpx.AsyncClient) -> Project:
    return await new_project(admin)


@pytest.fixture(scope="module")
async def project_b(admin: httpx.AsyncClient) -> Project:
    return await new_project(admin)


async def keys_of(admin: httpx.AsyncClient, project: Project) -> list[dict[str, Any]]:
    return await listed(admin, f"/v1/projects/{project.id}/api-keys")


async def test_the_secret_is_shown_once_and_stored_only_as_a_digest(
    stack: Stack, admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, project_a: Project
) -> None:
    base = f"/v1/projects/{project_a.name}/api-keys"
    created = await anonymous.post(
        base, json={"label": "ci", "scopes": ["full"]}, headers=as_key(project_a.key)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    match = SECRET.match(body["key"])
    assert match, body
    secret, prefix = body["key"], match.group(1)
    assert body["label"] == "ci" and body["scopes"] == ["full"]
    assert body["projectId"] == project_a.id and body["active"] is True

    keys = await admin.get(base)
    assert secret not in keys.text
    mine = [k for k in keys.json() if k["key"] == prefix]
    assert mine == [{**body, "key": prefix}]
    for path in (prefix, secret):  # a path names the key by its prefix or by all of it
        got = await admin.get(f"{base}/{path}")
        assert got.status_code == 200, got.text
        assert got.json() == {**body, "key": prefix}

    # The new key works, and the database holds its SHA-256 but not the key in any column.
    assert (await anonymous.get(f"/v1/projects/{project_a.id}", headers=as_key(secret))).is_success
    connection = await asyncpg.connect(database_url(stack))
    try:
        dump = await connection.fetch("SELECT * FROM api_keys")
        digest = await connection.fetchval(
            "SELECT secret_sha256 FROM api_keys WHERE prefix = $1", prefix
        )
    finally:
        await connection.close()
    assert secret not in repr([dict(row) for row in dump])
    assert secret.split("_", 2)[2] not in repr([dict(row) for row in dump])
    assert digest == hashlib.sha256(secret.encode()).digest()

    # A whole key with a wrong secret part names no key.
    assert problem(await admin.get(f"{base}/{prefix}_{'x' * 43}"), 404)


async def test_update_changes_only_the_masked_fields_and_refuses_bad_input(
    admin: httpx.AsyncClient, project_a: Project
) -> None:
    base = f"/v1/projects/{project_a.id}/api-keys"
    created = (await admin.post(base, json={"label": "to change"})).json()
    prefix = SECRET.match(created["key"]).group(1)  # type: ignore[union-attr]
    assert created["scopes"] == ["full"]  # the default, as in the reference

    updated = await admin.patch(
        f"{base}/{prefix}",
        json={"updateMask": ["label"], "apiKey": {"label": "renamed", "active": False}},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["label"] == "renamed" and updated.json()["active"] is True

    before = await admin.get(f"{base}/{prefix}")
    for body, field in (
        ({"updateMask": ["key"], "apiKey": {}}, "body.updateMask"),
        ({"updateMask": [], "apiKey": {"label": "x"}}, "body.updateMask"),
        ({"updateMask": ["label"], "apiKey": {"label": "  "}}, "body.apiKey.label"),
        ({"updateMask": ["scopes"], "apiKey": {"scopes": ["admin"]}}, "body.apiKey.scopes"),
        ({"updateMask": ["scopes"], "apiKey": {"scopes": []}}, "body.apiKey.scopes"),
        ({"updateMask": ["active"], "apiKey": {}}, "body.apiKey.active"),
    ):
        refused = problem(await admin.patch(f"{base}/{prefix}", json=body), 400)
        assert field in issue_names(refused), refused
    assert (await admin.get(f"{base}/{prefix}")).json() == before.json()

    keys_before = await keys_of(admin, project_a)
    for payload, field in (
        ({"label": "x", "scopes": ["full", "superuser"]}, "body.scopes"),
        ({"label": ""}, "body.label"),
        ({"label": "x" * 256}, "body.label"),
    ):
        refused = problem(await admin.post(base, json=payload), 400)
        assert issue_names(refused) == {field}, refused
    assert await keys_of(admin, project_a) == keys_before


async def test_unknown_scopes_are_refused_and_create_nothing(
    admin: httpx.AsyncClient, project_a: Project
) -> None:
    before = await keys_of(admin, project_a)
    refused = problem(
        await admin.post(
            f"/v1/projects/{project_a.id}/api-keys", json={"label": "x", "scopes": ["root"]}
        ),
        400,
    )
    assert issue_names(refused) == {"body.scopes"}
    assert "'root'" in refused["detail"]
    assert await keys_of(admin, project_a) == before


async def test_a_frontend_key_is_refused_every_builder_call(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, project_a: Project
) -> None:
    created = await admin.post(
        f"/v1/projects/{project_a.id}/api-keys", json={"label": "web", "scopes": ["frontend"]}
    )
    assert created.status_code == 201, created.text
    frontend = as_key(created.json()["key"])
    prefix = SECRET.match(created.json()["key"]).group(1)  # type: ignore[union-attr]
    p = f"/v1/projects/{project_a.id}"

    # What the connect UI needs: the project (its appName).
    assert (await anonymous.get(p, headers=frontend)).json()["id"] == project_a.id

    project_before = (await admin.get(p)).json()
    keys_before = await keys_of(admin, project_a)
    for method, path, body in (
        ("GET", f"{p}/api-keys", None),
        ("POST", f"{p}/api-keys", {"label": "mine", "scopes": ["frontend"]}),
        ("GET", f"{p}/api-keys/{prefix}", None),
        # Widening its own scopes:
        (
            "PATCH",
            f"{p}/api-keys/{prefix}",
            {"updateMask": ["scopes"], "apiKey": {"scopes": ["full"]}},
        ),
        ("DELETE", f"{p}/api-keys/{project_a.key}", None),
        ("GET", f"{p}/jwt-keys", None),
        ("PATCH", p, {"updateMask": ["appName"], "project": {"appName": "hijacked"}}),
        ("POST", "/v1/projects", {"name": unique("nope"), "appName": "x"}),
    ):
        refused = problem(await anonymous.request(method, path, json=body, headers=frontend), 403)
        assert "full" in refused["detail"], refused
    assert (await admin.get(p)).json() == project_before
    assert await keys_of(admin, project_a) == keys_before


async def test_a_key_cannot_reach_or_detect_another_project(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, project_a: Project, project_b: Project
) -> None:
    """A key of A gets, for B's every resource, the answer a missing project gets."""
    as_a = as_key(project_a.key)
    b_key_prefix = SECRET.match(project_b.key).group(1)  # type: ignore[union-attr]
    b_project_before = (await admin.get(f"/v1/projects/{project_b.id}")).json()
    b_keys_before = await keys_of(admin, project_b)
    missing = str(uuid.uuid4())

    def requests(project: str) -> list[tuple[str, str, Any]]:
        p = f"/v1/projects/{project}"
        return [
            ("GET", p, None),
            ("PATCH", p, {"updateMask": ["appName"], "project": {"appName": "taken"}}),
            ("GET", f"{p}/api-keys", None),
            ("POST", f"{p}/api-keys", {"label": "mine"}),
            ("GET", f"{p}/api-keys/{b_key_prefix}", None),
            (
                "PATCH",
                f"{p}/api-keys/{b_key_prefix}",
                {"updateMask": ["active"], "apiKey": {"active": False}},
            ),
            ("DELETE", f"{p}/api-keys/{b_key_prefix}", None),
            ("GET", f"{p}/jwt-keys", None),
        ]

    for (method, path, body), (_, missing_path, _) in zip(
        requests(project_b.id), requests(missing), strict=True
    ):
        theirs = problem(await anonymous.request(method, path, json=body, headers=as_a), 404)
        nobody = problem(
            await anonymous.request(method, missing_path, json=body, headers=as_a), 404
        )
        assert theirs["detail"].replace(project_b.id, "?") == nobody["detail"].replace(
            missing, "?"
        ), (method, path)
        assert set(theirs) == set(nobody)
        assert project_b.name not in theirs["detail"]
    # By name, too.
    by_name = problem(await anonymous.get(f"/v1/projects/{project_b.name}", headers=as_a), 404)
    assert by_name["detail"] == f"project {project_b.name!r} not found"

    # B's key named under A's own path is not A's key either.
    assert problem(
        await anonymous.get(f"/v1/projects/{project_a.id}/api-keys/{b_key_prefix}", headers=as_a),
        404,
    )
    assert problem(
        await anonymous.delete(
            f"/v1/projects/{project_a.id}/api-keys/{b_key_prefix}", headers=as_a
        ),
        404,
    )
    # The project list shows only A.
    projects = (await anonymous.get("/v1/projects", headers=as_a)).json()
    assert [p["id"] for p in projects] == [project_a.id]

    assert (await admin.get(f"/v1/projects/{project_b.id}")).json() == b_project_before
    assert await keys_of(admin, project_b) == b_keys_before


async def test_a_deactivated_or_deleted_key_is_refused_at_once(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, project_a: Project
) -> None:
    base = f"/v1/projects/{project_a.id}/api-keys"
    secret = (await admin.post(base, json={"label": "short-lived"})).json()["key"]
    prefix = SECRET.match(secret).group(1)  # type: ignore[union-attr]
    project = f"/v1/projects/{project_a.id}"
    assert (await anonymous.get(project, headers=as_key(secret))).status_code == 200

    off = await admin.patch(
        f"{base}/{prefix}", json={"updateMask": ["active"], "apiKey": {"active": False}}
    )
    assert off.status_code == 200 and off.json()["active"] is False, off.text
    refused = problem(await anonymous.get(project, headers=as_key(secret)), 401)
    assert secret not in refused["detail"] and prefix not in refused["detail"]
    active_only = (await admin.get(base, params={"active": "true"})).json()
    assert prefix not in {k["key"] for k in active_only}
    assert prefix in {k["key"] for k in await keys_of(admin, project_a)}

    on = await admin.patch(
        f"{base}/{secret}", json={"updateMask": ["active"], "apiKey": {"active": True}}
    )
    assert on.status_code == 200, on.text
    assert (await anonymous.get(project, headers=as_key(secret))).status_code == 200

    deleted = await admin.delete(f"{base}/{prefix}")
    assert deleted.status_code == 204 and not deleted.content
    problem(await anonymous.get(project, headers=as_key(secret)), 401)
    problem(await admin.get(f"{base}/{prefix}"), 404)
    problem(await admin.delete(f"{base}/{prefix}"), 404)


async def test_no_key_or_an_unknown_key_is_refused(
    anonymous: httpx.AsyncClient, project_a: Project
) -> None:
    project = f"/v1/projects/{project_a.id}/api-keys"
    assert "X-Api-Key" in problem(await anonymous.get(project), 401)["detail"]
    made_up = f"amp_{'0' * 12}_{'a' * 43}"
    refused = problem(await anonymous.get(project, headers=as_key(made_up)), 401)
    assert made_up not in refused["detail"]


async def test_grpc_clients_get_the_secret_once_too(stack: Stack, project_a: Project) -> None:
    metadata = (("x-api-key", project_a.key),)
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        stub = api_keys_pb2_grpc.ApiKeyServiceStub(channel)
        created = await stub.CreateApiKey(
            api_keys_pb2.CreateApiKeyRequest(
                project_id_or_name=project_a.id,
                api_key=api_keys_pb2.ApiKey(label="grpc", scopes=["frontend"]),
            ),
            metadata=metadata,
            timeout=10,
        )
        got = await stub.GetApiKey(
            api_keys_pb2.GetApiKeyRequest(project_id_or_name=project_a.id, api_key=created.key),
            metadata=metadata,
            timeout=10,
        )
    assert SECRET.match(created.key) and list(created.scopes) == ["frontend"]
    assert got.key == created.key[:16] and got.label == "grpc"
