"""Talking to a provider's OAuth 2.0 endpoints: code exchange, refresh, client-credentials
and password grants, revocation.

Authlib's httpx client builds the requests (grant parameters, client authentication); a
compliance hook sees every token response before Authlib parses it and turns failures into
one of two exceptions the token-manager acts on:

- `ProviderRefused`: the provider said no for credential reasons (`invalid_grant`,
  `invalid_client`, `unauthorized_client`, or a 401/403). Retrying cannot help; the
  connection becomes bad_credentials.
- `ProviderUnavailable`: 5xx, 429, a timeout, a network failure (DNS, refused, reset, TLS,
  a dropped answer), or an answer that is not a token. Retried here with exponential
  backoff (honouring Retry-After), and when it persists the connection keeps its status
  and the caller is told to come back later.

Authlib's client is built on httpx2 when that is installed (it is: mcp needs it) and on
httpx otherwise, and the two libraries' errors share no base class: network failures are
recognised as the errors of whichever library the client really runs on, and of httpx.

Nothing here logs or raises with a secret in it: messages carry the provider's OAuth error
code, HTTP status or the network error's class name, never the request or response body
nor the error's text (which can hold the URL, and HubSpot's revocation URL names a token).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from urllib.parse import quote

import httpx
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
    AsyncOAuth2Client,
    OAuthError,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from services.token_manager.credentials import render_template

# OAuth error codes that mean the grant or the client is no good (RFC 6749 §5.2).
REFUSING_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
# Token response members that are secrets; the rest is metadata the api may read.
SECRET_MEMBERS = frozenset({"access_token", "refresh_token", "id_token"})
# OAuth error codes a provider uses to say "not now" (RFC 6749 §4.1.2.1).
UNAVAILABLE_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


def _library_of(client_class: type) -> ModuleType:
    """The HTTP library (httpx or httpx2) whose AsyncClient a client class extends."""
    base = next(c for c in client_class.__mro__ if c.__name__ == "AsyncClient")
    return importlib.import_module(base.__module__.partition(".")[0])


_AUTHLIB_HTTP = _library_of(AsyncOAuth2Client)
# What a request can fail with before any answer: every transport error (DNS, refused,
# reset, TLS, timeouts, a connection dropped mid-answer), an answer that breaks the
# protocol, and a URL that cannot be requested. Both libraries' classes, as the client's
# library is Authlib's choice.
_TIMEOUTS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    _AUTHLIB_HTTP.TimeoutException,
    TimeoutError,
)
NETWORK_ERRORS: tuple[type[Exception], ...] = (
    *_TIMEOUTS,
    httpx.HTTPError,
    _AUTHLIB_HTTP.HTTPError,
    httpx.InvalidURL,
    _AUTHLIB_HTTP.InvalidURL,
    OSError,
)


def network_failure(error: Exception) -> str:
    """What went wrong, safe to show: "timed out" or "could not be reached (ConnectError)"."""
    if isinstance(error, _TIMEOUTS):
        return "timed out"
    return f"could not be reached ({type(error).__name__})"


class ProviderError(Exception):
    """A token endpoint failure; str() is safe to show (no secret)."""

    def __init__(
        self, message: str, *, status_code: int = 0, oauth_error: str = "", latency: float = 0.0
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.oauth_error = oauth_error
        self.latency = latency


class ProviderRefused(ProviderError):
    """The provider refused the credentials; a person must reconnect."""


class ProviderUnavailable(ProviderError):
    """The provider could not answer now (5xx, 429, timeout); try again later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.rate_limited = kwargs.get("status_code") == 429


