"""The provider sandbox served in process on a real socket, for tests of the connectors
(tests/domain): its state seeded and its faults injected directly, and each provider's
access token known, so a connector calls it as it calls a provider."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from services.domain.connectors.base import ProviderAuth
from services.runtime.mcp_http import serving_http
from services.sandbox.faults import Endpoint, Fault
from services.sandbox.http_api import SandboxHttp
from services.sandbox.oauth import OAuthConfig
from services.sandbox.providers import Provider
from services.sandbox.state import SandboxState
from services.sandbox.tokens import Token

ACCESS_TOKEN = "sandbox-access-token-for-connector-tests"
TOKENS = {Provider.HUBSPOT: ACCESS_TOKEN + "-hs", Provider.SALESFORCE: ACCESS_TOKEN + "-sf"}


@dataclass
class ServedSandbox:
    state: SandboxState
    url: str

    def auth(self, provider: Provider, token: str | None = None) -> ProviderAuth:
        """How a connector calls provider here: its API root, with its access token (or
        `token`, to be refused)."""
        base = "/hubspot" if provider is Provider.HUBSPOT else "/salesforce"
        return ProviderAuth(
            self.url + base, {"Authorization": f"Bearer {token or TOKENS[provider]}"}
        )

    def fault(self, **kwargs: Any) -> Fault:
        """A fault on the record APIs (the metadata APIs are served as record APIs)."""
        return self.state.faults.add(Fault(id="", endpoint=Endpoint.RECORDS, **kwargs))

    def reset(self) -> None:
        """No records, custom fields or faults; each provider's access token valid."""
        self.state.records.clear()
        self.state.schemas.reset()
        self.state.faults.clear()
        self.state.tokens.clear()
        for provider in (Provider.HUBSPOT, Provider.SALESFORCE):
            self.state.tokens.add(
                Token(
                    provider=provider,
                    client_id="tests",
                    username=None,
                    scope="",
                    access_token=TOKENS[provider],
                    refresh_token=None,
                    expires_in=3600,
                    issued_at=time.time(),
                    grant_id=provider.name,
                )
            )


@asynccontextmanager
async def served_sandbox() -> AsyncIterator[ServedSandbox]:
    state = SandboxState()
    app = SandboxHttp(state, OAuthConfig(clients=(), users={}, access_token_lifetime=3600)).app()
    async with serving_http(app, "127.0.0.1", 0) as port:
        yield ServedSandbox(state, f"http://127.0.0.1:{port}")
