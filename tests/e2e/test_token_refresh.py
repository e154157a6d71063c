"""Refreshing OAuth tokens on the real stack, against the provider sandbox's OAuth server:
one refresh per connection however many callers on however many shards ask at once; the
provider's refusal turns a connection bad_credentials and says so on the event bus; a
provider that is down changes nothing until it recovers; a shard killed in the middle of
a refresh storm neither loses nor doubles the refresh."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from ampmesh.events.v1 import connection_events_pb2 as ce
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.sandbox.v1 import sandbox_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc
from google.api_core.exceptions import DeadlineExceeded
from google.protobuf import duration_pb2
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.channels import CONNECTION_ID_HEADER, mesh_channel, token_manager_channel
from services.runtime.errors import status_from_error, unpack_details
from services.runtime.pubsub_topology import emulator_subscriber
from tests.support.control_plane import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    admin_client,
    assert_not_logged,
    create_project,
    create_provider_app,
    database_dump,
    sandbox_tokens,
    unique,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

Stub = tm_grpc.TokenManagerServiceStub
SHARDS = ("token-manager-0", "token-manager-1")
HUBSPOT = sandbox_pb2.PROVIDER_HUBSPOT


@dataclass
class OAuthConnection:
    project_id: str
    connection_id: str
    access_token: str
    refresh_token: str

    def hashed(self) -> tuple[tuple[str, str]]:
        return ((CONNECTION_ID_HEADER, self.connection_id),)

    def context(self, project: dict[str, Any]) -> tm.ConnectionContext:
        """Who the connection is: the project's hubspot provider app, group-1, user-1."""
        return tm.ConnectionContext(
            project_id=self.project_id,
            connection_id=self.connection_id,
            provider="hubspot",
            provider_app_id=project["app_id"],
            group_ref="group-1",
            consumer_ref="user-1",
        )


@pytest.fixture(scope="module")
async def project(stack: Stack) -> dict[str, Any]:
    """A project with a hubspot provider app holding the sandbox's OAuth client."""
    async with admin_client(stack) as admin:
        created = await create_project(admin, unique("refresh"), "Refresh tests")
        app = await create_provider_app(admin, created["id"], "hubspot", ["crm.objects.read"])
    return {"id": created["id"], "app_id": app["id"]}


@pytest.fixture
async def edge(stack: Stack) -> AsyncIterator[Stub]:
    """The token-manager through the edge, as the api reaches it."""
    async with token_manager_channel(
        stack.endpoints["token-manager"], stack.credentials("api")
    ) as channel:
        yield Stub(channel)


@asynccontextmanager
async def shard(stack: Stack, name: str) -> AsyncIterator[Stub]:
    """One shard directly, past the edge's hashing, as the api identity."""
    channel = mesh_channel(
        stack.endpoints[name], stack.credentials("api"), server_identity="token-manager"
    )
    async with channel:
        yield Stub(channel)


async def expired_connection(stack: Stack, stub: Stub, project: dict[str, Any]) -> OAuthConnection:
    """An authorization-code connection of the project's provider app whose access token
    expired a minute ago, with a refresh token the sandbox accepts."""
    access, refresh = await sandbox_tokens(stack)
    connection = OAuthConnection(project["id"], str(uuid.uuid4()), access, refresh)
    credentials = tm.Credentials(
        oauth2_authorization_code=tm.OAuth2AuthorizationCodeCredentials(
            access_token=tm.OAuth2Token(token=access),
            refresh_token=tm.OAuth2Token(token=refresh),
            scopes=["crm.objects.read"],
            token_type="Bearer",
        )
    )
    credentials.oauth2_authorization_code.access_token.expire_time.FromDatetime(
        datetime.now(UTC) - timedelta(minutes=1)
    )
    await stub.StoreCredentials(
        tm.StoreCredentialsRequest(
            connection=connection.context(project),
            credentials=credentials,
        ),
        metadata=connection.hashed(),
    )
    return connection


def get_token(connection: OAuthConnection, **fields: Any) -> tm.GetTokenRequest:
    return tm.GetTokenRequest(
        connection_id=connection.connection_id, project_id=connection.project_id, **fields
    )


async def token_counts(sandbox: Any) -> tuple[int, int]:
    """(refresh_token requests, token requests answered 200) at the sandbox's HubSpot."""
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    hubspot = next(p for p in counters.providers if p.provider == HUBSPOT)
    return (
        hubspot.token_requests_by_grant_type.get("refresh_token", 0),
        hubspot.token_requests_by_status.get(200, 0),
    )


