"""The Envoy edge in front of the real service processes: what REST, gRPC and internal
callers see through it.

Until the session-wide `stack` fixture exists, a module fixture starts what the edge
needs: the api service and two token-manager shards (real processes, mTLS from one CA),
and the edge in front of them. Most RPCs of the api still answer UNIMPLEMENTED, which
shows the REST error shape end to end; the providers catalog is built, and shows a
success. tests/edge checks every REST shape (bare arrays, 201, 204) through the same Lua
with canned responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from ampmesh.messenger.v1 import messenger_pb2
from ampmesh.metrics.v1 import metrics_pb2
from ampmesh.platform.v1 import (
    projects_pb2,
    projects_pb2_grpc,
    providers_pb2,
    providers_pb2_grpc,
)
from ampmesh.sandbox.v1 import sandbox_pb2
from ampmesh.scribe.v1 import scribe_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.api.routes import NOT_BUILT_YET
from services.launcher.edge import Edge, EdgeError
from services.launcher.ports import PortBook, free_port
from services.runtime.channels import CONNECTION_ID_HEADER, mesh_channel
from services.runtime.tls import ServiceCredentials, ensure_service_credentials
from services.runtime.unimplemented import unimplemented_message

pytestmark = pytest.mark.e2e

SHARDS = ("token-manager-0", "token-manager-1")
PROBLEM_KEYS = {"type", "title", "status", "detail", "requestId"}


@dataclass
class Process:
    name: str
    identity: str
    module: str
    port: int
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class EdgeStack:
    home: Path
    edge: Edge
    processes: dict[str, Process]
    endpoints: dict[str, str] = field(default_factory=dict)

    @property
    def cert_dir(self) -> Path:
        return self.home / "certs"

    def credentials(self, identity: str) -> ServiceCredentials:
        return ensure_service_credentials(self.cert_dir, identity)


async def _spawn(process: Process) -> None:
    with process.log.open("ab") as log:
        process.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            process.module,
            env=process.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


async def _serving(stack: EdgeStack, process: Process, within: float = 30.0) -> None:
    """Wait until the process answers its gRPC health check over mTLS."""
    deadline = time.monotonic() + within
    while True:
        assert process.process is not None
        if process.process.returncode is not None:
            pytest.fail(f"{process.name} exited: {process.log.read_text()[-2000:]}")
        with contextlib.suppress(grpc.aio.AioRpcError):
            async with mesh_channel(
                process.address,
                stack.credentials("launcher"),
                server_identity=process.identity,
                retry=None,
            ) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        if time.monotonic() > deadline:
            pytest.fail(f"{process.name} not serving: {process.log.read_text()[-2000:]}")
        await asyncio.sleep(0.1)


async def _stop(process: Process) -> None:
    if process.process is None or process.process.returncode is not None:
        return
    process.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.process.wait(), 15)
    except TimeoutError:
        process.process.kill()
        await process.process.wait()


def _process(home: Path, name: str, identity: str, module: str, **extra: str) -> Process:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        AMPMESH_HOME=str(home),
        AMPMESH_CERT_DIR=str(home / "certs"),
        AMPMESH_LISTEN_PORT=str(port),
        AMPMESH_METRICS_PORT="0",
        AMPMESH_LOG_FORMAT="json",
        **extra,
    )
    return Process(name, identity, module, port, env, home / "logs" / f"{name}.log")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EdgeStack]:
    home = tmp_path_factory.mktemp("edge-e2e")
    (home / "logs").mkdir()
    ensure_service_credentials(home / "certs", "launcher")  # the CA, before processes race
    processes = {"api-service": _process(home, "api-service", "api", "services.api")}
    for shard in SHARDS:
        processes[shard] = _process(
            home,
            shard,
            "token-manager",
            "services.token_manager",
            AMPMESH_IDENTITY="token-manager",
            AMPMESH_SHARD_NAME=shard,
        )
    stack = EdgeStack(home, Edge(home, PortBook(home), home / "certs"), processes)
    try:
        for process in processes.values():
            await _spawn(process)
        await asyncio.gather(*(_serving(stack, p) for p in processes.values()))
        stack.edge.render(
            processes["api-service"].address, {s: processes[s].address for s in SHARDS}
        )
        await stack.edge.start(within=30)
        stack.endpoints = {
            **stack.edge.endpoints(),
            **{name: p.address for name, p in processes.items()},
        }
        yield stack
    finally:
        await stack.edge.stop()
        await asyncio.gather(*(_stop(p) for p in processes.values()))


@pytest.fixture
async def http(stack: EdgeStack) -> AsyncIterator[httpx.AsyncClient]:
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
    stack: EdgeStack, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{stack.endpoints['api']}/v1/projects")
    problem = assert_problem(response, 501)
    assert problem["title"] == "Not Implemented"
    assert problem["detail"] == not_built("/ampmesh.platform.v1.ProjectService/ListProjects")
    assert "issues" not in problem


async def test_a_list_comes_back_as_the_bare_value_the_reference_returns(
    stack: EdgeStack, http: httpx.AsyncClient
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
    stack: EdgeStack, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{stack.endpoints['api']}/v1/providers/no-such-provider")
    problem = assert_problem(response, 404)
    assert problem["title"] == "Not Found"
    assert "no-such-provider" in problem["detail"]
    (issue,) = problem["issues"]  # google.rpc.BadRequest, field "path.provider"
    assert (issue["in"], issue["name"]) == ("path", "provider")


async def test_unknown_paths_are_404_problems(stack: EdgeStack, http: httpx.AsyncClient) -> None:
    api = stack.endpoints["api"]
    unknown = assert_problem(await http.get(f"{api}/v1/no-such-thing"), 404)
    assert unknown["title"] == "Not Found"
    assert "/v1/no-such-thing" in unknown["detail"]
    # A wrong verb on a known path is unknown too (the transcoder has no 405).
    assert_problem(await http.put(f"{api}/v1/projects", json={}), 404)
    # Another surface's path is not routed on this one.
    assert_problem(await http.get(f"{stack.endpoints['search']}/v1/projects"), 404)


async def test_malformed_json_is_a_400_problem(stack: EdgeStack, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{stack.endpoints['api']}/v1/projects",
        content=b'{"name": ',
        headers={"content-type": "application/json"},
    )
    problem = assert_problem(response, 400)
    assert problem["title"] == "Bad Request"
    assert problem["detail"]


async def test_an_unknown_query_parameter_is_a_400_naming_it(
    stack: EdgeStack, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{stack.endpoints['api']}/v1/projects?colour=blue")
    problem = assert_problem(response, 400)
    assert problem["issues"] == [
        {"in": "query", "name": "colour", "detail": "unknown query parameter"}
    ]


async def test_a_body_over_the_limit_is_a_413_problem(
    stack: EdgeStack, http: httpx.AsyncClient
) -> None:
    body = json.dumps({"name": "x" * (1024 * 1024 + 1)}).encode()
    response = await http.post(
        f"{stack.endpoints['api']}/v1/projects",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert assert_problem(response, 413)["title"] == "Content Too Large"


async def test_the_oauth_callback_tolerates_the_providers_own_parameters(
    stack: EdgeStack, http: httpx.AsyncClient
) -> None:
    query = "code=c&state=s&iss=https%3A%2F%2Fidp.example&session_state=xyz"
    response = await http.get(f"{stack.endpoints['api']}/callbacks/v1/oauth?{query}")
    # It reaches the RPC (not built until issue #5) instead of being refused at the edge.
    problem = assert_problem(response, 501)
    assert problem["detail"] == not_built("/ampmesh.platform.v1.ConnectionService/OauthCallback")


@pytest.mark.parametrize(
    ("surface", "method"),
    [
        ("read", "/ampmesh.read.v1.ReadService/TriggerRead"),
        ("write", "/ampmesh.write.v1.WriteService/WriteRecords"),
    ],
)
async def test_read_and_write_share_a_path_and_accept_api_key_in_the_query(
    stack: EdgeStack, http: httpx.AsyncClient, surface: str, method: str
) -> None:
    path = "/v1/projects/p/integrations/i/objects/contacts"
    response = await http.post(f"{stack.endpoints[surface]}{path}?apiKey=k-1", json={})
    assert assert_problem(response, 501)["detail"] == not_built(method)


async def test_api_key_in_the_query_is_unknown_on_the_api_host(
    stack: EdgeStack, http: httpx.AsyncClient
) -> None:
    response = await http.get(f"{stack.endpoints['api']}/v1/projects?apiKey=k-1")
    assert assert_problem(response, 400)["issues"][0]["name"] == "apiKey"


async def test_an_upstream_that_is_down_is_a_503_with_a_fixed_detail(
    stack: EdgeStack, tmp_path: Path
) -> None:
    edge = Edge(tmp_path, PortBook(tmp_path), stack.cert_dir)
    nothing_there = f"127.0.0.1:{free_port()}"
    edge.render(nothing_there, {"token-manager-0": nothing_there})
    try:
        with pytest.raises(EdgeError, match="healthy host in cluster"):
            await edge.start(within=3)
        await edge.start(require_healthy=False)
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{edge.endpoints()['api']}/v1/projects")
    finally:
        await edge.stop()
    problem = assert_problem(response, 503)
    assert (problem["title"], problem["detail"]) == (
        "Service Unavailable",
        "upstream service unavailable",
    )


# --- public gRPC ----------------------------------------------------------------------------


async def test_native_grpc_reaches_the_api_with_its_own_status(stack: EdgeStack) -> None:
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await projects_pb2_grpc.ProjectServiceStub(channel).ListProjects(
                projects_pb2.ListProjectsRequest(), timeout=10
            )
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # The api's own message, not a problem+json document.
    assert failed.value.details() == not_built("/ampmesh.platform.v1.ProjectService/ListProjects")


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
    stack: EdgeStack, method: str
) -> None:
    # Envoy routes on the path alone: an empty unary message is enough to knock.
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(method)(b"", timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert refused.value.details() == f"{method} is not a public method"


# --- the token-manager's shards -----------------------------------------------------------


def _shard_requests(admin: str) -> dict[str, int]:
    """Requests Envoy sent to each shard so far (admin /clusters, by endpoint hostname)."""
    with urllib.request.urlopen(f"{admin}/clusters?format=json", timeout=5) as reply:  # noqa: S310 (our admin)
        clusters = json.loads(reply.read())
    counts = {}
    for cluster in clusters["cluster_statuses"]:
        if cluster["name"] != "token_manager":
            continue
        for host in cluster["host_statuses"]:
            stats = {s["name"]: int(s.get("value", 0)) for s in host["stats"]}
            counts[host["hostname"]] = stats.get("rq_total", 0)
    return counts


def _shard_health(admin: str) -> dict[str, bool]:
    with urllib.request.urlopen(f"{admin}/clusters?format=json", timeout=5) as reply:  # noqa: S310 (our admin)
        clusters = json.loads(reply.read())
    return {
        host["hostname"]: host["health_status"] == {"eds_health_status": "HEALTHY"}
        for cluster in clusters["cluster_statuses"]
        if cluster["name"] == "token_manager"
        for host in cluster["host_statuses"]
    }


@contextlib.asynccontextmanager
async def _token_manager(stack: EdgeStack, caller: str = "api") -> AsyncIterator[Any]:
    # retry=None: whatever the edge lets through, the test sees.
    async with mesh_channel(
        stack.endpoints["token-manager"],
        stack.credentials(caller),
        server_identity="envoy",
        retry=None,
    ) as channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)

        async def describe(connection_id: str) -> tuple[grpc.StatusCode, str]:
            """The status of one call hashed on connection_id, and the shard it names."""
            try:
                reply = await stub.DescribeShard(
                    tm.DescribeShardRequest(connection_id=connection_id),
                    metadata=((CONNECTION_ID_HEADER, connection_id),),
                    timeout=10,
                )
            except grpc.aio.AioRpcError as error:
                return error.code(), ""
            return grpc.StatusCode.OK, reply.shard

        yield describe


async def _owner(stack: EdgeStack, describe: Any, connection_id: str, calls: int = 5) -> str:
    """The shard every call for connection_id reached (it must be one shard)."""
    admin = stack.endpoints["envoy-admin"]
    before = _shard_requests(admin)
    outcomes = {await describe(connection_id) for _ in range(calls)}
    after = _shard_requests(admin)
    grew = {shard: after[shard] - before.get(shard, 0) for shard in after}
    reached = [shard for shard, count in grew.items() if count]
    assert len(reached) == 1 and grew[reached[0]] == calls, grew
    # Answered by the shard (whatever the RPC's state of implementation), never lost.
    assert {code for code, _ in outcomes} <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.PERMISSION_DENIED,
    }, outcomes
    named = {shard for code, shard in outcomes if code == grpc.StatusCode.OK}
    assert named <= {reached[0]}, (named, reached)  # where DescribeShard is built
    return reached[0]


async def test_connection_ids_stick_to_one_shard_and_spread_over_all(stack: EdgeStack) -> None:
    async with _token_manager(stack) as describe:
        owners = {f"conn-{n}": await _owner(stack, describe, f"conn-{n}") for n in range(12)}
        assert set(owners.values()) == set(SHARDS)  # 12 ids hash onto both shards
        for connection_id, shard in list(owners.items())[:4]:
            assert await _owner(stack, describe, connection_id) == shard


async def test_the_token_manager_listener_requires_a_mesh_certificate(stack: EdgeStack) -> None:
    anonymous = grpc.ssl_channel_credentials(
        root_certificates=(stack.cert_dir / "ca.pem").read_bytes()
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


async def test_only_the_token_manager_service_is_served_on_its_listener(stack: EdgeStack) -> None:
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


async def test_a_dead_shards_connections_are_served_by_another_without_errors(
    stack: EdgeStack,
) -> None:
    admin = stack.endpoints["envoy-admin"]
    async with _token_manager(stack) as describe:
        owners = {f"conn-{n}": await _owner(stack, describe, f"conn-{n}", 1) for n in range(12)}
        victim = owners["conn-0"]
        moved = [c for c, shard in owners.items() if shard == victim]
        process = stack.processes[victim]
        assert process.process is not None
        process.process.kill()
        await process.process.wait()
        try:
            # Straight away, before any health check noticed: the route's retries carry
            # each call to the next shard on the ring.
            for connection_id in moved:
                survivor = await _owner(stack, describe, connection_id, 3)
                assert survivor != victim
        finally:
            # Back on the same port: it takes its connections back once healthy again.
            await _spawn(process)
            await _serving(stack, process)
            deadline = time.monotonic() + 30
            while not _shard_health(admin).get(victim):
                assert time.monotonic() < deadline, "the restarted shard never became healthy"
                await asyncio.sleep(0.2)
        assert await _owner(stack, describe, "conn-0", 1) == victim
