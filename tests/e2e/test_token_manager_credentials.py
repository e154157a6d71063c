"""Credentials through the Envoy edge, on the stack's token-manager shards: the api stores,
the temporal worker reads, whichever shard the edge picks; nothing secret reaches
PostgreSQL in plaintext; other identities are refused."""

from __future__ import annotations

import secrets
import uuid

import grpc
import pytest
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

from services.runtime.channels import CONNECTION_ID_HEADER, token_manager_channel
from tests.support.control_plane import database_dump
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


async def test_the_api_stores_and_temporal_reads_through_the_edge(stack: Stack) -> None:
    project, connection_id = str(uuid.uuid4()), f"edge-{uuid.uuid4()}"
    key = f"secret-{secrets.token_hex(12)}"
    async with (
        token_manager_channel(stack.endpoints["token-manager"], stack.credentials("api")) as api,
        token_manager_channel(
            stack.endpoints["token-manager"], stack.credentials("temporal")
        ) as temporal,
    ):
        api_stub = tm_grpc.TokenManagerServiceStub(api)
        temporal_stub = tm_grpc.TokenManagerServiceStub(temporal)
        stored = await api_stub.StoreCredentials(
            tm.StoreCredentialsRequest(
                connection=tm.ConnectionContext(
                    project_id=project, connection_id=connection_id, provider="anthropic"
                ),
                credentials=tm.Credentials(api_key=tm.ApiKeyCredentials(key=key)),
            ),
            # token_manager_channel hashes on a top-level connection_id; StoreCredentials
            # nests it in `connection`, so the header is set here.
            metadata=((CONNECTION_ID_HEADER, connection_id),),
        )
        try:
            assert stored.connection_id == connection_id
            # The edge hashes both callers' calls onto the shard that stored: memory.
            reply = await temporal_stub.GetToken(
                tm.GetTokenRequest(connection_id=connection_id, project_id=project)
            )
            assert (reply.token.token, reply.source) == (key, tm.TOKEN_SOURCE_MEMORY)
            dump = await database_dump(stack)
            assert connection_id in dump and key not in dump
        finally:
            # The stack's keyring sealed this row; leave none for other tests' keyrings.
            await api_stub.DeleteCredentials(
                tm.DeleteCredentialsRequest(connection_id=connection_id, project_id=project)
            )
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await temporal_stub.GetToken(
                tm.GetTokenRequest(connection_id=connection_id, project_id=project)
            )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_other_identities_cannot_store_through_the_edge(stack: Stack) -> None:
    async with token_manager_channel(
        stack.endpoints["token-manager"], stack.credentials("messenger")
    ) as channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.StoreCredentials(
                tm.StoreCredentialsRequest(
                    connection=tm.ConnectionContext(
                        project_id=str(uuid.uuid4()), connection_id="c", provider="anthropic"
                    ),
                    credentials=tm.Credentials(api_key=tm.ApiKeyCredentials(key="k")),
                ),
                metadata=((CONNECTION_ID_HEADER, "c"),),
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
