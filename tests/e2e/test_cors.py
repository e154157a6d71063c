"""CORS through the whole mesh, as a browser page on another origin (the reference's
embeddable UI, @amp-labs/react) sees it: on every public host (api, read, write, search,
proxy) a preflight is answered 204 by the edge with the methods and the headers the
library sends, and every answer carries Access-Control-Allow-Origin, the api's own
problem+json refusals and the edge's 404 and 400 included, so the page can read why.

The session's stack allows any origin (the local default); a restricted list is
tests/edge/test_cors_config.py's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.launcher.edge import SURFACES
from tests.support.control_plane import as_key, create_api_key, create_project
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

ORIGIN = "http://localhost:3000"  # where a builder's page is served from
CLIENT = {"x-amp-client": "react", "x-amp-client-version": "2.0.0"}
# A path each host serves with POST (the proxy serves any path).
POST_PATH = {
    "api": "/v1/projects/{p}/integrations",
    "read": "/v1/projects/{p}/integrations/no-such-integration/objects/contacts",
    "write": "/v1/projects/{p}/integrations/no-such-integration/objects/contacts",
    "search": "/v1/projects/{p}/integrations/no-such-integration",
    "proxy": "/crm/v3/objects/contacts",
    "subscribe": "/v1/projects/{p}/integrations/no-such-integration",
}


@pytest.fixture(scope="module")
async def project(admin: httpx.AsyncClient) -> dict[str, Any]:
    return await create_project(admin, "cors", "CORS")


@pytest.fixture(scope="module")
async def key(admin: httpx.AsyncClient, project: dict[str, Any]) -> str:
    return await create_api_key(admin, project["id"], ["frontend"])


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20, headers={"origin": ORIGIN, **CLIENT}) as client:
        yield client


def url(stack: Stack, surface: str, project: dict[str, Any]) -> str:
    return stack.endpoints[surface] + POST_PATH[surface].format(p=project["id"])


def assert_readable(response: httpx.Response, what: str) -> None:
    """The page may read this answer: its origin is allowed, and so is x-request-id."""
    assert response.headers.get("access-control-allow-origin") == ORIGIN, (what, response.headers)
    exposed = response.headers["access-control-expose-headers"].split(",")
    assert "x-request-id" in exposed, what
    assert "origin" in response.headers["vary"].lower(), what


@pytest.mark.parametrize("surface", SURFACES)
async def test_a_preflight_is_answered_by_the_edge(
    stack: Stack, http: httpx.AsyncClient, project: dict[str, Any], surface: str
) -> None:
    requested = "content-type,x-api-key,x-amp-client,x-amp-client-version"
    response = await http.options(
        url(stack, surface, project),
        headers={
            "access-control-request-method": "POST",
            "access-control-request-headers": requested,
        },
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == ORIGIN
    methods = set(response.headers["access-control-allow-methods"].split(","))
    assert {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} <= methods
    allowed = set(response.headers["access-control-allow-headers"].split(","))
    assert set(requested.split(",")) | {"authorization", "x-amp-project-id"} <= allowed
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("surface", SURFACES)
async def test_every_answer_on_every_host_carries_the_origin(
    stack: Stack, http: httpx.AsyncClient, project: dict[str, Any], key: str, surface: str
) -> None:
    target = url(stack, surface, project)
    # The api's own refusal (unauthenticated, or a host whose service is not built yet),
    # transcoded from gRPC and rewritten by problem.lua.
    refused = await http.post(target, json={})
    assert refused.status_code in (401, 501), refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert_readable(refused, f"{surface}: the api's refusal")
    if surface == "proxy":
        return  # it passes any path and any body on to the provider
    if surface != "subscribe":  # its bodies are raw bytes, judged by the api after verifying
        # A body that is not JSON: the transcoder's 400.
        bad_body = await http.post(
            target, headers={**as_key(key), "content-type": "application/json"}, content="{"
        )
        assert bad_body.status_code == 400, bad_body.text
        assert_readable(bad_body, f"{surface}: a bad body")
    # A path no method has: the transcoder's 404.
    unknown = await http.get(f"{stack.endpoints[surface]}/v1/no/such/path")
    assert unknown.status_code == 404, unknown.text
    assert unknown.headers["content-type"] == "application/problem+json"
    assert_readable(unknown, f"{surface}: an unknown path")


async def test_successes_carry_the_origin(
    stack: Stack, http: httpx.AsyncClient, project: dict[str, Any], key: str
) -> None:
    # What the React library asks first: the project, then the providers' catalog.
    got = await http.get(
        f"{stack.endpoints['api']}/v1/projects/{project['id']}", headers=as_key(key)
    )
    assert got.status_code == 200, got.text
    assert got.json()["id"] == project["id"]
    assert_readable(got, "the project")
    providers = await http.get(f"{stack.endpoints['api']}/v1/providers")
    assert providers.status_code == 200, providers.text
    assert_readable(providers, "the providers")
