"""The OAuth 2.0 authorization server, on Authlib's framework-agnostic rfc6749 core.

Grants: authorization code (PKCE S256 or plain when the client sends a challenge),
client credentials, password, and refresh token with rotation (a refresh token works
once; the refresh answer carries its successor). RFC 7009 revocation: revoking a refresh
token revokes its whole grant, revoking an access token only that token.

Authlib is synchronous; the starlette handlers read the body first and then call it in
the event loop, which is fine for in-memory stores.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AuthorizationServer,
    ClientMixin,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator  # type: ignore[import-untyped]
from authlib.oauth2.rfc7009 import RevocationEndpoint  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]

from services.sandbox.providers import Provider
from services.sandbox.state import SandboxState
from services.sandbox.tokens import AuthorizationCode, Token, TokenStore

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", "password")
_CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]
_CODE_LIFETIME = 600.0

# (status, body, headers) as Authlib hands them to handle_response.
OAuthResponse = tuple[int, Any, list[tuple[str, str]]]


@dataclass(frozen=True)
class SandboxClient(ClientMixin):
    """A confidential OAuth client; any http loopback redirect URI is allowed too, so
    tests and local tools can listen wherever they like."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...] = GRANT_TYPES
    # HubSpot: the developer app this client is, as its webhooks API names it.
    app_id: str = ""
    developer_api_key: str = ""

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris or _is_loopback_http(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in _CLIENT_AUTH

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def _is_loopback_http(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class _Payload(OAuth2Payload):
    def __init__(self, values: list[tuple[str, str]]) -> None:
        self._values = values

    @property
    def data(self) -> dict[str, str]:
        return dict(self._values)

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        result: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._values:
            result[key].append(value)
        return result


class SandboxRequest(OAuth2Request):
    """An HTTP request already read (query, form body, headers) for Authlib."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Any,
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._query = dict(query)
        self._form = dict(form)
        self.payload = _Payload(query + form)

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class OAuthConfig:
    """Who the authorization servers accept."""

    clients: tuple[SandboxClient, ...]
    users: dict[str, str]  # username -> password
    access_token_lifetime: int


class ProviderAuthorizationServer(AuthorizationServer):
    """One emulated provider's authorization server over the shared token store."""

    def __init__(self, provider: Provider, state: SandboxState, config: OAuthConfig) -> None:
        super().__init__()
        self.provider = provider
        self.state = state
        self.config = config
        prefix = "hs" if provider is Provider.HUBSPOT else "sf"

        def access(**_: Any) -> str:
            return f"{prefix}-at-{secrets.token_urlsafe(24)}"

        def refresh(**_: Any) -> str:
            return f"{prefix}-rt-{secrets.token_urlsafe(24)}"

        self.register_token_generator(
            "default",
            BearerTokenGenerator(access, refresh, config.access_token_lifetime),
        )
        self.register_grant(_AuthorizationCodeGrant, [CodeChallenge(required=False)])
        self.register_grant(_ClientCredentialsGrant)
        self.register_grant(_PasswordGrant)
        self.register_grant(_RefreshTokenGrant)
        self.register_endpoint(_RevocationEndpoint)

    @property
    def tokens(self) -> TokenStore:
        return self.state.tokens

    def query_client(self, client_id: str) -> SandboxClient | None:
        return next((c for c in self.config.clients if c.client_id == client_id), None)

    def save_token(self, token: dict[str, Any], request: SandboxRequest) -> None:
        previous: Token | None = request.refresh_token
        self.tokens.add(
            Token(
                provider=self.provider,
                client_id=request.client.client_id,
                username=request.user,
                scope=token.get("scope", ""),
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                expires_in=int(token["expires_in"]),
                issued_at=time.time(),
                grant_id=previous.grant_id if previous else TokenStore.new_grant_id(),
            )
        )

    def create_oauth2_request(self, request: SandboxRequest) -> SandboxRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> OAuthResponse:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal subscribers in the sandbox."""


class _AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _CLIENT_AUTH

    def save_authorization_code(self, code: str, request: SandboxRequest) -> None:
        data = request.payload.data
        server: ProviderAuthorizationServer = self.server
        server.tokens.codes[code] = AuthorizationCode(
            code=code,
            provider=server.provider,
            client_id=request.client.client_id,
            username=request.user,
            redirect_uri=data.get("redirect_uri", ""),
            scope=request.scope or "",
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            issued_at=time.time(),
        )

    def query_authorization_code(
        self, code: str, client: SandboxClient
    ) -> AuthorizationCode | None:
        server: ProviderAuthorizationServer = self.server
        found = server.tokens.codes.get(code)
        if (
            found is None
            or found.client_id != client.client_id
            or found.provider is not server.provider
            or time.time() > found.issued_at + _CODE_LIFETIME
        ):
            return None
        return found

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        self.server.tokens.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> str:
        return authorization_code.username


class _ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _CLIENT_AUTH


class _PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _CLIENT_AUTH

    def authenticate_user(self, username: str, password: str) -> str | None:
        expected = self.server.config.users.get(username)
        if expected is not None and secrets.compare_digest(expected, password):
            return username
        return None


class _RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _CLIENT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        server: ProviderAuthorizationServer = self.server
        token = server.tokens.by_refresh.get(refresh_token)
        if token is None or token.refresh_revoked or token.provider is not server.provider:
            return None
        return token

    def authenticate_user(self, refresh_token: Token) -> str | None:
        return refresh_token.username

    def revoke_old_credential(self, refresh_token: Token) -> None:
        # Rotation: the old refresh token is spent; its access token lives out its time.
        refresh_token.refresh_revoked = True


class _RevocationEndpoint(RevocationEndpoint):
    CLIENT_AUTH_METHODS = _CLIENT_AUTH

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        server: ProviderAuthorizationServer = self.server
        tokens = server.tokens
        lookups = [tokens.by_access, tokens.by_refresh]
        if token_type_hint == "refresh_token":  # noqa: S105 (a hint name, not a secret)
            lookups.reverse()
        for lookup in lookups:
            token = lookup.get(token_string)
            if token is not None and token.provider is server.provider:
                return token
        return None

    def revoke_token(self, token: Token, request: SandboxRequest) -> None:
        if request.form.get("token") == token.refresh_token:
            self.server.tokens.revoke_grant(token.grant_id)
        else:
            token.access_revoked = True
