"""The whole mesh as real processes: each starts, reports healthy, serves its contract.

The session's `stack` is what `ampmesh up` runs (infrastructure, one process per service,
two token-manager shards, the Envoy edge, certificates from one private CA). The tests
talk to each service process directly over mTLS with generated stubs, as the rest of the
mesh does.
"""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import grpc
import pytest
from ampmesh.messenger.v1 import messenger_pb2, messenger_pb2_grpc
from ampmesh.metrics.v1 import metrics_pb2, metrics_pb2_grpc
from ampmesh.platform.v1 import orgs_pb2, orgs_pb2_grpc
from ampmesh.read.v1 import read_pb2, read_pb2_grpc
from ampmesh.scribe.v1 import scribe_pb2, scribe_pb2_grpc
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from mcp import Client

from services.launcher.mesh import Mesh
from services.launcher.processes import grpc_healthy
from services.runtime.channels import mesh_channel
from services.runtime.tls import (
    ServiceCredentials,
    channel_credentials,
    ensure_service_credentials,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def mesh(stack: Stack) -> Mesh:
    return stack.mesh


def channel(mesh: Mesh, name: str, caller: str) -> grpc.aio.Channel:
    running = mesh.service(name)
    return mesh_channel(
        running.address, mesh.credentials(caller), server_identity=running.identity, retry=None
    )


async def unimplemented(call: object, request: object, api_key: str = "") -> str:
    """What call answers, UNIMPLEMENTED (the api's with a key: it authenticates first)."""
    metadata = (("x-api-key", api_key),) if api_key else ()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(request, timeout=5, metadata=metadata)  # type: ignore[operator]
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    return str(caught.value.details())


async def test_every_process_is_up_and_healthy(mesh: Mesh) -> None:
    described = mesh.describe()
    assert [p["name"] for p in described["processes"]] == [
        "postgres",
        "redis",
        "temporal",
        "pubsub",
        "sandbox",  # the session's stack runs the provider sandbox
        "token-manager-0",
        "token-manager-1",
        "scribe",
        "messenger",
        "metrics",
        "temporal-worker",
        "api",
        "builder-mcp",
        "mcpanda",
        "envoy",
    ]
    for running in mesh.services:
        assert running.process.returncode is None
        launcher = mesh.credentials("launcher")
        assert await grpc_healthy(running.address, running.identity, launcher), running.name
    assert described["endpoints"]["builder-mcp-http"].endswith("/mcp")


async def test_each_process_exposes_its_rpc_metrics_for_prometheus(mesh: Mesh) -> None:
    async with channel(mesh, "scribe", caller="api") as ch:
        scribe = scribe_pb2_grpc.ScribeServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scribe.ListDeadLetters(scribe_pb2.ListDeadLettersRequest(page_size=-1))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    url = mesh.service("scribe").extra["scribe-metrics"]
    assert url.startswith("http://127.0.0.1:")
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(url, timeout=5).read()  # noqa: S310 (checked above)
    )
    assert (
        b'grpc_server_handled_total{grpc_code="INVALID_ARGUMENT",grpc_method="ListDeadLetters",'
        b'grpc_service="ampmesh.scribe.v1.ScribeService",grpc_type="unary"} 1.0'
    ) in body


async def test_api_serves_every_public_contract_naming_the_issue_that_builds_it(
    mesh: Mesh,
) -> None:
    assert mesh.admin is not None
    key = mesh.admin.api_key
    async with channel(mesh, "api", caller="envoy") as ch:
        orgs = orgs_pb2_grpc.OrgServiceStub(ch)
        message = await unimplemented(orgs.GetOrg, orgs_pb2.GetOrgRequest(), key)
        assert message == (
            "/ampmesh.platform.v1.OrgService/GetOrg is not built yet: orgs have no issue "
            "filed yet (`ampmesh up` makes the default org and its admin key)"
        )
        reads = read_pb2_grpc.ReadServiceStub(ch)
        assert "deprecated" in await unimplemented(
            reads.DeliverResults, read_pb2.DeliverResultsRequest(), key
        )