async def refresh_counts(stack: Stack) -> Counter[str]:
    """ampmesh_token_refreshes_total for hubspot by outcome, summed over both shards."""
    counts: Counter[str] = Counter()
    # The mesh's endpoints as they are now: a shard restarted by an earlier test serves
    # its metrics on a new port.
    endpoints = stack.mesh.endpoints()
    async with httpx.AsyncClient(timeout=10) as http:
        for name in SHARDS:
            page = (await http.get(endpoints[f"{name}-metrics"])).text
            for family in text_string_to_metric_families(page):
                for sample in family.samples:
                    if (
                        sample.name == "ampmesh_token_refreshes_total"
                        and sample.labels["provider"] == "hubspot"
                    ):
                        counts[sample.labels["outcome"]] += int(sample.value)
    return counts


def reason_of(error: grpc.aio.AioRpcError) -> str:
    status = status_from_error(error)
    assert status is not None
    infos = [d for d in unpack_details(status) if d.DESCRIPTOR.name == "ErrorInfo"]
    return str(infos[0].reason) if infos else ""  # type: ignore[attr-defined]


@dataclass
class Watch:
    """A subscription of a test's own on a topic, and every envelope pulled from it."""

    subscriber: Any
    name: str
    seen: list[Envelope] = field(default_factory=list)

    def pull(self, seconds: float = 5.0) -> list[Envelope]:
        try:
            answer = self.subscriber.pull(subscription=self.name, max_messages=100, timeout=seconds)
        except DeadlineExceeded:
            return []
        if answer.received_messages:
            self.subscriber.acknowledge(
                subscription=self.name, ack_ids=[m.ack_id for m in answer.received_messages]
            )
        batch = [Envelope.FromString(m.message.data) for m in answer.received_messages]
        self.seen += batch
        return batch

    async def wait_for(self, matches: Callable[[Envelope], bool]) -> list[Envelope]:
        """What matches among everything pulled, pulling until something does (or a
        minute went by)."""
        for _ in range(12):
            found = [e for e in self.seen if matches(e)]
            if found:
                return found
            await asyncio.to_thread(self.pull, 5.0)
        return []


@contextmanager
def watching(stack: Stack, topic: str) -> Iterator[Watch]:
    """A subscription of this test's own on a topic of the event bus, made before the
    events are published, so it sees them."""
    pubsub = next(c for c in stack.mesh.components if c.name == "pubsub")
    project = pubsub.service_env()["AMPMESH_PUBSUB_PROJECT"]
    subscriber = emulator_subscriber(stack.endpoints["pubsub"])
    name = f"projects/{project}/subscriptions/test-{uuid.uuid4().hex[:12]}"
    subscriber.create_subscription(name=name, topic=f"projects/{project}/topics/{topic}")
    try:
        yield Watch(subscriber, name)
    finally:
        subscriber.delete_subscription(subscription=name)


async def events_about(watch: Watch, connection_id: str, payload: str) -> list[Envelope]:
    """The connection events with this payload about the connection."""
    return await watch.wait_for(
        lambda e: (
            e.WhichOneof("payload") == payload
            and getattr(e, payload).connection.connection_id == connection_id
        )
    )


async def test_a_thousand_concurrent_calls_on_both_shards_refresh_once(
    stack: Stack, edge: Stub, sandbox: Any, project: dict[str, Any]
) -> None:
    connection = await expired_connection(stack, edge, project)
    before = await token_counts(sandbox)
    decided_before = await refresh_counts(stack)
    with watching(stack, "ampmesh-connections") as watch:
        async with shard(stack, SHARDS[0]) as zero, shard(stack, SHARDS[1]) as one:
            # The same expired connection asked of both shards at once, 500 calls each.
            calls = [
                stub.GetToken(get_token(connection), metadata=connection.hashed())
                for _ in range(500)
                for stub in (zero, one)
            ]
            answers = await asyncio.gather(*calls)
        after = await token_counts(sandbox)
        refreshed = await events_about(watch, connection.connection_id, "connection_refreshed")

    tokens = {a.token.token for a in answers}
    assert len(tokens) == 1 and connection.access_token not in tokens
    assert after[0] - before[0] == 1  # exactly one refresh reached the provider
    assert sum(a.refreshed for a in answers) == 1
    assert len(refreshed) == 1
    # What an operator sees: one refresh; the other shard's flight, if its calls came
    # before the new token reached Redis, found it done under the lock.
    decided = await refresh_counts(stack) - decided_before
    assert decided["refreshed"] == 1 and decided["already_fresh"] <= 1
    assert set(decided) <= {"refreshed", "already_fresh"}
    event = refreshed[0].connection_refreshed
    assert event.connection.status == ce.CONNECTION_STATUS_CREATED
    assert event.refresh_token_rotated  # the sandbox rotates refresh tokens
    assert refreshed[0].meta.project_id == connection.project_id


