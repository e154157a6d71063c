"""A provider that cannot be reached, on in-process shards over the stack's PostgreSQL and
Redis: whatever the network does (no such host, refused, reset, dropped mid-answer, no
answer, no TLS), refreshing, a first token and a code exchange answer UNAVAILABLE with a
RetryInfo and change nothing, and deleting the connection still deletes it, saying the
provider did not revoke its tokens.

The shards' catalog points hubspot at the unreachable provider (the `sandbox_url` setting
the local mesh uses to point it at the sandbox)."""

from __future__ import annotations

import asyncio
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from ampmesh.events.v1 import connection_events_pb2 as events
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc
from google.rpc import error_details_pb2

from services.domain.client_secrets import seal_client_secret
from services.runtime.errors import status_from_error, unpack_details
from services.runtime.identity import AccessPolicy
from services.runtime.secretbox import SecretBox
from services.runtime.tls import ServiceCredentials
from services.token_manager.__main__ import CALLERS, open_services
from tests.support.probe import dial, serving
from tests.support.stack import Stack
from tests.support.token_manager import OLD_KEYS, database_url, shard_settings

CredsFor = Callable[[str], ServiceCredentials]
Stub = tm_grpc.TokenManagerServiceStub

ACCESS, REFRESH = "access-" + uuid.uuid4().hex, "refresh-" + uuid.uuid4().hex
CLIENT_SECRET = "client-secret-" + uuid.uuid4().hex
# How each failure shows through the network, as a provider's answer.
FAILURES = ("no-such-host", "refused", "reset", "dropped", "no-answer", "not-tls")
# What a message must never carry: exception text, addresses, secrets.
LEAKS = ("Errno", "attempts failed", "127.0.0.1", "invalid", "Traceback", ACCESS, REFRESH)


@asynccontextmanager
async def misbehaving(failure: str) -> AsyncIterator[str]:
    """The base URL of a provider that fails that way."""
    if failure == "no-such-host":
        yield "http://provider.ampmesh.invalid"  # RFC 6761: .invalid never resolves
        return
    if failure == "refused":
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        yield f"http://127.0.0.1:{port}"
        return
    stop = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(65536)  # the request (or, for not-tls, the TLS ClientHello)
        if failure == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif failure == "dropped":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 64\r\n\r\n{")
            await writer.drain()
            writer.close()
        elif failure == "no-answer":
            await stop.wait()
        elif failure == "not-tls":
            writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if failure == 'not-tls' else 'http'}://127.0.0.1:{port}"
    finally:
        stop.set()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def shard_reaching(
    stack: Stack, creds_for: CredsFor, url: str, provider_timeout: float = 0.5
) -> AsyncIterator[Stub]:
    """A shard whose hubspot is at url, giving up on an answer after provider_timeout
    seconds, and a client."""
    settings = shard_settings(
        stack, sandbox_url=url, provider_timeout_seconds=provider_timeout, provider_attempts=2
    )
    async with (
        open_services(settings) as services,
        serving(
            creds_for("token-manager"), list(services), policy=AccessPolicy.allow_only(*CALLERS)
        ) as server,
        dial(server, creds_for("api")) as channel,
    ):
        yield Stub(channel)


@pytest.fixture(params=FAILURES)
async def stub(
    request: pytest.FixtureRequest, stack: Stack, creds_for: CredsFor
) -> AsyncIterator[Stub]:
    async with (
        misbehaving(request.param) as url,
        shard_reaching(stack, creds_for, url) as stub,
    ):
        yield stub


@pytest.fixture(scope="module")
async def project(stack: Stack) -> tuple[str, str]:
    """(project id, id of its hubspot provider app) in the tests' database."""
    connection = await asyncpg.connect(database_url(stack))
    try:
        org = await connection.fetchval("INSERT INTO orgs (label) VALUES ('t') RETURNING id")
        project_id = await connection.fetchval(
            "INSERT INTO projects (org_id, name, app_name) VALUES ($1, $2, 'T') RETURNING id",
            org,
            f"unreachable-{uuid.uuid4().hex[:8]}",
        )
        app_id = str(uuid.uuid4())
        sealed = seal_client_secret(SecretBox.from_spec(OLD_KEYS), app_id, CLIENT_SECRET)
        await connection.execute(
            "INSERT INTO provider_apps (id, project_id, provider, client_id, "
            "client_secret_sealed, client_secret_key_id) VALUES ($1, $2, 'hubspot', 'client', "
            "$3, $4)",
            uuid.UUID(app_id),
            project_id,
            sealed.data,
            sealed.key_id,
        )
    finally:
        await connection.close()
    return str(project_id), app_id


