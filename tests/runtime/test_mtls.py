"""mTLS through the runtime's bootstrap: who gets in, and who the handler sees."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.channels import mesh_channel
from services.runtime.identity import AccessPolicy
from services.runtime.tls import ServiceCredentials, ensure_service_credentials
from tests.support.probe import PROBE_SERVICE, Probe, dial, method, serving

CredsFor = Callable[[str], ServiceCredentials]


async def whoami(channel: grpc.aio.Channel) -> dict[str, str | None]:
    reply = await channel.unary_unary(method("Whoami"))(b"", timeout=5)
    return json.loads(reply)  # type: ignore[no-any-return, unused-ignore]


async def test_client_with_certificate_from_our_ca_is_served_and_seen_by_its_san(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    probe = Probe()
    async with (
        serving(server_creds, [probe.service()]) as server,
        dial(server, creds_for("api")) as channel,
    ):
        seen = await whoami(channel)
    assert seen["identity"] == "api"
    assert probe.calls["Whoami"] == 1


async def test_client_without_certificate_is_refused(server_creds: ServiceCredentials) -> None:
    probe = Probe()
    async with serving(server_creds, [probe.service()]) as server:
        # Trusts our CA (so the server is verified) but presents no certificate.
        no_cert = grpc.ssl_channel_credentials(root_certificates=server_creds.ca_pem)
        async with grpc.aio.secure_channel(
            f"127.0.0.1:{server.port}",
            no_cert,
            options=[("grpc.ssl_target_name_override", "token-manager")],
        ) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await whoami(channel)
    # The TLS handshake fails, so the call never reaches a handler.
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert probe.calls["Whoami"] == 0


async def test_client_with_certificate_from_another_ca_is_refused(
    server_creds: ServiceCredentials, tmp_path: Path
) -> None:
    # Same code, another directory: a second, unrelated CA issuing an "api" certificate.
    impostor = ensure_service_credentials(tmp_path / "other-ca", "api")
    assert impostor.ca_pem != server_creds.ca_pem
    probe = Probe()
    async with serving(server_creds, [probe.service()]) as server:
        forged = grpc.ssl_channel_credentials(
            root_certificates=server_creds.ca_pem,  # it can verify the server...
            private_key=impostor.key_pem,  # ...but its own certificate is foreign
            certificate_chain=impostor.cert_pem,
        )
        async with grpc.aio.secure_channel(
            f"127.0.0.1:{server.port}",
            forged,
            options=[("grpc.ssl_target_name_override", "token-manager")],
        ) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await whoami(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert probe.calls["Whoami"] == 0


async def test_identity_outside_the_policy_gets_permission_denied(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    probe = Probe()
    policy = AccessPolicy.allow_only("api", "temporal")
    async with serving(server_creds, [probe.service()], policy=policy) as server:
        async with dial(server, creds_for("temporal")) as allowed:
            assert (await whoami(allowed))["identity"] == "temporal"

        async with dial(server, creds_for("messenger")) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await whoami(channel)
            # Streaming RPCs are checked too, not only unary ones.
            with pytest.raises(grpc.aio.AioRpcError) as denied_stream:
                async for _ in channel.unary_stream(method("Count"))(b"3", timeout=5):
                    pass
            # Health stays open to every mesh identity: balancers probe with their own.
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=PROBE_SERVICE))

    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert denied.value.details() == (
        f"identity 'messenger' may not call {method('Whoami')} (allowed: api, temporal)"
    )
    assert denied_stream.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert probe.calls["Whoami"] == 1  # only the allowed caller's
    assert probe.calls["Count"] == 0


async def test_client_refuses_a_server_with_another_identity(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    """Every mesh leaf is from our CA: the client must also check *which* service answers."""
    probe = Probe()
    async with (
        serving(server_creds, [probe.service()]) as server,
        mesh_channel(
            f"127.0.0.1:{server.port}", creds_for("api"), server_identity="scribe", retry=None
        ) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await whoami(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert probe.calls["Whoami"] == 0


async def whoami_with(channel: grpc.aio.Channel, xfcc: str) -> dict[str, str | None]:
    call = channel.unary_unary(method("Whoami"))
    reply = await call(b"", timeout=5, metadata=(("x-forwarded-client-cert", xfcc),))
    return json.loads(reply)  # type: ignore[no-any-return, unused-ignore]


async def test_envoy_forwards_its_clients_identity_and_nobody_else_can(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    # As a token-manager shard behind Envoy: only api may call, and api arrives via Envoy.
    policy = AccessPolicy.allow_only("api")
    xfcc = 'Hash=ab12;DNS=api;DNS=localhost;URI="spiffe://x"'
    async with serving(server_creds, [Probe().service()], policy=policy) as server:
        async with dial(server, creds_for("envoy")) as via_envoy:
            assert (await whoami_with(via_envoy, xfcc))["identity"] == "api"
            # Envoy without a forwarded certificate is only itself, which is not allowed.
            with pytest.raises(grpc.aio.AioRpcError) as bare:
                await whoami(via_envoy)
            assert bare.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "'envoy'" in (bare.value.details() or "")
        # Anyone else claiming to forward for api is refused as themselves.
        async with dial(server, creds_for("messenger")) as impostor:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await whoami_with(impostor, xfcc)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "'messenger'" in (refused.value.details() or "")
