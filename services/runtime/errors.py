"""Errors clients may see: google.rpc.Status with details, never Python exception text.

Left alone, grpc answers a handler's exception with UNKNOWN "Unexpected <class 'KeyError'>:
<the exception text>", which can carry SQL, tokens or customer data. The runtime's
interceptor (interceptors.py) turns every unexpected exception into INTERNAL "internal error
(request id …)" with abort_unexpected() and logs the traceback here, where the request id
finds it.

Handlers report expected failures with the helpers below, which attach google.rpc error
details (AIP-193): BadRequest field violations, ErrorInfo, ResourceInfo. Envoy's transcoder
turns these into the REST error body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message

# googleapis-common-protos ships no type information; pyproject may later say so globally.
from google.rpc import (  # type: ignore[import-untyped, unused-ignore]
    error_details_pb2,
    status_pb2,
)
from grpc_status import rpc_status

from services.runtime.db_errors import RETRY_AFTER_SECONDS as DATABASE_RETRY_AFTER_SECONDS
from services.runtime.db_errors import unavailable as database_unavailable
from services.runtime.logs import get_logger
from services.runtime.request_id import current_request_id

# ErrorInfo.domain (AIP-193): names the system that produced the error.
ERROR_DOMAIN = "ampmesh"

STATUS_DETAILS_KEY = "grpc-status-details-bin"

_log = get_logger("ampmesh.errors")


def internal_error_message() -> str:
    return f"internal error (request id {current_request_id() or 'none'})"


async def abort_unexpected(context: Any, method: str, error: Exception) -> NoReturn:
    """End an RPC whose handler raised `error` (not an abort): INTERNAL without its text.

    Call it from the `except` block that caught error: the traceback logged here is the one
    being handled. PostgreSQL being down or restarting is not a defect: that answers
    UNAVAILABLE with a RetryInfo (db_errors.py), which callers retry. Generated servicer
    base classes set UNIMPLEMENTED and raise NotImplementedError for every method a
    service has not overridden: that keeps its code, with a message of ours instead of
    theirs.
    """
    if isinstance(error, NotImplementedError) and context.code() == grpc.StatusCode.UNIMPLEMENTED:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented")
    if database_unavailable(error):
        # PostgreSQL down or restarting: nothing wrong with the request, worth a retry.
        _log.warning("database unavailable", method=method, error=type(error).__name__)
        delay = duration_pb2.Duration()
        delay.FromTimedelta(timedelta(seconds=DATABASE_RETRY_AFTER_SECONDS))
        await abort_with_details(
            context,
            grpc.StatusCode.UNAVAILABLE,
            f"the database cannot be reached right now; try again shortly "
            f"(request id {current_request_id() or 'none'})",
            error_details_pb2.RetryInfo(retry_delay=delay),
        )
    _log.exception("unhandled exception", method=method)
    await context.abort(grpc.StatusCode.INTERNAL, internal_error_message())
    raise AssertionError("unreachable: abort raises")  # for type checkers


# --- building statuses -----------------------------------------------------------------


def error_info(
    reason: str, *, domain: str = ERROR_DOMAIN, metadata: Mapping[str, str] | None = None
) -> error_details_pb2.ErrorInfo:
    """reason: UPPER_SNAKE_CASE, stable, for programs (e.g. "CONNECTION_REVOKED")."""
    return error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=dict(metadata or {}))


def bad_request(
    violations: Mapping[str, str] | Iterable[tuple[str, str]],
) -> error_details_pb2.BadRequest:
    """Field violations as (field path, description): ("installation.group_ref", "required")."""
    items = violations.items() if isinstance(violations, Mapping) else violations
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in items
        ]
    )


def resource_info(
    resource_type: str, resource_name: str, *, owner: str = "", description: str = ""
) -> error_details_pb2.ResourceInfo:
    return error_details_pb2.ResourceInfo(
        resource_type=resource_type,
        resource_name=resource_name,
        owner=owner,
        description=description,
    )


# Statuses travel as trailers (grpc-message, and grpc-status-details-bin repeating it),
# and a message that quotes a client's value can be as long as the value: a 30 KB name
# quoted in a 404 took the trailers past what Envoy accepts from an upstream, and the
# client got a 502 instead. Texts are cut to this many characters; a client that sent the
# value knows the rest.
MAX_ERROR_TEXT = 1000


def clip(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """text, or its first `limit` characters and a note of how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def _clip_strings(message: Message) -> Message:
    """message with every string in it clipped (error details are small and flat)."""
    for field, value in message.ListFields():
        if field.type == field.TYPE_STRING:
            if field.is_repeated:
                value[:] = [clip(v) for v in value]
            else:
                setattr(message, field.name, clip(value))
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for inner in value if field.is_repeated else (value,):
                _clip_strings(inner)
        elif field.message_type is not None:  # a map<string, string> (ErrorInfo.metadata)
            for key in list(value):
                if isinstance(value[key], str):
                    value[key] = clip(value[key])
    return message


