"""A builder's setup for proxying to a customer's HubSpot or Salesforce (the sandbox):
a project with the provider's app, an integration that enables the proxy, a connection
holding real sandbox tokens, and the installation; plus the headers a proxied call
carries and the checks the proxy tests share. Used by the proxy tests and bench/proxy.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from tests.e2e.reads_world import CLIENT_ID, CLIENT_SECRET, SANDBOX_PROVIDERS
from tests.support.control_plane import admin_client, create_project
from tests.support.sandbox import sandbox_connection
from tests.support.stack import Stack

INTEGRATION = "proxied"

# The header every proxy answer carries: "provider" for the provider's own, "ampmesh" for ours.
ORIGIN = "x-amp-proxy-origin"


async def echo_calls(sandbox: sandbox_pb2_grpc.SandboxControlServiceStub) -> int:
    """How many calls the sandbox's echo route has received (the provider was called)."""
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    return int(counters.proxy_test_requests_by_route.get("echo", 0))


async def echo_fails_once(
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
    provider: str,
    kind: sandbox_pb2.FaultKind,
    **fault: Any,
) -> None:
    """The provider's next answer on its echo route is the fault (kind, with the Fault's
    other fields, e.g. http_status or retry_after)."""
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=kind,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_PROXY_TEST,
                provider=SANDBOX_PROVIDERS[provider],
                object_name="echo",
                count=1,
                **fault,
            )
        )
    )


def assert_ours(response: httpx.Response, status: int, *named: str) -> dict[str, Any]:
    """An answer ampmesh made: problem+json with the status, naming what was wrong."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers[ORIGIN] == "ampmesh"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    for name in named:
        assert name in problem["detail"], (name, problem)
    return problem


def proxy_manifest(provider: str, *, enabled: bool = True, use_module: bool = False) -> str:
    lines = [
        "specVersion: 1.0.0",
        "integrations:",
        f"  - name: {INTEGRATION}",
        f"    provider: {provider}",
        "    proxy:",
        f"      enabled: {'true' if enabled else 'false'}",
    ]
    if use_module:
        lines.append("      useModule: true")
    return "\n".join(lines) + "\n"


@dataclass
class ProxyWorld:
    stack: Stack
    http: httpx.AsyncClient  # the API, rooted at the project
    project_id: str
    integration: dict[str, Any]
    provider: str
    group: str = ""
    installation: dict[str, Any] = field(default_factory=dict)
    connection: dict[str, Any] = field(default_factory=dict)
    # The connection's tokens: they may reach the provider, never the caller or a log.
    secrets: list[str] = field(default_factory=list)

    def headers(self, **changes: str | None) -> dict[str, str]:
        """The headers of a proxied call by installation id, with changes (None removes
        one; keys with underscores for dashes: x_amp_group_ref=...)."""
        headers = {
            "x-api-key": self.stack.admin_api_key,
            "x-amp-proxy-version": "1",
            "x-amp-project-id": self.project_id,
            "x-amp-installation-id": str(self.installation.get("id", "")),
        }
        for name, value in changes.items():
            key = name.replace("_", "-")
            if value is None:
                headers.pop(key, None)
            else:
                headers[key] = value
        return headers

    def group_headers(self, **changes: str | None) -> dict[str, str]:
        """As headers(), naming the installation by integration name and group ref."""
        named: dict[str, str | None] = {
            "x_amp_installation_id": None,
            "x_amp_integration_name": INTEGRATION,
            "x_amp_group_ref": self.group,
        }
        return self.headers(**{**named, **changes})

    async def connect(self, group: str, *, expires_in: int | None = None) -> dict[str, Any]:
        """A connection of group holding real sandbox tokens; expires_in overrides when
        the stored access token expires (in the past: the token-manager refreshes it)."""
        self.connection, tokens = await sandbox_connection(
            self.stack, self.http, self.provider, group, expires_in=expires_in
        )
        self.secrets += [tokens["access_token"], tokens["refresh_token"]]
        return self.connection

    async def install(self, group: str, *, expires_in: int | None = None) -> dict[str, Any]:
        self.group = group
        await self.connect(group, expires_in=expires_in)
        created = await self.http.post(
            f"/integrations/{self.integration['id']}/installations",
            json={"groupRef": group, "config": {"content": {"proxy": {"enabled": True}}}},
        )
        assert created.status_code == 201, created.text
        self.installation = created.json()
        return self.installation


async def proxy_world(
    stack: Stack,
    provider: str = "hubspot",
    *,
    enabled: bool = True,
    use_module: bool = False,
    group: str | None = None,
    expires_in: int | None = None,
) -> ProxyWorld:
    """A project with an integration proxying to provider, installed for a new group
    (unless the integration does not enable the proxy, which cannot be installed with it;
    then nothing is installed)."""
    async with admin_client(stack) as admin:
        project = await create_project(admin, "proxy", "Proxy")
    http = admin_client(stack, f"/v1/projects/{project['id']}")
    app = await http.post(
        "/provider-apps",
        json={"provider": provider, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET},
    )
    assert app.status_code == 200, app.text
    deployed = await http.put(
        "/integrations:batch",
        json={"sourceYaml": proxy_manifest(provider, enabled=enabled, use_module=use_module)},
    )
    assert deployed.status_code == 200, deployed.text
    (integration,) = deployed.json()
    world = ProxyWorld(
        stack=stack,
        http=http,
        project_id=str(project["id"]),
        integration=integration,
        provider=provider,
    )
    if enabled:
        await world.install(group or f"g-{uuid.uuid4().hex[:8]}", expires_in=expires_in)
    return world
