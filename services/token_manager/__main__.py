"""`python -m services.token_manager`: one token-manager shard.

Built: DescribeShard (which shard serves a connection, as the edge's hashing decides), and
credential storage: StoreCredentials, GetToken (memory, then Redis, then PostgreSQL) and
DeleteCredentials. Refreshing, revocation and the OAuth code exchange arrive with the rest
of issue #5: their RPCs answer UNIMPLEMENTED, and a GetToken that would need a refresh
answers FAILED_PRECONDITION with reason REFRESH_NOT_BUILT.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import grpc
import redis.asyncio
import redis.exceptions
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2, token_manager_pb2_grpc
from google.protobuf import empty_pb2
from pydantic import Field, SecretStr

from services.api.catalog import load_catalog
from services.runtime.channels import CONNECTION_ID_HEADER
from services.runtime.config import ServiceSettings
from services.runtime.database import open_pool
from services.runtime.entrypoint import StartupError, run_service
from services.runtime.errors import (
    abort_invalid_argument,
    abort_with_details,
    error_info,
    resource_info,
)
from services.runtime.identity import current_caller
from services.runtime.interceptors import metadata_value
from services.runtime.logs import get_logger
from services.runtime.secretbox import keyring_from_settings
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built
from services.token_manager import credentials as creds
from services.token_manager.store import (
    AlreadyExists,
    CredentialStore,
    MemoryCache,
    NotFound,
    Opened,
)

tm = token_manager_pb2

# The mesh identities allowed to call it (through Envoy, which forwards theirs); any
# other certificate is refused.
CALLERS = ("api", "temporal")
NOT_BUILT = "refresh, revocation and the OAuth code exchange arrive with the rest of issue #5"
# ErrorInfo.domain of this service's errors (the contract's).
DOMAIN = "token.ampmesh"
REFRESH_NOT_BUILT = "REFRESH_NOT_BUILT"

_log = get_logger("ampmesh.token_manager")


class TokenManagerSettings(ServiceSettings):
    shard_name: str = Field(
        "", description="this shard's name, e.g. token-manager-0 (default: the service name)"
    )
    database_url: SecretStr = Field(
        SecretStr(""), description="PostgreSQL URL (postgresql://user:password@host:port/db)"
    )
    redis_url: SecretStr = Field(
        SecretStr(""), description="Redis URL (redis://host:port/db), the shared token cache"
    )
    secret_keys: SecretStr = Field(
        SecretStr(""), description="keyring sealing credentials at rest: id:base64key[,…]"
    )
    memory_cache_entries: int = Field(
        4096, ge=0, description="opened credentials a shard keeps in memory (LRU)"
    )
    memory_cache_seconds: float = Field(
        60.0, ge=0, description="how long a shard trusts its memory before asking Redis again"
    )
    redis_cache_seconds: int = Field(
        3600, ge=1, description="TTL of the sealed credentials cached in Redis"
    )
    refresh_margin_seconds: int = Field(
        300, ge=0, description="a token expiring within this margin is refreshed first"
    )


class TokenManager(token_manager_pb2_grpc.TokenManagerServiceServicer):
    def __init__(
        self,
        shard: str,
        store: CredentialStore,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        refresh_margin: timedelta,
    ) -> None:
        self.shard = shard
        self.store = store
        self.catalog = catalog
        self.refresh_margin = refresh_margin

    async def StoreCredentials(
        self, request: tm.StoreCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> tm.StoredCredentials:
        violations = creds.store_violations(request, self.catalog)
        if violations:
            await abort_invalid_argument(
                context, "the credentials request is incomplete or malformed", violations
            )
        connection_id = request.connection.connection_id
        await require_hash_header(connection_id, context)
        if request.obtain_token:
            await abort_refresh_not_built(context, connection_id, "obtaining a first token")
        try:
            if request.replace:
                opened = await self.store.replace(request.connection, request.credentials)
            else:
                opened = await self.store.create(request.connection, request.credentials)
        except AlreadyExists:
            await abort_with_details(
                context,
                grpc.StatusCode.ALREADY_EXISTS,
                f"connection {connection_id!r} already has credentials; set replace to rotate them",
                resource_info("connection", connection_id),
            )
        except NotFound:
            await abort_no_credentials(context, connection_id)
        _log.info(
            "credentials stored",
            connection_id=connection_id,
            replaced=request.replace,
            key_id=opened.row.sealed.key_id,
        )
        return stored_credentials(opened)

    async def GetToken(
        self, request: tm.GetTokenRequest, context: grpc.aio.ServicerContext
    ) -> tm.GetTokenResponse:
        await require_hash_header(request.connection_id, context)
        if not request.project_id:
            await abort_invalid_argument(
                context, "project_id is required", {"body.project_id": "is required"}
            )
        if request.include_credentials and current_caller() != "api":
            await abort_with_details(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                "only the api identity may ask for the credentials themselves",
                error_info("CREDENTIALS_NOT_ALLOWED", domain=DOMAIN),
            )
        try:
            opened = await self.store.get(request.connection_id, request.project_id)
        except NotFound:
            await abort_no_credentials(context, request.connection_id)
        if self._needs_refresh(opened, request):
            await abort_refresh_not_built(context, request.connection_id, "refreshing the token")
        response = tm.GetTokenResponse(
            token=creds.access_token(
                request.connection_id, opened.credentials, self.catalog.get(opened.row.provider)
            ),
            source=opened.source,
            stored=stored_credentials(opened),
        )
        if request.include_credentials:
            response.credentials.CopyFrom(opened.credentials)
        return response

    async def DeleteCredentials(
        self, request: tm.DeleteCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await require_hash_header(request.connection_id, context)
        if not request.project_id:
            await abort_invalid_argument(
                context, "project_id is required", {"body.project_id": "is required"}
            )
        try:
            await self.store.delete(request.connection_id, request.project_id)
        except NotFound:
            await abort_no_credentials(context, request.connection_id)
        _log.info("credentials deleted", connection_id=request.connection_id)
        return empty_pb2.Empty()

    def _needs_refresh(self, opened: Opened, request: tm.GetTokenRequest) -> bool:
        """Whether the request's refresh mode asks for a refresh of these credentials."""
        mode = request.refresh or tm.REFRESH_MODE_AHEAD_OF_EXPIRY
        if mode == tm.REFRESH_MODE_NEVER or opened.credentials.WhichOneof("kind") not in (
            creds.OAUTH_KINDS
        ):
            return False
        if mode == tm.REFRESH_MODE_FORCE or creds.access_token_of(opened.credentials) is None:
            return True
        expiry = creds.access_token_expiry(opened.credentials)
        if expiry is None:
            return False
        margin = timedelta()
        if mode == tm.REFRESH_MODE_AHEAD_OF_EXPIRY:
            margin = max(self.refresh_margin, request.min_validity.ToTimedelta())
        return expiry <= datetime.now(UTC) + margin

    async def DescribeShard(
        self, request: token_manager_pb2.DescribeShardRequest, context: grpc.aio.ServicerContext
    ) -> token_manager_pb2.DescribeShardResponse:
        await require_hash_header(request.connection_id, context)
        return token_manager_pb2.DescribeShardResponse(
            shard=self.shard, connection_id=request.connection_id, caller=current_caller() or ""
        )


