"""SandboxControlService: seeds records, injects faults and reads counters over gRPC."""

from __future__ import annotations

import gc
import random
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from google.protobuf import duration_pb2, empty_pb2, timestamp_pb2

from services.domain.subscribe_names import (
    parse_hubspot_event_type,
    salesforce_object_of_entity,
)
from services.runtime.errors import abort_invalid_argument, abort_not_found
from services.sandbox.faults import WEBHOOK_KINDS, Endpoint, Fault, FaultKind
from services.sandbox.oauth import OAuthConfig
from services.sandbox.providers import CATALOG_NAMES, PATHS, SALESFORCE_ORG_ID, Provider
from services.sandbox.state import SandboxState, percentile
from services.sandbox.webhooks import CHANGE_EVENTS, Change, WebhookBook, flush

MAX_SEED_COUNT = 100_000
# The longest one FlushWebhooks waits when the caller's deadline is unknown.
FLUSH_CAP = 2.5


def _duration(seconds: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(seconds=seconds))
    return message


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def _seconds(message: duration_pb2.Duration) -> float:
    return float(message.ToTimedelta().total_seconds())


class SandboxControl(sandbox_pb2_grpc.SandboxControlServiceServicer):
    """The control API over the state the HTTP face serves."""

    def __init__(self, state: SandboxState, config: OAuthConfig, root_url: str) -> None:
        self.state = state
        self.config = config
        self.root_url = root_url.rstrip("/")

    async def GetSandboxInfo(
        self, request: sandbox_pb2.GetSandboxInfoRequest, context: Any
    ) -> sandbox_pb2.SandboxInfo:
        root = self.root_url
        providers = [
            sandbox_pb2.ProviderEndpoints(
                provider=cast(sandbox_pb2.Provider, int(provider)),
                catalog_name=CATALOG_NAMES[provider],
                base_url=root + paths["base"],
                authorize_url=root + paths["authorize"],
                token_url=root + paths["token"],
                revoke_url=root + paths["revoke"],
            )
            for provider, paths in PATHS.items()
        ]
        clients = [
            sandbox_pb2.OAuthClient(
                client_id=client.client_id,
                client_secret=client.client_secret,
                redirect_uris=list(client.redirect_uris),
                grant_types=list(client.grant_types),
                app_id=client.app_id,
                developer_api_key=client.developer_api_key,
            )
            for client in self.config.clients
        ]
        users = [
            sandbox_pb2.TestUser(username=name, password=password)
            for name, password in self.config.users.items()
        ]
        return sandbox_pb2.SandboxInfo(
            providers=providers,
            clients=clients,
            users=users,
            access_token_lifetime=_duration(self.config.access_token_lifetime),
            rotates_refresh_tokens=True,
        )

    async def SeedRecords(
        self, request: sandbox_pb2.SeedRecordsRequest, context: Any
    ) -> sandbox_pb2.SeedRecordsResponse:
        provider = await _provider(request.provider, context)
        violations = []
        if not request.object_name:
            violations.append(("object_name", "name the object, e.g. contacts or Account"))
        if not 1 <= request.count <= MAX_SEED_COUNT:
            violations.append(("count", f"must be between 1 and {MAX_SEED_COUNT}"))
        until = (
            request.modified_until.ToDatetime(UTC)
            if request.HasField("modified_until")
            else datetime.now(UTC)
        )
        start = (
            request.modified_from.ToDatetime(UTC)
            if request.HasField("modified_from")
            else until - timedelta(days=30)
        )
        if start > until:
            violations.append(("modified_from", "must not be after modified_until"))
        if violations:
            await abort_invalid_argument(context, "invalid SeedRecords request", violations)
        created = self.state.records.seed(
            provider,
            request.object_name,
            request.count,
            request.seed,
            start,
            until,
            replace=request.replace,
        )
        self.state.webhooks.raise_events(provider, request.object_name, Change.CREATE, created)
        _settle()
        return sandbox_pb2.SeedRecordsResponse(
            created=len(created),
            total=len(self.state.records.records(provider, request.object_name)),
            first_id=created[0].id,
            last_id=created[-1].id,
        )

    async def TouchRecords(
        self, request: sandbox_pb2.TouchRecordsRequest, context: Any
    ) -> sandbox_pb2.TouchRecordsResponse:
        provider = await _provider(request.provider, context)
        if not request.object_name:
            await abort_invalid_argument(
                context, "invalid TouchRecords request", [("object_name", "name the object")]
            )
        if not request.ids and request.count < 1:
            await abort_invalid_argument(
                context,
                "invalid TouchRecords request",
                [("count", "give ids, or a count of at least 1")],
            )
        when = (
            request.modify_time.ToDatetime(UTC)
            if request.HasField("modify_time")
            else datetime.now(UTC)
        )
        changes: dict[str, list[str]] = {}
        try:
            touched = self.state.records.touch(
                provider,
                request.object_name,
                list(request.ids),
                request.count,
                request.seed,
                when,
                changes,
            )
        except KeyError as exc:
            await abort_not_found(context, "record", str(exc.args[0]))
        self.state.webhooks.raise_events(
            provider, request.object_name, Change.UPDATE, touched, changes
        )
        _settle()
        return sandbox_pb2.TouchRecordsResponse(ids=[record.id for record in touched])

    async def Reset(self, request: sandbox_pb2.ResetRequest, context: Any) -> empty_pb2.Empty:
        scopes = set(request.scopes) or {
            sandbox_pb2.RESET_SCOPE_RECORDS,
            sandbox_pb2.RESET_SCOPE_FAULTS,
            sandbox_pb2.RESET_SCOPE_COUNTERS,
            sandbox_pb2.RESET_SCOPE_TOKENS,
            sandbox_pb2.RESET_SCOPE_SUBSCRIPTIONS,
        }
        if sandbox_pb2.RESET_SCOPE_UNSPECIFIED in scopes:
            await abort_invalid_argument(
                context, "invalid Reset request", [("scopes", "RESET_SCOPE_UNSPECIFIED")]
            )
        if sandbox_pb2.RESET_SCOPE_RECORDS in scopes:
            self.state.records.clear()
            # Custom fields are the org's data too: back to the standard schemas.
            self.state.schemas.reset()
        if sandbox_pb2.RESET_SCOPE_FAULTS in scopes:
            self.state.faults.clear()
        if sandbox_pb2.RESET_SCOPE_COUNTERS in scopes:
            self.state.reset_counters()
        if sandbox_pb2.RESET_SCOPE_TOKENS in scopes:
            self.state.tokens.clear()
        if sandbox_pb2.RESET_SCOPE_SUBSCRIPTIONS in scopes:
            self.state.webhooks.clear()
        return empty_pb2.Empty()

    async def DeleteRecords(
        self, request: sandbox_pb2.DeleteRecordsRequest, context: Any
    ) -> sandbox_pb2.DeleteRecordsResponse:
        provider = await _provider(request.provider, context)
        if not request.object_name:
            await abort_invalid_argument(
                context, "invalid DeleteRecords request", [("object_name", "name the object")]
            )
        if not request.ids and request.count < 1:
            await abort_invalid_argument(
                context,
                "invalid DeleteRecords request",
                [("count", "give ids, or a count of at least 1")],
            )
        found = self.state.records.object(provider, request.object_name)
        if request.ids:
            missing = [i for i in request.ids if found.get(i) is None]
            if missing:
                await abort_not_found(context, "record", ", ".join(missing))
            ids = list(dict.fromkeys(request.ids))
        else:
            rng = random.Random(f"delete/{provider.name}/{request.object_name}/{request.seed}")  # noqa: S311
            chosen = rng.sample(found.in_order, min(request.count, len(found.in_order)))
            ids = [record.id for record in chosen]
        buried = {r.id: r for r in found.bury(set(ids), datetime.now(UTC))}
        self.state.webhooks.raise_events(
            provider, request.object_name, Change.DELETE, [buried[i] for i in ids]
        )
        return sandbox_pb2.DeleteRecordsResponse(ids=ids)

    async def ListWebhookSubscriptions(
        self, request: sandbox_pb2.ListWebhookSubscriptionsRequest, context: Any
    ) -> sandbox_pb2.ListWebhookSubscriptionsResponse:
        wanted = request.provider
        listed: list[sandbox_pb2.WebhookSubscription] = []
        if wanted in (sandbox_pb2.PROVIDER_UNSPECIFIED, sandbox_pb2.PROVIDER_HUBSPOT):
            listed += _hubspot_subscriptions(self.state.webhooks)
        if wanted in (sandbox_pb2.PROVIDER_UNSPECIFIED, sandbox_pb2.PROVIDER_SALESFORCE):
            listed += _salesforce_subscriptions(self.state.webhooks)
        return sandbox_pb2.ListWebhookSubscriptionsResponse(subscriptions=listed)

    async def FlushWebhooks(
        self, request: sandbox_pb2.FlushWebhooksRequest, context: Any
    ) -> sandbox_pb2.FlushWebhooksResponse:
        timeout = _seconds(request.timeout) if request.HasField("timeout") else 30.0
        remaining = context.time_remaining() if context is not None else None
        # Answer with what is still pending rather than let the caller's deadline pass
        # without an answer: mesh channels give calls 5 s and do not always tell the
        # server (then None), and calls were seen cut before the deadline the server
        # saw; a caller wanting longer calls again while pending > 0.
        timeout = min(timeout, FLUSH_CAP if remaining is None else remaining * 0.6)
        await flush(self.state, within=timeout)
        counters = self.state.counters
        return sandbox_pb2.FlushWebhooksResponse(
            delivered=sum(c.webhook_events_delivered for c in counters.providers.values()),
            abandoned=counters.webhooks_abandoned,
            pending=max(0, self.state.webhooks.pending),
        )

    async def InjectFault(
        self, request: sandbox_pb2.InjectFaultRequest, context: Any
    ) -> sandbox_pb2.Fault:
        given = request.fault
        violations = []
        if given.kind not in {k.value for k in FaultKind} or given.kind == 0:
            violations.append(("fault.kind", "choose a FaultKind"))
        if given.endpoint not in {e.value for e in Endpoint}:
            violations.append(("fault.endpoint", "choose a FaultEndpoint"))
        if given.provider not in {p.value for p in Provider}:
            violations.append(("fault.provider", "choose a Provider"))
        if given.http_status and not 500 <= given.http_status <= 599:
            violations.append(("fault.http_status", "must be 500 to 599"))
        if given.skip < 0 or given.count < 0:
            violations.append(("fault.skip", "skip and count must not be negative"))
        if given.kind == FaultKind.SLOW_RESPONSE and _seconds(given.delay) <= 0:
            violations.append(("fault.delay", "a slow response needs a positive delay"))
        token_fault = given.kind in (FaultKind.EXPIRED_TOKEN, FaultKind.REVOKED_TOKEN)
        if token_fault and given.endpoint == Endpoint.REVOKE:
            violations.append(
                ("fault.endpoint", "token faults apply to TOKEN, RECORDS, PROXY_TEST or WRITES")
            )
        webhook_kind = given.kind in WEBHOOK_KINDS
        if webhook_kind and given.endpoint not in (Endpoint.UNSPECIFIED, Endpoint.WEBHOOKS):
            violations.append(("fault.endpoint", "webhook faults apply to WEBHOOKS only"))
        if not webhook_kind and given.endpoint == Endpoint.WEBHOOKS and given.kind:
            violations.append(
                (
                    "fault.kind",
                    "WEBHOOKS takes DUPLICATE_EVENT, REORDER_EVENTS, BAD_SIGNATURE "
                    "or STALE_TIMESTAMP",
                )
            )
        if given.kind == FaultKind.EXPIRED_TOKEN and given.endpoint == Endpoint.TOKEN:
            violations.append(
                (
                    "fault.endpoint",
                    "an expired token fault applies to RECORDS, PROXY_TEST or WRITES",
                )
            )
        if violations:
            await abort_invalid_argument(context, "invalid fault", violations)
        fault = Fault(
            id="",
            kind=FaultKind(given.kind),
            endpoint=Endpoint(given.endpoint),
            provider=Provider(given.provider),
            object_name=given.object_name,
            grant_type=given.grant_type,
            client_id=given.client_id,
            skip=given.skip,
            count=given.count,
            duration=_seconds(given.duration) if given.HasField("duration") else None,
            http_status=given.http_status or 503,
            retry_after=_seconds(given.retry_after) if given.HasField("retry_after") else 1.0,
            delay=_seconds(given.delay),
        )
        return _fault_message(self.state.faults.add(fault))

    async def ListFaults(
        self, request: sandbox_pb2.ListFaultsRequest, context: Any
    ) -> sandbox_pb2.ListFaultsResponse:
        return sandbox_pb2.ListFaultsResponse(
            faults=[_fault_message(fault) for fault in self.state.faults.active()]
        )

    async def ClearFaults(
        self, request: sandbox_pb2.ClearFaultsRequest, context: Any
    ) -> sandbox_pb2.ClearFaultsResponse:
        return sandbox_pb2.ClearFaultsResponse(cleared=self.state.faults.clear(list(request.ids)))

    async def GetCounters(
        self, request: sandbox_pb2.GetCountersRequest, context: Any
    ) -> sandbox_pb2.Counters:
        counters = self.state.counters
        message = sandbox_pb2.Counters(
            faults_fired=self.state.faults.fired_total - counters.faults_fired_at_start,
            token_endpoint_latency=_latency(counters.token_latency),
            api_latency=_latency(counters.api_latency),
            start_time=_timestamp(counters.start_time),
        )
        for provider, each in counters.providers.items():
            message.providers.append(
                sandbox_pb2.ProviderCounters(
                    provider=cast(sandbox_pb2.Provider, int(provider)),
                    token_requests_by_grant_type=dict(each.token_by_grant),
                    api_requests_by_status=dict(each.api_by_status),
                    token_requests_by_status=dict(each.token_by_status),
                    proxy_test_requests_by_route=dict(each.proxy_test_by_route),
                    write_requests_by_route=dict(each.write_by_route),
                    records_written=each.records_written,
                    write_batch_sizes=dict(each.write_batch_sizes),
                    passthrough_headers=dict(each.passthrough_headers),
                    webhook_requests_by_status=dict(each.webhook_by_status),
                    webhook_events_delivered=each.webhook_events_delivered,
                )
            )
            for status, n in each.webhook_by_status.items():
                message.webhook_requests_by_status[status] += n
            message.webhook_events_delivered += each.webhook_events_delivered
            for grant, n in each.token_by_grant.items():
                message.token_requests_by_grant_type[grant] += n
            for status, n in each.api_by_status.items():
                message.api_requests_by_status[status] += n
            for route, n in each.proxy_test_by_route.items():
                message.proxy_test_requests_by_route[route] += n
            for route, n in each.write_by_route.items():
                message.write_requests_by_route[route] += n
            message.records_written += each.records_written
            for size, n in each.write_batch_sizes.items():
                message.write_batch_sizes[size] += n
            for header, n in each.passthrough_headers.items():
                message.passthrough_headers[header] += n
        if request.reset:
            self.state.reset_counters()
        return message


