"""The errors a token-manager shard answers with, and the checks every RPC starts with.

Expected failures carry a google.rpc.ErrorInfo in the domain `token.ampmesh` whose reason
is one of the contract's TokenFailureReason values (spelled by
services.domain.token_manager_client, which its callers read them with); UNAVAILABLE
carries a RetryInfo too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

import grpc
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from services.domain.token_manager_client import ERROR_DOMAIN, reason_text
from services.runtime.channels import CONNECTION_ID_HEADER
from services.runtime.errors import (
    abort_invalid_argument,
    abort_with_details,
    error_info,
    resource_info,
)
from services.runtime.interceptors import metadata_value

# ErrorInfo.domain and reasons of this service's errors (the contract's).
DOMAIN = ERROR_DOMAIN
BAD_CREDENTIALS = reason_text(tm.TOKEN_FAILURE_REASON_BAD_CREDENTIALS)
PROVIDER_UNAVAILABLE = reason_text(tm.TOKEN_FAILURE_REASON_PROVIDER_UNAVAILABLE)
RATE_LIMITED = reason_text(tm.TOKEN_FAILURE_REASON_RATE_LIMITED)
NOT_REFRESHABLE = reason_text(tm.TOKEN_FAILURE_REASON_NOT_REFRESHABLE)
CREDENTIALS_NOT_ALLOWED = reason_text(tm.TOKEN_FAILURE_REASON_CREDENTIALS_NOT_ALLOWED)
RETRY_PUSHBACK_HEADER = "grpc-retry-pushback-ms"


async def require_project(project_id: str, context: grpc.aio.ServicerContext) -> None:
    if not project_id:
        await abort_invalid_argument(
            context, "project_id is required", {"body.project_id": "is required"}
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


async def abort_no_credentials(context: grpc.aio.ServicerContext, connection_id: str) -> NoReturn:
    # The same words whether the connection does not exist or is another project's.
    await abort_with_details(
        context,
        grpc.StatusCode.NOT_FOUND,
        f"connection {connection_id!r} has no stored credentials",
        resource_info("connection", connection_id),
    )


async def abort_bad_credentials(
    context: grpc.aio.ServicerContext, connection_id: str, message: str
) -> NoReturn:
    await abort_with_details(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        message,
        error_info(BAD_CREDENTIALS, domain=DOMAIN, metadata={"connection_id": connection_id}),
    )


async def abort_unavailable(
    context: grpc.aio.ServicerContext,
    connection_id: str,
    message: str,
    retry_after: float | None,
    rate_limited: bool,
) -> NoReturn:
    delay = duration_pb2.Duration()
    delay.FromTimedelta(timedelta(seconds=retry_after if retry_after is not None else 5.0))
    # The provider was already tried (with backoff) here: a caller's channel retrying
    # UNAVAILABLE at once would only multiply the calls to it (gRFC A6: a negative
    # pushback means do not retry). The caller is told when to come back instead.
    context.set_trailing_metadata(
        (*(context.trailing_metadata() or ()), (RETRY_PUSHBACK_HEADER, "-1"))
    )
    await abort_with_details(
        context,
        grpc.StatusCode.UNAVAILABLE,
        message,
        error_info(
            RATE_LIMITED if rate_limited else PROVIDER_UNAVAILABLE,
            domain=DOMAIN,
            metadata={"connection_id": connection_id},
        ),
        error_details_pb2.RetryInfo(retry_delay=delay),
    )