async def require_hash_header(connection_id: str, context: grpc.aio.ServicerContext) -> None:
    """The edge hashes on the header, the shard serves the body: they must agree, or one
    connection's calls could land on two shards at once."""
    if not connection_id:
        await abort_invalid_argument(
            context, "connection_id is required", {"body.connection_id": "is required"}
        )
    header = metadata_value(context.invocation_metadata(), CONNECTION_ID_HEADER)
    if header != connection_id:
        await abort_invalid_argument(
            context,
            f"the {CONNECTION_ID_HEADER} header must equal connection_id",
            {f"header.{CONNECTION_ID_HEADER}": "must equal the request's connection_id"},
        )


def stored_credentials(opened: Opened) -> tm.StoredCredentials:
    """What is stored for a connection, without a secret."""
    row, credentials = opened.row, opened.credentials
    stored = tm.StoredCredentials(
        connection_id=row.connection_id,
        project_id=row.project_id,
        provider=row.provider,
        auth_scheme=row.auth_scheme,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        scopes=creds.scopes_of(credentials),
        encryption_key_id=row.sealed.key_id,
    )
    access = creds.access_token_of(credentials)
    if access is not None and access.HasField("expire_time"):
        stored.access_token_expire_time.CopyFrom(access.expire_time)
    refresh = creds.refresh_token_of(credentials)
    if refresh is not None and refresh.token:
        stored.has_refresh_token = True
        if refresh.HasField("expire_time"):
            stored.refresh_token_expire_time.CopyFrom(refresh.expire_time)
    stored.create_time.FromDatetime(row.created_at)
    stored.update_time.FromDatetime(row.updated_at)
    return stored


