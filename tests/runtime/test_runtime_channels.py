"""Client channels: retries on UNAVAILABLE, default deadlines, default metadata."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import grpc
import pytest

from services.runtime.channels import (
    CONNECTION_ID_HEADER,
    RetryPolicy,
    header_from_request,
    service_config,
)
from services.runtime.request_id import REQUEST_ID_HEADER, reset_request_id, set_request_id
from services.runtime.tls import ServiceCredentials
from tests.support.probe import PROBE_SERVICE, Probe, dial, method, serving

CredsFor = Callable[[str], ServiceCredentials]
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05)


async def test_retry_policy_retries_unavailable(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    probe = Probe()
    async with serving(server_creds, [probe.service()]) as server:
        async with dial(server, creds_for("api"), retry=FAST_RETRY) as channel:
            # Fails twice with UNAVAILABLE, succeeds on the third and last attempt.
            reply = await channel.unary_unary(method("Flaky"))(b"a:2", timeout=5)
        assert reply == b"ok after 3"
        assert probe.flaky_attempts[b"a"] == 3

        async with dial(server, creds_for("api"), retry=None) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await channel.unary_unary(method("Flaky"))(b"b:2", timeout=5)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert probe.flaky_attempts[b"b"] == 1  # no retry without the policy

        async with dial(server, creds_for("api"), retry=FAST_RETRY) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as exhausted:
                await channel.unary_unary(method("Flaky"))(b"c:5", timeout=5)
        assert exhausted.value.code() == grpc.StatusCode.UNAVAILABLE
        assert probe.flaky_attempts[b"c"] == 3  # maxAttempts counts the first one


async def test_retry_policy_leaves_other_codes_alone(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    probe = Probe()
    async with (
        serving(server_creds, [probe.service()]) as server,
        dial(server, creds_for("api"), retry=FAST_RETRY) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await channel.unary_unary(method("Boom"))(b"", timeout=5)
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert probe.calls["Boom"] == 1


async def test_service_config_gives_a_default_deadline(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    async with (
        serving(server_creds, [Probe().service()]) as server,
        dial(server, creds_for("api"), services=[PROBE_SERVICE], timeout=0.2) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await channel.unary_unary(method("Slow"))(b"2")  # no timeout at the call site
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def connection_hash(request: bytes) -> str:
    return hashlib.sha256(request).hexdigest()[:16]


async def test_default_metadata_from_the_request_and_request_id_propagation(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    by_connection = header_from_request(CONNECTION_ID_HEADER, connection_hash)
    async with (
        serving(server_creds, [Probe().service()]) as server,
        dial(server, creds_for("api"), metadata=by_connection) as channel,
    ):
        headers = channel.unary_unary(method("Headers"))
        token = set_request_id("req-upstream")  # as inside a handler of another RPC
        try:
            seen = json.loads(await headers(b"conn-1", timeout=5))
        finally:
            reset_request_id(token)
        explicit = json.loads(
            await headers(b"conn-2", metadata=((CONNECTION_ID_HEADER, "chosen"),), timeout=5)
        )

    assert seen[CONNECTION_ID_HEADER] == connection_hash(b"conn-1")
    assert seen[REQUEST_ID_HEADER] == "req-upstream"
    assert explicit[CONNECTION_ID_HEADER] == "chosen"  # the call site wins


def test_service_config_shape() -> None:
    config = json.loads(service_config(["ampmesh.token.v1.TokenService"], timeout=2.5))
    assert config == {
        "methodConfig": [
            {
                "name": [{"service": "ampmesh.token.v1.TokenService"}],
                "timeout": "2.5s",
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2.0,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    assert json.loads(service_config(retry=None, timeout=None)) == {
        "methodConfig": [{"name": [{}]}]
    }
    with pytest.raises(ValueError, match="between 2 and 5"):
        RetryPolicy(max_attempts=1)
    with pytest.raises(ValueError, match="NOT_A_CODE"):
        RetryPolicy(retryable_status_codes=("NOT_A_CODE",))


def test_the_token_manager_hash_header_comes_from_the_request_wherever_it_holds_the_id() -> None:
    from ampmesh.token.v1 import token_manager_pb2 as tm

    from services.runtime.channels import connection_id_of

    assert connection_id_of(tm.GetTokenRequest(connection_id="c1")) == "c1"
    nested = tm.StoreCredentialsRequest(connection=tm.ConnectionContext(connection_id="c2"))
    assert connection_id_of(nested) == "c2"
    assert connection_id_of(tm.DescribeShardRequest()) is None