async def _provider(value: int, context: Any) -> Provider:
    if value not in (Provider.HUBSPOT, Provider.SALESFORCE):
        await abort_invalid_argument(
            context, "name the provider", [("provider", "PROVIDER_HUBSPOT or PROVIDER_SALESFORCE")]
        )
    return Provider(value)


def _latency(samples: list[float]) -> sandbox_pb2.LatencySummary:
    return sandbox_pb2.LatencySummary(
        count=len(samples),
        p50=_duration(percentile(samples, 0.5)),
        p99=_duration(percentile(samples, 0.99)),
        max=_duration(max(samples, default=0.0)),
    )


def _fault_message(fault: Fault) -> sandbox_pb2.Fault:
    message = sandbox_pb2.Fault(
        id=fault.id,
        kind=cast(sandbox_pb2.FaultKind, int(fault.kind)),
        endpoint=cast(sandbox_pb2.FaultEndpoint, int(fault.endpoint)),
        provider=cast(sandbox_pb2.Provider, int(fault.provider)),
        object_name=fault.object_name,
        grant_type=fault.grant_type,
        client_id=fault.client_id,
        skip=fault.skip,
        count=fault.count,
        http_status=fault.http_status if fault.kind is FaultKind.SERVER_ERROR else 0,
        fired=fault.fired,
        create_time=_timestamp(fault.created),
    )
    if fault.duration is not None:
        message.duration.CopyFrom(_duration(fault.duration))
    if fault.expires is not None:
        message.expire_time.CopyFrom(_timestamp(fault.expires))
    if fault.kind is FaultKind.RATE_LIMIT:
        message.retry_after.CopyFrom(_duration(fault.retry_after))
    if fault.kind is FaultKind.SLOW_RESPONSE:
        message.delay.CopyFrom(_duration(fault.delay))
    return message