def hashed(connection_id: str) -> tuple[tuple[str, str], ...]:
    return (("x-ampmesh-connection-id", connection_id),)


def context_of(project: tuple[str, str]) -> tm.ConnectionContext:
    return tm.ConnectionContext(
        project_id=project[0],
        connection_id=str(uuid.uuid4()),
        provider="hubspot",
        provider_app_id=project[1],
        group_ref="group-1",
        consumer_ref="user-1",
    )


async def expired_connection(stub: Stub, project: tuple[str, str]) -> tm.ConnectionContext:
    """An authorization-code connection of the project's app, its access token expired."""
    context = context_of(project)
    credentials = tm.Credentials(
        oauth2_authorization_code=tm.OAuth2AuthorizationCodeCredentials(
            access_token=tm.OAuth2Token(token=ACCESS),
            refresh_token=tm.OAuth2Token(token=REFRESH),
            token_type="Bearer",
        )
    )
    credentials.oauth2_authorization_code.access_token.expire_time.FromDatetime(
        datetime.now(UTC) - timedelta(minutes=1)
    )
    await stub.StoreCredentials(
        tm.StoreCredentialsRequest(connection=context, credentials=credentials),
        metadata=hashed(context.connection_id),
    )
    return context


def assert_retry_later(error: grpc.aio.AioRpcError) -> None:
    """UNAVAILABLE, PROVIDER_UNAVAILABLE, a RetryInfo, and a message without a leak."""
    assert error.code() == grpc.StatusCode.UNAVAILABLE, (error.code(), error.details())
    status = status_from_error(error)
    assert status is not None
    details = unpack_details(status)
    reasons = [d.reason for d in details if isinstance(d, error_details_pb2.ErrorInfo)]
    assert reasons == ["PROVIDER_UNAVAILABLE"]
    delays = [d.retry_delay for d in details if isinstance(d, error_details_pb2.RetryInfo)]
    assert delays and delays[0].ToTimedelta() > timedelta()
    message = error.details() or ""
    assert "the provider's token endpoint" in message
    assert not [leak for leak in LEAKS if leak in message], message


