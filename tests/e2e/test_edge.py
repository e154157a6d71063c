"""The Envoy edge in front of the session's whole mesh: what REST, gRPC and internal
callers see through it.

Most RPCs of the api still answer UNIMPLEMENTED, which shows the REST error shape end to
end; the providers catalog is built, and shows a success. tests/edge checks every REST
shape (bare arrays, 201, 204) through the same Lua with canned responses;
test_rest_and_grpc.py compares REST and gRPC for one RPC, and
test_token_manager_sharding.py covers the ring hash and a shard's failover.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from ampmesh.messenger.v1 import messenger_pb2
from ampmesh.metrics.v1 import metrics_pb2
from ampmesh.platform.v1 import (
    orgs_pb2,
    orgs_pb2_grpc,
    providers_pb2,
    providers_pb2_grpc,
)
from ampmesh.sandbox.v1 import sandbox_pb2
from ampmesh.scribe.v1 import scribe_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.domain.routes import NOT_BUILT_YET
from services.launcher.processes import stop_service
from services.runtime.channels import mesh_channel
from services.runtime.unimplemented import unimplemented_message
from tests.support.control_plane import eventually
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

PROBLEM_KEYS = {"type", "title", "status", "detail", "requestId"}
# How long the edge may take to route to a restarted api again (its health checks run
# every second while a host is unhealthy).
BACK_WITHIN = 30.0


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert PROBLEM_KEYS <= set(problem) <= PROBLEM_KEYS | {"issues"}
    assert problem["status"] == status
    assert problem["type"] == "about:blank"
    assert problem["requestId"] == response.headers["x-request-id"]
    assert not [h for h in response.headers if h.startswith("grpc-")]
    return problem


def not_built(method: str) -> str:
    service = method.strip("/").split("/")[0]
    return unimplemented_message(method, NOT_BUILT_YET[service])


# --- REST ---------------------------------------------------------------------------------


async def test_an_unbuilt_rpc_is_a_501_problem_with_the_services_message(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    url = f"{stack.endpoints['api']}/v1/orgs/{stack.org_id}"
    # Callers authenticate first: an anonymous one learns nothing about what is built.
    assert_problem(await http.get(url), 401)
    response = await http.get(url, headers={"x-api-key": stack.admin_api_key})
    problem = assert_problem(response, 501)
    assert problem["title"] == "Not Implemented"
    assert problem["detail"] == not_built("/ampmesh.platform.v1.OrgService/GetOrg")
    assert "issues" not in problem


async def test_a_list_comes_back_as_the_bare_value_the_reference_returns(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{stack.endpoints['api']}/v1/providers")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert not [h for h in response.headers if h.startswith("grpc-")]
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        listing = await providers_pb2_grpc.ProviderServiceStub(channel).ListProviders(
            providers_pb2.ListProvidersRequest(), timeout=10
        )
    whole = json_format.MessageToDict(listing, always_print_fields_with_no_presence=True)
    assert response.json() == whole["providers"]  # not {"providers": ...}
    assert "salesforce" in response.json()


async def test_a_services_error_details_become_the_problems_issues(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    # The 404 itself is test_rest_and_grpc.py's; here, its google.rpc.BadRequest.
    response = await http.get(f"{stack.endpoints['api']}/v1/providers/no-such-provider")
    problem = assert_problem(response, 404)
    (issue,) = problem["issues"]  # field "path.provider"
    assert (issue["in"], issue["name"]) == ("path", "provider")


async def test_unknown_paths_are_404_problems(stack: Stack, http: httpx.AsyncClient) -> None:
    api = stack.endpoints["api"]
    unknown = assert_problem(await http.get(f"{api}/v1/no-such-thing"), 404)
    assert unknown["title"] == "Not Found"
    assert "/v1/no-such-thing" in unknown["detail"]
    # A wrong verb on a known path is unknown too (the transcoder has no 405).
    assert_problem(await http.put(f"{api}/v1/projects", json={}), 404)
    # Another surface's path is not routed on this one.
    assert_problem(await http.get(f"{stack.endpoints['search']}/v1/projects"), 404)


async def test_malformed_json_is_a_400_problem(stack: Stack, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{stack.endpoints['api']}/v1/projects",
        content=b'{"name": ',
        headers={"content-type": "application/json"},
    )
    problem = assert_problem(response, 400)
    assert problem["title"] == "Bad Request"
    assert problem["detail"]


async def test_an_unknown_query_parameter_is_a_400_naming_it(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{stack.endpoints['api']}/v1/projects?colour=blue")
    problem = assert_problem(response, 400)
    assert problem["issues"] == [
        {"in": "query", "name": "colour", "detail": "unknown query parameter"}
    ]


async def test_a_body_over_the_limit_is_a_413_problem(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    body = json.dumps({"name": "x" * (1024 * 1024 + 1)}).encode()
    response = await http.post(
        f"{stack.endpoints['api']}/v1/projects",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert assert_problem(response, 413)["title"] == "Content Too Large"


async def test_the_oauth_callback_tolerates_the_providers_own_parameters(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    query = "code=c&state=s&iss=https%3A%2F%2Fidp.example&session_state=xyz"
    response = await http.get(f"{stack.endpoints['api']}/callbacks/v1/oauth?{query}")
    # It reaches the RPC instead of being refused at the edge: the api answers the popup
    # page (an unknown state: the flow failed), with the status it chose.
    assert response.status_code == 400, response.text
    assert "x-ampmesh-http-status" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "AUTHORIZATION_FAILED" in response.text


async def test_read_and_write_share_a_path_and_accept_api_key_in_the_query(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    path = "/v1/projects/p/integrations/i/objects/contacts"
    # The read host reaches TriggerRead, which checks the key the query carried.
    response = await http.post(f"{stack.endpoints['read']}{path}?apiKey=k-1", json={})
    assert "API key" in assert_problem(response, 401)["detail"]
    # The write host, on the same path, reaches WriteRecords, which also checks the key,
    # then looks for the project.
    response = await http.post(f"{stack.endpoints['write']}{path}?apiKey=k-1", json={})
    assert "API key" in assert_problem(response, 401)["detail"]
    key = stack.admin_api_key
    response = await http.post(f"{stack.endpoints['write']}{path}?apiKey={key}", json={})
    assert assert_problem(response, 404)["detail"] == "project 'p' not found"


async def test_api_key_in_the_query_is_unknown_on_the_api_host(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{stack.endpoints['api']}/v1/projects?apiKey=k-1")
    assert assert_problem(response, 400)["issues"][0]["name"] == "apiKey"


async def _routed_again(api: str, http: httpx.AsyncClient) -> None:
    """Wait until the edge routes to the api again (its health check saw it SERVING)."""
    deadline = time.monotonic() + BACK_WITHIN
    while (await http.get(f"{api}/v1/providers")).status_code != 200:
        assert time.monotonic() < deadline, "the edge never routed to the restarted api"
        await asyncio.sleep(0.2)


async def test_an_upstream_that_is_down_is_a_503_with_a_fixed_detail(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    api = stack.endpoints["api"]
    await stop_service(stack.mesh.service("api"), 15)
    try:
        response = await http.get(f"{api}/v1/projects")
        async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await providers_pb2_grpc.ProviderServiceStub(channel).ListProviders(
                    providers_pb2.ListProvidersRequest(), timeout=10
                )
    finally:
        # The rest of the session needs the api back, wherever this test failed.
        await stack.mesh.restart("api")
        await _routed_again(api, http)
    problem = assert_problem(response, 503)
    # Fixed texts: why the upstream failed (refused, reset, no healthy host) stays inside.
    assert (problem["title"], problem["detail"]) == (
        "Service Unavailable",
        "upstream service unavailable",
    )
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert failed.value.details() == "upstream service unavailable"


# --- request ids ----------------------------------------------------------------------------

# The edge's own ids are Envoy's UUIDs.
FRESH_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


async def _logged_by_api(stack: Stack, request_id: str) -> None:
    log = stack.home / "logs" / "api.log"

    async def found() -> bool:
        return f'"{request_id}"' in log.read_text(errors="replace")

    await eventually(found, f"log request id {request_id} in {log}", patience=10)


async def test_a_clients_own_request_id_is_kept_echoed_and_logged(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    # A client tags its calls to find them in our logs, or to tie a retry to its first try.
    chosen = f"client.{uuid.uuid4().hex}:try-1_a"
    api = stack.endpoints["api"]
    listing = await http.get(f"{api}/v1/providers", headers={"x-request-id": chosen})
    assert listing.status_code == 200, listing.text
    assert listing.headers["x-request-id"] == chosen
    await _logged_by_api(stack, chosen)
    # An error names it as the problem's requestId.
    refused = await http.get(f"{api}/v1/orgs/{stack.org_id}", headers={"x-request-id": chosen})
    assert assert_problem(refused, 401)["requestId"] == chosen
    # A native gRPC call's metadata too: the api echoes the id it used in the trailers.
    on_grpc = f"grpc.{uuid.uuid4().hex}"
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        call = providers_pb2_grpc.ProviderServiceStub(channel).ListProviders(
            providers_pb2.ListProvidersRequest(), metadata=(("x-request-id", on_grpc),), timeout=10
        )
        await call
        echoed = dict(await call.trailing_metadata())
    assert echoed["x-request-id"] == on_grpc
    await _logged_by_api(stack, on_grpc)


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(["a" * 129], id="longer-than-128"),
        pytest.param(["two words"], id="space"),
        pytest.param(['forged" level="error'], id="quote"),
        pytest.param(["{x}"], id="brace"),
        pytest.param(["first", "second"], id="two-headers"),
    ],
)
async def test_a_request_id_that_could_pollute_logs_is_replaced_not_refused(
    stack: Stack, http: httpx.AsyncClient, sent: list[str]
) -> None:
    api = stack.endpoints["api"]
    headers = [("x-request-id", value) for value in sent]
    response = await http.get(f"{api}/v1/providers", headers=headers)
    # Only the label is bad, not the request: it is answered, under the edge's own id.
    assert response.status_code == 200, response.text
    assert FRESH_ID.fullmatch(response.headers["x-request-id"])
    refused = await http.get(f"{api}/v1/orgs/{stack.org_id}", headers=headers)
    problem = assert_problem(refused, 401)
    assert FRESH_ID.fullmatch(problem["requestId"])


# --- public gRPC ----------------------------------------------------------------------------


async def test_native_grpc_reaches_the_api_with_its_own_status(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await orgs_pb2_grpc.OrgServiceStub(channel).GetOrg(
                orgs_pb2.GetOrgRequest(org_id=stack.org_id),
                timeout=10,
                metadata=(("x-api-key", stack.admin_api_key),),
            )
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # The api's own message, not a problem+json document.
    assert failed.value.details() == not_built("/ampmesh.platform.v1.OrgService/GetOrg")


def _internal_methods() -> list[str]:
    """One method of every internal service, plus health and reflection."""
    services = [
        service
        for module in (tm, messenger_pb2, scribe_pb2, metrics_pb2, sandbox_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
    ]
    return [
        *(f"/{s.full_name}/{s.methods[0].name}" for s in services),
        "/grpc.health.v1.Health/Check",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ]


@pytest.mark.parametrize("method", _internal_methods())
async def test_internal_services_are_not_reachable_from_the_grpc_listener(
    stack: Stack, method: str
) -> None:
    # Envoy routes on the path alone: an empty unary message is enough to knock.
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(method)(b"", timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert refused.value.details() == f"{method} is not a public method"


# --- the token-manager's listener -----------------------------------------------------------


async def test_the_token_manager_listener_requires_a_mesh_certificate(stack: Stack) -> None:
    anonymous = grpc.ssl_channel_credentials(
        root_certificates=(stack.mesh.cert_dir / "ca.pem").read_bytes()
    )
    async with grpc.aio.secure_channel(
        stack.endpoints["token-manager"],
        anonymous,
        options=[("grpc.ssl_target_name_override", "envoy")],
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await tm_grpc.TokenManagerServiceStub(channel).DescribeShard(
                tm.DescribeShardRequest(connection_id="c"), timeout=10
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake failed


async def test_only_the_token_manager_service_is_served_on_its_listener(stack: Stack) -> None:
    async with mesh_channel(
        stack.endpoints["token-manager"],
        stack.credentials("api"),
        server_identity="envoy",
        retry=None,
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert refused.value.details() == (
        "/grpc.health.v1.Health/Check is not served here: only the TokenManagerService is"
    )
