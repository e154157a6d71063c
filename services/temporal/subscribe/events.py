"""The subscribe consumer: provider change events (ProviderEventBatch, from the webhook
ingress) become `action: "subscribe"` deliveries, inside the temporal-worker process.

Per batch (one inbound provider webhook):
1. the installations it concerns (targets.py: by provider, integration and account for an
   app-level webhook, the URL's installation for a relay; cached for seconds);
2. per installation, the events it subscribes to: a subscribed object, an event type its
   config enables (`always`), and for updates a watched field among those changed
   (case-insensitively); HubSpot's one-event-per-property updates of one record are
   coalesced into one delivery;
3. the records, fetched by id where the event does not carry what the read action
   selects (connectors/record_fetch.py: one call per object for HubSpot; fetches.py
   merges those of the batches handled side by side), deletes not (the id alone); a
   record gone since its create or update event is skipped;
4. one ReadResultPage per record event (deliveries.py), published concurrently; the
   message is acknowledged only once every page is (a crash processes the batch again,
   and messenger keeps one delivery per key).

Failures: a provider answering 429/5xx past the fetch's retries (10 s: the message's
lease is 30 s, and a batch still being worked on when it ends would be handed out
again), the token-manager
or the bus unavailable: the message is nacked and redelivered after the subscription's
backoff, and after its max delivery attempts goes to its dead letter (the topology's,
services/runtime/pubsub_topology.py), so no batch loops for ever. Credentials the
provider refuses, a request it refuses, an unknown account: counted, logged, acked
(the token-manager already notified the connection's error; retrying cannot help).

Counted in `ampmesh_subscribe_events_total{provider, outcome}`, one per event and
installation where one exists (outcomes: delivered, unknown_account, unsubscribed,
disabled, unwatched, coalesced, record_deleted, credentials_refused, provider_refused,
unsupported, invalid, no_destination; and retried: events of a batch given back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import aiohttp
import asyncpg
from ampmesh.events.v1 import read_result_pb2, topics_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.events.v1.provider_events_pb2 import ProviderEvent, ProviderEventBatch
from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2_grpc
from prometheus_client import Counter
from temporalio.exceptions import ApplicationError

from services.domain import subscribe_names
from services.domain.connectors import registry
from services.domain.connectors.base import (
    Connector,
    ProviderAuth,
    ProviderRequestError,
    ProviderUnavailable,
    TokenRejected,
)
from services.domain.connectors.http import provider_session
from services.runtime.logs import get_logger
from services.runtime.pubsub_topology import subscription_id
from services.runtime.subscriber import consume, keep_consuming
from services.temporal.connection_auth import (
    CREDENTIALS_REFUSED,
    INSTALLATION_GONE,
    AuthFor,
    connection_auth,
)
from services.temporal.reads.publish import Publisher, wait_all
from services.temporal.subscribe import deliveries
from services.temporal.subscribe.deliveries import RecordEvent
from services.temporal.subscribe.fetches import FetchCoalescer
from services.temporal.subscribe.targets import ObjectRoute, Target, Targets

_log = get_logger("ampmesh.temporal.subscribe")

SUBSCRIPTION = subscription_id(topics_pb2.TOPIC_PROVIDER_EVENTS, "temporal")
# Batches handled at once (each up to 100 HubSpot events; a relay's, one event).
MAX_MESSAGES = 100
# Seconds a connection's provider auth is reused: a token-manager call per batch would
# cost as much as the fetch; a token revoked meanwhile is refused (401) and refreshed.
AUTH_TTL = 30.0
_UNUSABLE = "SubscribeConnectionUnusable"
# Seconds a record fetch retries 429/5xx answers before the batch is given back.
FETCH_WAIT = 10.0


@lru_cache(maxsize=1)
def _events_total() -> Counter:
    return Counter(
        "ampmesh_subscribe_events_total",
        "Provider change events handled by the subscribe consumer, per installation, by "
        "provider and outcome.",
        ["provider", "outcome"],
    )


def _count(provider: str, outcome: str, amount: int = 1) -> None:
    if amount:
        _events_total().labels(provider, outcome).inc(amount)


class Retry(Exception):
    """The batch must be processed again later (nacked)."""


@dataclass(frozen=True)
class _Work:
    """One installation's record events of one object, and how to deliver them."""

    target: Target
    route: ObjectRoute
    events: list[RecordEvent]


