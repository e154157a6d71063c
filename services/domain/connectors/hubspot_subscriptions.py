"""HubSpot's webhooks API v3 (the developer API, app-level) and its access-token
introspection, as SyncSubscriptions registers an installation's change events.

    GET    {base}/oauth/v1/access-tokens/{token}                    -> {"hub_id": 62515, ...}
    PUT    {base}/webhooks/v3/{appId}/settings?hapikey=K            {"targetUrl", "throttling"}
    GET    {base}/webhooks/v3/{appId}/subscriptions?hapikey=K       -> {"results": [...]}
    POST   {base}/webhooks/v3/{appId}/subscriptions?hapikey=K       {"eventType", "propertyName"}
    DELETE {base}/webhooks/v3/{appId}/subscriptions/{id}?hapikey=K  -> 204

Subscriptions belong to the developer app, not to a portal: every installation of an
integration shares them, and HubSpot sends each portal's events to the app's one target
URL. The developer API key goes in the query as HubSpot wants it, through the auth's
query so `connectors.http` redacts it from every error; the access token of the
introspection travels in the path, so its errors are redacted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from services.domain.connectors.base import (
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    TokenRejected,
)
from services.domain.connectors.http import json_body, send

# HubSpot's own default, and what the design asks for.
MAX_CONCURRENT_REQUESTS = 10


@dataclass(frozen=True)
class HubSpotApp:
    """The developer app the webhooks belong to (the provider app's providerParams)."""

    app_id: str
    developer_api_key: str


@dataclass(frozen=True)
class HubSpotSubscription:
    """One app-level webhook subscription."""

    id: str
    event_type: str
    # Only for `*.propertyChange`; empty otherwise.
    property_name: str = ""
    active: bool = True

    @property
    def key(self) -> tuple[str, str]:
        """What makes two subscriptions the same: HubSpot allows one per key."""
        return self.event_type, self.property_name


def _app_auth(base_url: str, app: HubSpotApp) -> ProviderAuth:
    return ProviderAuth(base_url=base_url.rstrip("/"), query={"hapikey": app.developer_api_key})


def _webhooks(auth: ProviderAuth, app: HubSpotApp, *rest: str) -> str:
    return "/".join((auth.base_url, "webhooks/v3", quote(app.app_id, safe=""), *rest))


def _subscription(raw: Any) -> HubSpotSubscription | None:
    if not isinstance(raw, dict) or raw.get("id") is None or not raw.get("eventType"):
        return None
    return HubSpotSubscription(
        id=str(raw["id"]),
        event_type=str(raw["eventType"]),
        property_name=str(raw.get("propertyName") or ""),
        active=bool(raw.get("active", True)),
    )


async def hub_id(
    http: aiohttp.ClientSession, base_url: str, access_token: str, *, max_wait: float
) -> str:
    """The portal (hub) id the access token belongs to. A token HubSpot does not know
    (404, or 401) raises TokenRejected: refresh it and ask again."""
    url = f"{base_url.rstrip('/')}/oauth/v1/access-tokens/{quote(access_token, safe='')}"
    try:
        response = await send(
            http, "GET", url, auth=ProviderAuth(base_url=base_url), max_wait=max_wait
        )
        body = json_body(response)
    except TokenRejected as error:
        raise TokenRejected(_hide(str(error), access_token)) from None
    except ProviderRequestError as error:
        if error.status == 404:
            raise TokenRejected("HubSpot does not know the connection's access token") from None
        raise ProviderRequestError(
            _hide(str(error), access_token), status=error.status, code=error.code
        ) from None
    except ProviderUnavailable as error:
        raise ProviderUnavailable(
            _hide(str(error), access_token), retry_after=error.retry_after
        ) from None
    hub = body.get("hub_id") if isinstance(body, dict) else None
    if hub is None or str(hub) == "":
        raise ProviderRequestError(
            "HubSpot's access-token introspection named no hub_id", status=response.status
        )
    return str(hub)


def _hide(text: str, token: str) -> str:
    return text.replace(quote(token, safe=""), "[redacted]").replace(token, "[redacted]")


async def put_settings(
    http: aiohttp.ClientSession,
    base_url: str,
    app: HubSpotApp,
    target_url: str,
    *,
    max_wait: float,
) -> None:
    """Point the app's webhooks at target_url (idempotent: a PUT)."""
    auth = _app_auth(base_url, app)
    await send(
        http,
        "PUT",
        _webhooks(auth, app, "settings"),
        auth=auth,
        json={
            "targetUrl": target_url,
            "throttling": {"maxConcurrentRequests": MAX_CONCURRENT_REQUESTS},
        },
        max_wait=max_wait,
    )


async def list_subscriptions(
    http: aiohttp.ClientSession, base_url: str, app: HubSpotApp, *, max_wait: float
) -> list[HubSpotSubscription]:
    """Every subscription of the app."""
    auth = _app_auth(base_url, app)
    response = await send(
        http, "GET", _webhooks(auth, app, "subscriptions"), auth=auth, max_wait=max_wait
    )
    body = json_body(response)
    results = body.get("results") if isinstance(body, dict) else body
    if not isinstance(results, list):
        raise ProviderRequestError(
            "HubSpot's subscription list has no results", status=response.status
        )
    return [found for raw in results if (found := _subscription(raw)) is not None]


async def create_subscription(
    http: aiohttp.ClientSession,
    base_url: str,
    app: HubSpotApp,
    event_type: str,
    property_name: str = "",
    *,
    max_wait: float,
) -> HubSpotSubscription:
    """Subscribe the app to an event type (a property's changes for propertyChange).
    Not resent when its answer is lost: the caller lists again instead, so a lost answer
    never makes two."""
    auth = _app_auth(base_url, app)
    body: dict[str, Any] = {"eventType": event_type, "active": True}
    if property_name:
        body["propertyName"] = property_name
    response = await send(
        http,
        "POST",
        _webhooks(auth, app, "subscriptions"),
        auth=auth,
        json=body,
        max_wait=max_wait,
        resend_unanswered=False,
    )
    created = _subscription(json_body(response))
    if created is None:
        raise ProviderRequestError(
            f"HubSpot's answer to subscribing to {event_type} named no subscription id",
            status=response.status,
        )
    return created


async def delete_subscription(
    http: aiohttp.ClientSession,
    base_url: str,
    app: HubSpotApp,
    subscription_id: str,
    *,
    max_wait: float,
) -> None:
    """Remove a subscription; one already gone (404) is not an error."""
    auth = _app_auth(base_url, app)
    await send(
        http,
        "DELETE",
        _webhooks(auth, app, "subscriptions", quote(subscription_id, safe="")),
        auth=auth,
        max_wait=max_wait,
        accept=(404,),
    )
