"""A webhook receiver for the sandbox's change events: a real HTTP server (uvicorn) on a
loopback port that records every request and answers the statuses a test scripts, and
HubSpot's v3 signature rule implemented apart from the sandbox's, to check it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.runtime.mcp_http import serving_http


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """What arrived, and the statuses to answer next (200 once the script runs out)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    # Answer 401 to requests whose HubSpot signature does not verify with this secret.
    verify_secret: str | None = None

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        received = Received(request.url.path, dict(request.headers), body)
        self.requests.append(received)
        if self.verify_secret is not None and not hubspot_v3_valid(
            self.verify_secret, self.url + request.url.path, received
        ):
            return Response(status_code=401)
        status = self.statuses.pop(0) if self.statuses else 200
        return Response(status_code=status)

    def events(self) -> list[dict[str, Any]]:
        """Every HubSpot event received, in arrival order."""
        return [event for request in self.requests for event in request.json()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver | None = None, port: int = 0) -> AsyncIterator[Receiver]:
    receiver = receiver or Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    async with serving_http(app, "127.0.0.1", port) as bound:
        receiver.url = f"http://127.0.0.1:{bound}"
        yield receiver


def hubspot_v3_valid(secret: str, url: str, request: Received, max_age_ms: int = 300_000) -> bool:
    """HubSpot's documented v3 check: HMAC-SHA256 with the app secret over method, URI,
    body and timestamp, base64; refused when the timestamp is older than five minutes."""
    timestamp = request.headers.get("x-hubspot-request-timestamp", "")
    signature = request.headers.get("x-hubspot-signature-v3", "")
    if not timestamp.isdigit() or time.time() * 1000 - int(timestamp) > max_age_ms:
        return False
    source = "POST" + url + request.body.decode() + timestamp
    expected = base64.b64encode(
        hmac.new(secret.encode(), source.encode(), hashlib.sha256).digest()
    ).decode()
    return hmac.compare_digest(expected, signature)