class SubscribeConsumer:
    """Handles ProviderEventBatch envelopes (one per process)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        http: aiohttp.ClientSession,
        publisher: Publisher,
        auth_for: AuthFor = registry.provider_auth,
        targets: Targets | None = None,
    ) -> None:
        self.targets = targets or Targets(pool)
        self._tokens = tokens
        self._catalog = catalog
        self._http = http
        self._publisher = publisher
        self._auth_for = auth_for
        self._auths: dict[str, tuple[float, ProviderAuth]] = {}
        self._fetches = FetchCoalescer(http, FETCH_WAIT)
        self._headers: dict[
            tuple[int, str], tuple[Target, dict[str, Any], read_result_pb2.WebhookMessage]
        ] = {}

    async def handle(
        self, envelope: Envelope, attributes: Mapping[str, str], delivery_attempt: int | None
    ) -> None:
        """One batch; returns once every delivery is published (acked), raises to have
        it redelivered."""
        if envelope.WhichOneof("payload") != "provider_events":
            _log.warning("not a provider event batch; ignored", event_type=envelope.meta.type)
            return
        await self.process(envelope.provider_events)

    async def process(self, batch: ProviderEventBatch) -> int:
        """Publish the batch's deliveries; how many were published."""
        provider = batch.provider
        try:
            connector = registry.connector_for(provider)
        except KeyError:
            _count(provider, "unsupported", len(batch.events))
            _log.warning("events of a provider without a connector; dropped", provider=provider)
            return 0
        works = await self._works(batch)
        outcomes = await asyncio.gather(
            *(self._deliver(connector, provider, work) for work in works), return_exceptions=True
        )
        published = 0
        retry: BaseException | None = None
        for work, outcome in zip(works, outcomes, strict=True):
            if isinstance(outcome, int):
                published += outcome
            elif isinstance(outcome, Retry):
                retry = outcome
            elif isinstance(outcome, BaseException):
                _log.error(
                    "subscribe delivery failed",
                    installation_id=work.target.installation_id,
                    error=type(outcome).__name__,
                )
                retry = outcome
        if retry is not None:
            raise retry
        return published

    async def _works(self, batch: ProviderEventBatch) -> list[_Work]:
        """The batch's record events by installation and object, filtered by what each
        installation subscribes to, HubSpot's property changes coalesced."""
        provider = batch.provider
        accounts = list(dict.fromkeys(e.account_id for e in batch.events))
        if batch.installation_id:
            found = await self.targets.for_installation(provider, batch.installation_id)
            lookups = {
                a: [t for t in found if subscribe_names.same_account(t.account_id, a)]
                for a in accounts
            }
        else:
            loaded = await asyncio.gather(
                *(self.targets.for_account(provider, batch.integration_id, a) for a in accounts)
            )
            lookups = dict(zip(accounts, loaded, strict=True))
        grouped: dict[tuple[str, str], _Work] = {}
        coalesced: dict[tuple[str, str, str], RecordEvent] = {}
        for event in batch.events:
            targets = [t for t in lookups.get(event.account_id, []) if _same_project(t, batch)]
            if not targets:
                _count(provider, "unknown_account")
                continue
            for target in targets:
                outcome = _admit(target, event)
                if outcome:
                    _count(provider, outcome)
                    continue
                route = target.objects[event.object_name]
                key = (target.installation_id, event.object_name)
                work = grouped.get(key)
                if work is None:
                    work = grouped[key] = _Work(target, route, [])
                record_event = RecordEvent(event, list(event.fields_updated))
                if provider == "hubspot" and event.subscribe_event_type == subscribe_names.UPDATE:
                    # One event per changed property: the record's changes in this
                    # request are one delivery, watched as a whole.
                    record_key = (target.installation_id, event.object_name, event.record_id)
                    earlier = coalesced.get(record_key)
                    if earlier is not None:
                        merge_property_change(earlier, event)
                        _count(provider, "coalesced")
                        continue
                    coalesced[record_key] = record_event
                work.events.append(record_event)
        for work in grouped.values():
            kept = [
                e
                for e in work.events
                if e.event_type != subscribe_names.UPDATE or work.route.watches(e.fields_updated)
            ]
            _count(provider, "unwatched", len(work.events) - len(kept))
            work.events[:] = kept
        return [work for work in grouped.values() if work.events]

    async def _deliver(self, connector: Connector, provider: str, work: _Work) -> int:
        """Fetch what the events need, publish their deliveries; how many."""
        target, route = work.target, work.route
        if not route.destination_id:
            _count(provider, "no_destination", len(work.events))
            _log.error(
                "subscribe object's destination does not exist; events dropped",
                installation_id=target.installation_id,
                destination=route.destination_name,
            )
            return 0
        try:
            fetched = await self._fetch(connector, provider, work)
        except ApplicationError as error:
            if error.type in (CREDENTIALS_REFUSED, INSTALLATION_GONE, _UNUSABLE):
                _count(provider, "credentials_refused", len(work.events))
                _log.warning(
                    "subscribe events dropped: the connection cannot be used",
                    installation_id=target.installation_id,
                    connection_id=target.connection_id,
                    reason=error.type,
                )
                return 0
            _count(provider, "retried", len(work.events))
            raise Retry(str(error)) from None
        except ProviderUnavailable as error:
            _count(provider, "retried", len(work.events))
            raise Retry(str(error)) from None
        except ProviderRequestError as error:
            _count(provider, "provider_refused", len(work.events))
            _log.warning(
                "subscribe events dropped: the provider refused the record fetch",
                installation_id=target.installation_id,
                object=route.object_name,
                error=str(error)[:200],
            )
            return 0
        head, message = self._header(target, route, provider)
        envelopes = []
        for record_event in work.events:
            raw: dict[str, Any] | None = None
            if record_event.event_type != subscribe_names.DELETE:
                raw = fetched.get(record_event.record_id)
                if raw is None:
                    # Deleted since the event: its delete event tells the builder.
                    _count(provider, "record_deleted")
                    continue
            rendered = deliveries.entry(connector, route, record_event, raw)
            envelopes.append(
                deliveries.envelope(target, route, head, message, record_event, rendered)
            )
        await wait_all(self._publisher.start(envelopes))
        _count(provider, "delivered", len(envelopes))
        return len(envelopes)

    async def _fetch(
        self, connector: Connector, provider: str, work: _Work
    ) -> dict[str, dict[str, Any]]:
        """Raw records by id for the create/update events: fetched, or (Salesforce)
        built from the event's values when they hold every field the read selects."""
        records: dict[str, dict[str, Any]] = {}
        wanted: list[str] = []
        selection = work.route.selection
        for record_event in work.events:
            event = record_event.event
            if event.subscribe_event_type == subscribe_names.DELETE:
                continue
            carried = _carried(provider, work.route, event)
            if carried is not None:
                records[event.record_id] = carried
            else:
                wanted.append(event.record_id)
        if not wanted:
            return records
        fields = selection.provider_fields()
        target, name = work.target, work.route.object_name
        auth = await self._auth(target, provider)
        fetch = self._fetches.fetch
        try:
            found = await fetch(target.connection_id, auth, provider, name, wanted, fields)
        except TokenRejected:
            auth = await self._auth(target, provider, force=True)
            found = await fetch(target.connection_id, auth, provider, name, wanted, fields)
        return records | found.records

    def _header(
        self, target: Target, route: ObjectRoute, provider: str
    ) -> tuple[dict[str, Any], read_result_pb2.WebhookMessage]:
        """The installation's object's header, made once per looked-up target (parsing
        it into a WebhookMessage costs more than rendering a record)."""
        key = (id(target), route.object_name)
        cached = self._headers.get(key)
        if cached is not None and cached[0] is target:
            return cached[1], cached[2]
        if len(self._headers) > 10_000:
            self._headers.clear()
        head = deliveries.header(target, route, provider)
        message = deliveries.message_of(head)
        # The target is kept with them: its id is not reused while it is cached.
        self._headers[key] = (target, head, message)
        return head, message

    async def _auth(self, target: Target, provider: str, *, force: bool = False) -> ProviderAuth:
        now = time.monotonic()
        cached = self._auths.get(target.connection_id)
        if cached is not None and cached[0] > now and not force:
            return cached[1]
        auth = await connection_auth(
            self._tokens,
            self._catalog,
            self._auth_for,
            connection_id=target.connection_id,
            project_id=target.project_id,
            provider=provider,
            workspace=target.workspace,
            unusable=_UNUSABLE,
            force=force,
        )
        self._auths[target.connection_id] = (now + AUTH_TTL, auth)
        return auth


