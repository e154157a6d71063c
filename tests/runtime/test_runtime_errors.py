"""What clients see when handlers fail: no exception text; rich google.rpc.Status details."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped, unused-ignore]
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from services.runtime.errors import (
    MAX_DETAILS_BYTES,
    bad_request,
    resource_info,
    rich_status,
    status_from_error,
    unpack_details,
)
from services.runtime.request_id import REQUEST_ID_HEADER
from services.runtime.tls import ServiceCredentials
from tests.support.probe import SECRET, Probe, dial, method, serving

CredsFor = Callable[[str], ServiceCredentials]


async def call_failing(
    server_creds: ServiceCredentials, creds_for: CredsFor, name: str, request: bytes = b""
) -> tuple[grpc.aio.AioRpcError, list[dict[str, object]]]:
    with capture_logs(processors=[merge_contextvars]) as logs:
        async with (
            serving(server_creds, [Probe().service()]) as server,
            dial(server, creds_for("api")) as channel,
        ):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await channel.unary_unary(method(name))(request, timeout=5)
    return failed.value, [dict(entry) for entry in logs]


async def test_exception_becomes_internal_without_its_text(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    error, logs = await call_failing(server_creds, creds_for, "Boom")

    request_id = dict(error.trailing_metadata())[REQUEST_ID_HEADER]
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == f"internal error (request id {request_id})"
    everything_sent = repr((error.details(), error.trailing_metadata(), error.debug_error_string()))
    assert SECRET not in everything_sent
    assert "ValueError" not in everything_sent

    # The traceback is kept server-side, under the same request id.
    [logged] = [e for e in logs if e["event"] == "unhandled exception"]
    assert logged["method"] == method("Boom")
    assert logged["request_id"] == request_id
    assert logged["exc_info"] is True


async def test_not_found_carries_resource_info(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    error, _ = await call_failing(server_creds, creds_for, "NotFound", b"conn-42")

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "connection 'conn-42' not found"
    status = status_from_error(error)
    assert status is not None
    [info] = unpack_details(status)
    assert isinstance(info, error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == ("connection", "conn-42")


async def test_invalid_argument_carries_field_violations_and_reason(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    error, _ = await call_failing(server_creds, creds_for, "Invalid")

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = status_from_error(error)
    assert status is not None and status.message == "the installation is incomplete"
    bad_request, info = unpack_details(status)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("installation.group_ref", "required"),
        ("installation.config", "unknown object"),
    ]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("INSTALLATION_INCOMPLETE", "ampmesh")


async def test_generated_base_class_unimplemented_keeps_its_code_not_its_text(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    error, _ = await call_failing(server_creds, creds_for, "NotImplemented")

    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.details() == f"{method('NotImplemented')} is not implemented"


def test_statuses_stay_small_enough_to_travel_as_trailers() -> None:
    """A thousand violations, or a 30 KB value quoted back, must not make trailers larger
    than the edge accepts from an upstream (it dropped its whole connection to the api)."""
    violations = [("body.sourceYaml", f"integration i{n}: no destination 'x'") for n in range(3000)]
    status = rich_status(grpc.StatusCode.INVALID_ARGUMENT, "x" * 30_000, bad_request(violations))
    assert status.ByteSize() < MAX_DETAILS_BYTES + 2_000
    assert status.message.endswith("… (30000 characters)") and len(status.message) < 1_100
    (detail,) = unpack_details(status)
    assert isinstance(detail, error_details_pb2.BadRequest)
    kept = list(detail.field_violations)
    assert 10 < len(kept) < 3000
    assert kept[0].description == "integration i0: no destination 'x'"
    assert (kept[-1].field, kept[-1].description) == (
        "body.sourceYaml",
        f"{3000 - len(kept) + 1} more issues, not listed here",
    )
    long_name = rich_status(
        grpc.StatusCode.NOT_FOUND, "missing", resource_info("project", "p" * 30_000)
    )
    assert long_name.ByteSize() < 1_200
