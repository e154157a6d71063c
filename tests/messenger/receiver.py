"""A webhook receiver on a real socket: a small HTTP/1.1 server (asyncio streams,
keep-alive) that verifies every request's signature with the official Svix AND Standard
Webhooks libraries, records what it got, and answers as the test scripted."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import standardwebhooks
import svix.webhooks


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool  # both libraries accepted the signature


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


class Receiver:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # path -> whsec_ secret
        self.scripts: defaultdict[str, deque[Answer]] = defaultdict(deque)
        self.received: list[Received] = []
        self.arrived = asyncio.Condition()
        self.port = 0
        self.count_only = False  # benchmarks: skip verification and keep nothing

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Answer) -> None:
        """Answer the next requests to path so (then 200)."""
        self.scripts[path].extend(answers)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int, patience: float = 20.0) -> list[Received]:
        async with asyncio.timeout(patience), self.arrived:
            await self.arrived.wait_for(lambda: len(self.at(path)) >= count)
        return self.at(path)

    def _verify(self, path: str, headers: dict[str, str], body: bytes) -> bool:
        secret = self.secrets.get(path)
        if secret is None:
            return False
        try:
            svix.webhooks.Webhook(secret).verify(body, headers)
            standardwebhooks.Webhook(secret).verify(body, headers)
        except Exception:
            return False
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                answer = self.scripts[path].popleft() if self.scripts[path] else Answer()
                if not self.count_only:
                    verified = self._verify(path, headers, body)
                    async with self.arrived:
                        self.received.append(Received(path, headers, body, verified))
                        self.arrived.notify_all()
                else:
                    self.received.append(Received(path, {}, b"", True))
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
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver
        server.close()