# And all of a status's details together, serialized (base64 makes them a third larger in
# grpc-status-details-bin). A manifest with a thousand wrong objects had a thousand field
# violations: trailers that large made Envoy drop its whole HTTP/2 connection to the api,
# failing every other request in flight on it with a 502.
MAX_DETAILS_BYTES = 16 * 1024


def _fit_violations(request: error_details_pb2.BadRequest, budget: int) -> None:
    """Drop field violations from the end until request fits budget bytes, saying how
    many were left out."""
    violations = request.field_violations
    if request.ByteSize() <= budget:
        return
    fields: set[str] = set()
    dropped = 0
    while violations and request.ByteSize() > budget - 200:
        fields.add(violations[-1].field)
        del violations[-1]
        dropped += 1
    # Named by their field when they share one (a manifest's issues are all sourceYaml's).
    field = fields.pop()[:200] if len(fields) == 1 else ""
    violations.add(field=field, description=f"{dropped} more issues, not listed here")


def rich_status(code: grpc.StatusCode, message: str, *details: Message) -> status_pb2.Status:
    packed = []
    for detail in details:
        _clip_strings(detail)
        if isinstance(detail, error_details_pb2.BadRequest):
            _fit_violations(detail, MAX_DETAILS_BYTES)
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return status_pb2.Status(code=code.value[0], message=clip(message), details=packed)


# --- aborting from handlers --------------------------------------------------------------


async def abort_with_details(
    context: Any, code: grpc.StatusCode, message: str, *details: Message
) -> NoReturn:
    """End the RPC with code and message, and google.rpc error details for programs."""
    status = rpc_status.to_status(rich_status(code, message, *details))
    # Keep trailers already set (the x-request-id echo): abort replaces them wholesale.
    kept = tuple((k, v) for k, v in (context.trailing_metadata() or ()) if k != STATUS_DETAILS_KEY)
    await context.abort(
        status.code, status.details, trailing_metadata=kept + status.trailing_metadata
    )
    raise AssertionError("unreachable: abort raises")  # for type checkers


async def abort_invalid_argument(
    context: Any,
    message: str,
    violations: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    reason: str | None = None,
) -> NoReturn:
    details: list[Message] = [bad_request(violations)]
    if reason:
        details.append(error_info(reason))
    await abort_with_details(context, grpc.StatusCode.INVALID_ARGUMENT, message, *details)


async def abort_not_found(
    context: Any, resource_type: str, resource_name: str, message: str | None = None
) -> NoReturn:
    await abort_with_details(
        context,
        grpc.StatusCode.NOT_FOUND,
        message or f"{resource_type} {resource_name!r} not found",
        resource_info(resource_type, resource_name),
    )


async def abort_with_reason(
    context: Any,
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: Mapping[str, str] | None = None,
) -> NoReturn:
    await abort_with_details(context, code, message, error_info(reason, metadata=metadata))


# --- reading statuses on the client ------------------------------------------------------


def status_from_error(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a server attached to a failed call, or None."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            return status if status.code == error.code().value[0] else None
    return None


def unpack_details(status: status_pb2.Status) -> list[Message]:
    """The detail messages of a status, for the error_details types we know."""
    known: tuple[type[Message], ...] = (
        error_details_pb2.BadRequest,
        error_details_pb2.ErrorInfo,
        error_details_pb2.ResourceInfo,
        error_details_pb2.RetryInfo,
        error_details_pb2.PreconditionFailure,
        error_details_pb2.QuotaFailure,
        error_details_pb2.DebugInfo,
        error_details_pb2.Help,
        error_details_pb2.LocalizedMessage,
        error_details_pb2.RequestInfo,
    )
    out: list[Message] = []
    for any_detail in status.details:
        for cls in known:
            if any_detail.Is(cls.DESCRIPTOR):
                message = cls()
                any_detail.Unpack(message)
                out.append(message)
                break
    return out


__all__ = [
    "ERROR_DOMAIN",
    "abort_invalid_argument",
    "abort_not_found",
    "abort_unexpected",
    "abort_with_details",
    "abort_with_reason",
    "bad_request",
    "clip",
    "error_info",
    "internal_error_message",
    "resource_info",
    "rich_status",
    "status_from_error",
    "unpack_details",
]