async def test_a_refreshed_token_works_and_no_secret_reaches_postgres_or_a_log(
    stack: Stack, edge: Stub, project: dict[str, Any]
) -> None:
    connection = await expired_connection(stack, edge, project)
    answer = await edge.GetToken(get_token(connection, include_credentials=True))
    assert answer.refreshed and answer.source == tm.TOKEN_SOURCE_PROVIDER
    code = answer.credentials.oauth2_authorization_code
    new_access, new_refresh = code.access_token.token, code.refresh_token.token
    assert new_refresh and new_refresh != connection.refresh_token
    assert answer.token.expire_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC)
    async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as http:
        used = await http.get(
            "/hubspot/crm/v3/objects/contacts",
            headers={a.name: a.value for a in answer.token.attachments},
        )
    assert used.status_code == 200, used.text
    # The next call is served from the cache, without another refresh.
    again = await edge.GetToken(get_token(connection))
    assert (again.token.token, again.refreshed) == (new_access, False)
    dump = await database_dump(stack)
    assert connection.connection_id in dump
    for secret in (new_access, new_refresh, connection.refresh_token, SANDBOX_CLIENT_SECRET):
        assert secret not in dump
    assert_not_logged(stack, new_access, new_refresh, connection.refresh_token)


async def test_a_revoked_refresh_token_turns_the_connection_bad(
    stack: Stack, edge: Stub, project: dict[str, Any]
) -> None:
    connection = await expired_connection(stack, edge, project)
    async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as http:
        revoked = await http.post(
            "/hubspot/oauth/v1/revoke",
            data={
                "token": connection.refresh_token,
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SANDBOX_CLIENT_SECRET,
            },
        )
    assert revoked.status_code == 200, revoked.text
    with watching(stack, "ampmesh-connections") as watch:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await edge.GetToken(get_token(connection))
        errors = await events_about(watch, connection.connection_id, "connection_error")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(refused.value) == "BAD_CREDENTIALS"
    assert "invalid_grant" in (refused.value.details() or "")
    stored = await edge.GetToken(get_token(connection, refresh=tm.REFRESH_MODE_NEVER))
    assert stored.stored.status == ce.CONNECTION_STATUS_BAD_CREDENTIALS
    assert len(errors) == 1
    error = errors[0].connection_error
    assert error.kind == ce.CONNECTION_ERROR_KIND_INVALID_GRANT
    assert error.connection.status == ce.CONNECTION_STATUS_BAD_CREDENTIALS
    assert error.previous_status == ce.CONNECTION_STATUS_CREATED
    assert (error.provider_error, error.will_retry) == ("invalid_grant", False)
    # A bad connection does not keep knocking at the provider: refused at once.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await edge.GetToken(get_token(connection))
    assert reason_of(again.value) == "BAD_CREDENTIALS"


async def test_a_provider_down_changes_nothing_and_the_refresh_succeeds_once_it_recovers(
    stack: Stack, edge: Stub, sandbox: Any, project: dict[str, Any]
) -> None:
    connection = await expired_connection(stack, edge, project)
    down = await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_TOKEN,
                provider=HUBSPOT,
                http_status=503,
            )
        )
    )
    with watching(stack, "ampmesh-connections") as watch:
        with pytest.raises(grpc.aio.AioRpcError) as unavailable:
            await edge.GetToken(get_token(connection))
        errors = await events_about(watch, connection.connection_id, "connection_error")
    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason_of(unavailable.value) == "PROVIDER_UNAVAILABLE"
    stored = await edge.GetToken(get_token(connection, refresh=tm.REFRESH_MODE_NEVER))
    assert stored.stored.status == ce.CONNECTION_STATUS_CREATED
    assert stored.token.token == connection.access_token  # nothing replaced
    assert errors and errors[0].connection_error.will_retry
    assert errors[0].connection_error.kind == ce.CONNECTION_ERROR_KIND_PROVIDER_UNAVAILABLE
    assert errors[0].connection_error.provider_status_code == 503

    await sandbox.ClearFaults(sandbox_pb2.ClearFaultsRequest(ids=[down.id]))
    # One 503, then the provider is back: the call's own retry gets through.
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_TOKEN,
                provider=HUBSPOT,
                http_status=502,
                count=1,
            )
        )
    )
    recovered = await edge.GetToken(get_token(connection))
    assert recovered.refreshed and recovered.token.token != connection.access_token
    assert recovered.stored.status == ce.CONNECTION_STATUS_CREATED


