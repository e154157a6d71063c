"""The request machinery every connector shares: authentication, retries, error mapping.

`send` retries what a later attempt can fix (429, 5xx, network failures) with jittered
exponential backoff, waiting at least as long as the provider's Retry-After asks, within
a time budget; when the budget would be overrun it raises ProviderUnavailable with the
provider's Retry-After, so the caller (a Temporal activity) can wait outside the call.
Everything else is mapped to the connector exceptions of `connectors.base`.

The client is aiohttp, not httpx: a request of 100 KB costs about a third of httpx's CPU
(measured on this machine), and a backfill is mostly fetching pages. `provider_session`
makes the one session a worker shares; `send` reads each answer whole into a
ProviderResponse.
"""

from __future__ import annotations

import email.utils
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential_jitter,
)

from services.domain.connectors.base import (
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    TokenRejected,
)

# Longest provider message kept in an exception (they end up in operation logs).
MAX_MESSAGE = 300
# The provider's refusals of a request (4xx): what a writer passes as `send`'s `accept`
# to read the per-record errors in the body (401 and 429 keep their meaning regardless).
CLIENT_ERRORS = frozenset(range(400, 500))
# A provider answering slower than this is unavailable for this attempt (retried).
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60.0, connect=10.0)


@dataclass(frozen=True)
class ProviderResponse:
    """A provider's answer, read whole."""

    method: str
    url: str  # without its query string (which may carry an API key)
    status: int
    headers: Mapping[str, str]
    content: bytes


def provider_session(connections: int = 64) -> aiohttp.ClientSession:
    """The HTTP session connectors share (call inside the running loop; close it)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=REQUEST_TIMEOUT,
        # One session serves every customer's connections: no cookie may carry over.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


_BACKOFF = wait_exponential_jitter(multiplier=0.25, max=8.0, jitter=0.25)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _wait(state: RetryCallState) -> float:
    """Backoff, but never shorter than the provider's Retry-After."""
    backoff = _BACKOFF(state)
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    if isinstance(error, _Retryable) and error.retry_after is not None:
        return max(backoff, error.retry_after)
    return backoff


async def send(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    auth: ProviderAuth,
    params: Mapping[str, str] | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    max_wait: float = 60.0,
    accept: Collection[int] = (),
    resend_unanswered: bool = True,
) -> ProviderResponse:
    """One provider call with retries; returns the successful (2xx) response, or one
    whose status is in `accept` (writes read the provider's per-record refusals from a
    4xx body; 401, 429 and 5xx are never accepted: they mean refresh and retry).

    `resend_unanswered` False: a request that may have reached the provider but got no
    answer (anything but a failure to connect) is not sent again but raised as
    ProviderUnavailable at once: for a create the provider cannot recognise, sending it
    again could write it twice.

    Raises TokenRejected on 401, ProviderRequestError on other 4xx, ProviderUnavailable
    when 429/5xx/network failures outlast max_wait seconds (or a Retry-After asks for
    longer than what is left of it).
    """
    query = {**auth.query, **(params or {})}
    all_headers = {**auth.headers, **(headers or {})}
    content = orjson.dumps(json) if json is not None else None
    if content is not None:
        all_headers.setdefault("Content-Type", "application/json")
    secrets = _secrets(auth)
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(_Retryable),
        wait=_wait,
        stop=stop_before_delay(max_wait),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                try:
                    async with http.request(
                        method,
                        url,
                        params=query or None,
                        data=content,
                        headers=all_headers,
                        allow_redirects=False,
                    ) as answer:
                        response = ProviderResponse(
                            method=method,
                            url=_where(url),
                            status=answer.status,
                            headers=answer.headers,
                            content=await answer.read(),
                        )
                except (aiohttp.ClientError, TimeoutError) as exc:
                    if not resend_unanswered and not isinstance(exc, aiohttp.ClientConnectorError):
                        # Sent, perhaps received, never answered: sending it again could
                        # do it twice. The caller decides (a retried write knows it may
                        # find its records written).
                        raise ProviderUnavailable(
                            f"{method} {_where(url)} got no answer ({type(exc).__name__}): "
                            "it may have been carried out"
                        ) from None
                    raise _Retryable(
                        f"{method} {_where(url)} failed: {type(exc).__name__}", None
                    ) from exc
                if not _accepted(response.status, accept):
                    _check(method, url, response, secrets)
                return response
    except _Retryable as exc:
        raise ProviderUnavailable(str(exc), retry_after=exc.retry_after) from None
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


def _accepted(status: int, accept: Collection[int]) -> bool:
    # 401 (refresh), 429 and 5xx (retry) are handled here whatever the caller accepts.
    return status in accept and status not in (401, 429) and status < 500


def redact(text: str, auth: ProviderAuth) -> str:
    """`text` without the connection's credentials (a provider may echo them back in an
    error body, which a writer reports)."""
    for secret in _secrets(auth):
        text = text.replace(secret, "[redacted]")
    return text


def _secrets(auth: ProviderAuth) -> list[str]:
    """Credential values and their last word (the token of `Bearer <token>`)."""
    return [
        part
        for value in (*auth.headers.values(), *auth.query.values())
        for part in {value, value.rpartition(" ")[2]}
        if len(part) >= 4
    ]


def json_body(response: ProviderResponse) -> Any:
    """The response's JSON body; a body that is not JSON is the provider's error."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ProviderRequestError(
            f"{response.method} {response.url} answered "
            f"{response.status} with a body that is not JSON",
            status=response.status,
        ) from None


def _check(method: str, url: str, response: ProviderResponse, secrets: list[str]) -> None:
    status = response.status
    if status < 300:
        return
    code, detail = provider_error(response.content)
    summary = f"{method} {_where(url)} answered {status}" + (f" {code}" if code else "")
    if detail:
        summary += f": {detail}"
    for secret in secrets:
        # A provider echoing the credential back must not put it in our logs.
        summary = summary.replace(secret, "[redacted]")
    summary = summary[:MAX_MESSAGE]
    if status == 401:
        raise TokenRejected(summary)
    if status == 429 or status >= 500:
        raise _Retryable(summary, retry_after(response.headers.get("retry-after")))
    raise ProviderRequestError(summary, status=status, code=code)


def provider_error(body: bytes) -> tuple[str, str]:
    """(error code, message) from the error bodies providers send: HubSpot's
    {category, message}, Salesforce's [{errorCode, message}], OAuth's {error,
    error_description}; empty strings when the body says nothing usable."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", body[:MAX_MESSAGE].decode("utf-8", "replace").strip()
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if not isinstance(parsed, dict):
        return "", ""
    code = next((parsed[k] for k in ("errorCode", "category", "error", "code") if k in parsed), "")
    message = next(
        (parsed[k] for k in ("message", "error_description", "detail") if k in parsed), ""
    )
    return str(code), str(message)


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds from either of its forms (delta seconds, HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _where(url: str) -> str:
    """The URL without its query string (which may carry an API key)."""
    return url.partition("?")[0]