@dataclass(frozen=True)
class ClientApp:
    """The OAuth client a connection authenticates through (a builder's provider app, or
    the client credentials stored with a client-credentials/password connection)."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class Grant:
    """A successful token response, parsed."""

    access_token: tm.OAuth2Token
    refresh_token: tm.OAuth2Token | None  # None: the provider issued none (keep the old one)
    scopes: list[str]
    token_type: str
    metadata: dict[str, Any]  # the response without its secret members
    latency: float  # seconds the token endpoint took (the last attempt)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    first_delay: float = 0.2
    max_delay: float = 2.0
    # A Retry-After longer than this is not waited for inside a call: the caller is told.
    max_retry_after: float = 5.0
    timeout: float = 10.0


def token_url(provider: providers_pb2.ProviderInfo, context: tm.ConnectionContext) -> str:
    return render_template(provider.oauth2_opts.token_url, template_values(context))


def template_values(context: tm.ConnectionContext) -> dict[str, str]:
    """What catalog URL templates may name: the workspace and the provider metadata."""
    values = dict(context.provider_metadata)
    if context.provider_workspace_ref:
        values["workspace"] = context.provider_workspace_ref
    return values


class ProviderClient:
    """One per shard: the token-endpoint calls, each retried per the policy."""

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()
        # One TLS context for every call: building one loads the CA bundle, 17 ms of CPU
        # that would stall the shard's event loop (and every caller) at each refresh.
        self._tls = httpx.create_ssl_context()

    async def exchange_code(
        self,
        url: str,
        app: ClientApp,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str = "",
        requested_scopes: list[str] | None = None,
    ) -> Grant:
        params: dict[str, Any] = {"code": code, "redirect_uri": redirect_uri}
        if code_verifier:
            params["code_verifier"] = code_verifier
        # An authorization code is single use: a retry after the provider may have
        # consumed it would be refused, so exchanges are tried once.
        return await self._grant(
            url, app, "authorization_code", params, requested_scopes or [], retry=False
        )

    async def refresh(
        self, url: str, app: ClientApp, refresh_token: str, scopes: list[str]
    ) -> Grant:
        return await self._grant(
            url, app, "refresh_token", {"refresh_token": refresh_token}, scopes
        )

    async def client_credentials(
        self, url: str, app: ClientApp, scopes: list[str], audience: list[str]
    ) -> Grant:
        params: dict[str, Any] = {}
        if scopes:
            params["scope"] = " ".join(scopes)
        if audience:
            params["audience"] = " ".join(audience)
        return await self._grant(url, app, "client_credentials", params, scopes)

    async def password(
        self, url: str, app: ClientApp, username: str, password: str, scopes: list[str]
    ) -> Grant:
        params: dict[str, Any] = {"username": username, "password": password}
        if scopes:
            params["scope"] = " ".join(scopes)
        return await self._grant(url, app, "password", params, scopes)

    async def stored_client_grant(
        self, url: str, credentials: tm.Credentials, default_audience: list[str]
    ) -> Grant:
        """A new token for client-credentials or password credentials, from what they
        store themselves (no refresh token involved)."""
        app = app_of(credentials, None)
        if app is None:
            raise ValueError("only client-credentials and password credentials hold a client")
        if credentials.WhichOneof("kind") == "oauth2_client_credentials":
            cc = credentials.oauth2_client_credentials
            audience = list(cc.audience) or default_audience
            return await self.client_credentials(url, app, list(cc.scopes), audience)
        pw = credentials.oauth2_password
        return await self.password(url, app, pw.username, pw.password, list(pw.scopes))

    async def revoke(
        self, provider: str, url: str, app: ClientApp, token: str, *, within: float | None = None
    ) -> tuple[bool, str]:
        """Revokes a token where the provider supports it: (revoked, why not), in at most
        `within` seconds (else the policy's timeout) however slowly the provider trickles."""
        endpoint = revocation_endpoint(provider, url)
        if endpoint is None:
            return False, f"{provider} has no token revocation endpoint"
        method, target = endpoint
        try:
            async with asyncio.timeout(within or self.policy.timeout), self._client(app) as client:
                if method == "DELETE":
                    # No bearer token of the client's own: HubSpot's URL names the token.
                    response = await client.request("DELETE", target(token), withhold_token=True)
                else:
                    response = await client.revoke_token(
                        target(token),
                        token=token,
                        token_type_hint="refresh_token",  # noqa: S106 (a hint name)
                    )
        except NETWORK_ERRORS as error:
            return False, f"the provider's revocation endpoint {network_failure(error)}"
        if response.status_code >= 400:
            return False, f"the provider answered HTTP {response.status_code} to the revocation"
        return True, ""

    async def warm_up(self) -> None:
        """One client-credentials grant against a throwaway token endpoint on loopback, at
        start: the HTTP stack imports its connection machinery on first use (40-110 ms
        with the event loop blocked), which would otherwise stall every caller of the
        shard at its first refresh."""

        async def token_endpoint(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            body = b'{"access_token": "warm-up", "token_type": "Bearer"}'
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(token_endpoint, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            await self._grant_once(
                f"http://127.0.0.1:{port}/token",
                ClientApp("warm-up", "warm-up"),
                "client_credentials",
                {},
                [],
            )

    def _client(self, app: ClientApp) -> AsyncOAuth2Client:
        client = AsyncOAuth2Client(
            client_id=app.client_id,
            client_secret=app.client_secret,
            # Form-encoded client credentials: what HubSpot and Salesforce document.
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 (a method name)
            timeout=self.policy.timeout,
            verify=self._tls,
        )
        client.register_compliance_hook("access_token_response", _raise_for_failure)
        client.register_compliance_hook("refresh_token_response", _raise_for_failure)
        return client

    async def _grant(
        self,
        url: str,
        app: ClientApp,
        grant_type: str,
        params: dict[str, Any],
        requested_scopes: list[str],
        *,
        retry: bool = True,
    ) -> Grant:
        policy = self.policy
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(ProviderUnavailable),
            stop=stop_after_attempt(policy.attempts if retry else 1),
            wait=_wait_honouring_retry_after(policy),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._grant_once(url, app, grant_type, params, requested_scopes)
        raise AssertionError("unreachable: tenacity reraises the last failure")

    async def _grant_once(
        self,
        url: str,
        app: ClientApp,
        grant_type: str,
        params: dict[str, Any],
        requested_scopes: list[str],
    ) -> Grant:
        started = time.monotonic()
        issued = datetime.now(UTC)
        try:
            async with self._client(app) as client:
                if grant_type == "refresh_token":
                    token = await client.refresh_token(url, **params)
                else:
                    token = await client.fetch_token(url, grant_type=grant_type, **params)
        except ProviderError as error:
            error.latency = time.monotonic() - started
            raise
        except NETWORK_ERRORS as error:
            raise ProviderUnavailable(
                f"the provider's token endpoint {network_failure(error)}",
                latency=time.monotonic() - started,
            ) from None
        except OAuthError as error:
            # A 2xx answer naming an OAuth error (Authlib raises it after the hook).
            raise _classified(200, str(error.error or "")[:64], None) from None
        except ValueError:
            raise ProviderUnavailable(
                "the provider answered something that is not a token"
            ) from None
        return _parse_grant(dict(token), issued, requested_scopes, time.monotonic() - started)


def _raise_for_failure(response: httpx.Response) -> httpx.Response:
    """Authlib's compliance hook: classify a failed token response before it is parsed."""
    if response.status_code < 400:
        return response
    oauth_error = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            oauth_error = str(body.get("error", ""))[:64]
    except ValueError:
        pass
    raise _classified(response.status_code, oauth_error, _retry_after(response))


def _classified(status: int, oauth_error: str, retry_after: float | None) -> ProviderError:
    """The failure a token endpoint's answer means."""
    described = f"HTTP {status}" + (f" ({oauth_error})" if oauth_error else "")
    if status == 429 or status >= 500 or oauth_error in UNAVAILABLE_ERRORS:
        return ProviderUnavailable(
            f"the provider's token endpoint answered {described}",
            status_code=status,
            oauth_error=oauth_error,
            retry_after=retry_after,
        )
    if oauth_error in REFUSING_ERRORS or status in (401, 403) or oauth_error == "access_denied":
        return ProviderRefused(
            f"the provider refused the credentials: {described}",
            status_code=status,
            oauth_error=oauth_error,
        )
    # invalid_request, invalid_scope, unsupported_grant_type: a configuration problem a
    # retry does not fix either, so the credentials are as good as refused.
    return ProviderRefused(
        f"the provider rejected the token request: {described}",
        status_code=status,
        oauth_error=oauth_error,
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _wait_honouring_retry_after(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential(multiplier=policy.first_delay, max=policy.max_delay)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ProviderUnavailable) and error.retry_after is not None:
            if error.retry_after > policy.max_retry_after:
                # Longer than a caller should hang: give up now, the caller reports it.
                raise error
            return error.retry_after
        return float(backoff(state))

    return wait


def _parse_grant(
    token: dict[str, Any], issued: datetime, requested_scopes: list[str], latency: float
) -> Grant:
    access = str(token.get("access_token") or "")
    if not access:
        raise ProviderUnavailable("the provider's token response had no access_token")
    access_token = tm.OAuth2Token(token=access)
    access_token.issue_time.FromDatetime(issued)
    expires_in = token.get("expires_in")
    if isinstance(expires_in, (int, float, str)) and str(expires_in).strip():
        with contextlib.suppress(ValueError):
            access_token.expire_time.FromDatetime(issued + timedelta(seconds=float(expires_in)))
    refresh: tm.OAuth2Token | None = None
    if token.get("refresh_token"):
        refresh = tm.OAuth2Token(token=str(token["refresh_token"]))
        refresh.issue_time.FromDatetime(issued)
    scope = token.get("scope")
    scopes = scope.split() if isinstance(scope, str) and scope else list(requested_scopes)
    return Grant(
        access_token=access_token,
        refresh_token=refresh,
        scopes=scopes,
        token_type=str(token.get("token_type") or "Bearer"),
        metadata={k: v for k, v in token.items() if k not in SECRET_MEMBERS},
        latency=latency,
    )


# How providers revoke, derived from their token URL (the catalog has no revocation URL).
# Salesforce implements RFC 7009 at /services/oauth2/revoke; HubSpot documents
# DELETE /oauth/v1/refresh-tokens/{token}. Others: not revoked, and the caller is told.
def revocation_endpoint(
    provider: str, token_endpoint: str
) -> tuple[str, Callable[[str], str]] | None:
    base = token_endpoint.rsplit("/", 1)[0]
    if provider == "salesforce":
        return "POST", lambda _token: f"{base}/revoke"
    if provider == "hubspot":
        return "DELETE", lambda token: f"{base}/refresh-tokens/{quote(token, safe='')}"
    return None


def app_of(credentials: tm.Credentials, provider_app: ClientApp | None) -> ClientApp | None:
    """The OAuth client a refresh authenticates with: the stored client of client
    credentials and password connections, else the builder's provider app."""
    kind = credentials.WhichOneof("kind")
    if kind == "oauth2_client_credentials":
        cc = credentials.oauth2_client_credentials
        return ClientApp(cc.client_id, cc.client_secret)
    if kind == "oauth2_password":
        pw = credentials.oauth2_password
        return ClientApp(pw.client_id, pw.client_secret)
    return provider_app


def with_grant(credentials: tm.Credentials, grant: Grant) -> tm.Credentials:
    """The credentials after a successful grant; a refresh token the provider did not
    reissue is kept."""
    updated = tm.Credentials()
    updated.CopyFrom(credentials)
    kind = updated.WhichOneof("kind")
    if kind == "oauth2_authorization_code":
        variant: Any = updated.oauth2_authorization_code
        variant.token_type = grant.token_type
    elif kind == "oauth2_client_credentials":
        variant = updated.oauth2_client_credentials
    elif kind == "oauth2_password":
        variant = updated.oauth2_password
    else:
        raise ValueError(f"{kind} credentials have no access token to renew")
    variant.access_token.CopyFrom(grant.access_token)
    if grant.refresh_token is not None and kind != "oauth2_client_credentials":
        variant.refresh_token.CopyFrom(grant.refresh_token)
    if grant.scopes:
        del variant.scopes[:]
        variant.scopes.extend(grant.scopes)
    return updated
