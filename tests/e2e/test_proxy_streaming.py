"""Large bodies through the proxy host: a builder downloads or uploads hundreds of
megabytes through the edge to the provider (the sandbox) and every byte arrives intact,
while no process of the mesh holds the body (Envoy streams it with flow control; the
api decides the call and never sees it)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import psutil
import pytest

from tests.e2e.proxy_world import ProxyWorld, proxy_world
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

MIB = 1 << 20
DOWNLOAD_BYTES = 200 * MIB
UPLOAD_BYTES = 50 * MIB
CHUNK = MIB
# What any one process may grow by while a transfer runs: far below the body's size, far
# above what a process's allocator moves by on its own.
MAX_GROWTH = 50 * MIB
# Often enough to see a body held for part of a transfer that lasts well under a second
# on loopback.
SAMPLE_EVERY = 0.02  # seconds


@dataclass
class Watched:
    process: psutil.Process
    before: int
    peak: int
    gone: bool = False


@dataclass
class MemoryWatch:
    """The resident memory of named processes, sampled in a thread while a block runs."""

    watched: dict[str, Watched] = field(default_factory=dict)
    samples: int = 0

    def sample(self) -> None:
        for each in self.watched.values():
            if each.gone:
                continue
            try:
                each.peak = max(each.peak, each.process.memory_info().rss)
            except psutil.Error:
                each.gone = True
        self.samples += 1

    def growth(self) -> dict[str, int]:
        return {name: each.peak - each.before for name, each in self.watched.items()}

    def report(self) -> str:
        return ", ".join(
            f"{name}: {each.before / MIB:.1f} -> peak {each.peak / MIB:.1f} MiB"
            + (" (exited)" if each.gone else "")
            for name, each in sorted(self.watched.items())
        )

    def assert_flat(self) -> None:
        # One sample is taken after the transfer: the others were taken during it.
        assert self.samples >= 3, f"only {self.samples} memory samples"
        assert not any(each.gone for each in self.watched.values()), self.report()
        grown = sorted(name for name, n in self.growth().items() if n > MAX_GROWTH)
        assert not grown, f"{grown} grew by more than {MAX_GROWTH // MIB} MiB: {self.report()}"


def mesh_processes(stack: Stack) -> dict[str, psutil.Process]:
    """Every process of the mesh (infrastructure, services, the edge), and this test's."""
    processes = {"this test": psutil.Process()}
    for entry in stack.mesh.describe()["processes"]:
        if entry["pid"] is not None:
            processes[str(entry["name"])] = psutil.Process(int(entry["pid"]))
    return processes


@contextmanager
def memory_watch(stack: Stack) -> Iterator[MemoryWatch]:
    watched = {}
    for name, process in mesh_processes(stack).items():
        rss = process.memory_info().rss
        watched[name] = Watched(process, before=rss, peak=rss)
    watch = MemoryWatch(watched)
    stop = threading.Event()

    def sampling() -> None:
        while not stop.wait(SAMPLE_EVERY):
            watch.sample()

    # A thread, not a task: the transfer keeps the event loop busy, and psutil blocks.
    sampler = threading.Thread(target=sampling, name="memory-watch", daemon=True)
    sampler.start()
    try:
        yield watch
    finally:
        stop.set()
        sampler.join()
        watch.sample()


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.endpoints["proxy"], timeout=60) as client:
        yield client


@pytest.fixture
async def world(stack: Stack) -> ProxyWorld:
    return await proxy_world(stack, "hubspot")


async def download(
    proxy: httpx.AsyncClient, world: ProxyWorld, size: int
) -> tuple[httpx.Response, str, int]:
    """Download size bytes through the proxy, hashing them as they arrive: the answer,
    the digest of what arrived, and how many bytes did."""
    digest = hashlib.sha256()
    received = 0
    async with proxy.stream(
        "GET", "/sandbox/download", params={"bytes": str(size)}, headers=world.headers()
    ) as answer:
        assert answer.status_code == 200, (await answer.aread()).decode(errors="replace")
        async for chunk in answer.aiter_raw():
            digest.update(chunk)
            received += len(chunk)
    return answer, digest.hexdigest(), received


async def upload(
    proxy: httpx.AsyncClient, world: ProxyWorld, size: int
) -> tuple[httpx.Response, str]:
    """Upload size random bytes through the proxy as a chunked body made on the fly (never
    whole in memory): the answer, and the digest of what was sent."""
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            left -= len(chunk)
            yield chunk

    answer = await proxy.post("/sandbox/upload", content=body(), headers=world.headers())
    return answer, digest.hexdigest()


async def test_a_200_mb_download_arrives_whole_and_no_process_holds_it(
    stack: Stack, proxy: httpx.AsyncClient, world: ProxyWorld
) -> None:
    # Once small, so what every download uses once (a decision in each Envoy worker,
    # connections, code paths) is in place before the measure.
    _, _, warm = await download(proxy, world, MIB)
    assert warm == MIB
    with memory_watch(stack) as watch:
        answer, digest, received = await download(proxy, world, DOWNLOAD_BYTES)
    assert answer.headers["x-amp-proxy-origin"] == "provider"
    assert answer.headers["content-length"] == str(DOWNLOAD_BYTES)
    assert received == DOWNLOAD_BYTES
    assert digest == answer.headers["x-sandbox-sha256"]
    watch.assert_flat()


async def test_a_50_mb_chunked_upload_arrives_whole_and_no_process_holds_it(
    stack: Stack, proxy: httpx.AsyncClient, world: ProxyWorld
) -> None:
    warm, _ = await upload(proxy, world, MIB)
    assert warm.status_code == 200, warm.text
    with memory_watch(stack) as watch:
        answer, digest = await upload(proxy, world, UPLOAD_BYTES)
    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-amp-proxy-origin"] == "provider"
    assert answer.json() == {"bodySha256": digest, "bodyLength": UPLOAD_BYTES}
    watch.assert_flat()
