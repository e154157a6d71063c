"""How the proxy's api side refuses a call: the caller's proxy headers checked (every
problem named), and the two 429s, a throttle hold and a rate limit, with the headers the
reference's clients read (Retry-After, X-Amp-Retry-After, X-Amp-Retryable) as initial
metadata, which the edge hands on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from services.api.common import abort_invalid
from services.api.proxy.limits import HoldTime
from services.api.token_errors import RETRY_AFTER_HEADER
from services.domain.catalog.rate_limits import RateLimit
from services.runtime.errors import abort_with_details, error_info

VERSION_HEADER = "x-amp-proxy-version"
PROJECT_HEADER = "x-amp-project-id"
INSTALLATION_HEADER = "x-amp-installation-id"
INTEGRATION_HEADER = "x-amp-integration-name"
GROUP_HEADER = "x-amp-group-ref"
MODE_HEADER = "x-amp-rate-limiter-mode"
THROTTLE = "throttle"
# The caller's headers a decision depends on (envoy/proxy.lua sends exactly these).
CALLER_HEADERS = (
    "x-api-key",
    "authorization",
    "x-amp-proxy-version",
    "x-amp-project-id",
    "x-amp-installation-id",
    "x-amp-integration-name",
    "x-amp-group-ref",
    "x-amp-rate-limiter-mode",
)
RETRY_AT_HEADER = "x-amp-retry-after"
RETRYABLE_HEADER = "x-amp-retryable"


async def check_headers(context: Any, headers: Mapping[str, str]) -> None:
    """INVALID_ARGUMENT naming every proxy header that is missing or malformed."""
    problems: dict[str, str] = {}
    version = headers.get(VERSION_HEADER, "")
    if version != "1":
        problems[VERSION_HEADER] = (
            f"must be 1 (got {version!r})" if version else "is required and must be 1"
        )
    project = headers.get(PROJECT_HEADER, "")
    if not project:
        problems[PROJECT_HEADER] = "is required: the project's id"
    elif not is_uuid(project):
        problems[PROJECT_HEADER] = "must be the project's id (a UUID), not its name"
    installation = headers.get(INSTALLATION_HEADER, "")
    if installation:
        if not is_uuid(installation):
            problems[INSTALLATION_HEADER] = "must be an installation id (a UUID)"
    elif not (headers.get(INTEGRATION_HEADER) and headers.get(GROUP_HEADER)):
        problems[INSTALLATION_HEADER] = (
            f"is required, or else both {INTEGRATION_HEADER} and {GROUP_HEADER}"
        )
    mode = headers.get(MODE_HEADER, "")
    if mode and mode != THROTTLE:
        problems[MODE_HEADER] = f"must be {THROTTLE!r} when given (got {mode!r})"
    if problems:
        await abort_invalid(context, problems, "the proxy headers are not valid")


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def _send_retry_headers(context: Any, seconds: int, retry_at: str, retryable: bool) -> None:
    await context.send_initial_metadata(
        (
            (RETRY_AFTER_HEADER, str(seconds)),
            (RETRY_AT_HEADER, retry_at),
            (RETRYABLE_HEADER, "true" if retryable else "false"),
        )
    )


async def abort_held(context: Any, hold: HoldTime) -> NoReturn:
    seconds = hold.seconds_left()
    await _send_retry_headers(context, seconds, hold.rfc3339, hold.retryable)
    await abort_with_details(
        context,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the provider limited this connection's calls; throttled calls are held until "
        f"{hold.rfc3339} (try again in {seconds} s)",
        error_info("THROTTLED"),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)),
    )


async def abort_rate_limited(
    context: Any, provider: str, limit: RateLimit, seconds_left: float
) -> NoReturn:
    seconds = max(1, int(seconds_left + 0.999))
    retry_at = HoldTime(until=time.time() + seconds_left, retryable=True).rfc3339
    await _send_retry_headers(context, seconds, retry_at, True)
    await abort_with_details(
        context,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"this connection's calls to {provider} are limited to {limit}; try again in {seconds} s",
        error_info("RATE_LIMITED"),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)),
    )
