"""The token-manager's failure reasons, read by its callers (api, temporal) through one
classifier: real gRPC errors carrying a google.rpc.Status in their trailers, as a shard
answers them. No infrastructure."""

from __future__ import annotations

from typing import cast

import grpc
import pytest
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.domain.token_manager_client import ERROR_DOMAIN, failure_reason, reason_text
from services.runtime.errors import error_info, rich_status


def rpc_error(code: grpc.StatusCode, *details: object) -> grpc.aio.AioRpcError:
    """The error a stub raises for a call the server aborted with code and details."""
    status = rpc_status.to_status(rich_status(code, "it failed", *details))  # type: ignore[arg-type]
    return grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )


REASONS = [
    cast(tm.TokenFailureReason, value)
    for value in tm.TokenFailureReason.values()
    if value != tm.TOKEN_FAILURE_REASON_UNSPECIFIED
]


def test_the_wire_text_is_each_value_without_its_prefix() -> None:
    assert {tm.TokenFailureReason.Name(value): reason_text(value) for value in REASONS} == {
        "TOKEN_FAILURE_REASON_BAD_CREDENTIALS": "BAD_CREDENTIALS",
        "TOKEN_FAILURE_REASON_PROVIDER_UNAVAILABLE": "PROVIDER_UNAVAILABLE",
        "TOKEN_FAILURE_REASON_RATE_LIMITED": "RATE_LIMITED",
        "TOKEN_FAILURE_REASON_NOT_REFRESHABLE": "NOT_REFRESHABLE",
        "TOKEN_FAILURE_REASON_CREDENTIALS_NOT_ALLOWED": "CREDENTIALS_NOT_ALLOWED",
    }


@pytest.mark.parametrize("reason", REASONS, ids=tm.TokenFailureReason.Name)
def test_every_reason_the_token_manager_writes_is_read_back(reason: tm.TokenFailureReason) -> None:
    error = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        error_info(reason_text(reason), domain=ERROR_DOMAIN, metadata={"connection_id": "c"}),
    )
    assert failure_reason(error) == reason


def test_the_first_error_info_counts_whatever_details_come_before_it() -> None:
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.seconds = 5
    error = rpc_error(
        grpc.StatusCode.UNAVAILABLE,
        retry,
        error_info("RATE_LIMITED", domain=ERROR_DOMAIN),
        error_info("BAD_CREDENTIALS", domain=ERROR_DOMAIN),
    )
    assert failure_reason(error) == tm.TOKEN_FAILURE_REASON_RATE_LIMITED


@pytest.mark.parametrize(
    "error",
    [
        # No status details at all (a channel that could not connect, a plain abort).
        grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down"
        ),
        # Details without an ErrorInfo.
        rpc_error(grpc.StatusCode.NOT_FOUND, error_details_pb2.ResourceInfo(resource_name="c")),
        # A reason the contract does not name.
        rpc_error(grpc.StatusCode.FAILED_PRECONDITION, error_info("NO_REFRESH_TOKEN")),
        # The enum's own full name is not a reason's text.
        rpc_error(
            grpc.StatusCode.FAILED_PRECONDITION, error_info("TOKEN_FAILURE_REASON_BAD_CREDENTIALS")
        ),
    ],
    ids=["no-details", "no-error-info", "unknown-reason", "prefixed-name"],
)
def test_anything_else_is_unspecified(error: grpc.aio.AioRpcError) -> None:
    assert failure_reason(error) == tm.TOKEN_FAILURE_REASON_UNSPECIFIED


def test_a_status_for_another_code_is_not_read() -> None:
    """The trailers' status must match the call's code (status_from_error's rule)."""
    good = rpc_error(grpc.StatusCode.FAILED_PRECONDITION, error_info("BAD_CREDENTIALS"))
    mismatched = grpc.aio.AioRpcError(
        grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), good.trailing_metadata(), "boom"
    )
    assert failure_reason(mismatched) == tm.TOKEN_FAILURE_REASON_UNSPECIFIED
