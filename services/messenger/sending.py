"""Sending one delivery: the destination as messenger sends to it (URL, headers, opened
signing key, cached for TARGET_TTL), and one signed POST to it.

An attempt never raises for the receiver's failures: it is an `Attempt` saying how it
went (outcome, status, the answer's first bytes, Retry-After, error), which outcomes.py
records and retry.py decides on. A URL the rules refuse (webhook_urls.py: its form when
the destination is read, its host name's addresses when connecting, addresses.py) is a
CLIENT_ERROR, never retried: the same request would be refused again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
from ampmesh.messenger.v1 import messenger_pb2 as pb
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.domain.destination_secrets import SIGNING_KEY, open_secrets
from services.domain.webhook_urls import Resolver, WebhookUrlPolicy, webhook_url_problem
from services.messenger.addresses import RESOLUTION_TTL, CheckedResolver, RefusedAddress
from services.messenger.retry import outcome_of, retry_after_seconds
from services.messenger.settings import MessengerSettings
from services.messenger.signing import signature_headers, signing_key
from services.messenger.telemetry import MessengerMetrics
from services.runtime import tracing
from services.runtime.secretbox import SecretBox, SecretBoxError

RESPONSE_HEAD = 1024  # bytes of a receiver's answer kept per attempt
USER_AGENT = "ampmesh-webhooks/1"
# How long a destination's URL, headers and opened key are reused before re-reading them
# (and re-checking the URL's form): edits apply within this, without a query and an
# AES-GCM open per delivery. Its host's addresses are checked where it is connected to.
TARGET_TTL = 5.0


@dataclass(frozen=True)
class Target:
    """A destination as messenger sends to it."""

    id: str
    project_id: str
    name: str
    url: str
    headers: dict[str, str]
    key: bytes | None
    # Why it cannot be called now (URL refused, no signing key); None when it can.
    problem: str | None
    expires: float
    # The problem is the URL rules' refusal (not retried), not a missing key.
    refused: bool = False


@dataclass
class Attempt:
    """How one HTTP attempt went."""

    outcome: int
    started: datetime
    duration: float
    status_code: int = 0
    response_body: str = ""
    retry_after: float | None = None
    error: str = ""
    url: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)


class Sender:
    """Destinations looked up and POSTs made (one per process)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        settings: MessengerSettings,
        metrics: MessengerMetrics,
        resolve: Resolver | None = None,
    ) -> None:
        self.pool = pool
        self.box = box
        self.settings = settings
        self.metrics = metrics
        # The settings carry the deployment's two URL rules.
        self.policy: WebhookUrlPolicy = settings
        # Host names' resolution (the system's unless given: tests give theirs).
        self._resolve = resolve
        # Made on first use, inside the running loop (aiohttp binds a session to it).
        self._http: aiohttp.ClientSession | None = None
        self._targets: dict[str, Target] = {}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        """The webhook client. aiohttp rather than httpx: per POST of a 100 KB body it
        costs a tenth of httpx's CPU at our concurrency (httpcore scans every pooled
        connection on each request), and sending is most of what messenger does."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.settings.max_concurrency,
                    resolver=CheckedResolver(self.policy, self._resolve),
                    ttl_dns_cache=RESOLUTION_TTL,
                ),
                headers={"user-agent": USER_AGENT},
                # A receiver's answer is kept as it came (its first bytes), not inflated.
                auto_decompress=False,
                # Receivers' cookies are not carried from one delivery to the next.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._http

    async def target(self, destination_id: str) -> Target | None:
        """The destination's URL, headers and key (cached for TARGET_TTL seconds)."""
        cached = self._targets.get(destination_id)
        now = time.monotonic()
        if cached is not None and cached.expires > now:
            return cached
        row = await self.pool.fetchrow(
            "SELECT id, project_id, name, type, metadata, secrets_sealed, secrets_key_id "
            "FROM destinations WHERE id = $1::uuid",
            destination_id,
        )
        if row is None:
            self._targets.pop(destination_id, None)
            return None
        metadata = json.loads(row["metadata"]) if row["metadata"] else {}
        url = str(metadata.get("url", ""))
        headers = {str(k): str(v) for k, v in (metadata.get("headers") or {}).items()}
        problem: str | None = None
        refused = False
        key: bytes | None = None
        if row["type"] != "webhook":
            problem = f"destination type {row['type']!r} is not delivered to"
        elif not row["secrets_sealed"]:
            problem = "the destination has no signing key"
        else:
            try:
                secret = open_secrets(
                    self.box, destination_id, row["secrets_key_id"], row["secrets_sealed"]
                )[SIGNING_KEY]
                key = signing_key(secret)
            except (SecretBoxError, KeyError, ValueError):
                problem = "the destination's signing key cannot be opened with this keyring"
        if problem is None:
            # A name's addresses are checked by the connector's resolver, on the very
            # addresses connected to: a check here would be one lookup more per TTL, and
            # the name could resolve elsewhere by the time of the POST.
            why = await webhook_url_problem(url, self.policy, check_names=False)
            if why:
                problem, refused = f"url {why}", True
        target = Target(
            id=destination_id,
            project_id=str(row["project_id"]),
            name=row["name"],
            url=url,
            headers=headers,
            key=key,
            problem=problem,
            expires=now + TARGET_TTL,
            refused=refused,
        )
        self._targets[destination_id] = target
        return target

    async def attempt(
        self,
        target: Target,
        message_id: str,
        body: bytes,
        wait_for: float | None = None,
        *,
        parent: Any = None,
    ) -> Attempt:
        """One signed POST of body; never raises for the receiver's failures. With tracing
        on, a CLIENT span continuing `parent` (the trace context of the event the delivery
        came from; else the current one) and a `traceparent` header naming it, so the
        builder's side can join the trace."""
        tracer = tracing.TRACER
        if tracer is None:
            return await self._attempt(target, message_id, body, wait_for)
        with tracer.start_as_current_span(
            "webhook delivery",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": "POST", "ampmesh.delivery_id": message_id},
        ) as span:
            attempt = await self._attempt(target, message_id, body, wait_for)
            if attempt.status_code:
                span.set_attribute("http.response.status_code", attempt.status_code)
            if attempt.outcome != pb.ATTEMPT_OUTCOME_SUCCESS:
                # Never the URL or the answer: either may carry a secret or customer data.
                span.set_status(Status(StatusCode.ERROR, pb.AttemptOutcome.Name(attempt.outcome)))
            return attempt

    async def _attempt(
        self, target: Target, message_id: str, body: bytes, wait_for: float | None
    ) -> Attempt:
        started = datetime.now(UTC)
        clock = time.perf_counter()
        if target.problem is not None or target.key is None:
            return Attempt(
                outcome=(
                    pb.ATTEMPT_OUTCOME_CLIENT_ERROR
                    if target.refused
                    else pb.ATTEMPT_OUTCOME_NETWORK_ERROR
                ),
                started=started,
                duration=0.0,
                error=target.problem or "no signing key",
                url=target.url,
            )
        headers = {
            **target.headers,
            "content-type": "application/json",
            **signature_headers(target.key, message_id, int(started.timestamp()), body),
        }
        tracing.inject(headers)
        attempt = Attempt(
            outcome=pb.ATTEMPT_OUTCOME_UNSPECIFIED,
            started=started,
            duration=0.0,
            url=target.url,
            request_headers=headers,
        )
        wait = wait_for if wait_for is not None else self.settings.delivery_timeout
        try:
            async with self._session().post(
                target.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=wait),
                allow_redirects=False,  # a redirect is an answer (CLIENT_ERROR), not a hop
            ) as response:
                head = b""
                while len(head) < RESPONSE_HEAD:
                    chunk = await response.content.read(RESPONSE_HEAD - len(head))
                    if not chunk:
                        break
                    head += chunk
            attempt.status_code = response.status
            attempt.outcome = outcome_of(response.status)
            attempt.response_body = head.decode("utf-8", "replace")
            if response.status in (429, 503):
                attempt.retry_after = retry_after_seconds(
                    response.headers.get("retry-after"), datetime.now(UTC)
                )
        except TimeoutError:
            attempt.outcome = pb.ATTEMPT_OUTCOME_TIMEOUT
            attempt.error = f"no answer within {wait:g} s"
        except aiohttp.ClientConnectorDNSError as error:
            if isinstance(error.os_error, RefusedAddress):
                attempt.outcome = pb.ATTEMPT_OUTCOME_CLIENT_ERROR
                attempt.error = f"url {error.os_error}"
            else:
                attempt.outcome = pb.ATTEMPT_OUTCOME_NETWORK_ERROR
                attempt.error = "cannot resolve the receiver's host (ClientConnectorDNSError)"
        except aiohttp.ClientError as error:
            attempt.outcome = pb.ATTEMPT_OUTCOME_NETWORK_ERROR
            # The class names the failure; aiohttp's message can carry the URL (and any
            # credentials in it), so it is left out.
            attempt.error = f"cannot reach the receiver ({type(error).__name__})"
        attempt.duration = time.perf_counter() - clock
        self.metrics.attempt_seconds.observe(attempt.duration)
        return attempt

    def forget_target(self, destination_id: str) -> None:
        """Re-read a destination on its next send (after EnableEndpoint or an edit)."""
        self._targets.pop(destination_id, None)