async def test_killing_the_refreshing_shard_mid_storm_loses_and_doubles_nothing(
    stack: Stack, edge: Stub, sandbox: Any, project: dict[str, Any]
) -> None:
    connection = await expired_connection(stack, edge, project)
    owner = (
        await edge.DescribeShard(tm.DescribeShardRequest(connection_id=connection.connection_id))
    ).shard
    # The first refresh request waits 1.5 s at the provider before it is handled: the
    # shard that sent it dies meanwhile, with the connection's row lock held.
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_SLOW_RESPONSE,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_TOKEN,
                provider=HUBSPOT,
                grant_type="refresh_token",
                count=1,
                delay=duration_pb2.Duration(seconds=1, nanos=500_000_000),
            )
        )
    )
    before = await token_counts(sandbox)
    fired = (await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())).faults_fired
    victim = stack.mesh.service(owner)
    try:
        storm = [asyncio.ensure_future(edge.GetToken(get_token(connection))) for _ in range(300)]
        # Kill once the refresh is at the provider (the slow fault fired on it).
        for _ in range(200):
            counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
            if counters.faults_fired > fired:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the refresh never reached the provider")
        # Left dead (not restarted by the mesh's supervisor) until the storm is answered.
        stack.mesh.hold(owner)
        victim.process.kill()
        await victim.process.wait()
        answers = await asyncio.gather(*storm)
        # The first request reaches the provider after its delay (to a dead shard).
        await asyncio.sleep(1.5)
        after = await token_counts(sandbox)
    finally:
        await stack.mesh.restart(owner)

    tokens = {a.token.token for a in answers}
    assert len(tokens) == 1 and connection.access_token not in tokens  # none lost
    # Two refresh requests reached the provider, and exactly one took effect: the
    # survivor's (the dead shard's, handled after it, found its refresh token rotated).
    assert after[0] - before[0] == 2
    assert after[1] - before[1] == 1
    final = await edge.GetToken(get_token(connection, include_credentials=True))
    assert final.token.token in tokens and not final.refreshed
    assert final.stored.status == ce.CONNECTION_STATUS_CREATED


async def test_client_credentials_fetch_a_first_token_and_renew_it_without_a_refresh_token(
    stack: Stack, edge: Stub, sandbox: Any, project: dict[str, Any]
) -> None:
    def request(secret: str) -> tuple[tm.StoreCredentialsRequest, tuple[tuple[str, str]]]:
        connection_id = str(uuid.uuid4())
        return (
            tm.StoreCredentialsRequest(
                connection=tm.ConnectionContext(
                    project_id=project["id"], connection_id=connection_id, provider="hubspot"
                ),
                credentials=tm.Credentials(
                    oauth2_client_credentials=tm.OAuth2ClientCredentials(
                        client_id=SANDBOX_CLIENT_ID, client_secret=secret
                    )
                ),
                obtain_token=True,
            ),
            ((CONNECTION_ID_HEADER, connection_id),),
        )

    # A wrong client secret is refused at connect time, and nothing is stored.
    wrong, wrong_hash = request("not-the-secret")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await edge.StoreCredentials(wrong, metadata=wrong_hash)
    assert reason_of(refused.value) == "BAD_CREDENTIALS"
    with pytest.raises(grpc.aio.AioRpcError) as absent:
        await edge.GetToken(
            tm.GetTokenRequest(connection_id=wrong_hash[0][1], project_id=project["id"])
        )
    assert absent.value.code() == grpc.StatusCode.NOT_FOUND

    right, right_hash = request(SANDBOX_CLIENT_SECRET)
    stored = await edge.StoreCredentials(right, metadata=right_hash)
    assert stored.access_token_expire_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC)
    first = await edge.GetToken(
        tm.GetTokenRequest(connection_id=right_hash[0][1], project_id=project["id"])
    )
    assert first.token.token and not first.refreshed
    # Renewing asks for a new client-credentials token (there is no refresh token).
    renewed = await edge.RefreshToken(
        tm.RefreshTokenRequest(connection_id=right_hash[0][1], project_id=project["id"])
    )
    assert renewed.refreshed and renewed.token.token != first.token.token


