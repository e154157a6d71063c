"""One RPC, three ways in: REST through the edge, gRPC through the edge, gRPC straight to
the api service over mTLS. All three reach the same handler and give the same answer."""

from __future__ import annotations

import grpc
import httpx
import pytest
from ampmesh.platform.v1 import providers_pb2, providers_pb2_grpc
from google.protobuf import json_format

from services.runtime.channels import mesh_channel
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def test_rest_and_grpc_reach_the_same_rpc_with_the_same_result(stack: Stack) -> None:
    request = providers_pb2.GetProviderRequest(provider="salesforce")
    async with httpx.AsyncClient(base_url=stack.endpoints["api"], timeout=10) as http:
        rest = await http.get("/v1/providers/salesforce")
    assert rest.status_code == 200, rest.text
    assert rest.headers["content-type"].startswith("application/json")

    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as edge:
        via_edge = await providers_pb2_grpc.ProviderServiceStub(edge).GetProvider(
            request, timeout=10
        )
    async with mesh_channel(
        stack.endpoints["api-service"], stack.credentials("envoy"), server_identity="api"
    ) as direct:
        straight = await providers_pb2_grpc.ProviderServiceStub(direct).GetProvider(request)

    assert via_edge == straight
    assert via_edge.name == "salesforce"
    # The REST body is the same message in its JSON mapping (primitive fields printed, as
    # the edge's transcoder is configured).
    assert rest.json() == json_format.MessageToDict(
        straight, always_print_fields_with_no_presence=True
    )


async def test_errors_come_back_in_each_protocols_own_shape(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.endpoints["api"], timeout=10) as http:
        rest = await http.get("/v1/providers/no-such-provider")
    assert rest.status_code == 404
    assert rest.headers["content-type"] == "application/problem+json"
    problem = rest.json()
    assert problem["status"] == 404 and problem["title"] == "Not Found"
    assert "no-such-provider" in problem["detail"]
    assert problem["requestId"] == rest.headers["x-request-id"]

    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as edge:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await providers_pb2_grpc.ProviderServiceStub(edge).GetProvider(
                providers_pb2.GetProviderRequest(provider="no-such-provider"), timeout=10
            )
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-provider" in (failed.value.details() or "")
