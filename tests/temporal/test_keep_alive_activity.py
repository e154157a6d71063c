"""keep_alive_batch against the stack's PostgreSQL and a scripted token-manager over real
gRPC: which connections a batch picks (OAuth only, by id, per provider), which threshold
each refresh carries, and how every answer of RefreshToken is counted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from ampmesh.workflows.v1 import token_keep_alive_pb2 as keep_alive_pb2
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from services.runtime.errors import abort_with_reason
from services.temporal.keep_alive.activities import KeepAliveActivities
from tests.support.control_plane import admin_client, create_project, database_url
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@dataclass
class ScriptedTokenManager(token_manager_pb2_grpc.TokenManagerServiceServicer):
    """Answers RefreshToken as `script` says for each connection id; records requests."""

    script: dict[str, str] = field(default_factory=dict)
    requests: list[token_manager_pb2.RefreshTokenRequest] = field(default_factory=list)

    async def RefreshToken(
        self, request: token_manager_pb2.RefreshTokenRequest, context: Any
    ) -> token_manager_pb2.RefreshTokenResponse:
        self.requests.append(request)
        answer = self.script.get(request.connection_id, "gone")
        if answer == "bad":
            await abort_with_reason(
                context, grpc.StatusCode.FAILED_PRECONDITION, "refused", "BAD_CREDENTIALS"
            )
        if answer == "down":
            await abort_with_reason(
                context, grpc.StatusCode.UNAVAILABLE, "provider down", "PROVIDER_UNAVAILABLE"
            )
        if answer == "no-refresh-token":
            await abort_with_reason(
                context, grpc.StatusCode.FAILED_PRECONDITION, "cannot", "NO_REFRESH_TOKEN"
            )
        if answer == "gone":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no credentials")
        return token_manager_pb2.RefreshTokenResponse(refreshed=answer == "refreshed")


@pytest.fixture(scope="module")
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=2) as opened:
        yield opened


@pytest.fixture(scope="module")
async def project_id(stack: Stack) -> str:
    async with admin_client(stack) as admin:
        project = await create_project(admin, "keep-alive", "Keep-alive")
    return str(project["id"])


@pytest.fixture
async def token_manager() -> AsyncIterator[tuple[ScriptedTokenManager, Any]]:
    servicer = ScriptedTokenManager()
    server = grpc.aio.server()
    token_manager_pb2_grpc.add_TokenManagerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield servicer, token_manager_pb2_grpc.TokenManagerServiceStub(channel)
    await server.stop(None)


@dataclass
class Seeded:
    provider: str
    ids: dict[str, str]  # name -> connection id


@pytest.fixture
async def seeded(pool: asyncpg.Pool, project_id: str) -> AsyncIterator[Seeded]:
    """Connections of a provider no other test uses, ids in the order of their names."""
    provider = f"keepalive{uuid.uuid4().hex[:8]}"
    rows = [
        ("a-working", "oauth2/authorizationCode", "working"),
        ("b-pkce", "oauth2/authorizationCodePKCE", "created"),
        ("c-refused-already", "oauth2/authorizationCode", "bad_credentials"),
        ("d-client-credentials", "oauth2/clientCredentials", "working"),
        ("e-api-key", "apiKey", "working"),
        ("f-revoked", "oauth2/authorizationCode", "working"),
        ("g-deleted", "oauth2/password", "working"),
        ("h-no-refresh-token", "oauth2/authorizationCode", "working"),
    ]
    made = sorted(uuid.uuid4() for _ in rows)
    ids = {name: str(made[n]) for n, (name, _, _) in enumerate(rows)}
    await pool.executemany(
        """
        INSERT INTO connections (id, project_id, provider, group_ref, group_name,
                                 consumer_ref, consumer_name, auth_scheme, status)
        VALUES ($1, $2, $3, 'acme', 'Acme', 'user-1', 'user-1', $4, $5)
        """,
        [
            (made[n], uuid.UUID(project_id), provider, scheme, status)
            for n, (_, scheme, status) in enumerate(rows)
        ],
    )
    try:
        yield Seeded(provider, ids)
    finally:
        await pool.execute("DELETE FROM connections WHERE provider = $1", provider)


def batch_input(
    provider: str, *, after: str = "", size: int = 3, threshold: timedelta | None = None
) -> keep_alive_pb2.TokenKeepAliveBatchInput:
    request = keep_alive_pb2.TokenKeepAliveBatchInput(
        provider=provider, batch_size=size, concurrency=2, after_connection_id=after
    )
    if threshold is not None:
        request.idle_threshold.FromTimedelta(threshold)
    return request


async def test_batches_walk_oauth_connections_and_count_every_answer(
    pool: asyncpg.Pool, seeded: Seeded, token_manager: tuple[ScriptedTokenManager, Any]
) -> None:
    servicer, stub = token_manager
    ids = seeded.ids
    servicer.script = {
        ids["a-working"]: "refreshed",
        ids["b-pkce"]: "skipped",
        ids["d-client-credentials"]: "down",
        ids["f-revoked"]: "bad",
        ids["g-deleted"]: "gone",
        ids["h-no-refresh-token"]: "no-refresh-token",
    }
    activities = KeepAliveActivities(pool, stub, catalog={})
    env = ActivityEnvironment()
    heartbeats: list[Any] = []
    env.on_heartbeat = lambda *details: heartbeats.extend(details)

    outputs = []
    after = ""
    while True:
        output = await env.run(
            activities.keep_alive_batch, batch_input(seeded.provider, after=after)
        )
        outputs.append(output)
        after = output.last_connection_id
        if output.done:
            break

    oauth = [name for name in sorted(ids) if name != "e-api-key"]
    assert [o.last_connection_id for o in outputs] == [
        ids[oauth[2]],
        ids[oauth[5]],
        ids[oauth[6]],
    ]
    total = keep_alive_pb2.TokenKeepAliveCounts()
    for output in outputs:
        for name in ("examined", "refreshed", "skipped", "failed", "bad_credentials"):
            setattr(total, name, getattr(total, name) + getattr(output.counts, name))
    # c (already bad_credentials), b (refreshed recently) and g (no credentials) are
    # skipped; d (provider down) and h (refused for another reason) failed.
    assert total == keep_alive_pb2.TokenKeepAliveCounts(
        examined=7, refreshed=1, skipped=3, failed=2, bad_credentials=1
    )
    called = sorted(r.connection_id for r in servicer.requests)
    assert called == sorted(ids[n] for n in oauth if n != "c-refused-already")
    assert sorted(heartbeats) == sorted(ids[n] for n in oauth)
    for request in servicer.requests:
        assert request.reason == token_manager_pb2.REFRESH_REASON_KEEP_ALIVE
        assert request.skip_if_refreshed_within.ToTimedelta() == timedelta(hours=24)


async def test_the_threshold_comes_from_the_input_else_the_catalog(
    pool: asyncpg.Pool,
    seeded: Seeded,
    project_id: str,
    token_manager: tuple[ScriptedTokenManager, Any],
) -> None:
    servicer, stub = token_manager
    catalog = {
        seeded.provider: providers_pb2.ProviderInfo(
            name=seeded.provider,
            oauth2_opts=providers_pb2.Oauth2Opts(keep_alive_interval_hours=6),
        )
    }
    activities = KeepAliveActivities(pool, stub, catalog=catalog)
    env = ActivityEnvironment()

    await env.run(activities.keep_alive_batch, batch_input(seeded.provider, size=2))
    await env.run(
        activities.keep_alive_batch,
        batch_input(seeded.provider, size=2, threshold=timedelta(0)),
    )
    first, second = servicer.requests[:2], servicer.requests[2:]
    assert {r.skip_if_refreshed_within.ToTimedelta() for r in first} == {timedelta(hours=6)}
    # An explicit zero is a threshold too (refresh everything), not "absent".
    assert {r.skip_if_refreshed_within.ToTimedelta() for r in second} == {timedelta(0)}
    assert {r.project_id for r in servicer.requests} == {project_id}


async def test_an_after_id_that_is_no_uuid_fails_without_retrying(
    pool: asyncpg.Pool, seeded: Seeded, token_manager: tuple[ScriptedTokenManager, Any]
) -> None:
    _, stub = token_manager
    activities = KeepAliveActivities(pool, stub, catalog={})
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            activities.keep_alive_batch, batch_input(seeded.provider, after="not-an-id")
        )
    assert raised.value.non_retryable
