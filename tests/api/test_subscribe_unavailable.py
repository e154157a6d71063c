"""A webhook that arrives while PostgreSQL cannot be reached is answered UNAVAILABLE (503),
which providers retry, rather than INTERNAL or a 401 that would drop its events."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
from ampmesh.subscribe.v1 import provider_webhooks_pb2
from prometheus_client import REGISTRY

from services.api.auth import Authenticator
from services.api.context import ApiContext, ApiPolicy
from services.api.subscribe.service import ProviderWebhooks
from services.runtime.secretbox import SecretBox


class Aborted(Exception):
    pass


class CallContext:
    """What the servicer asks of a gRPC call: its metadata, and how it ends."""

    def __init__(self) -> None:
        self.code: Any = None
        self.details = ""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-ampmesh-relay-token", "t"), ("x-hubspot-signature-v3", "s"))

    def trailing_metadata(self) -> tuple[()]:
        return ()

    async def abort(self, code: Any, details: str, trailing_metadata: Any = ()) -> None:
        self.code, self.details = code, details
        raise Aborted(details)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def unreachable() -> AsyncIterator[asyncpg.Pool]:
    """A pool of a PostgreSQL that is not there (it connects on first use)."""
    pool = await asyncpg.create_pool(
        f"postgresql://ampmesh@127.0.0.1:{closed_port()}/ampmesh", min_size=0, max_size=1
    )
    try:
        yield pool
    finally:
        await pool.close()


def webhooks(pool: asyncpg.Pool) -> ProviderWebhooks:
    ctx = ApiContext(
        pool=pool,
        secrets=SecretBox.from_spec(SecretBox.new_spec()),
        catalog={},
        auth=Authenticator(pool),
        policy=ApiPolicy(),
    )
    return ProviderWebhooks(ctx)


IDS = {
    "project_id": "8d0c1a52-6c3e-4a55-9e0e-0d5c1b1e9a01",
    "integration_id": "8d0c1a52-6c3e-4a55-9e0e-0d5c1b1e9a02",
}


def unavailable_count() -> float:
    labels = {"provider": "unknown", "outcome": "unavailable"}
    return REGISTRY.get_sample_value("ampmesh_subscribe_webhooks_total", labels) or 0.0


async def test_either_url_is_unavailable_while_the_database_is(unreachable: asyncpg.Pool) -> None:
    before = unavailable_count()
    service = webhooks(unreachable)
    app_level = provider_webhooks_pb2.ReceiveIntegrationWebhookRequest(**IDS)
    app_level.body.data = b"[]"
    installation = provider_webhooks_pb2.ReceiveInstallationWebhookRequest(
        **IDS, installation_id="8d0c1a52-6c3e-4a55-9e0e-0d5c1b1e9a03"
    )
    installation.body.data = b"{}"
    first, second = CallContext(), CallContext()
    with pytest.raises(Aborted):
        await service.ReceiveIntegrationWebhook(app_level, first)
    with pytest.raises(Aborted):
        await service.ReceiveInstallationWebhook(installation, second)
    for context in (first, second):
        assert context.code == grpc.StatusCode.UNAVAILABLE
        assert "retry later" in context.details
    assert unavailable_count() == before + 2
