"""Salesforce change data capture as SyncSubscriptions registers it: the org of the
connection, a PlatformEventChannelMember per object on the standard `ChangeEvents`
channel, and an EventRelayConfig per installation relaying that channel to the
installation's own URL with its relay token.

    GET    {instance}/services/oauth2/userinfo                          -> organization_id
    GET    {instance}/services/data/v59.0/tooling/query?q=SELECT ...   -> records
    POST   .../tooling/sobjects/PlatformEventChannelMember             -> {"id", "success"}
    DELETE .../tooling/sobjects/PlatformEventChannelMember/{id}
    POST   .../tooling/sobjects/EventRelayConfig                       -> {"id", "success"}
    DELETE .../tooling/sobjects/EventRelayConfig/{id}

A channel member belongs to the org: every installation on that org shares it. In real
Salesforce the relay feeds AWS EventBridge, whose API destination presents the token as a
header; the relay option's `headers` says which (the sandbox delivers it in one hop).
The relay token travels only in a create's body, never in a URL or an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from services.domain.connectors.base import ProviderAuth, ProviderRequestError
from services.domain.connectors.http import json_body, send

API_VERSION = "v59.0"
CHANNEL = "ChangeEvents"
RELAY_TOKEN_HEADER = "X-Ampmesh-Relay-Token"  # noqa: S105 (a header name)
# Tooling query pages to follow at most (a few records are expected).
MAX_PAGES = 20


@dataclass(frozen=True)
class ChannelMember:
    id: str
    # `ChangeEvents_AccountChangeEvent` (the query's DeveloperName).
    name: str
    # `AccountChangeEvent`.
    entity: str


@dataclass(frozen=True)
class EventRelay:
    id: str
    name: str
    destination: str


def _tooling(auth: ProviderAuth, *rest: str) -> str:
    return "/".join((auth.base_url, "services/data", API_VERSION, "tooling", *rest))


def member_name(entity: str) -> str:
    """A developer name allows no double underscore: a custom object's member
    (`Invoice__ChangeEvent`) is named `ChangeEvents_Invoice_ChangeEvent`."""
    return f"{CHANNEL}_{entity.replace('__', '_')}"


async def organization_id(
    http: aiohttp.ClientSession, auth: ProviderAuth, *, max_wait: float
) -> str:
    """The org the connection's user belongs to (TokenRejected on 401: refresh)."""
    response = await send(
        http, "GET", f"{auth.base_url}/services/oauth2/userinfo", auth=auth, max_wait=max_wait
    )
    body = json_body(response)
    org = body.get("organization_id") if isinstance(body, dict) else None
    if not org:
        raise ProviderRequestError(
            "Salesforce's userinfo named no organization_id", status=response.status
        )
    return str(org)


async def _query(
    http: aiohttp.ClientSession, auth: ProviderAuth, soql: str, *, max_wait: float
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    url, params = _tooling(auth, "query"), {"q": soql}
    for _ in range(MAX_PAGES):
        response = await send(http, "GET", url, auth=auth, params=params, max_wait=max_wait)
        body = json_body(response)
        if not isinstance(body, dict):
            raise ProviderRequestError(
                "Salesforce's tooling query answered no records", status=response.status
            )
        records += [r for r in body.get("records") or [] if isinstance(r, dict)]
        following = body.get("nextRecordsUrl")
        if body.get("done", True) or not following:
            break
        url, params = auth.base_url + str(following), {}
    return records


async def list_channel_members(
    http: aiohttp.ClientSession, auth: ProviderAuth, *, max_wait: float
) -> list[ChannelMember]:
    """The org's change data capture channel members (every channel's)."""
    rows = await _query(
        http,
        auth,
        "SELECT Id, DeveloperName, EventChannel, SelectedEntity FROM PlatformEventChannelMember",
        max_wait=max_wait,
    )
    return [
        ChannelMember(
            id=str(row["Id"]),
            name=str(row.get("DeveloperName") or row.get("FullName") or ""),
            entity=str(row.get("SelectedEntity") or ""),
        )
        for row in rows
        if row.get("Id")
    ]


async def create_channel_member(
    http: aiohttp.ClientSession, auth: ProviderAuth, entity: str, *, max_wait: float
) -> str:
    """Capture the changes of `entity` (`AccountChangeEvent`) on the ChangeEvents
    channel; the member's id. Not resent when its answer is lost (list again)."""
    response = await send(
        http,
        "POST",
        _tooling(auth, "sobjects", "PlatformEventChannelMember"),
        auth=auth,
        json={
            "FullName": member_name(entity),
            "Metadata": {"eventChannel": CHANNEL, "selectedEntity": entity},
        },
        max_wait=max_wait,
        resend_unanswered=False,
    )
    return _created_id(response.status, json_body(response), f"the channel member of {entity}")


async def delete_channel_member(
    http: aiohttp.ClientSession, auth: ProviderAuth, member_id: str, *, max_wait: float
) -> None:
    """Remove a channel member; one already gone (404) is not an error."""
    await send(
        http,
        "DELETE",
        _tooling(auth, "sobjects", "PlatformEventChannelMember", quote(member_id, safe="")),
        auth=auth,
        max_wait=max_wait,
        accept=(404,),
    )


async def list_event_relays(
    http: aiohttp.ClientSession, auth: ProviderAuth, *, max_wait: float
) -> list[EventRelay]:
    rows = await _query(
        http,
        auth,
        "SELECT Id, DeveloperName, DestinationResourceName FROM EventRelayConfig",
        max_wait=max_wait,
    )
    return [
        EventRelay(
            id=str(row["Id"]),
            name=str(row.get("DeveloperName") or row.get("FullName") or ""),
            destination=str(row.get("DestinationResourceName") or ""),
        )
        for row in rows
        if row.get("Id")
    ]


async def create_event_relay(
    http: aiohttp.ClientSession,
    auth: ProviderAuth,
    name: str,
    destination: str,
    token: str,
    *,
    max_wait: float,
) -> str:
    """Relay the ChangeEvents channel to destination, presenting token; the relay's id."""
    relay_option = orjson.dumps({"headers": {RELAY_TOKEN_HEADER: token}}).decode()
    response = await send(
        http,
        "POST",
        _tooling(auth, "sobjects", "EventRelayConfig"),
        auth=auth,
        json={
            "FullName": name,
            "Metadata": {
                "eventChannel": CHANNEL,
                "destinationResourceName": destination,
                "state": "RUN",
                "relayOption": relay_option,
            },
        },
        max_wait=max_wait,
        resend_unanswered=False,
    )
    return _created_id(response.status, json_body(response), f"the event relay {name}")


async def delete_event_relay(
    http: aiohttp.ClientSession, auth: ProviderAuth, relay_id: str, *, max_wait: float
) -> None:
    """Remove an event relay; one already gone (404) is not an error."""
    await send(
        http,
        "DELETE",
        _tooling(auth, "sobjects", "EventRelayConfig", quote(relay_id, safe="")),
        auth=auth,
        max_wait=max_wait,
        accept=(404,),
    )


def _created_id(status: int, body: Any, what: str) -> str:
    if isinstance(body, dict) and body.get("id") and body.get("success", True):
        return str(body["id"])
    raise ProviderRequestError(f"Salesforce did not create {what}", status=status)
