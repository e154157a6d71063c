"""A token-manager shard in-process over mTLS (conftest's `shard`): DescribeShard, the
hash-header rule, the callers it admits, and the methods issue #5 has not built yet."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

from services.runtime.channels import CONNECTION_ID_HEADER
from services.runtime.errors import status_from_error, unpack_details
from services.runtime.server import MeshServer
from services.runtime.tls import ServiceCredentials
from tests.support.probe import dial

CredsFor = Callable[[str], ServiceCredentials]


def hashed(connection_id: str) -> tuple[tuple[str, str], ...]:
    return ((CONNECTION_ID_HEADER, connection_id),)


async def test_describe_shard_names_the_shard_and_the_caller(
    shard: MeshServer, creds_for: CredsFor
) -> None:
    async with dial(shard, creds_for("api")) as channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)
        reply = await stub.DescribeShard(
            tm.DescribeShardRequest(connection_id="conn-1"), metadata=hashed("conn-1"), timeout=5
        )
    assert (reply.shard, reply.connection_id, reply.caller) == ("token-manager-7", "conn-1", "api")


async def test_the_hash_header_must_match_the_connection(
    shard: MeshServer, creds_for: CredsFor
) -> None:
    async with dial(shard, creds_for("temporal")) as channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as mismatch:
            await stub.DescribeShard(
                tm.DescribeShardRequest(connection_id="conn-1"), metadata=hashed("conn-2")
            )
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.DescribeShard(tm.DescribeShardRequest(connection_id="conn-1"))
    for error in (mismatch.value, missing.value):
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = status_from_error(error)
        assert status is not None
        (bad_request,) = unpack_details(status)
        assert [v.field for v in bad_request.field_violations] == [  # type: ignore[attr-defined]
            f"header.{CONNECTION_ID_HEADER}"
        ]


async def test_other_identities_are_refused(shard: MeshServer, creds_for: CredsFor) -> None:
    async with dial(shard, creds_for("messenger")) as channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.DescribeShard(
                tm.DescribeShardRequest(connection_id="c"), metadata=hashed("c")
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
