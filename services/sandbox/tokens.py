"""The tokens and authorization codes the sandbox's OAuth servers issued (Authlib's token
and code mixins), by access token, refresh token and grant."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from services.sandbox.providers import Provider


@dataclass
class Token:
    """An issued access token and its refresh token (Authlib's TokenMixin)."""

    provider: Provider
    client_id: str
    username: str | None
    scope: str
    access_token: str
    refresh_token: str | None
    expires_in: int
    issued_at: float
    grant_id: str
    access_revoked: bool = False
    refresh_revoked: bool = False
    forced_expired: bool = False

    # Authlib TokenMixin
    def check_client(self, client: object) -> bool:
        return getattr(client, "client_id", None) == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return self.forced_expired or time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.refresh_revoked

    def get_user(self) -> str | None:
        return self.username

    def get_client(self) -> object:
        raise NotImplementedError("the sandbox looks clients up by client_id")


@dataclass
class AuthorizationCode:
    """An issued authorization code (Authlib's AuthorizationCodeMixin, plus PKCE)."""

    code: str
    provider: Provider
    client_id: str
    username: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    issued_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> None:
        return None

    def get_auth_time(self) -> int:
        return int(self.issued_at)


class TokenStore:
    """Issued codes and tokens, found by their strings."""

    def __init__(self) -> None:
        self.codes: dict[str, AuthorizationCode] = {}
        self.by_access: dict[str, Token] = {}
        self.by_refresh: dict[str, Token] = {}

    def clear(self) -> None:
        self.codes.clear()
        self.by_access.clear()
        self.by_refresh.clear()

    def add(self, token: Token) -> None:
        self.by_access[token.access_token] = token
        if token.refresh_token:
            self.by_refresh[token.refresh_token] = token

    def revoke_grant(self, grant_id: str) -> None:
        """Revoke every token issued under one grant (its refreshes included)."""
        for token in self.by_access.values():
            if token.grant_id == grant_id:
                token.access_revoked = True
                token.refresh_revoked = True

    @staticmethod
    def new_grant_id() -> str:
        return secrets.token_hex(8)