def _same_project(target: Target, batch: ProviderEventBatch) -> bool:
    return not batch.project_id or target.project_id == batch.project_id


def _admit(target: Target, event: ProviderEvent) -> str:
    """ "" when the installation receives the event, else the outcome to count."""
    route = target.objects.get(event.object_name)
    if route is None:
        return "unsubscribed"
    kind = event.subscribe_event_type
    if kind in (subscribe_names.CREATE, subscribe_names.UPDATE, subscribe_names.DELETE):
        if not route.enabled(kind):
            return "disabled"
        if not event.record_id:
            return "invalid"
        return ""
    # Association and other events are not delivered yet (their fetch and shape differ).
    return "unsupported"


def merge_property_change(into: RecordEvent, event: ProviderEvent) -> None:
    """A second property change of the same record: the fields' union, and the smaller
    provider event id (its key and raw event) so every processing picks the same."""
    seen = {name.lower() for name in into.fields_updated}
    for name in event.fields_updated:
        if name.lower() not in seen:
            seen.add(name.lower())
            into.fields_updated.append(name)
    if deliveries.event_order(event.event_id) < deliveries.event_order(into.event.event_id):
        into.event = event


def _carried(provider: str, route: ObjectRoute, event: ProviderEvent) -> dict[str, Any] | None:
    """The record as the event carries it, when that is all the read selects (Salesforce
    change events carry the changed fields' values; a create every non-null field);
    None when it must be fetched (always for HubSpot)."""
    if provider != "salesforce" or not event.HasField("values"):
        return None
    values = deliveries.struct_dict(event.values)
    values.pop("ChangeEventHeader", None)
    selection = route.selection
    if selection.fields is None:
        if event.subscribe_event_type != subscribe_names.CREATE:
            return None
    else:
        have = {name.lower() for name in values}
        if any(name.lower() not in have for name in selection.requested):
            return None
    return {"attributes": {"type": route.object_name}, "Id": event.record_id, **values}


