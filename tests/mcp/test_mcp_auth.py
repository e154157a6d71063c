"""Who may use an MCP server, through a real MCP client against the stack's api.

A server that requires credentials (off loopback, or told to) refuses a request without
one or with a wrong key (401 with a Bearer challenge, the key never echoed), and acts
with exactly the presented key's rights: a project key reaches its project and is told
another project does not exist, as the REST API tells it. On loopback the local builder
may leave the key out and acts with the configured (org admin) key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from pydantic import SecretStr

from services.runtime.mcp_http import McpSettings
from tests.support.control_plane import create_api_key, create_project
from tests.support.mcp_client import call, call_failing, mcp_session
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

# The `builder_mcp` fixture: serves builder-mcp with settings changed, yields its URL.
BuilderMcp = Callable[..., AbstractAsyncContextManager[str]]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}
ACCEPT = {"accept": "application/json, text/event-stream"}


async def post_initialize(url: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, json=INITIALIZE, headers={**ACCEPT, **headers})


async def two_projects(admin: httpx.AsyncClient) -> tuple[dict[str, str], str, dict[str, str]]:
    """(a project, its full key, another project of the same org)."""
    mine = await create_project(admin, "mcp-auth", "Mine")
    other = await create_project(admin, "mcp-other", "Other")
    key = await create_api_key(admin, mine["name"], ["full"], label="mcp")
    return mine, key, other


async def test_a_server_requiring_credentials_refuses_none_and_wrong_keys(
    builder_mcp: BuilderMcp,
) -> None:
    async with builder_mcp(mcp_require_credential=True) as url:
        missing = await post_initialize(url, {})
        assert missing.status_code == 401, missing.text
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer <API key>" in missing.json()["error_description"]

        wrong_key = f"amp_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}"
        for headers in ({"authorization": f"Bearer {wrong_key}"}, {"x-api-key": wrong_key}):
            wrong = await post_initialize(url, headers)
            assert wrong.status_code == 401, wrong.text
            assert wrong.json() == {
                "error": "invalid_token",
                "error_description": "the API key is not valid or not active",
            }
            assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
            assert wrong_key not in wrong.text

        malformed = await post_initialize(url, {"authorization": "Basic dXNlcjpwYXNz"})
        assert malformed.status_code == 401
        assert "Bearer <API key>" in malformed.json()["error_description"]

        # An MCP client without a key cannot even open a session (the mcp client reports
        # the 401 only as "Server returned an error response").
        with pytest.raises(Exception, match="unhandled errors"):
            async with mcp_session(url) as client:
                await client.list_tools()


async def test_a_project_key_acts_only_on_its_project(
    builder_mcp: BuilderMcp, admin: httpx.AsyncClient
) -> None:
    mine, key, other = await two_projects(admin)
    async with builder_mcp(mcp_require_credential=True) as url:
        async with mcp_session(url, bearer=key) as client:
            own = await call(client, "list_installations", {"project": mine["name"]})
            assert own == {"result": {}}
            refused = await call_failing(client, "list_integrations", {"project": other["name"]})
            assert refused.startswith("Error executing tool list_integrations: NOT_FOUND: ")
            assert f"project {other['name']!r} not found" in refused
            assert key not in refused
            # The api, not the MCP server, refuses a deploy to the other project too.
            deploy = await call_failing(
                client,
                "deploy_manifest",
                {"project": other["id"], "source_yaml": "specVersion: 1.0.0\nintegrations: []\n"},
            )
            assert "NOT_FOUND" in deploy
        # x-api-key, as the reference's MCP server takes it, is the same credential.
        async with mcp_session(url, headers={"x-api-key": key}) as client:
            assert await call(client, "list_integrations", {"project": mine["id"]}) == {
                "result": {}
            }
            refused = await call_failing(client, "list_installations", {"project": other["id"]})
            assert "NOT_FOUND" in refused


async def test_a_server_bound_off_loopback_needs_a_credential_by_default(
    builder_mcp: BuilderMcp, admin: httpx.AsyncClient
) -> None:
    mine, key, _ = await two_projects(admin)
    async with builder_mcp(mcp_host="0.0.0.0") as url:  # noqa: S104 -- the point of the test
        missing = await post_initialize(url, {})
        assert missing.status_code == 401, missing.text
        async with mcp_session(url, bearer=key) as client:
            assert await call(client, "list_installations", {"project": mine["name"]})
    # The operator may choose to serve credential-less requests with the configured key.
    async with (
        builder_mcp(mcp_require_credential=True, mcp_allow_configured_key=True) as url,
        mcp_session(url) as client,
    ):
        listed = await call(client, "list_installations", {"project": mine["name"]})
        assert listed == {"result": {}}


async def test_loopback_without_a_credential_acts_as_the_local_builder(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    mine, key, other = await two_projects(admin)
    url = stack.mesh.service("builder-mcp").extra["builder-mcp-http"]
    async with mcp_session(url) as client:
        # The configured org admin key sees every project of the org.
        for project in (mine, other):
            assert await call(client, "list_integrations", {"project": project["name"]}) == {
                "result": {}
            }
    # A presented key is used instead of the configured one, on loopback too.
    async with mcp_session(url, bearer=key) as client:
        assert "NOT_FOUND" in await call_failing(
            client, "list_integrations", {"project": other["name"]}
        )


@pytest.mark.parametrize(
    ("host", "require", "allow", "serves"),
    [
        ("127.0.0.1", False, False, True),
        ("localhost", False, False, True),
        ("::1", False, False, True),
        ("127.0.0.1", True, False, False),
        ("0.0.0.0", False, False, False),  # noqa: S104 -- what is being decided
        ("10.1.2.3", False, False, False),
        ("mcp.internal", False, False, False),
        ("0.0.0.0", False, True, True),  # noqa: S104
        ("127.0.0.1", True, True, True),
    ],
)
def test_who_acts_with_the_configured_key(
    host: str, require: bool, allow: bool, serves: bool
) -> None:
    settings = McpSettings.model_validate(
        {
            "api_key": SecretStr("amp_000000000000_x"),
            "mcp_host": host,
            "mcp_require_credential": require,
            "mcp_allow_configured_key": allow,
        }
    )
    assert settings.configured_key_serves_anonymous() is serves
    # Without a configured key there is nothing to act with: a key is always needed.
    keyless = McpSettings.model_validate({"mcp_host": host, "api_key": None})
    assert keyless.configured_key_serves_anonymous() is False