async def abort_no_credentials(context: grpc.aio.ServicerContext, connection_id: str) -> NoReturn:
    # The same words whether the connection does not exist or is another project's.
    await abort_with_details(
        context,
        grpc.StatusCode.NOT_FOUND,
        f"connection {connection_id!r} has no stored credentials",
        resource_info("connection", connection_id),
    )


async def abort_refresh_not_built(
    context: grpc.aio.ServicerContext, connection_id: str, what: str
) -> NoReturn:
    await abort_with_details(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        f"{what} needs the provider, and refresh arrives with the rest of issue #5; "
        "ask with refresh mode NEVER to get the stored token",
        error_info(REFRESH_NOT_BUILT, domain=DOMAIN, metadata={"connection_id": connection_id}),
    )


@asynccontextmanager
async def open_store(settings: TokenManagerSettings) -> AsyncIterator[CredentialStore]:
    """The pool, the Redis client and the SecretBox, checked reachable; StartupError with
    one line when one is not."""
    redis_url = settings.redis_url.get_secret_value()
    if not redis_url:
        raise StartupError("AMPMESH_REDIS_URL is required to cache credentials")
    box = keyring_from_settings(settings.secret_keys.get_secret_value())
    async with AsyncExitStack() as resources:
        pool = await resources.enter_async_context(
            open_pool(settings.database_url.get_secret_value(), needed_for="store credentials")
        )
        client = redis.asyncio.Redis.from_url(redis_url)
        resources.push_async_callback(client.aclose)
        try:
            await client.ping()
        except (OSError, redis.exceptions.RedisError) as error:
            raise StartupError(f"cannot reach Redis: {type(error).__name__}: {error}") from None
        yield CredentialStore(
            pool,
            client,
            box,
            memory=MemoryCache(settings.memory_cache_entries, settings.memory_cache_seconds),
            redis_ttl_seconds=settings.redis_cache_seconds,
        )


@asynccontextmanager
async def open_services(settings: TokenManagerSettings) -> AsyncIterator[list[Service]]:
    async with open_store(settings) as store:
        yield [
            partially_built(
                token_manager_pb2.DESCRIPTOR.services_by_name["TokenManagerService"],
                token_manager_pb2_grpc.add_TokenManagerServiceServicer_to_server,
                TokenManager(
                    settings.shard_name or settings.service_name,
                    store,
                    load_catalog(),
                    timedelta(seconds=settings.refresh_margin_seconds),
                ),
                NOT_BUILT,
            )
        ]


def main() -> None:
    run_service(
        name="token-manager",
        services=open_services,
        allowed_callers=CALLERS,
        settings_cls=TokenManagerSettings,
    )


if __name__ == "__main__":
    main()