async def test_refreshing_answers_unavailable_and_changes_nothing(
    stub: Stub, project: tuple[str, str]
) -> None:
    connection = await expired_connection(stub, project)
    hash_header = hashed(connection.connection_id)
    for call in (
        stub.RefreshToken(
            tm.RefreshTokenRequest(connection_id=connection.connection_id, project_id=project[0]),
            metadata=hash_header,
        ),
        stub.GetToken(
            tm.GetTokenRequest(connection_id=connection.connection_id, project_id=project[0]),
            metadata=hash_header,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as unavailable:
            await call
        assert_retry_later(unavailable.value)
    stored = await stub.GetToken(
        tm.GetTokenRequest(
            connection_id=connection.connection_id,
            project_id=project[0],
            refresh=tm.REFRESH_MODE_NEVER,
            include_credentials=True,
        ),
        metadata=hash_header,
    )
    assert stored.stored.status == events.CONNECTION_STATUS_CREATED
    assert stored.credentials.oauth2_authorization_code.refresh_token.token == REFRESH
    assert stored.token.token == ACCESS


async def test_a_first_token_and_a_code_exchange_answer_unavailable_and_store_nothing(
    stub: Stub, project: tuple[str, str]
) -> None:
    first = context_of(project)
    with pytest.raises(grpc.aio.AioRpcError) as unavailable:
        await stub.StoreCredentials(
            tm.StoreCredentialsRequest(
                connection=first,
                credentials=tm.Credentials(
                    oauth2_client_credentials=tm.OAuth2ClientCredentials(
                        client_id="client", client_secret=CLIENT_SECRET
                    )
                ),
                obtain_token=True,
            ),
            metadata=hashed(first.connection_id),
        )
    assert_retry_later(unavailable.value)
    exchanged = context_of(project)
    with pytest.raises(grpc.aio.AioRpcError) as unavailable:
        await stub.ExchangeAuthorizationCode(
            tm.ExchangeAuthorizationCodeRequest(
                connection=exchanged, code="code", redirect_uri="https://example.com/callback"
            ),
            metadata=hashed(exchanged.connection_id),
        )
    assert_retry_later(unavailable.value)
    for context in (first, exchanged):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetToken(
                tm.GetTokenRequest(connection_id=context.connection_id, project_id=project[0]),
                metadata=hashed(context.connection_id),
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_deleting_deletes_and_says_the_provider_did_not_revoke(
    stub: Stub, project: tuple[str, str]
) -> None:
    connection = await expired_connection(stub, project)
    hash_header = hashed(connection.connection_id)
    call = stub.DeleteCredentials(
        tm.DeleteCredentialsRequest(
            connection_id=connection.connection_id,
            project_id=project[0],
            revoke_at_provider=True,
        ),
        metadata=hash_header,
    )
    await call
    said = dict(await call.initial_metadata() or ())
    assert said["x-ampmesh-revoked-at-provider"] == "false"
    detail = said["x-ampmesh-revocation-detail"]
    assert detail.startswith("the provider's revocation endpoint ")
    assert not [leak for leak in LEAKS if leak in detail], detail
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetToken(
            tm.GetTokenRequest(connection_id=connection.connection_id, project_id=project[0]),
            metadata=hash_header,
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_provider_that_never_answers_cannot_outlast_the_deletion(
    stack: Stack, creds_for: CredsFor, project: tuple[str, str]
) -> None:
    """The shard waits up to 10 s for a provider, the caller 3 s for the deletion: the
    revocation gets its share of the caller's time and the credentials are deleted."""
    async with (
        misbehaving("no-answer") as url,
        shard_reaching(stack, creds_for, url, provider_timeout=10.0) as stub,
    ):
        connection = await expired_connection(stub, project)
        call = stub.DeleteCredentials(
            tm.DeleteCredentialsRequest(
                connection_id=connection.connection_id,
                project_id=project[0],
                revoke_at_provider=True,
            ),
            metadata=hashed(connection.connection_id),
            timeout=3.0,
        )
        await call
        said = dict(await call.initial_metadata() or ())
        assert said["x-ampmesh-revocation-detail"] == (
            "the provider's revocation endpoint timed out"
        )
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await stub.GetToken(
                tm.GetTokenRequest(connection_id=connection.connection_id, project_id=project[0]),
                metadata=hashed(connection.connection_id),
            )
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_revoking_keeps_the_record_and_says_the_provider_did_not(
    stub: Stub, project: tuple[str, str]
) -> None:
    connection = await expired_connection(stub, project)
    answer = await stub.RevokeCredentials(
        tm.RevokeCredentialsRequest(connection_id=connection.connection_id, project_id=project[0]),
        metadata=hashed(connection.connection_id),
    )
    assert not answer.revoked_at_provider
    assert answer.detail.startswith("the provider's revocation endpoint ")
    assert answer.stored.status == events.CONNECTION_STATUS_BAD_CREDENTIALS


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        ("temporarily_unavailable", grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE"),
        ("invalid_grant", grpc.StatusCode.FAILED_PRECONDITION, "BAD_CREDENTIALS"),
    ],
)
async def test_a_2xx_answer_naming_an_oauth_error_is_classified(
    stack: Stack,
    creds_for: CredsFor,
    project: tuple[str, str],
    error: str,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    body = f'{{"error": "{error}"}}'.encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, shard_reaching(stack, creds_for, url) as stub:
        connection = await expired_connection(stub, project)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.RefreshToken(
                tm.RefreshTokenRequest(
                    connection_id=connection.connection_id, project_id=project[0]
                ),
                metadata=hashed(connection.connection_id),
            )
    assert failed.value.code() == code, failed.value.details()
    status = status_from_error(failed.value)
    assert status is not None
    assert [
        d.reason for d in unpack_details(status) if isinstance(d, error_details_pb2.ErrorInfo)
    ] == [reason]
