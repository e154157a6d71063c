"""The proxy host end to end: a builder's call to a customer's HubSpot or Salesforce (the
sandbox) through the edge, carrying the connection's credentials and none of the
caller's, with the provider's answer passed back as it is; ampmesh's own refusals are
problem+json, told apart by x-amp-proxy-origin, and never reach the provider."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from tests.e2e.proxy_world import (
    ORIGIN,
    ProxyWorld,
    assert_ours,
    echo_calls,
    echo_fails_once,
    proxy_world,
)
from tests.e2e.reads_world import SANDBOX_PROVIDERS
from tests.support.control_plane import admin_client, create_api_key, create_project
from tests.support.sandbox import duration
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.endpoints["proxy"], timeout=30) as client:
        yield client


@pytest.mark.parametrize("provider", ["hubspot", "salesforce"])
@pytest.mark.parametrize("by", ["installation id", "integration name and group ref"])
async def test_a_call_reaches_the_provider_with_the_connections_token_and_none_of_the_callers(
    stack: Stack, proxy: httpx.AsyncClient, provider: str, by: str
) -> None:
    world = await proxy_world(stack, provider)
    headers = world.headers() if by == "installation id" else world.group_headers()
    headers["x-amp-rate-limiter-mode"] = "throttle"
    # What a caller might send that is its own: a credential for us, a cookie for us.
    headers["authorization"] = "Bearer the-callers-own-jwt"
    headers["cookie"] = "session=callers"
    headers["x-forwarded-host"] = "callers.example"  # the edge's business, not the provider's
    headers["x-custom"] = "kept"
    body = b'{"properties": {"email": "ada@example.com"}}'
    for method in ("GET", "POST"):
        answer = await proxy.request(
            method,
            "/sandbox/echo/crm/v3/objects/contacts?b=2&a=1&a=3",
            headers={**headers, "content-type": "application/json"},
            content=body if method == "POST" else None,
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers[ORIGIN] == "provider"
        seen = answer.json()
        assert seen["method"] == method
        assert seen["path"] == f"/{provider}/sandbox/echo/crm/v3/objects/contacts"
        assert seen["query"] == "b=2&a=1&a=3"  # order and repeats as sent
        received = seen["headers"]
        assert received["authorization"] == f"Bearer {world.secrets[0]}"
        assert received["x-custom"] == "kept"
        assert received["content-type"] == "application/json"
        for name in received:
            assert not name.startswith(("x-amp-", "x-forwarded-", "x-envoy-")), name
            assert name not in ("x-api-key", "cookie", "x-forwarded-for"), name
        assert stack.admin_api_key not in json.dumps(received)
        if method == "POST":
            assert seen["bodySha256"] == hashlib.sha256(body).hexdigest()


async def test_the_providers_own_apis_answer_through_the_proxy(
    stack: Stack, proxy: httpx.AsyncClient
) -> None:
    hubspot = await proxy_world(stack, "hubspot")
    listed = await proxy.get("/crm/v3/objects/contacts?limit=5", headers=hubspot.headers())
    assert listed.status_code == 200, listed.text
    assert "results" in listed.json()
    salesforce = await proxy_world(stack, "salesforce")
    queried = await proxy.get(
        "/services/data/v60.0/query",
        params={"q": "SELECT Id FROM Account LIMIT 2"},
        headers=salesforce.headers(),
    )
    assert queried.status_code == 200, queried.text
    assert "records" in queried.json()
    # The answers carry the provider's own headers and nothing of the caller's key or token.
    for answer, world in ((listed, hubspot), (queried, salesforce)):
        text = answer.text + json.dumps(dict(answer.headers))
        assert stack.admin_api_key not in text
        for secret in world.secrets:
            assert secret not in text


async def test_an_expired_token_is_refreshed_on_the_way(
    stack: Stack, proxy: httpx.AsyncClient
) -> None:
    world = await proxy_world(stack, "hubspot", expires_in=-60)
    answer = await proxy.get("/sandbox/echo/x", headers=world.headers())
    assert answer.status_code == 200, answer.text
    sent = answer.json()["headers"]["authorization"]
    assert sent.startswith("Bearer ")
    assert sent != f"Bearer {world.secrets[0]}"  # the stored token had expired
    again = await proxy.get("/sandbox/echo/y", headers=world.headers())
    assert again.json()["headers"]["authorization"] == sent  # refreshed once, then reused


async def test_a_token_the_provider_refuses_is_refreshed_for_the_next_call(
    stack: Stack, proxy: httpx.AsyncClient, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub
) -> None:
    world = await proxy_world(stack, "salesforce")
    first = await proxy.get("/sandbox/echo/a", headers=world.headers())
    assert first.status_code == 200, first.text
    await echo_fails_once(sandbox, "salesforce", sandbox_pb2.FAULT_KIND_EXPIRED_TOKEN)
    refused = await proxy.get("/sandbox/echo/b", headers=world.headers())
    # The provider's own 401, passed on: the call cannot be replayed (its body streamed).
    assert refused.status_code == 401, refused.text
    assert refused.headers[ORIGIN] == "provider"
    after = await proxy.get("/sandbox/echo/c", headers=world.headers())
    assert after.status_code == 200, after.text
    assert after.json()["headers"]["authorization"] != first.json()["headers"]["authorization"]


async def test_the_providers_errors_pass_through_unchanged(
    stack: Stack, proxy: httpx.AsyncClient, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub
) -> None:
    world = await proxy_world(stack, "hubspot")
    await echo_fails_once(sandbox, "hubspot", sandbox_pb2.FAULT_KIND_SERVER_ERROR, http_status=502)
    failed = await proxy.get("/sandbox/echo/x", headers=world.headers())
    assert failed.status_code == 502
    assert failed.headers[ORIGIN] == "provider"
    assert failed.headers["content-type"] != "application/problem+json"
    # Not found is the provider's too, in its own shape.
    missing = await proxy.get("/crm/v3/objects/contacts/does-not-exist", headers=world.headers())
    assert missing.status_code == 404, missing.text
    assert missing.headers[ORIGIN] == "provider"


async def test_a_module_base_url_is_used_when_the_integration_asks(
    stack: Stack, proxy: httpx.AsyncClient
) -> None:
    world = await proxy_world(stack, "hubspot", use_module=True)
    answer = await proxy.get("/v3/objects/contacts?limit=1", headers=world.headers())
    # HubSpot's crm module lives at <base>/crm: the caller's path is relative to it.
    assert answer.status_code == 200, answer.text
    assert "results" in answer.json()


async def test_refusals_are_clear_and_never_reach_the_provider(
    stack: Stack,
    proxy: httpx.AsyncClient,
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
) -> None:
    world = await proxy_world(stack, "hubspot")
    other = await proxy_world(stack, "hubspot")
    async with admin_client(stack) as admin:
        stranger = await create_project(admin, "stranger", "Stranger")
        strangers_key = await create_api_key(admin, stranger["id"], ["full"])
        frontend_key = await create_api_key(admin, world.project_id, ["frontend"])
    disabled = await proxy_world(stack, "hubspot", enabled=False)
    cases: list[tuple[str, dict[str, str], int, tuple[str, ...]]] = [
        ("no key", world.headers(x_api_key=None), 401, ("API key",)),
        ("a bad key", world.headers(x_api_key="amp_nope_nope"), 401, ("not valid",)),
        ("another project's key", world.headers(x_api_key=strangers_key), 404, ("project",)),
        ("a frontend key", world.headers(x_api_key=frontend_key), 403, ("full",)),
        ("no version", world.headers(x_amp_proxy_version=None), 400, ("x-amp-proxy-version",)),
        ("version 2", world.headers(x_amp_proxy_version="2"), 400, ("x-amp-proxy-version",)),
        ("no project", world.headers(x_amp_project_id=None), 400, ("x-amp-project-id",)),
        ("a project name", world.headers(x_amp_project_id="proxy"), 400, ("x-amp-project-id",)),
        ("no installation", world.headers(x_amp_installation_id=None), 400, ("x-amp-group-ref",)),
        ("a bad installation id", world.headers(x_amp_installation_id="x"), 400, ("UUID",)),
        (
            "another project's installation",
            world.headers(x_amp_installation_id=str(other.installation["id"])),
            404,
            ("installation",),
        ),
        ("an unknown group", world.group_headers(x_amp_group_ref="nobody"), 404, ("nobody",)),
        ("a bad mode", world.headers(x_amp_rate_limiter_mode="fast"), 400, ("throttle",)),
        (
            "an integration without the proxy",
            {
                **disabled.headers(x_amp_installation_id=None),
                "x-amp-integration-name": "proxied",
                "x-amp-group-ref": "any",
            },
            404,
            (),
        ),
    ]
    before = await echo_calls(sandbox)
    for name, headers, status, named in cases:
        answer = await proxy.post("/sandbox/echo/x", headers=headers, content=b"{}")
        problem = assert_ours(answer, status, *named)
        assert stack.admin_api_key not in answer.text, name
        assert problem["requestId"], name
    # Paths that would leave the base URL's path.
    for path in ("/sandbox/../../salesforce/sandbox/echo", "/sandbox/%2e%2e/echo", "/a\\..\\b"):
        # As sent: httpx would resolve the dot segments itself.
        request = proxy.build_request("GET", "/", headers=world.headers())
        request.extensions["target"] = path.encode()
        assert_ours(await proxy.send(request), 400, "base URL")
    assert await echo_calls(sandbox) == before


async def test_a_connection_whose_credentials_were_refused_is_not_used(
    stack: Stack, proxy: httpx.AsyncClient, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub
) -> None:
    world = await proxy_world(stack, "hubspot", expires_in=-60)
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_REVOKED_TOKEN,
                provider=SANDBOX_PROVIDERS["hubspot"],
            )
        )
    )
    before = await echo_calls(sandbox)
    refused = await proxy.get("/sandbox/echo/x", headers=world.headers())
    assert_ours(refused, 400, "reconnect")
    await sandbox.ClearFaults(sandbox_pb2.ClearFaultsRequest())
    again = await proxy.get("/sandbox/echo/x", headers=world.headers())
    assert_ours(again, 400, "reconnect")  # bad_credentials until a person reconnects
    assert await echo_calls(sandbox) == before


async def test_calls_over_the_connections_rate_limit_are_answered_at_the_edge(
    stack: Stack, proxy: httpx.AsyncClient, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub
) -> None:
    # HubSpot documents 100 calls per 10 s per account (services/domain/catalog/
    # rate_limits.py); 250 calls span at most two windows, so at least 50 are refused.
    world = await proxy_world(stack, "hubspot")
    before = await echo_calls(sandbox)
    answers = [await proxy.get("/sandbox/echo/x", headers=world.headers()) for _ in range(250)]
    passed = [a for a in answers if a.status_code == 200]
    limited = [a for a in answers if a.status_code == 429]
    assert len(passed) + len(limited) == 250
    assert len(limited) >= 50
    assert len(passed) <= 200
    for answer in limited:
        assert_ours(answer, 429, "100 calls per 10 s")
        assert 1 <= int(answer.headers["retry-after"]) <= 10
        assert answer.headers["x-amp-retry-after"].endswith("Z")
    assert await echo_calls(sandbox) - before == len(passed)


async def test_each_call_is_logged_without_secrets(
    stack: Stack, proxy: httpx.AsyncClient, world_for_log: ProxyWorld
) -> None:
    answer = await proxy.get(
        "/sandbox/echo/logged?secret=in-query", headers=world_for_log.headers()
    )
    assert answer.status_code == 200, answer.text
    entry = await access_log_entry(stack, "/sandbox/echo/logged")
    assert entry["installation"] == str(world_for_log.installation["id"])
    assert entry["project"] == world_for_log.project_id
    assert entry["provider"] == "hubspot"
    assert entry["status"] == 200
    assert entry["origin"] == "provider"
    # Every log of ours (the sandbox plays the provider: what it logs is the provider's).
    logs = "".join(
        p.read_text(errors="replace")
        for p in (stack.home / "logs").glob("*.log")
        if not p.name.startswith("sandbox")
    )
    assert "in-query" not in logs
    for secret in (stack.admin_api_key, *world_for_log.secrets):
        assert secret not in logs


async def access_log_entry(stack: Stack, path: str) -> dict[str, Any]:
    """The access log's entry for the one call made to path (Envoy writes it within a
    second: its file logs flush on an interval)."""
    log = stack.home / "logs" / "proxy-access.log"
    for _ in range(50):
        lines = log.read_text().splitlines() if log.exists() else []
        found = [json.loads(line) for line in lines if f'"path":"{path}"' in line]
        if found:
            (entry,) = found
            return entry
        await asyncio.sleep(0.1)
    raise AssertionError(f"no access log entry for {path} in {log}")


async def test_each_call_is_counted_for_prometheus(
    stack: Stack, proxy: httpx.AsyncClient, world_for_log: ProxyWorld
) -> None:
    answer = await proxy.get("/sandbox/echo/counted", headers=world_for_log.headers())
    assert answer.status_code == 200, answer.text
    refused = await proxy.get("/x", headers=world_for_log.headers(x_amp_proxy_version="9"))
    assert refused.status_code == 400
    # Envoy streams its access log to the api about once a second.
    wanted = (
        f'ampmesh_proxy_calls_total{{origin="provider",project="{world_for_log.project_id}",'
        'provider="hubspot",status_class="2xx"} 1.0'
    )
    page = ""
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(50):
            page = (await http.get(stack.endpoints["api-metrics"])).text
            if wanted in page:
                break
            await asyncio.sleep(0.2)
    assert wanted in page, [line for line in page.splitlines() if "proxy_calls" in line]
    assert 'ampmesh_proxy_upstream_seconds_count{provider="hubspot"}' in page
    assert stack.admin_api_key not in page
    assert str(world_for_log.installation["id"]) not in page  # not a label: unbounded


@pytest.fixture
async def world_for_log(stack: Stack) -> ProxyWorld:
    return await proxy_world(stack, "hubspot")


async def test_throttle_mode_holds_calls_after_a_provider_429(
    stack: Stack, proxy: httpx.AsyncClient, sandbox: sandbox_pb2_grpc.SandboxControlServiceStub
) -> None:
    world = await proxy_world(stack, "salesforce")
    throttled = world.headers(x_amp_rate_limiter_mode="throttle")
    await echo_fails_once(
        sandbox, "salesforce", sandbox_pb2.FAULT_KIND_RATE_LIMIT, retry_after=duration(30)
    )
    limited = await proxy.get("/sandbox/echo/x", headers=throttled)
    assert limited.status_code == 429, limited.text
    assert limited.headers[ORIGIN] == "provider"  # the provider's own answer, passed on
    assert limited.headers["x-amp-retryable"] == "true"
    retry_at = limited.headers["x-amp-retry-after"]
    before = await echo_calls(sandbox)
    held = await proxy.get("/sandbox/echo/y", headers=throttled)
    problem = assert_ours(held, 429, retry_at)
    assert 25 <= int(held.headers["retry-after"]) <= 30
    assert held.headers["x-amp-retry-after"] == retry_at
    assert "held" in problem["detail"]
    assert await echo_calls(sandbox) == before
    # A caller that did not ask for throttling gets the provider's answers as they come.
    passed = await proxy.get("/sandbox/echo/z", headers=world.headers())
    assert passed.status_code == 200, passed.text


async def test_throttled_calls_each_take_one_call_of_the_rate_limit(
    stack: Stack, proxy: httpx.AsyncClient
) -> None:
    # Each throttled call is decided alone: it must cost the window one call, not a lease.
    world = await proxy_world(stack, "hubspot")
    throttled = world.headers(x_amp_rate_limiter_mode="throttle")
    answers = [await proxy.get("/sandbox/echo/t", headers=throttled) for _ in range(40)]
    assert [a.status_code for a in answers] == [200] * 40