def _hubspot_subscriptions(book: WebhookBook) -> list[sandbox_pb2.WebhookSubscription]:
    target = book.settings.target_url if book.settings is not None else ""
    listed = []
    for sub in book.subscriptions.values():
        parsed = parse_hubspot_event_type(sub.event_type)
        listed.append(
            sandbox_pb2.WebhookSubscription(
                provider=sandbox_pb2.PROVIDER_HUBSPOT,
                id=str(sub.id),
                app_id=str(book.app.app_id),
                object_name=parsed[0] if parsed else "",
                event_type=sub.event_type,
                property_name=sub.property_name or "",
                target_url=target,
                active=sub.active,
            )
        )
    return listed


def _salesforce_subscriptions(book: WebhookBook) -> list[sandbox_pb2.WebhookSubscription]:
    """One per channel member and relay (where its events go); a member without a relay
    is listed without a target, a relay without a member without an object."""
    relays = list(book.relays.values())
    listed = []

    def one(item_id: str, object_name: str, relay: Any) -> sandbox_pb2.WebhookSubscription:
        return sandbox_pb2.WebhookSubscription(
            provider=sandbox_pb2.PROVIDER_SALESFORCE,
            id=item_id,
            account_id=SALESFORCE_ORG_ID,
            object_name=object_name,
            event_type=CHANGE_EVENTS,
            target_url=relay.destination if relay is not None else "",
            active=relay is None or relay.state == "RUN",
        )

    for member in book.members.values():
        object_name = salesforce_object_of_entity(member.selected_entity)
        listed += [one(member.id, object_name, relay) for relay in relays] or [
            one(member.id, object_name, None)
        ]
    if not book.members:
        listed += [one(relay.id, "", relay) for relay in relays]
    return listed


def _settle() -> None:
    """Move what exists now (the seeded records and their rendered pieces) out of the
    cyclic collector's sight.

    Records live until replaced and hold no reference cycles (reference counting frees
    them), yet every full collection would walk all of them again: with 50,000 records
    that made reading them back several times slower. The sandbox process owns its heap,
    so this is done here rather than in the state, which tests also use in process.
    """
    gc.freeze()
