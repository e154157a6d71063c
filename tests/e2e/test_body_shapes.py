"""Where the contract wants a list or a map, the edge refuses a body that holds something
else (envoy/body_shape.lua) instead of letting Envoy's transcoder guess: `"scopes": "AAA"`
used to be read as ["AAA"], `"scopes": [null]` as no scopes (a key with every scope), and
an object for a map<string, string> value as a corrupt message. Each is a 400 naming the
field as the client wrote it, and nothing is created."""

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
async def api(stack: Stack, admin: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The api host rooted at a new project, with a full-scope key of it."""
    project = await create_project(admin, "shapes", "Shapes")
    key = await create_api_key(admin, project["name"], ["full"])
    async with client(stack, f"/v1/projects/{project['name']}", as_key(key)) as http:
        yield http


def refused(response: httpx.Response, issue: str, why: str) -> None:
    body = problem(response, 400)
    assert issue_names(body) == {issue}, body
    assert why in body["issues"][0]["detail"], body


@pytest.mark.parametrize(
    ("scopes", "issue", "why"),
    [
        ("full", "body.scopes", "must be a list, not a string"),
        ([None], "body.scopes[0]", "must not be null"),
        (["full", ["frontend"]], "body.scopes[1]", "not a list"),
        ({"full": True}, "body.scopes", "must be a list, not an object"),
    ],
)
async def test_api_key_scopes_must_be_a_list_of_strings(
    api: httpx.AsyncClient, scopes: Any, issue: str, why: str
) -> None:
    before = await listed(api, "/api-keys")
    refused(await api.post("/api-keys", json={"label": "k", "scopes": scopes}), issue, why)
    assert await listed(api, "/api-keys") == before


async def test_lists_and_maps_that_match_still_pass(api: httpx.AsyncClient) -> None:
    created = await api.post("/api-keys", json={"label": "k", "scopes": ["frontend"]})
    assert created.status_code == 201, created.text
    assert created.json()["scopes"] == ["frontend"]
    app = await api.post(
        "/provider-apps",
        json={
            "provider": "hubspot",
            "clientId": "id",
            "clientSecret": "secret",
            "scopes": ["crm.objects.contacts.read"],
            "metadata": {"providerParams": {"tenant": "acme"}},
        },
    )
    assert app.status_code == 200, app.text


async def test_map_values_and_masks_of_the_wrong_json_type_are_named(
    api: httpx.AsyncClient,
) -> None:
    before = await listed(api, "/provider-apps")
    app = {"provider": "hubspot", "clientId": "id", "clientSecret": "secret"}
    response = await api.post(
        "/provider-apps",
        json={**app, "metadata": {"provider_params": {"tenant": {"nested": "object"}}}},
    )
    refused(response, "body.metadata.provider_params.tenant", "not an object")
    response = await api.post("/provider-apps", json={**app, "scopes": [1, None]})
    refused(response, "body.scopes[1]", "must not be null")
    assert await listed(api, "/provider-apps") == before
    response = await api.patch(
        "/api-keys/whatever", json={"updateMask": "label", "apiKey": {"label": "x"}}
    )
    refused(response, "body.updateMask", "must be a list, not a string")