async def test_internal_services_serve_their_contracts_to_allowed_callers_only(
    mesh: Mesh,
) -> None:
    for shard in ("token-manager-0", "token-manager-1"):
        async with channel(mesh, shard, caller="api") as ch:
            tokens = token_manager_pb2_grpc.TokenManagerServiceStub(ch)
            # Allowed: the call reaches the service, which checks the request.
            with pytest.raises(grpc.aio.AioRpcError) as checked:
                await tokens.RevokeCredentials(
                    token_manager_pb2.RevokeCredentialsRequest(), timeout=5
                )
            assert checked.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        async with channel(mesh, shard, caller="messenger") as ch:
            tokens = token_manager_pb2_grpc.TokenManagerServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await tokens.GetToken(token_manager_pb2.GetTokenRequest(), timeout=5)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "messenger" in str(denied.value.details())
    # Allowed callers reach messenger and scribe, which check the request.
    async with channel(mesh, "messenger", caller="api") as ch:
        deliveries = messenger_pb2_grpc.MessengerServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as checked:
            await deliveries.ListDeliveries(messenger_pb2.ListDeliveriesRequest(), timeout=5)
        assert checked.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with channel(mesh, "scribe", caller="api") as ch:
        scribe = scribe_pb2_grpc.ScribeServiceStub(ch)
        # Answers (a refused caller or an unbuilt RPC would raise).
        await scribe.GetIngestionStatus(scribe_pb2.GetIngestionStatusRequest(), timeout=5)
    async with channel(mesh, "metrics", caller="api") as ch:
        metrics = metrics_pb2_grpc.MetricsServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as checked:
            await metrics.GetProjectMetrics(metrics_pb2.GetProjectMetricsRequest(), timeout=5)
        assert checked.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "project_id" in str(checked.value.details())


async def _health_call(address: str, credentials: grpc.ChannelCredentials, name: str) -> None:
    options = [("grpc.ssl_target_name_override", name)]
    async with grpc.aio.secure_channel(address, credentials, options=options) as ch:
        await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)


async def test_every_port_refuses_clients_without_a_certificate_of_our_ca(
    mesh: Mesh, tmp_path: Path
) -> None:
    ca_pem = (mesh.cert_dir / "ca.pem").read_bytes()
    no_certificate = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    stranger = ensure_service_credentials(tmp_path / "other-ca", "api")
    foreign = channel_credentials(
        ServiceCredentials("api", ca_pem, stranger.cert_pem, stranger.key_pem)
    )
    # Every service's own port, and the edge's internal (token-manager) listener.
    ports = [(s.name, s.address, s.identity) for s in mesh.services]
    ports.append(("edge token-manager", mesh.endpoints()["token-manager"], "envoy"))
    for name, address, identity in ports:
        for credentials in (no_certificate, foreign):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _health_call(address, credentials, identity)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, name


async def test_builder_mcp_tools_work_locally_and_reach_the_api_over_mtls(mesh: Mesh) -> None:
    url = mesh.service("builder-mcp").extra["builder-mcp-http"]
    async with Client(url) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"validate_manifest", "list_providers", "deploy_manifest"} <= tools

        checked = await client.call_tool(
            "validate_manifest",
            {"source_yaml": "specVersion: 1.0.0\nintegrations:\n  - name: a\n    provder: x\n"},
        )
        assert checked.structured_content is not None
        assert checked.structured_content["valid"] is False
        assert checked.structured_content["issues"] == [
            "integration 'a': integrations[0].provder (line 4): "
            "unknown field 'provder'; did you mean 'provider'?"
        ]

        # The tool reaches the api through the generated stub, over mTLS.
        providers = await client.call_tool("list_providers", {})
        assert not providers.is_error, providers.content
        assert providers.structured_content is not None
        catalog = providers.structured_content["result"]["providers"]
        assert catalog["salesforce"]["authType"] == "oauth2"


async def test_mcpanda_drives_any_public_rpc(mesh: Mesh) -> None:
    url = mesh.service("mcpanda").extra["mcpanda-http"]
    async with Client(url) as client:
        listed = await client.call_tool("list_rpcs", {})
        assert listed.structured_content is not None
        rpcs = {r["method"]: r["http"] for r in listed.structured_content["rpcs"]}
        assert rpcs["ampmesh.platform.v1.ProjectService/CreateProject"] == "POST /v1/projects"
        called = await client.call_tool(
            "call_rpc",
            {
                "method": "ampmesh.platform.v1.OrgService/GetOrg",
                "request": {"orgId": "any"},
            },
        )
        assert called.is_error
        assert "GetOrg is not built yet: orgs have no issue filed yet" in str(called.content)
        # Locally it acts with the org admin key: authenticated RPCs answer.
        projects = await client.call_tool(
            "call_rpc", {"method": "ampmesh.platform.v1.ProjectService/ListProjects", "request": {}}
        )
        assert not projects.is_error, projects.content


async def test_internal_ports_offer_reflection_of_the_contracts_they_serve(mesh: Mesh) -> None:
    async with channel(mesh, "scribe", caller="api") as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
            names = {s.name for s in reply.list_services_response.service}
            break
    assert "ampmesh.scribe.v1.ScribeService" in names
