"""The routes the API proxy's tests and benchmarks call through the proxy. The proxy
forwards to the provider's base URL + the caller's path, so they live under each
provider's base (/hubspot, /salesforce):

    {base}/sandbox/echo[/{rest}]    GET POST PUT PATCH DELETE: the request as received
    {base}/sandbox/download?bytes=N GET: N deterministic bytes, streamed, with their sha256
                                    in x-sandbox-sha256 (N at most 1 GiB)
    {base}/sandbox/upload           POST PUT: the body's length and sha256

They go through the record pipeline (record_api.py) under Endpoint.PROXY_TEST, the route's
name standing where a record API names its object: the same bearer check (401 in the
provider's shape), the same faults, the same counters, plus a count per route of the
requests that reached it (what a test reads to assert the proxy did not call the provider).

Bodies are hashed as they arrive and downloads generated block by block, so neither side
ever holds a body whole: the proxy's streaming is what is measured, not the sandbox's.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route

from services.sandbox.errors import ApiError, provider_error
from services.sandbox.faults import Endpoint
from services.sandbox.providers import PATHS, Provider
from services.sandbox.record_api import RecordApi, Render

MAX_DOWNLOAD = 1 << 30
ECHO_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
DIGEST_HEADER = "x-sandbox-sha256"

# The download content: this 64 KiB repeated. Not a short cycle, so a proxy that drops,
# repeats or reorders a few bytes changes the digest.
PATTERN = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(2048))
# What one write sends (and what a digest is fed at a time): fewer, larger writes.
_BLOCK = PATTERN * 16
# The hash state is kept at every multiple of this: a new N costs at most this much hashing.
_STRIDE = len(_BLOCK) * 16
_RECENT = 256


def _feed(state: hashlib._Hash, size: int) -> None:
    """Hash the next `size` bytes of the content, from a block boundary."""
    whole, rest = divmod(size, len(_BLOCK))
    for _ in range(whole):
        state.update(_BLOCK)
    state.update(_BLOCK[:rest])


class PatternDigests:
    """The sha256 of the first N bytes of the download content, for any N, without holding
    the content: the hash state at every _STRIDE boundary reached so far is kept (a copy
    resumes from it), and the last digests answered are remembered by N."""

    def __init__(self) -> None:
        self._checkpoints = [hashlib.sha256()]
        # Held while checkpoints are added, in a worker thread; the event loop never takes it.
        self._extending = threading.Lock()
        self._recent: OrderedDict[int, str] = OrderedDict()
        self._recent_lock = threading.Lock()

    async def digest(self, size: int) -> str:
        if size <= len(_BLOCK):
            return self.compute(size)  # at most 1 MiB: about a millisecond, inline
        known = self._remembered(size)
        # hashlib releases the GIL: a larger N is hashed beside the loop, not on it.
        return known if known is not None else await asyncio.to_thread(self.compute, size)

    def compute(self, size: int) -> str:
        known = self._remembered(size)
        if known is not None:
            return known
        whole = size // _STRIDE
        if whole == 0:
            state = self._checkpoints[0].copy()
        else:
            with self._extending:
                while len(self._checkpoints) <= whole:
                    extended = self._checkpoints[-1].copy()
                    _feed(extended, _STRIDE)
                    self._checkpoints.append(extended)
                state = self._checkpoints[whole].copy()
        _feed(state, size - whole * _STRIDE)
        digest = state.hexdigest()
        with self._recent_lock:
            self._recent[size] = digest
            while len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        return digest

    def _remembered(self, size: int) -> str | None:
        with self._recent_lock:
            digest = self._recent.get(size)
            if digest is not None:
                self._recent.move_to_end(size)
            return digest


async def content(size: int) -> AsyncIterator[bytes]:
    """The first `size` bytes of the download content, a block at a time."""
    whole, rest = divmod(size, len(_BLOCK))
    for _ in range(whole):
        yield _BLOCK
    if rest:
        yield _BLOCK[:rest]


async def hash_body(request: Request) -> tuple[str, int]:
    """The body's sha256 (hex) and length, read as it arrives."""
    state = hashlib.sha256()
    length = 0
    async for chunk in request.stream():
        state.update(chunk)
        length += len(chunk)
    return state.hexdigest(), length


class ProxyTestApi:
    """The proxy-test routes of every provider, over the record pipeline."""

    def __init__(self, records: RecordApi) -> None:
        self.records = records
        self.digests = PatternDigests()

    def routes(self) -> list[Mount]:
        """One mount per provider, to be placed first: a benchmark's echo request is
        matched after two prefix checks instead of after every other route, and other
        requests pay only those two."""
        mounts = []
        for provider, paths in PATHS.items():
            echo = self._endpoint(provider, "echo", self._echo)
            routes = [
                Route("/echo", echo, methods=ECHO_METHODS),
                Route("/echo/{rest:path}", echo, methods=ECHO_METHODS),
                Route(
                    "/download",
                    self._endpoint(provider, "download", self._download(provider)),
                    methods=["GET"],
                ),
                Route(
                    "/upload",
                    self._endpoint(provider, "upload", self._upload),
                    methods=["POST", "PUT"],
                ),
            ]
            mounts.append(Mount(paths["base"] + "/sandbox", routes=routes))
        return mounts

    def _endpoint(
        self, provider: Provider, route: str, render: Render
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.records.serve(
                request, provider, route, render, endpoint=Endpoint.PROXY_TEST
            )

        return endpoint

    @staticmethod
    async def _echo(request: Request, _: str) -> bytes:
        digest, length = await hash_body(request)
        scope = request.scope
        headers: dict[str, str] = {}
        # Header bytes are opaque to HTTP: latin-1 keeps every byte as one character.
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            seen = headers.get(name)
            headers[name] = value if seen is None else f"{seen}, {value}"
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path is not None else scope["path"]
        return orjson.dumps(
            {
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"].decode("latin-1"),
                "headers": headers,
                "bodySha256": digest,
                "bodyLength": length,
            }
        )

    def _download(self, provider: Provider) -> Render:
        async def render(request: Request, _: str) -> Response:
            size = _download_size(request, provider)
            digest = await self.digests.digest(size)
            return StreamingResponse(
                content(size),
                media_type="application/octet-stream",
                headers={"content-length": str(size), DIGEST_HEADER: digest},
            )

        return render

    @staticmethod
    async def _upload(request: Request, _: str) -> bytes:
        digest, length = await hash_body(request)
        return orjson.dumps({"bodySha256": digest, "bodyLength": length})


def _download_size(request: Request, provider: Provider) -> int:
    given = request.query_params.get("bytes", "")
    try:
        size = int(given)
    except ValueError:
        size = -1
    if not 0 <= size <= MAX_DOWNLOAD:
        code = "VALIDATION_ERROR" if provider is Provider.HUBSPOT else "MALFORMED_QUERY"
        message = f"bytes must be a whole number from 0 to {MAX_DOWNLOAD} (1 GiB)"
        raise ApiError(400, provider_error(provider, 400, code, message))
    return size
