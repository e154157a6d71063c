"""The providers' subscribe side: the subscriptions registered through the emulated
webhook APIs (hubspot_webhooks.py, salesforce_events.py), the change events raised when
records change, and the sender that delivers them.

    WebhookBook   the subscriptions, and the events waiting to be sent (pure: no awaits,
                  so the record writes raise events without ever waiting on a subscriber)
    Dispatcher    a few concurrent senders over one keep-alive HTTP client: HubSpot
                  signed batches, Salesforce one EventBridge event per request, retried
                  with backoff, the webhook faults applied

HubSpot (app-level): every event whose (eventType, propertyName) an active subscription
of the app names goes to the app's targetUrl, in JSON arrays of up to 100 events of one
object, the events of one record change always in the same request, signed with v3
(base64 HMAC-SHA256 of the client secret over "POST" + targetUrl + body + timestamp).
Salesforce (per org): each change of an entity a PlatformEventChannelMember of
ChangeEvents selects goes to every running EventRelayConfig, one EventBridge event per
POST to its destinationResourceName with the relayOption's headers. Real Salesforce
relays through AWS EventBridge to an API destination; the sandbox is that whole chain in
one hop (the event as EventBridge hands it on, the API destination's headers).

Event ids never repeat, across resets and restarts (they start from the clock), so a
receiver deduplicating by event id never mistakes a new event for an old one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import hmac
import itertools
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from services.domain.subscribe_names import HUBSPOT_EVENT_OBJECTS, salesforce_channel_entity
from services.runtime.logs import get_logger
from services.sandbox.faults import Endpoint, FaultKind, RequestInfo
from services.sandbox.providers import (
    HUBSPOT_PORTAL_ID,
    SALESFORCE_ORG_ID,
    SALESFORCE_USER_ID,
    Provider,
)
from services.sandbox.records import Record

if TYPE_CHECKING:  # the state holds a WebhookBook: imported for types only
    from services.sandbox.state import SandboxState

_log = get_logger("ampmesh.sandbox.webhooks")

MAX_BATCH = 100  # events per HubSpot request (HubSpot's own limit)
# Seconds before each retry: ten attempts over about a minute and a half, so a receiver
# down for a minute still gets every event afterwards.
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0, 15.0, 15.0)
# Requests in flight at once. EventBridge posts a relay's events concurrently, one per
# request: at 500 changes a second with 8 senders each request had 16 ms, and the sandbox,
# not the receiver, set the pace (bench/subscribe.py). Below the edge's 64 in flight.
SENDERS = 40
STALE_SECONDS = 600
# A held-back (reordered) request goes out after the next one, or after this long.
HOLD_SECONDS = 1.0
CHANGE_EVENTS = "ChangeEvents"
WRONG_RELAY_TOKEN = "wrong-relay-token"  # noqa: S105 (a deliberately wrong value)


class Change(enum.Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


HUBSPOT_KINDS = {
    Change.CREATE: "creation",
    Change.UPDATE: "propertyChange",
    Change.DELETE: "deletion",
}
# What HubSpot's webhooks API accepts after `<object>.`.
HUBSPOT_EVENT_KINDS = frozenset(
    {"creation", "deletion", "propertyChange", "associationChange", "merge", "restore"}
)


@dataclass
class HubSpotApp:
    """The sandbox's HubSpot developer app: its id, developer API key and the secret
    (its OAuth client's) that signs its webhooks."""

    app_id: int = 1_000_001
    developer_api_key: str = "sandbox-developer-key"
    client_secret: str = "sandbox-secret"  # noqa: S105 (a sandbox value)


@dataclass
class HubSpotSettings:
    target_url: str
    max_concurrent: int
    period: str
    created: str
    updated: str


@dataclass
class HubSpotSubscription:
    id: int
    event_type: str
    property_name: str | None
    active: bool
    created: str
    updated: str


@dataclass
class ChannelMember:
    """A PlatformEventChannelMember: an entity whose changes the channel carries."""

    id: str
    full_name: str
    event_channel: str
    selected_entity: str
    created: str


@dataclass
class EventRelay:
    """An EventRelayConfig: where a channel's events are relayed, with which headers."""

    id: str
    full_name: str
    event_channel: str
    destination: str
    state: str
    relay_option: str
    headers: dict[str, str]
    created: str


@dataclass
class Delivery:
    """One request to send (HubSpot: a batch; Salesforce: one event), and its attempts."""

    provider: Provider
    object_name: str
    url: str
    events: list[dict[str, Any]]
    headers: dict[str, str] = field(default_factory=dict)
    epoch: int = 0
    attempt: int = 0
    # A copy sent again (duplicate) or one already held back (reorder): faults that
    # re-send do not fire on it again, and a copy's events count as delivered once.
    copy: bool = False
    held: bool = False


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clock_ids() -> itertools.count[int]:
    """Ids from the clock (a thousand per millisecond), so none repeats after a restart."""
    return itertools.count(int(time.time() * 1000) * 1000)


class WebhookBook:
    """Subscriptions, relays and the events waiting to be sent."""

    def __init__(self) -> None:
        self.app = HubSpotApp()
        self.settings: HubSpotSettings | None = None
        self.subscriptions: dict[int, HubSpotSubscription] = {}
        self.members: dict[str, ChannelMember] = {}
        self.relays: dict[str, EventRelay] = {}
        # Never reset: an id registered before a reset must not name a new subscription.
        self.next_subscription_id = 1
        self.next_tooling_id = 1
        self._event_ids = _clock_ids()
        self._replay_ids = _clock_ids()
        self._commit_numbers = _clock_ids()
        # HubSpot: one record change's events (object, events), batched when sent.
        self.hubspot_units: deque[tuple[str, list[dict[str, Any]]]] = deque()
        # Requests ready to go (Salesforce events, retries, duplicates, released holds).
        self.ready: deque[Delivery] = deque()
        # Events raised and neither delivered nor given up on.
        self.pending = 0
        # Moves on at every reset: deliveries of an older epoch are dropped.
        self.epoch = 0
        # Moves on at every change of what persistence.py keeps.
        self.version = 0
        # Called when something is queued (the Dispatcher's wake-up).
        self.wake: Callable[[], None] = lambda: None

    # --- registration -------------------------------------------------------------

    def changed(self) -> None:
        self.version += 1

    def new_subscription_id(self) -> int:
        found = self.next_subscription_id
        self.next_subscription_id += 1
        return found

    def new_tooling_id(self, prefix: str) -> str:
        """An 18-character Salesforce id with the sObject's key prefix."""
        number = self.next_tooling_id
        self.next_tooling_id += 1
        return f"{prefix}5g0000{number:09d}AAA"[:18]

    def clear(self) -> None:
        """Forget every subscription, relay and unsent event (the id sequences go on)."""
        self.settings = None
        self.subscriptions.clear()
        self.members.clear()
        self.relays.clear()
        self.hubspot_units.clear()
        self.ready.clear()
        self.pending = 0
        self.epoch += 1
        self.changed()

    # --- raising events -----------------------------------------------------------

    def raise_events(
        self,
        provider: Provider,
        object_name: str,
        change: Change,
        records: list[Record],
        changed: dict[str, list[str]] | None = None,
    ) -> None:
        """Queue the events these record changes give the matching subscriptions
        (`changed`: an update's changed field names per record id)."""
        if not records:
            return
        if provider is Provider.HUBSPOT:
            self._hubspot(object_name, change, records, changed or {})
        else:
            self._salesforce(object_name, change, records, changed or {})

    def _hubspot(
        self, object_name: str, change: Change, records: list[Record], changed: dict[str, list[str]]
    ) -> None:
        prefix = HUBSPOT_EVENT_OBJECTS.get(object_name)
        if prefix is None or self.settings is None or not self.subscriptions:
            return
        event_type = f"{prefix}.{HUBSPOT_KINDS[change]}"
        wanted = {
            sub.property_name: sub
            for sub in self.subscriptions.values()
            if sub.active and sub.event_type == event_type
        }
        if not wanted:
            return
        raised = 0
        for record in records:
            occurred = int((record.deleted or record.modified).timestamp() * 1000)
            if change is Change.UPDATE:
                names = [name for name in changed.get(record.id, ()) if name in wanted]
                events = [
                    self._hubspot_event(wanted[name], occurred, record, event_type)
                    | {"propertyName": name, "propertyValue": _text(record.fields.get(name))}
                    for name in names
                ]
            elif None in wanted:
                events = [self._hubspot_event(wanted[None], occurred, record, event_type)]
            else:
                events = []
            if events:
                self.hubspot_units.append((object_name, events))
                raised += len(events)
        if raised:
            self.pending += raised
            self.wake()

    def _hubspot_event(
        self, sub: HubSpotSubscription, occurred: int, record: Record, event_type: str
    ) -> dict[str, Any]:
        return {
            "eventId": next(self._event_ids),
            "subscriptionId": sub.id,
            "portalId": HUBSPOT_PORTAL_ID,
            "appId": self.app.app_id,
            "occurredAt": occurred,
            "subscriptionType": event_type,
            "attemptNumber": 0,
            "objectId": int(record.id),
            "changeSource": "CRM",
        }

    def _salesforce(
        self, object_name: str, change: Change, records: list[Record], changed: dict[str, list[str]]
    ) -> None:
        entity = salesforce_channel_entity(object_name)
        selected = any(
            member.selected_entity == entity and member.event_channel == CHANGE_EVENTS
            for member in self.members.values()
        )
        relays = [
            relay
            for relay in self.relays.values()
            if relay.state == "RUN" and relay.event_channel == CHANGE_EVENTS
        ]
        if not selected or not relays:
            return
        transaction = uuid.uuid4().hex
        commit_number = next(self._commit_numbers)
        for sequence, record in enumerate(records, start=1):
            payload = _salesforce_payload(object_name, change, record, changed.get(record.id, []))
            payload["ChangeEventHeader"] |= {
                "transactionKey": transaction,
                "sequenceNumber": sequence,
                "commitNumber": commit_number,
            }
            event_uuid = str(uuid.uuid4())
            replay_id = str(next(self._replay_ids))
            for relay in relays:
                envelope = {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": entity,
                    "source": f"aws.partner/salesforce.com/{SALESFORCE_ORG_ID}/{relay.id}",
                    "account": "000000000000",
                    "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": "us-east-1",
                    "resources": [],
                    "detail": {
                        "payload": payload,
                        "schema": f"sandbox-{entity}",
                        "event": {"replayId": replay_id, "EventUuid": event_uuid},
                    },
                }
                self.ready.append(
                    Delivery(
                        Provider.SALESFORCE,
                        object_name,
                        relay.destination,
                        [envelope],
                        headers=dict(relay.headers),
                        epoch=self.epoch,
                    )
                )
                self.pending += 1
        self.wake()

    # --- what the senders take ----------------------------------------------------

    def next_delivery(self) -> Delivery | None:
        """The next request to send: a ready one, else a HubSpot batch of what is queued
        (one object's events, whole record changes, up to 100 events)."""
        if self.ready:
            return self.ready.popleft()
        if not self.hubspot_units:
            return None
        if self.settings is None:  # unregistered meanwhile: nowhere to send any of them
            self.pending -= sum(len(events) for _, events in self.hubspot_units)
            self.hubspot_units.clear()
            return None
        object_name, events = self.hubspot_units.popleft()
        events = list(events)
        units = self.hubspot_units
        while units and units[0][0] == object_name and len(events) + len(units[0][1]) <= MAX_BATCH:
            events.extend(units.popleft()[1])
        return Delivery(
            Provider.HUBSPOT, object_name, self.settings.target_url, events, epoch=self.epoch
        )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _salesforce_payload(
    object_name: str, change: Change, record: Record, changed: list[str]
) -> dict[str, Any]:
    values = record.salesforce_values()
    header: dict[str, Any] = {
        "entityName": object_name,
        "recordIds": [record.id],
        "changeType": change.value,
        "changeOrigin": "",
        "commitTimestamp": int((record.deleted or record.modified).timestamp() * 1000),
        "commitUser": SALESFORCE_USER_ID,
        "changedFields": [],
        "nulledFields": [],
        "diffFields": [],
    }
    payload: dict[str, Any] = {"ChangeEventHeader": header}
    if change is Change.CREATE:
        payload |= {
            name: value
            for name, value in values.items()
            if value is not None and name not in ("Id", "IsDeleted", "SystemModstamp")
        }
    elif change is Change.UPDATE:
        names = [*changed, "LastModifiedDate"]
        header["changedFields"] = names
        header["nulledFields"] = [name for name in changed if values.get(name) is None]
        payload |= {name: values.get(name) for name in names}
    return payload


def hubspot_signature(secret: str, url: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature of a request it sends."""
    message = b"POST" + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


class Dispatcher:
    """Sends what the book queues, with retries and the webhook faults."""

    def __init__(
        self,
        state: SandboxState,
        *,
        senders: int = SENDERS,
        backoff: tuple[float, ...] = BACKOFF,
        timeout: float = 10.0,
    ) -> None:
        self.state = state
        self.book = state.webhooks
        self.senders = senders
        self.backoff = backoff
        self.timeout = timeout
        self._wake = asyncio.Event()
        self._held: list[Delivery] = []
        self._client: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        self._wake.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # aiohttp rather than httpx: a fraction of the CPU per request (as the
        # messenger found), which is what bounds one-event-per-request Salesforce relays.
        connector = aiohttp.TCPConnector(limit=self.senders * 2, keepalive_timeout=30)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        ) as client:
            self._client = client
            self.book.wake = self.wake
            tasks = [
                asyncio.create_task(self._sender(), name=f"webhook sender {n}")
                for n in range(self.senders)
            ]
            try:
                yield
            finally:
                self.book.wake = lambda: None
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _sender(self) -> None:
        while True:
            delivery = self.book.next_delivery()
            if delivery is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._send(delivery)
            except Exception:  # one bad delivery must not stop the sender
                _log.exception("webhook delivery failed", url=delivery.url)
                self._settle(delivery, delivered=False)

    async def _send(self, delivery: Delivery) -> None:
        if delivery.epoch != self.book.epoch:
            return
        kinds: set[FaultKind] = set()
        if not delivery.copy:
            info = RequestInfo(Endpoint.WEBHOOKS, delivery.provider, delivery.object_name)
            kinds = {fault.kind for fault in self.state.faults.fire(info)}
        if FaultKind.REORDER_EVENTS in kinds and not delivery.held:
            delivery.held = True
            self._held.append(delivery)
            asyncio.get_running_loop().call_later(HOLD_SECONDS, self._release)
            return
        body, headers = self._render(delivery, kinds)
        assert self._client is not None
        try:
            async with self._client.post(delivery.url, data=body, headers=headers) as response:
                status = response.status
                await response.read()  # the connection is reused once the body is read
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        if delivery.epoch != self.book.epoch:
            return
        counters = self.state.counters.providers[delivery.provider]
        counters.webhook_by_status[status] += 1
        if not delivery.held:
            self._release()
        if 200 <= status < 300:
            if not delivery.copy:
                counters.webhook_events_delivered += len(delivery.events)
            self._settle(delivery, delivered=True)
            if FaultKind.DUPLICATE_EVENT in kinds:
                again = Delivery(
                    delivery.provider,
                    delivery.object_name,
                    delivery.url,
                    delivery.events,
                    delivery.headers,
                    epoch=delivery.epoch,
                    copy=True,
                )
                self.book.pending += len(again.events)
                self.book.ready.append(again)
                self.wake()
            return
        delivery.attempt += 1
        if delivery.attempt > len(self.backoff):
            _log.warning(
                "webhook abandoned", url=delivery.url, status=status, events=len(delivery.events)
            )
            self._settle(delivery, delivered=False)
            return
        delay = self.backoff[delivery.attempt - 1]
        asyncio.get_running_loop().call_later(delay, self._retry, delivery)

    def _settle(self, delivery: Delivery, *, delivered: bool) -> None:
        if delivery.epoch != self.book.epoch:
            return
        self.book.pending -= len(delivery.events)
        if not delivered and not delivery.copy:
            self.state.counters.webhooks_abandoned += len(delivery.events)

    def _retry(self, delivery: Delivery) -> None:
        if delivery.epoch == self.book.epoch:
            self.book.ready.append(delivery)
            self.wake()

    def _release(self) -> None:
        if self._held:
            self.book.ready.extend(d for d in self._held if d.epoch == self.book.epoch)
            self._held.clear()
            self.wake()

    def _render(self, delivery: Delivery, kinds: set[FaultKind]) -> tuple[bytes, dict[str, str]]:
        headers = {"content-type": "application/json"}
        if delivery.provider is Provider.SALESFORCE:
            body = orjson.dumps(delivery.events[0])
            relay = dict(delivery.headers)
            if FaultKind.BAD_SIGNATURE in kinds:
                relay = dict.fromkeys(relay, WRONG_RELAY_TOKEN)
            return body, headers | relay
        events = [event | {"attemptNumber": delivery.attempt} for event in delivery.events]
        body = orjson.dumps(events)
        moment = time.time() - (STALE_SECONDS if FaultKind.STALE_TIMESTAMP in kinds else 0)
        timestamp = str(int(moment * 1000))
        secret = self.book.app.client_secret
        if FaultKind.BAD_SIGNATURE in kinds:
            secret = "not-" + secret
        headers |= {
            "x-hubspot-signature-v3": hubspot_signature(secret, delivery.url, body, timestamp),
            "x-hubspot-request-timestamp": timestamp,
            "x-hubspot-signature-version": "v3",
        }
        return body, headers


async def flush(state: SandboxState, within: float) -> None:
    """Wait until no event is pending, or `within` seconds pass."""
    deadline = time.monotonic() + within
    # Polled: pending moves in many places (sends, retries, resets); a test's flush can
    # afford 20 ms.
    while state.webhooks.pending > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
