"""A builder's webhook receiver for tests and benchmarks: a real HTTP server on a real
socket that checks every delivery's signature with the official svix library (and, when
asked, standardwebhooks too), remembers what arrived, and can be told to fail for a while
(500, or 429 with Retry-After) the way a struggling receiver does.

Read-result bodies are WebhookMessages: the record ids a receiver saw are the `id` of
each `result` entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import standardwebhooks
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from svix.webhooks import Webhook, WebhookVerificationError


@dataclass
class Failing:
    """Answer `status` (with Retry-After on 429) until `until` (time.monotonic())."""

    status: int
    until: float
    retry_after: int = 1


@dataclass
class Received:
    """What reached the receiver."""

    # Message ids (svix-id) of verified deliveries, with how often each came.
    messages: Counter[str] = field(default_factory=Counter)
    # Record ids of read results, with how often each came (redeliveries count twice).
    records: Counter[str] = field(default_factory=Counter)
    # Verified bodies, in arrival order (only kept when the receiver keeps bodies).
    bodies: list[dict[str, Any]] = field(default_factory=list)
    # Requests answered with an error on purpose, and requests whose signature failed.
    refused: int = 0
    bad_signatures: int = 0
    # When the first and the latest verified delivery arrived (time.monotonic()).
    first_at: float = 0.0
    last_at: float = 0.0

    @property
    def duplicate_records(self) -> int:
        return sum(n - 1 for n in self.records.values() if n > 1)


class Receiver:
    """The receiver's state and its ASGI app; `serve` runs it on a free port."""

    def __init__(
        self, secret: str = "", *, keep_bodies: bool = False, both_libraries: bool = False
    ) -> None:
        self.secret = secret
        self.keep_bodies = keep_bodies
        self.both_libraries = both_libraries
        self.received = Received()
        self.failing: Failing | None = None
        self.url = ""
        self.arrived = asyncio.Event()

    def fail(self, status: int, seconds: float, retry_after: int = 1) -> None:
        self.failing = Failing(status, time.monotonic() + seconds, retry_after)

    async def handle(self, request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # the sender died mid-request (a kill -9 test)
            return Response(status_code=400)
        failing = self.failing
        if failing is not None and time.monotonic() < failing.until:
            self.received.refused += 1
            headers = {"Retry-After": str(failing.retry_after)} if failing.status == 429 else {}
            return Response(b"not now", status_code=failing.status, headers=headers)
        headers = dict(request.headers)
        try:
            Webhook(self.secret).verify(body, headers)
            if self.both_libraries:
                standardwebhooks.Webhook(self.secret).verify(body, headers)
        except (WebhookVerificationError, standardwebhooks.WebhookVerificationError):
            self.received.bad_signatures += 1
            return Response(b"bad signature", status_code=401)
        message = orjson.loads(body)
        now = time.monotonic()
        received = self.received
        received.first_at = received.first_at or now
        received.last_at = now
        received.messages[headers["svix-id"]] += 1
        for entry in message.get("result") or ():
            received.records[str(entry.get("id"))] += 1
        if self.keep_bodies:
            received.bodies.append(message)
        self.arrived.set()
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.handle, methods=["POST"])])

    async def wait_for_records(self, ids: set[str], patience: float) -> set[str]:
        """Wait until every id arrived or patience ran out; the ids still missing."""
        deadline = time.monotonic() + patience
        while True:
            missing = ids - self.received.records.keys()
            if not missing or time.monotonic() > deadline:
                return missing
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 1.0)


@contextlib.asynccontextmanager
async def serve(receiver: Receiver) -> AsyncIterator[Receiver]:
    """Run the receiver on 127.0.0.1 (a free port) until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(receiver.app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()
