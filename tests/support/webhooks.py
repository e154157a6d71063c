"""The builder's webhook receiver for tests and benchmarks: a small HTTP/1.1 server on a real
socket (asyncio streams, keep-alive) that checks every delivery's signature with the
official svix library (and, when asked, standardwebhooks too), remembers what arrived, and
answers as the test scripted: per path, a queue of answers (any status, headers, a delay),
or for a while a failure (500, or 429 with Retry-After) the way a struggling receiver does.

Two views of what arrived: `requests` (every request, in order, with its path, headers,
body and whether both libraries accepted the signature; kept unless `keep_requests` is off,
which the read benchmark does to keep its memory flat) and `received` (a tally of read
results: message ids, record ids, refusals, bad signatures). Read-result bodies are
WebhookMessages: the record ids a receiver saw are the `id` of each `result` entry.

A path without a secret is answered as scripted (the messenger's tests deliver to such
paths on purpose); a path with one refuses a bad signature with 401, as a real receiver
would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import standardwebhooks
import svix.webhooks

HOOK = "/hook"  # the path a receiver with one destination is reached at


@dataclass
class Request:
    """One request that reached the receiver."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool  # the signature checked out (with both libraries when asked)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass
class Failing:
    """Answer `status` (with Retry-After on 429) until `until` (time.monotonic())."""

    status: int
    until: float
    retry_after: int = 1


@dataclass
class Received:
    """A tally of the read results that reached the receiver."""

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
    """The receiver's state; `serve` runs it on a free port."""

    def __init__(
        self,
        *,
        both_libraries: bool = False,
        keep_requests: bool = True,
        keep_bodies: bool = False,
    ) -> None:
        self.secrets: dict[str, str] = {}  # path -> whsec_ secret
        self.both_libraries = both_libraries
        self.keep_requests = keep_requests
        self.keep_bodies = keep_bodies
        self.scripts: defaultdict[str, deque[Answer]] = defaultdict(deque)
        self.failing: Failing | None = None
        self.requests: list[Request] = []
        self.received = Received()
        self.arrived = asyncio.Condition()
        self.port = 0

    def url(self, path: str = HOOK) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Answer) -> None:
        """Answer the next requests to path so (then as usual)."""
        self.scripts[path].extend(answers)

    def fail(self, status: int, seconds: float, retry_after: int = 1) -> None:
        """Answer every request with status for a while (unless a script says otherwise)."""
        self.failing = Failing(status, time.monotonic() + seconds, retry_after)

    def at(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, path: str, count: int, patience: float = 20.0) -> list[Request]:
        async with asyncio.timeout(patience), self.arrived:
            await self.arrived.wait_for(lambda: len(self.at(path)) >= count)
        return self.at(path)

    async def wait_for_records(self, ids: set[str], patience: float) -> set[str]:
        """Wait until every id arrived or patience ran out; the ids still missing."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience), self.arrived:
                await self.arrived.wait_for(lambda: ids <= self.received.records.keys())
        return ids - self.received.records.keys()

    def _verify(self, secret: str, headers: dict[str, str], body: bytes) -> bool:
        try:
            svix.webhooks.Webhook(secret).verify(body, headers)
            if self.both_libraries:
                standardwebhooks.Webhook(secret).verify(body, headers)
        except Exception:
            return False
        return True

    def _tally(self, headers: dict[str, str], body: bytes) -> None:
        received, now = self.received, time.monotonic()
        received.first_at = received.first_at or now
        received.last_at = now
        received.messages[headers.get("svix-id", "")] += 1
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict):
            return
        self._count(message)
        if self.keep_bodies:
            received.bodies.append(message)

    def _count(self, message: dict[str, Any]) -> None:
        """Count a verified read result's records (a subclass may count them otherwise)."""
        for entry in message.get("result") or ():
            self.received.records[str(entry.get("id"))] += 1

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """Record the request and choose its answer."""
        scripted = self.scripts[path].popleft() if self.scripts[path] else None
        failing = self.failing
        if scripted is None and failing is not None and time.monotonic() < failing.until:
            self.received.refused += 1
            retry = {"Retry-After": str(failing.retry_after)} if failing.status == 429 else {}
            scripted = Answer(failing.status, retry, b"not now")
        secret = self.secrets.get(path)
        verified = secret is not None and self._verify(secret, headers, body)
        if self.keep_requests:
            self.requests.append(Request(path, headers, body, verified))
        if scripted is not None:
            return scripted
        if secret is None:
            return Answer()
        if not verified:
            self.received.bad_signatures += 1
            return Answer(401, body=b"bad signature")
        self._tally(headers, body)
        return Answer()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    path = lines[0].split(" ")[1]
                    headers: dict[str, str] = {}
                    for line in lines[1:]:
                        if ":" in line:
                            name, _, value = line.partition(":")
                            headers[name.strip().lower()] = value.strip()
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the sender went away (a kill -9 test) or closed the connection
                async with self.arrived:
                    answer = self._answer(path, headers, body)
                    self.arrived.notify_all()
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
                writer.write(
                    f"HTTP/1.1 {answer.status} X\r\ncontent-length: {len(answer.body)}\r\n"
                    f"{extra}\r\n".encode()
                    + answer.body
                )
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serve(receiver: Receiver) -> AsyncIterator[Receiver]:
    """Run the receiver on 127.0.0.1 (a free port) until the block ends."""
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver
        server.close()


def receiving() -> contextlib.AbstractAsyncContextManager[Receiver]:
    """A receiver as the messenger's tests use it: every request kept, both libraries."""
    return serve(Receiver(both_libraries=True))
