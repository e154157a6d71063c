"""Issue 12's classes 2, 3 and 5 through the edge: a path or query value that is not UTF-8,
a JSON object where a map<string, string> value belongs, and a NUL in any string each get
a 400 problem naming the field, not a 500 with DecodeError text or a PostgreSQL failure,
and change nothing. Unbuilt operations authenticate their caller before answering 501."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.control_plane import (
    as_key,
    client,
    create_api_key,
    create_project,
    issue_names,
    listed,
    problem,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def project(admin: httpx.AsyncClient) -> dict[str, Any]:
    return await create_project(admin, "decoding", "Decoding")


@pytest.fixture(scope="module")
async def api(
    stack: Stack, admin: httpx.AsyncClient, project: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    """The api host with a full-scope key of the project."""
    key = await create_api_key(admin, project["name"], ["full"])
    async with client(stack, headers=as_key(key)) as http:
        yield http


def refused(response: httpx.Response, *issues: str) -> dict[str, Any]:
    """A 400 problem naming exactly these issues (`<in>.<name>`), without exception text."""
    body = problem(response, 400)
    assert issue_names(body) == set(issues), body
    assert "Unexpected" not in response.text and "DecodeError" not in response.text
    return body


async def state(api: httpx.AsyncClient, admin: httpx.AsyncClient, name: str) -> dict[str, Any]:
    return {
        "projects": await listed(admin, "/v1/projects"),
        "keys": await listed(api, f"/v1/projects/{name}/api-keys"),
        "apps": await listed(api, f"/v1/projects/{name}/provider-apps"),
        "installations": await listed(api, f"/v1/projects/{name}/installations"),
    }


async def test_text_that_is_not_utf8_is_named_where_it_was_sent(
    stack: Stack, api: httpx.AsyncClient, anonymous: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    # The public catalog, without a key: a path variable.
    body = refused(await anonymous.get("/v1/providers/%FF"), "path.provider")
    assert "UTF-8" in body["detail"]
    # A query parameter.
    refused(
        await api.get(f"/v1/projects/{project['name']}/installations?groupRef=%C0%AF"),
        "query.groupRef",
    )
    # The read host.
    async with client(stack) as read:
        read.base_url = httpx.URL(stack.endpoints["read"])
        response = await read.post(
            f"/v1/projects/{project['name']}/integrations/x/objects/%FF%FE",
            headers=api.headers,
            json={"mode": "async"},
        )
    refused(response, "path.objectName")


async def test_an_object_where_a_map_wants_a_string_is_a_400(
    api: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    project: dict[str, Any],
) -> None:
    name = project["name"]
    before = await state(api, admin, name)
    app = {
        "provider": "hubspot",
        "clientId": "id",
        "clientSecret": "secret",
        "metadata": {"providerParams": {"tenant": {"nested": "object"}}},
    }
    response = await api.post(f"/v1/projects/{name}/provider-apps", json=app)
    body = problem(response, 400)
    assert {i["name"].split(".")[0] + "." + i["name"].split(".")[1] for i in body["issues"]} == {
        "metadata.providerParams"
    }, body
    assert all(i["in"] == "body" for i in body["issues"])
    # Without any key, on an operation that is not built: a 400 all the same.
    response = await anonymous.post(
        "/v1/custom-auth/connect", json={"callbackParams": {"a": {"b": 1}}}
    )
    body = problem(response, 400)
    assert [i["name"].split(".")[0] for i in body["issues"]] == ["callbackParams"], body
    assert await state(api, admin, name) == before


@pytest.mark.parametrize(
    ("method", "path", "payload", "issue"),
    [
        ("POST", "/api-keys", {"label": "a\x00b"}, "body.label"),
        ("POST", "/api-keys", {"label": "k", "scopes": ["full", "\x00"]}, "body.scopes[1]"),
        (
            "POST",
            "/provider-apps",
            {"provider": "hubspot", "clientId": "i", "clientSecret": "s", "externalRef": "\x00"},
            "body.externalRef",
        ),
    ],
)
async def test_a_nul_in_any_string_is_named_and_stores_nothing(
    api: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    project: dict[str, Any],
    method: str,
    path: str,
    payload: dict[str, Any],
    issue: str,
) -> None:
    name = project["name"]
    before = await state(api, admin, name)
    response = await api.request(method, f"/v1/projects/{name}{path}", json=payload)
    body = refused(response, issue)
    assert "NUL" in body["detail"]
    assert await state(api, admin, name) == before


async def test_a_nul_in_a_path_or_in_oauth_connect_is_named(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    name = project["name"]
    before = await state(api, admin, name)
    refused(await api.get("/v1/projects/a%00b"), "path.projectIdOrName")
    connect = {"projectIdOrName": name, "provider": "hubspot", "groupRef": "g", "consumerRef": "c"}
    for field in ("projectIdOrName", "groupName"):
        response = await api.post("/v1/oauth-connect", json={**connect, field: "x\x00y"})
        refused(response, f"body.{field}")
    response = await api.post(
        "/v1/oauth-connect",
        json={**connect, "providerMetadata": {"k": {"value": "a\x00", "source": "input"}}},
    )
    body = problem(response, 400)
    assert [i["name"].split(".")[0] for i in body["issues"]] == ["providerMetadata"], body
    assert await state(api, admin, name) == before


async def test_unbuilt_operations_authenticate_before_answering_501(
    stack: Stack, api: httpx.AsyncClient, anonymous: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    # A whole service not built (orgs; every platform service built is built whole).
    paths = ["/v1/orgs/some-org"]
    for path in paths:
        problem(await anonymous.get(path), 401)
        unbuilt = problem(await api.get(path), 501)
        assert "is not built yet" in unbuilt["detail"]


async def test_long_values_get_their_answer_not_a_429_or_a_502(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, project: dict[str, Any]
) -> None:
    before = await state(api, admin, project["name"])
    # A 20 KB path was refused by the api's gRPC core as metadata too large (a 429); the
    # edge's own limit is 60 KiB (a 431).
    long_name = "a" * 20_000
    missing = problem(await api.get(f"/v1/projects/{long_name}"), 404)
    # A 30 KB value quoted back in the error took its trailers past what the edge accepts
    # from the api (a 502): errors quote at most 1,000 characters of it.
    connect = {"projectIdOrName": "b" * 30_000, "provider": "hubspot", "groupRef": "g"}
    unknown = problem(
        await api.post("/v1/oauth-connect", json={**connect, "consumerRef": "c"}), 404
    )
    for body in (missing, unknown):
        assert len(body["detail"]) < 1_100, body["detail"][:200]
        assert "characters)" in body["detail"]
    # Past the edge's limit (headers and URL together), the edge says so itself.
    too_long = problem(
        await api.get(f"/v1/projects/{long_name}", headers={"x-note": "c" * 50_000}), 431
    )
    assert too_long["title"] == "Request Header Fields Too Large"
    assert "60 KiB" in too_long["detail"]
    assert await state(api, admin, project["name"]) == before
