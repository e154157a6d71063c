"""The OAuth endpoints of each emulated provider, over its Authlib authorization server
(oauth.py):

    /hubspot/oauth/authorize            GET   auto-approves the test user, 302 with a code
    /hubspot/oauth/v1/token             POST  token endpoint (form-encoded)
    /hubspot/oauth/v1/revoke            POST  RFC 7009 revocation
    /salesforce/services/oauth2/authorize|token|revoke      the same, Salesforce paths

Faults apply before anything else; token answers are counted.

A Salesforce token answer names the org's instance as Salesforce does (instance_url
https://<My Domain>.my.salesforce.com), so what reads the org's subdomain from it (the
api fills a connection's providerMetadata.workspace) works against the sandbox as against
Salesforce. That URL is not where the sandbox is: its clients reach it through the
catalog, which services/domain/catalog/sandbox.py points at the sandbox.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

from authlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.sandbox.faults import Endpoint, RequestInfo, apply_faults, oauth_error
from services.sandbox.oauth import OAuthConfig, ProviderAuthorizationServer, SandboxRequest
from services.sandbox.providers import PATHS, Provider
from services.sandbox.state import SandboxState

# The My Domain of the one org the sandbox plays.
SALESFORCE_MY_DOMAIN = "ampmesh-sandbox"
SALESFORCE_INSTANCE_URL = f"https://{SALESFORCE_MY_DOMAIN}.my.salesforce.com"


class OAuthRoutes:
    """Each provider's authorize, token and revoke endpoints."""

    def __init__(self, state: SandboxState, config: OAuthConfig) -> None:
        self.state = state
        self.config = config
        self.servers = {p: ProviderAuthorizationServer(p, state, config) for p in PATHS}

    def routes(self) -> list[Route]:
        routes = []
        for provider, paths in PATHS.items():
            routes += [
                Route(paths["authorize"], _bind(self.authorize, provider), methods=["GET"]),
                Route(paths["token"], _bind(self.token, provider), methods=["POST"]),
                Route(paths["revoke"], _bind(self.revoke, provider), methods=["POST"]),
            ]
        return routes

    async def authorize(self, request: Request, provider: Provider) -> Response:
        """Headless consent: the named (login_hint) or first test user approves at once."""
        oauth = await _oauth_request(request)
        user = request.query_params.get("login_hint") or next(iter(self.config.users))
        if user not in self.config.users:
            return JSONResponse(
                {"error": "access_denied", "error_description": f"no test user {user!r}"},
                status_code=400,
            )
        server = self.servers[provider]
        try:
            grant = server.get_consent_grant(oauth, end_user=user)
        except OAuth2Error as error:
            return _to_response(server.handle_error_response(oauth, error))
        return _to_response(server.create_authorization_response(oauth, user, grant))

    async def token(self, request: Request, provider: Provider) -> Response:
        started = time.monotonic()
        oauth = await _oauth_request(request)
        grant_type = oauth.form.get("grant_type", "")
        info = RequestInfo(
            Endpoint.TOKEN, provider, grant_type=grant_type, client_id=_client_id(oauth)
        )
        response = await apply_faults(self.state, info, oauth_error, refresh=oauth)
        if response is None:
            status, body, headers = self.servers[provider].create_token_response(oauth)
            if provider is Provider.SALESFORCE and status == 200 and isinstance(body, dict):
                body["instance_url"] = SALESFORCE_INSTANCE_URL
            response = _to_response((status, body, headers))
        self.state.counters.count_token(
            provider, grant_type, response.status_code, time.monotonic() - started
        )
        return response

    async def revoke(self, request: Request, provider: Provider) -> Response:
        oauth = await _oauth_request(request)
        info = RequestInfo(Endpoint.REVOKE, provider, client_id=_client_id(oauth))
        response = await apply_faults(self.state, info, oauth_error)
        if response is not None:
            return response
        server = self.servers[provider]
        return _to_response(server.create_endpoint_response("revocation", oauth))


def _bind(
    handler: Callable[[Request, Provider], Awaitable[Response]], provider: Provider
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, provider)

    return endpoint


async def _oauth_request(request: Request) -> SandboxRequest:
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        async with request.form() as data:
            form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    return SandboxRequest(
        request.method,
        str(request.url),
        request.headers,
        list(request.query_params.multi_items()),
        form,
    )


def _client_id(request: SandboxRequest) -> str:
    """The client a token request comes from (Basic auth or form), for fault matching."""
    scheme, _sep, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().partition(":")[0]
        except ValueError:
            return ""
    return request.form.get("client_id", "")


def _to_response(result: tuple[int, Any, list[tuple[str, str]]]) -> Response:
    status, body, headers = result
    header_map = dict(headers)
    if isinstance(body, dict):
        header_map.pop("Content-Type", None)
        return JSONResponse(body, status_code=status, headers=header_map)
    return Response(body or b"", status_code=status, headers=header_map)
