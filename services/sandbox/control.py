"""SandboxControlService: seeds records, injects faults and reads counters over gRPC."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from google.protobuf import duration_pb2, empty_pb2, timestamp_pb2

from services.runtime.errors import abort_invalid_argument, abort_not_found
from services.sandbox.faults import Endpoint, Fault, FaultKind
from services.sandbox.oauth import OAuthConfig
from services.sandbox.providers import CATALOG_NAMES, PATHS, Provider
from services.sandbox.state import SandboxState, percentile

MAX_SEED_COUNT = 100_000


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
        try:
            touched = self.state.records.touch(
                provider, request.object_name, list(request.ids), request.count, request.seed, when
            )
        except KeyError as exc:
            await abort_not_found(context, "record", str(exc.args[0]))
        _settle()
        return sandbox_pb2.TouchRecordsResponse(ids=[record.id for record in touched])

    async def Reset(self, request: sandbox_pb2.ResetRequest, context: Any) -> empty_pb2.Empty:
        scopes = set(request.scopes) or {
            sandbox_pb2.RESET_SCOPE_RECORDS,
            sandbox_pb2.RESET_SCOPE_FAULTS,
            sandbox_pb2.RESET_SCOPE_COUNTERS,
            sandbox_pb2.RESET_SCOPE_TOKENS,
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
        return empty_pb2.Empty()

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
                )
            )
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


def _settle() -> None:
    """Move what exists now (the seeded records and their rendered pieces) out of the
    cyclic collector's sight.

    Records live until replaced and hold no reference cycles (reference counting frees
    them), yet every full collection would walk all of them again: with 50,000 records
    that made reading them back several times slower. The sandbox process owns its heap,
    so this is done here rather than in the state, which tests also use in process.
    """
    gc.freeze()