async def refresh_at_sandbox(stack: Stack, refresh_token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as http:
        return await http.post(
            "/hubspot/oauth/v1/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SANDBOX_CLIENT_SECRET,
            },
        )


async def test_deleting_revokes_at_the_provider_and_says_so(
    stack: Stack, edge: Stub, project: dict[str, Any]
) -> None:
    connection = await expired_connection(stack, edge, project)
    with watching(stack, "ampmesh-connections") as watch:
        await edge.DeleteCredentials(
            tm.DeleteCredentialsRequest(
                connection_id=connection.connection_id,
                project_id=connection.project_id,
                revoke_at_provider=True,
            )
        )
        deleted = await events_about(watch, connection.connection_id, "connection_deleted")
    # HubSpot's DELETE /oauth/v1/refresh-tokens/{token}: the grant is gone at the provider.
    refused = await refresh_at_sandbox(stack, connection.refresh_token)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert [e.connection_deleted.revoked_at_provider for e in deleted] == [True]
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await edge.GetToken(get_token(connection))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_revoking_keeps_the_record_and_turns_the_connection_bad(
    stack: Stack, edge: Stub, project: dict[str, Any]
) -> None:
    connection = await expired_connection(stack, edge, project)
    answer = await edge.RevokeCredentials(
        tm.RevokeCredentialsRequest(
            connection_id=connection.connection_id, project_id=connection.project_id
        )
    )
    assert answer.revoked_at_provider and not answer.detail
    assert answer.stored.status == ce.CONNECTION_STATUS_BAD_CREDENTIALS
    refused = await refresh_at_sandbox(stack, connection.refresh_token)
    assert refused.status_code == 400
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await edge.GetToken(get_token(connection))
    assert reason_of(bad.value) == "BAD_CREDENTIALS"
    assert_not_logged(stack, connection.access_token, connection.refresh_token)


async def test_storing_and_rotating_announce_created_and_updated_with_notifications(
    stack: Stack, edge: Stub, project: dict[str, Any]
) -> None:
    with (
        watching(stack, "ampmesh-connections") as events,
        watching(stack, "ampmesh-notifications") as notifications,
    ):
        connection = await expired_connection(stack, edge, project)
        stored = await edge.GetToken(get_token(connection, refresh=tm.REFRESH_MODE_NEVER))
        rotated = tm.Credentials(
            oauth2_authorization_code=tm.OAuth2AuthorizationCodeCredentials(
                access_token=tm.OAuth2Token(token="rotated-by-hand"),
                refresh_token=tm.OAuth2Token(token=connection.refresh_token),
            )
        )
        await edge.StoreCredentials(
            tm.StoreCredentialsRequest(
                connection=connection.context(project),
                credentials=rotated,
                replace=True,
                updated_fields=["oauth2AuthorizationCode"],
            ),
            metadata=connection.hashed(),
        )
        created = await events_about(events, connection.connection_id, "connection_created")
        updated = await events_about(events, connection.connection_id, "connection_updated")
        notes = await notifications.wait_for(
            lambda n: (
                n.WhichOneof("payload") == "notification"
                and n.meta.type == "connection.updated"
                and n.notification.connection_updated.data.connection_id == connection.connection_id
            )
        )
        notes += [
            n
            for n in notifications.seen
            if n.meta.type == "connection.created"
            and n.notification.connection_created.data.connection_id == connection.connection_id
        ]
    assert len(created) == 1 and len(updated) == 1
    assert created[0].connection_created.connection.group_ref == "group-1"
    assert list(updated[0].connection_updated.updated_fields) == ["oauth2AuthorizationCode"]
    assert stored.stored.status == ce.CONNECTION_STATUS_CREATED
    # The builder-facing notifications, typed as the reference names them.
    assert {n.meta.type for n in notes} == {"connection.created", "connection.updated"}
    assert all(n.meta.project_id == connection.project_id for n in notes)
