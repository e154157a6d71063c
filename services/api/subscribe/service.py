"""The api's `subscribe` route group: providers' change webhooks (ProviderWebhookService,
behind the edge's subscribe host).

Each request is verified first, with nothing read from its body before (verify.py), then
parsed (parse.py), then its new events are recorded and staged for the bus in one
transaction (store.py); only then is it answered 200 with what became of its events.

- 401: not verified, or a URL naming no project, integration or installation we know.
  Every reason gets the same answer, so a caller learns nothing about which part was
  wrong; the log line says which.
- 400: verified, but not the provider's event shape (the answer names the field).
- 503: the event bus or PostgreSQL is unavailable; the provider retries later.

Neither the body nor a signature or token is ever logged or quoted. Each outcome is
counted in `ampmesh_subscribe_webhooks_total{provider,outcome}`.

HubSpot requests are verified with the client secret of the project's HubSpot provider
app (its first, as connections use: services/api/platform/connections.py). Unsealing it
costs an AES-GCM open; the opened secret is kept in memory keyed by the sealed bytes it
came from, so a busy webhook opens it once, and an app whose secret is changed is
verified with the new one from its next request (no stale window).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import Any, NoReturn

import asyncpg
import grpc
from ampmesh.subscribe.v1 import provider_webhooks_pb2, provider_webhooks_pb2_grpc
from prometheus_client import Counter

from services.api.context import ApiContext
from services.api.subscribe import parse, store, verify
from services.domain import subscribe_names
from services.domain.client_secrets import open_client_secret
from services.runtime.db_errors import unavailable
from services.runtime.errors import abort_invalid_argument, abort_with_reason
from services.runtime.logs import get_logger
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

_log = get_logger("ampmesh.api.subscribe")

WEBHOOKS = Counter(
    "ampmesh_subscribe_webhooks_total",
    "Provider change webhooks received on the subscribe host, by provider and outcome "
    "(accepted: some events were new; duplicate: every event had been accepted before; "
    "unverified, malformed, too_large, unavailable).",
    ["provider", "outcome"],
)

HUBSPOT, SALESFORCE = "hubspot", "salesforce"
# The edge caps bodies at 1 MiB already; this holds for a caller reaching the api another
# way (HubSpot's own batches are at most 100 events, a few tens of KiB).
MAX_BODY_BYTES = 1 << 20
# Opened client secrets kept (one per provider app in use).
SECRET_CACHE_SIZE = 1024
UNVERIFIED_MESSAGE = (
    "the webhook could not be verified: its signature, timestamp or relay token is "
    "missing, wrong or expired, or its URL names no webhook of ampmesh"
)


def _metadata(context: Any) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


class ProviderWebhooks(provider_webhooks_pb2_grpc.ProviderWebhookServiceServicer):
    def __init__(self, ctx: ApiContext, clock: Any = time.time) -> None:
        self.ctx = ctx
        self.clock = clock
        self._secrets: OrderedDict[tuple[str, str, bytes], str] = OrderedDict()
        self._acceptor: store.Acceptor | None = None

    # --- the two URLs ---------------------------------------------------------------

    async def ReceiveIntegrationWebhook(
        self,
        request: provider_webhooks_pb2.ReceiveIntegrationWebhookRequest,
        context: grpc.aio.ServicerContext,
    ) -> provider_webhooks_pb2.ReceiveWebhookResponse:
        target = store.Target("", request.project_id, request.integration_id)
        body = request.body.data
        try:
            row = await self._integration_app(request.project_id, request.integration_id)
        except Exception as error:
            await self._database_failed(context, target, error)
        if row is None:
            await self._unverified(context, target, "no such integration in the project")
        target = store.Target(row["provider"], request.project_id, request.integration_id)
        if row["provider"] != HUBSPOT:
            await self._unverified(
                context, target, f"{row['provider']} has no app-level webhooks (HubSpot only)"
            )
        if row["app_id"] is None:
            await self._unverified(context, target, "the project has no HubSpot provider app")
        headers = _metadata(context)
        try:
            verify.check_hubspot(
                secret=self._client_secret(row),
                method="POST",
                uri=headers.get(subscribe_names.ORIGINAL_URI_HEADER, ""),
                body=body,
                signature=headers.get(subscribe_names.HUBSPOT_SIGNATURE_HEADER),
                timestamp=headers.get(subscribe_names.HUBSPOT_TIMESTAMP_HEADER),
                now=self.clock(),
            )
        except verify.NotVerified as why:
            await self._unverified(context, target, str(why))
        await self._check_size(context, target, body)
        try:
            events = parse.parse_hubspot(body)
        except parse.Malformed as malformed:
            await self._malformed(context, target, malformed)
        return await self._accept(context, target, events)

    async def ReceiveInstallationWebhook(
        self,
        request: provider_webhooks_pb2.ReceiveInstallationWebhookRequest,
        context: grpc.aio.ServicerContext,
    ) -> provider_webhooks_pb2.ReceiveWebhookResponse:
        ids = (request.project_id, request.integration_id, request.installation_id)
        target = store.Target("", *ids)
        body = request.body.data
        try:
            row = await self._subscription(*ids)
        except Exception as error:
            await self._database_failed(context, target, error)
        if row is None:
            await self._unverified(context, target, "no subscribing installation at this URL")
        target = store.Target(row["provider"], *ids)
        if row["status"] not in ("active", "pending"):
            await self._unverified(
                context, target, f"the installation's subscription is {row['status']}"
            )
        if row["provider"] != SALESFORCE:
            await self._unverified(
                context, target, f"{row['provider']} has no per-installation webhooks"
            )
        try:
            verify.check_relay_token(
                _metadata(context).get(subscribe_names.RELAY_TOKEN_HEADER),
                row["relay_token_sha256"],
            )
        except verify.NotVerified as why:
            await self._unverified(context, target, str(why))
        await self._check_size(context, target, body)
        try:
            org, events = parse.parse_salesforce(body)
        except parse.Malformed as malformed:
            await self._malformed(context, target, malformed)
        if row["account_id"] and not subscribe_names.same_account(row["account_id"], org):
            await self._unverified(context, target, "the event's org is not the installation's")
        return await self._accept(context, target, events)

    # --- lookups --------------------------------------------------------------------

    async def _integration_app(self, project_id: str, integration_id: str) -> asyncpg.Record | None:
        """The integration's provider, and its project's provider app for that provider."""
        project, integration = _uuid(project_id), _uuid(integration_id)
        if project is None or integration is None:
            return None
        row: asyncpg.Record | None = await self.ctx.pool.fetchrow(
            "SELECT i.provider, a.id AS app_id, a.client_secret_sealed, a.client_secret_key_id "
            "FROM integrations i LEFT JOIN LATERAL ("
            "  SELECT id, client_secret_sealed, client_secret_key_id FROM provider_apps "
            "  WHERE project_id = i.project_id AND provider = i.provider "
            "  ORDER BY created_at, id LIMIT 1"
            ") a ON true WHERE i.id = $1 AND i.project_id = $2",
            integration,
            project,
        )
        return row

    async def _subscription(
        self, project_id: str, integration_id: str, installation_id: str
    ) -> asyncpg.Record | None:
        ids = [_uuid(project_id), _uuid(integration_id), _uuid(installation_id)]
        if None in ids:
            return None
        row: asyncpg.Record | None = await self.ctx.pool.fetchrow(
            "SELECT provider, status, account_id, relay_token_sha256 FROM subscriptions "
            "WHERE project_id = $1 AND integration_id = $2 AND installation_id = $3",
            *ids,
        )
        return row

    def _client_secret(self, row: asyncpg.Record) -> str:
        key = (str(row["app_id"]), row["client_secret_key_id"], bytes(row["client_secret_sealed"]))
        secret = self._secrets.get(key)
        if secret is None:
            secret = open_client_secret(self.ctx.secrets, key[0], key[1], key[2])
            self._secrets[key] = secret
            while len(self._secrets) > SECRET_CACHE_SIZE:
                self._secrets.popitem(last=False)
        else:
            self._secrets.move_to_end(key)
        return secret

    # --- outcomes -------------------------------------------------------------------

    async def _accept(
        self, context: Any, target: store.Target, events: list[Any]
    ) -> provider_webhooks_pb2.ReceiveWebhookResponse:
        if self.ctx.events is None:
            self._count(target, "unavailable", "the api runs without an event bus")
            await abort_with_reason(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "this deployment runs without an event bus (AMPMESH_PUBSUB_PROJECT): "
                "webhooks cannot be accepted; retry later",
                "EVENTS_UNAVAILABLE",
            )
        try:
            if self._acceptor is None:
                self._acceptor = store.Acceptor(self.ctx.pool, self.ctx.events)
            result = await self._acceptor.accept(target, events)
        except Exception as error:
            await self._database_failed(context, target, error)
        outcome = "accepted" if result.accepted or not events else "duplicate"
        self._count(target, outcome, "", accepted=result.accepted, duplicates=result.duplicates)
        return provider_webhooks_pb2.ReceiveWebhookResponse(
            accepted=result.accepted, duplicates=result.duplicates
        )

    async def _database_failed(
        self, context: Any, target: store.Target, error: Exception
    ) -> NoReturn:
        if not unavailable(error):
            raise error
        self._count(target, "unavailable", f"PostgreSQL unavailable ({type(error).__name__})")
        await abort_with_reason(
            context,
            grpc.StatusCode.UNAVAILABLE,
            "the webhook could not be recorded now (database unavailable); retry later",
            "DATABASE_UNAVAILABLE",
        )

    async def _unverified(self, context: Any, target: store.Target, reason: str) -> NoReturn:
        self._count(target, "unverified", reason)
        await abort_with_reason(
            context, grpc.StatusCode.UNAUTHENTICATED, UNVERIFIED_MESSAGE, "WEBHOOK_NOT_VERIFIED"
        )

    async def _malformed(
        self, context: Any, target: store.Target, malformed: parse.Malformed
    ) -> NoReturn:
        self._count(target, "malformed", f"{malformed.field}: {malformed.why}")
        await abort_invalid_argument(
            context,
            f"the webhook body is not a {target.provider} event batch: "
            f"{malformed.field}: {malformed.why}",
            {malformed.field: malformed.why},
        )

    async def _check_size(self, context: Any, target: store.Target, body: bytes) -> None:
        if len(body) <= MAX_BODY_BYTES:
            return
        self._count(target, "too_large", f"{len(body)} bytes")
        await abort_invalid_argument(
            context,
            f"the webhook body is {len(body)} bytes (at most {MAX_BODY_BYTES})",
            {"body": f"must be at most {MAX_BODY_BYTES} bytes"},
        )

    @staticmethod
    def _count(target: store.Target, outcome: str, reason: str, **extra: int) -> None:
        provider = target.provider or "unknown"
        WEBHOOKS.labels(provider=provider, outcome=outcome).inc()
        log = _log.info if outcome in ("accepted", "duplicate") else _log.warning
        log(
            "provider webhook",
            outcome=outcome,
            reason=reason or None,
            provider=provider,
            # As the URL gave them (unverified: clipped).
            project_id=target.project_id[:64],
            integration_id=target.integration_id[:64],
            installation_id=target.installation_id[:64] or None,
            **extra,
        )


def provider_webhook_service(ctx: ApiContext) -> Service:
    return partially_built(
        provider_webhooks_pb2.DESCRIPTOR.services_by_name["ProviderWebhookService"],
        provider_webhooks_pb2_grpc.add_ProviderWebhookServiceServicer_to_server,
        ProviderWebhooks(ctx),
        "",
    )
