"""HubSpot's webhooks API v3 (the developer API, authenticated by `?hapikey=`) and its
access-token introspection, as the sandbox answers them:

    /hubspot/oauth/v1/access-tokens/{token}                   GET     hub_id, app_id, scopes...
    /hubspot/webhooks/v3/{appId}/settings                     GET     200; 404 before a PUT
    /hubspot/webhooks/v3/{appId}/settings                     PUT     200 with the settings
    /hubspot/webhooks/v3/{appId}/settings                     DELETE  204
    /hubspot/webhooks/v3/{appId}/subscriptions                GET     {"results": [...]}
    /hubspot/webhooks/v3/{appId}/subscriptions                POST    201 with the subscription
    /hubspot/webhooks/v3/{appId}/subscriptions/{id}           GET     200
    /hubspot/webhooks/v3/{appId}/subscriptions/{id}           PATCH   200 (`active`)
    /hubspot/webhooks/v3/{appId}/subscriptions/{id}           DELETE  204

The webhooks routes answer a missing or wrong hapikey 401 INVALID_AUTHENTICATION, an
appId that is not the sandbox app's 404, a bad body 400 VALIDATION_ERROR, a subscription
already there 409 CONFLICT, all as `{"status": "error", "message", "category"}`, and go
through the SUBSCRIPTIONS fault endpoint. The introspection goes through the RECORDS one
(as HubSpot's other authenticated reads) and answers an unknown, revoked or expired token
401. What is registered here drives the events webhooks.py sends.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.domain.subscribe_names import HUBSPOT_EVENT_OBJECTS
from services.sandbox.errors import ApiError, provider_error
from services.sandbox.faults import Endpoint, Fault, RequestInfo, apply_faults, record_fault_error
from services.sandbox.providers import HUBSPOT_DOMAIN, HUBSPOT_PORTAL_ID, Provider
from services.sandbox.record_api import RecordApi
from services.sandbox.webhooks import (
    HUBSPOT_EVENT_KINDS,
    HubSpotSettings,
    HubSpotSubscription,
    WebhookBook,
    now_text,
)

_JSON = "application/json"
_PERIODS = ("SECONDLY", "ROLLING_MINUTE")


def _error(status: int, category: str, message: str) -> ApiError:
    return ApiError(status, provider_error(Provider.HUBSPOT, status, category, message))


def _answer(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON)


def _settings_json(settings: HubSpotSettings) -> dict[str, Any]:
    return {
        "targetUrl": settings.target_url,
        "throttling": {"maxConcurrentRequests": settings.max_concurrent, "period": settings.period},
        "createdAt": settings.created,
        "updatedAt": settings.updated,
    }


def subscription_json(sub: HubSpotSubscription) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(sub.id),
        "createdAt": sub.created,
        "updatedAt": sub.updated,
        "eventType": sub.event_type,
        "active": sub.active,
    }
    if sub.property_name is not None:
        body["propertyName"] = sub.property_name
    return body


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise _error(400, "VALIDATION_ERROR", "Invalid input JSON: the body is not JSON") from None
    if not isinstance(body, dict):
        raise _error(400, "VALIDATION_ERROR", "Invalid input JSON: the body must be an object")
    return body


class HubSpotWebhooks:
    """HubSpot's webhooks API and token introspection over the state."""

    def __init__(self, records: RecordApi) -> None:
        self.records = records
        self.state = records.state

    @property
    def book(self) -> WebhookBook:
        return self.state.webhooks

    def routes(self) -> list[Route]:
        base = "/hubspot/webhooks/v3/{app_id}"
        return [
            Route("/hubspot/oauth/v1/access-tokens/{token}", self.access_token, methods=["GET"]),
            Route(base + "/settings", self.settings, methods=["GET", "PUT", "DELETE"]),
            Route(base + "/subscriptions", self.subscriptions, methods=["GET", "POST"]),
            Route(
                base + "/subscriptions/{subscription_id}",
                self.subscription,
                methods=["GET", "PATCH", "DELETE"],
            ),
        ]

    # --- token introspection ------------------------------------------------------

    async def access_token(self, request: Request) -> Response:
        value = request.path_params["token"]
        token = self.state.tokens.by_access.get(value)
        if token is not None and token.provider is not Provider.HUBSPOT:
            token = None
        return await self.records.serve(
            request, Provider.HUBSPOT, "", self._introspect, token=token, bearer=False
        )

    async def _introspect(self, request: Request, _: str) -> bytes:
        token = self.state.tokens.by_access[request.path_params["token"]]
        remaining = max(0, int(token.issued_at + token.expires_in - time.time()))
        return orjson.dumps(
            {
                "token": token.access_token,
                "user": token.username or "integration@" + HUBSPOT_DOMAIN,
                "hub_domain": HUBSPOT_DOMAIN,
                "scopes": token.scope.split(),
                "scope_to_scope_group_pks": [],
                "trial_scopes": [],
                "trial_scope_to_scope_group_pks": [],
                "hub_id": HUBSPOT_PORTAL_ID,
                "app_id": self.book.app.app_id,
                "expires_in": remaining,
                "user_id": 1,
                "token_type": "access",
            }
        )

    # --- the webhooks API ---------------------------------------------------------

    async def _serve(self, request: Request, render: Any) -> Response:
        started = time.monotonic()
        info = RequestInfo(Endpoint.SUBSCRIPTIONS, Provider.HUBSPOT)

        def error(fault: Fault, status: int) -> Response:
            return record_fault_error(Provider.HUBSPOT, fault, status)

        response = await apply_faults(self.state, info, error)
        if response is None:
            try:
                self._check_app(request)
                response = await render(request)
            except ApiError as exc:
                response = exc.response
        self.state.counters.count_api(
            Provider.HUBSPOT, response.status_code, time.monotonic() - started
        )
        return response

    def _check_app(self, request: Request) -> None:
        app = self.book.app
        given = request.query_params.get("hapikey", "")
        if not secrets.compare_digest(given.encode(), app.developer_api_key.encode()):
            raise ApiError(
                401,
                {
                    "status": "error",
                    "message": "The API key provided is invalid. View or manage your API key "
                    "here: https://app.hubspot.com/l/api-key/",
                    "category": "INVALID_AUTHENTICATION",
                    "correlationId": secrets.token_hex(8),
                },
            )
        if request.path_params["app_id"] != str(app.app_id):
            raise _error(404, "OBJECT_NOT_FOUND", f"App {request.path_params['app_id']} not found")

    async def settings(self, request: Request) -> Response:
        return await self._serve(request, self._settings)

    async def _settings(self, request: Request) -> Response:
        book = self.book
        if request.method == "DELETE":
            book.settings = None
            book.changed()
            return Response(status_code=204)
        if request.method == "GET":
            if book.settings is None:
                raise _error(404, "OBJECT_NOT_FOUND", "No webhook settings found for this app")
            return _answer(_settings_json(book.settings))
        body = _body(await request.body())
        target = body.get("targetUrl")
        parts = urlsplit(target) if isinstance(target, str) else None
        if (
            not isinstance(target, str)
            or parts is None
            or parts.scheme not in ("http", "https")
            or not parts.netloc
        ):
            raise _error(400, "VALIDATION_ERROR", "targetUrl must be an absolute http(s) URL")
        throttling = body.get("throttling") or {}
        if not isinstance(throttling, dict):
            raise _error(400, "VALIDATION_ERROR", "throttling must be an object")
        concurrent = throttling.get("maxConcurrentRequests", 10)
        if not isinstance(concurrent, int) or isinstance(concurrent, bool) or concurrent < 1:
            raise _error(
                400, "VALIDATION_ERROR", "throttling.maxConcurrentRequests must be a positive int"
            )
        period = throttling.get("period", "SECONDLY")
        if period not in _PERIODS:
            raise _error(400, "VALIDATION_ERROR", f"throttling.period must be one of {_PERIODS}")
        now = now_text()
        created = book.settings.created if book.settings is not None else now
        book.settings = HubSpotSettings(target, concurrent, period, created, now)
        book.changed()
        return _answer(_settings_json(book.settings))

    async def subscriptions(self, request: Request) -> Response:
        return await self._serve(request, self._subscriptions)

    async def _subscriptions(self, request: Request) -> Response:
        book = self.book
        if request.method == "GET":
            return _answer(
                {"results": [subscription_json(sub) for sub in book.subscriptions.values()]}
            )
        body = _body(await request.body())
        event_type = body.get("eventType")
        if not isinstance(event_type, str) or not _valid_event_type(event_type):
            raise _error(
                400,
                "VALIDATION_ERROR",
                f"Invalid eventType {event_type!r}: expected <object>.<kind>, object one of "
                f"{sorted(HUBSPOT_EVENT_OBJECTS.values())}, kind one of "
                f"{sorted(HUBSPOT_EVENT_KINDS)}",
            )
        property_name = body.get("propertyName")
        property_change = event_type.endswith(".propertyChange")
        if property_change and (not isinstance(property_name, str) or not property_name):
            raise _error(400, "VALIDATION_ERROR", "propertyName is required for propertyChange")
        if not property_change and property_name is not None:
            raise _error(400, "VALIDATION_ERROR", "propertyName is only allowed for propertyChange")
        active = body.get("active", True)
        if not isinstance(active, bool):
            raise _error(400, "VALIDATION_ERROR", "active must be a boolean")
        for sub in book.subscriptions.values():
            if sub.event_type == event_type and sub.property_name == property_name:
                raise _error(
                    409,
                    "CONFLICT",
                    f"A subscription for {event_type} {property_name or ''} already exists: "
                    f"{sub.id}".replace("  ", " "),
                )
        now = now_text()
        sub = HubSpotSubscription(
            book.new_subscription_id(), event_type, property_name, active, now, now
        )
        book.subscriptions[sub.id] = sub
        book.changed()
        return _answer(subscription_json(sub), 201)

    async def subscription(self, request: Request) -> Response:
        return await self._serve(request, self._subscription)

    async def _subscription(self, request: Request) -> Response:
        book = self.book
        given = request.path_params["subscription_id"]
        sub = book.subscriptions.get(int(given)) if given.isdigit() else None
        if sub is None:
            raise _error(404, "OBJECT_NOT_FOUND", f"Subscription {given} not found")
        if request.method == "DELETE":
            del book.subscriptions[sub.id]
            book.changed()
            return Response(status_code=204)
        if request.method == "PATCH":
            body = _body(await request.body())
            active = body.get("active")
            if not isinstance(active, bool):
                raise _error(400, "VALIDATION_ERROR", "active must be a boolean")
            sub.active = active
            sub.updated = now_text()
            book.changed()
        return _answer(subscription_json(sub))


def _valid_event_type(event_type: str) -> bool:
    prefix, _, kind = event_type.partition(".")
    return prefix in HUBSPOT_EVENT_OBJECTS.values() and kind in HUBSPOT_EVENT_KINDS
