"""Helpers every platform servicer uses: errors in the reference's shapes, field masks,
timestamps.

Errors: field violations name where the problem is as `<in>.<jsonName>` — `path.x`,
`query.x`, `body.x.y`, `header.x` — which the edge turns into problem+json `issues[]`
(`in`, `name`). gRPC codes map to HTTP as the transcoder does: INVALID_ARGUMENT 400,
UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404, ALREADY_EXISTS 409.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NoReturn

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.runtime.errors import (
    abort_invalid_argument,
    abort_not_found,
    abort_with_details,
    error_info,
)


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def abort_invalid(
    context: Any,
    violations: Mapping[str, str],
    message: str = "the request is not valid",
) -> NoReturn:
    """INVALID_ARGUMENT (400) with one issue per field; the message lists them too, so a
    gRPC caller reading only the status message learns what is wrong."""
    listed = "; ".join(f"{field}: {why}" for field, why in violations.items())
    await abort_invalid_argument(context, f"{message}: {listed}", violations)


async def abort_conflict(context: Any, message: str) -> NoReturn:
    """ALREADY_EXISTS (409): a name already taken."""
    await abort_with_details(
        context, grpc.StatusCode.ALREADY_EXISTS, message, error_info("ALREADY_EXISTS")
    )


async def abort_missing(context: Any, kind: str, name: str) -> NoReturn:
    """NOT_FOUND (404) for a resource of the caller's project (or one it may not see)."""
    await abort_not_found(context, kind, name, f"{kind} {name!r} not found")


async def check_update_mask(
    context: Any, update_mask: Iterable[str], allowed: Iterable[str]
) -> tuple[str, ...]:
    """The mask's paths, each one of allowed (JSON names); INVALID_ARGUMENT otherwise."""
    paths = tuple(update_mask)
    allowed = tuple(allowed)
    if not paths:
        await abort_invalid(
            context, {"body.updateMask": f"is required: a list of {', '.join(allowed)}"}
        )
    unknown = [p for p in paths if p not in allowed]
    if unknown:
        await abort_invalid(
            context,
            {
                "body.updateMask": f"{', '.join(unknown)} cannot be updated (allowed: "
                f"{', '.join(allowed)})"
            },
        )
    return paths