# --- running it -------------------------------------------------------------------------


async def run_subscribe_consumer(
    *,
    pool: asyncpg.Pool,
    tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
    emulator_host: str,
    project: str,
    subscription: str = SUBSCRIPTION,
    auth_for: AuthFor = registry.provider_auth,
    publisher: Publisher | None = None,
) -> None:
    """Consume the subscription until cancelled, subscribing again after an outage, with
    a provider HTTP session of its own and the given publisher (else one of its own,
    batching like the reads')."""
    own = publisher is None
    publishing = Publisher.open(emulator_host, project) if publisher is None else publisher
    try:
        async with provider_session() as http:
            consumer = SubscribeConsumer(
                pool=pool,
                tokens=tokens,
                catalog=catalog,
                http=http,
                publisher=publishing,
                auth_for=auth_for,
            )

            async def run() -> None:
                await consume(
                    subscription,
                    consumer.handle,
                    emulator_host=emulator_host,
                    project=project,
                    max_messages=MAX_MESSAGES,
                )

            await keep_consuming(run, subscription)
    finally:
        if own:
            await asyncio.to_thread(publishing.close)


@asynccontextmanager
async def subscribe_consumer(
    *,
    pool: asyncpg.Pool,
    tokens: token_manager_pb2_grpc.TokenManagerServiceStub,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
    emulator_host: str,
    project: str,
    subscription: str = SUBSCRIPTION,
    auth_for: AuthFor = registry.provider_auth,
) -> AsyncIterator[asyncio.Task[None]]:
    """run_subscribe_consumer as a task for the process's lifetime; a missing Pub/Sub
    project fails here, at start (StartupError). On exit the task is cancelled, which
    settles the batch in hand (what was handled is acked, the rest given back), then
    the publisher flushes and stops."""
    publisher = Publisher.open(emulator_host, project)
    task = asyncio.create_task(
        run_subscribe_consumer(
            pool=pool,
            tokens=tokens,
            catalog=catalog,
            emulator_host=emulator_host,
            project=project,
            subscription=subscription,
            auth_for=auth_for,
            publisher=publisher,
        ),
        name="subscribe consumer",
    )
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(publisher.close)
