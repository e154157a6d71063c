"""What every record API request goes through, whatever the provider: the bearer token
looked up, faults fired (the object named for faults scoped to one), the token checked
(401 in the provider's shape), the page rendered, and the answer counted. The proxy-test
routes (proxy_test.py) go through it too, under their own fault endpoint, with the
route's name where a record API names its object."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.sandbox.errors import ApiError, provider_error
from services.sandbox.faults import Endpoint, Fault, RequestInfo, apply_faults, record_fault_error
from services.sandbox.providers import Provider
from services.sandbox.state import SandboxState
from services.sandbox.tokens import Token

_JSON = "application/json"

# Renders a page's body (bytes of JSON) for a request, given the object's name, or a
# whole Response (a 201, say); raises ApiError to answer with a provider error instead.
Render = Callable[[Request, str], Awaitable[bytes | Response]]


class RecordApi:
    """The request pipeline of the record APIs over a SandboxState."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def serve(
        self,
        request: Request,
        provider: Provider,
        object_name: str,
        render: Render,
        *,
        endpoint: Endpoint = Endpoint.RECORDS,
        token: Token | None = None,
        bearer: bool = True,
    ) -> Response:
        """`bearer=False`: the token is the one given (found elsewhere than in the
        Authorization header, as HubSpot's introspection names it in its path)."""
        started = time.monotonic()
        if endpoint is Endpoint.PROXY_TEST:
            self.state.counters.count_proxy_test(provider, object_name)
        if bearer:
            token = self._bearer(request, provider)
        info = RequestInfo(
            endpoint,
            provider,
            object_name=object_name,
            client_id=token.client_id if token else "",
        )

        def error(fault: Fault, status: int) -> Response:
            return record_fault_error(provider, fault, status)

        response = await apply_faults(self.state, info, error, token=token)
        if response is None:
            response = self._authenticated(provider, token)
        if response is None:
            try:
                rendered = await render(request, object_name)
                response = (
                    rendered
                    if isinstance(rendered, Response)
                    else Response(rendered, media_type=_JSON)
                )
            except ApiError as exc:
                response = exc.response
        self.state.counters.count_api(provider, response.status_code, time.monotonic() - started)
        return response

    def _bearer(self, request: Request, provider: Provider) -> Token | None:
        scheme, _sep, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = self.state.tokens.by_access.get(value.strip())
        return token if token is not None and token.provider is provider else None

    @staticmethod
    def _authenticated(provider: Provider, token: Token | None) -> Response | None:
        if token is None or token.access_revoked:
            problem = "missing, unknown or revoked access token"
        elif token.is_expired():
            problem = "the access token has expired; refresh it"
        else:
            return None
        code = "INVALID_AUTHENTICATION" if provider is Provider.HUBSPOT else "INVALID_SESSION_ID"
        return JSONResponse(
            provider_error(provider, 401, code, problem),
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
