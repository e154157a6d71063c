"""amp.yaml read and checked off the api's event loop, in a small pool of worker processes.

Reading a manifest is pure-Python CPU work (ruamel reads 100-300 KB a second): within
MANIFEST_LIMITS the worst text costs about 3 s of CPU on a loaded 2-core machine, and a
thread would not free the event loop, since it holds the GIL and hands it back only every
switch interval. So `check_manifest` sends the text to a worker process and awaits the
answer on non-blocking pipes:

- WORKERS workers at most (`python -m services.api.manifest_parsing`), started on first use
  and kept; each runs at a lower CPU priority (nice 10), so that when a client keeps them
  busy with the worst manifests it can write, the api's own requests still get the CPU;
- one check (parse and validation) may use CPU_SECONDS of its worker's CPU time; past that
  the manifest is refused as too costly to read (a 400, like any limit). CPU time, not
  wall time: a worker at low priority on a busy machine is slow, but the manifest is not
  at fault. A worker that has not answered after WALL_SECONDS is killed and replaced;
- a check waits for a free worker at most WAIT_SECONDS; after that or after WALL_SECONDS,
  ManifestCheckersBusy (the caller answers UNAVAILABLE, to retry);
- requests and answers are length-prefixed JSON: plain data, and the manifest as its
  protobuf encoding. Not pickle: a worker reads hostile text, and its answer must not be
  able to make the api run anything.

`check_manifest_here` does the same check in the calling thread (unit tests, tools).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import traceback
from collections.abc import Collection, Mapping
from typing import Any, BinaryIO

from ampmesh.manifest.v1 import manifest_pb2
from ampmesh.platform.v1 import providers_pb2

from services.domain.manifest import (
    ManifestError,
    ManifestIssue,
    ParsedManifest,
    SourceLines,
    load_manifest,
    validate_manifest,
)

log = logging.getLogger(__name__)

# Half the machine's cores at most: a client sending the costliest manifests in a loop keeps
# every worker busy, and the api, the edge and the database need the rest.
WORKERS = min(4, max(1, (os.cpu_count() or 2) // 2))
# The worst manifest within MANIFEST_LIMITS takes about 3 s of CPU, a real one a few
# milliseconds: a check still running after 10 s of CPU is refused.
CPU_SECONDS = 10.0
WALL_SECONDS = 60.0
WAIT_SECONDS = 30.0
_NICENESS = 10
_HEADER = struct.Struct("!Q")

Checked = tuple[ParsedManifest, list[ManifestIssue]]
# What validation needs of the catalog: provider name -> (module names, default module).
_Catalog = dict[str, tuple[list[str], str]]


class ManifestCheckersBusy(Exception):
    """Every worker stayed busy for WAIT_SECONDS."""


def check_manifest_here(
    source_yaml: str,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
    destinations: Collection[str],
) -> Checked:
    """The parsed manifest and the problems validation finds, computed in this thread;
    ManifestError when the text cannot be parsed."""
    parsed = load_manifest(source_yaml)
    return parsed, validate_manifest(parsed.manifest, catalog, destinations, parsed.lines)


async def check_manifest(
    source_yaml: str,
    catalog: Mapping[str, providers_pb2.ProviderInfo],
    destinations: Collection[str],
) -> Checked:
    """check_manifest_here, in a worker process: ManifestError when the text cannot be
    parsed or takes too long, ManifestCheckersBusy when no worker frees up in time."""
    return await _checkers.check(source_yaml, catalog, destinations)


def _catalog_for_validation(catalog: Mapping[str, providers_pb2.ProviderInfo]) -> _Catalog:
    return {name: (list(info.modules), info.default_module) for name, info in catalog.items()}


def _catalog_from(names: _Catalog) -> dict[str, providers_pb2.ProviderInfo]:
    catalog = {}
    for name, (modules, default_module) in names.items():
        info = providers_pb2.ProviderInfo(name=name, default_module=default_module)
        for module in modules:
            info.modules.get_or_create(module)
        catalog[name] = info
    return catalog


# --- the api's side ----------------------------------------------------------------------


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.api.manifest_parsing"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.writes = self.process.stdin.fileno()
        self.reads = self.process.stdout.fileno()
        os.set_blocking(self.writes, False)
        os.set_blocking(self.reads, False)

    async def call(self, request: Any) -> Any:
        payload = json.dumps(request).encode()
        await _write_all(self.writes, _HEADER.pack(len(payload)) + payload)
        (size,) = _HEADER.unpack(await _read_exactly(self.reads, _HEADER.size))
        return json.loads(await _read_exactly(self.reads, size))

    def kill(self) -> None:
        """SIGKILL, without waiting for the process to end (ManifestCheckers reaps it)."""
        self.process.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


async def _wait_for_fd(fd: int, *, writable: bool) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writable:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            await _wait_for_fd(fd, writable=True)


async def _read_exactly(fd: int, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        try:
            chunk = os.read(fd, min(size - len(data), 1 << 20))
        except BlockingIOError:
            await _wait_for_fd(fd, writable=False)
            continue
        if not chunk:
            raise EOFError("the manifest worker exited")
        data += chunk
    return bytes(data)


class ManifestCheckers:
    """Up to `size` workers, started when first needed. Nothing here belongs to one event
    loop (waiters are futures of the loop that waits), so tests that each run their own
    loop can share the module's pool."""

    def __init__(
        self,
        size: int = WORKERS,
        cpu_seconds: float = CPU_SECONDS,
        wall_seconds: float = WALL_SECONDS,
        wait: float = WAIT_SECONDS,
    ) -> None:
        self.size = size
        self.cpu_seconds = cpu_seconds
        self.wall_seconds = wall_seconds
        self.wait = wait
        self.idle: list[_Worker] = []
        self.live = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.killed: list[subprocess.Popen[bytes]] = []

    async def check(
        self,
        source_yaml: str,
        catalog: Mapping[str, providers_pb2.ProviderInfo],
        destinations: Collection[str],
    ) -> Checked:
        request = (
            source_yaml,
            _catalog_for_validation(catalog),
            sorted(destinations),
            self.cpu_seconds,
        )
        worker = await self._take()
        try:
            answer = await asyncio.wait_for(worker.call(request), self.wall_seconds)
        except TimeoutError:
            self._lose(worker)
            raise ManifestCheckersBusy from None
        except BaseException:
            # Cancelled, or the worker died: what it would still write belongs to no one.
            self._lose(worker)
            raise
        self._give(worker)
        if answer["outcome"] == "refused":
            raise ManifestError([ManifestIssue(*i) for i in answer["issues"]])
        if answer["outcome"] != "checked":
            raise RuntimeError("the manifest worker failed (its log has the traceback)")
        manifest = manifest_pb2.Manifest.FromString(base64.b64decode(answer["manifest"]))
        parsed = ParsedManifest(manifest, SourceLines(answer["lines"]))
        return parsed, [ManifestIssue(*i) for i in answer["issues"]]

    async def close(self) -> None:
        while self.idle:
            self._lose(self.idle.pop())

    async def _take(self) -> _Worker:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while True:
            if self.idle:
                return self.idle.pop()
            if self.live < self.size:
                worker = _Worker()
                self.live += 1
                return worker
            turn: asyncio.Future[None] = loop.create_future()
            self.waiters.append(turn)
            try:
                await asyncio.wait_for(turn, deadline - loop.time())
            except TimeoutError:
                raise ManifestCheckersBusy from None
            finally:
                if turn in self.waiters:
                    self.waiters.remove(turn)

    def _give(self, worker: _Worker) -> None:
        self.idle.append(worker)
        self._wake()

    def _lose(self, worker: _Worker) -> None:
        worker.kill()
        self.killed.append(worker.process)
        self.killed = [p for p in self.killed if p.poll() is None]
        self.live -= 1
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            turn = self.waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return


_checkers = ManifestCheckers()


# --- the worker's side -------------------------------------------------------------------


def _read_frame(stream: BinaryIO) -> bytes | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return stream.read(size)


class _OutOfTime(BaseException):
    """Raised by SIGPROF in the middle of a check; a BaseException, so that no library's
    `except Exception` swallows it."""


def _out_of_time(signum: int, frame: Any) -> None:
    raise _OutOfTime


def _issue_data(issue: ManifestIssue) -> list[Any]:
    return [issue.integration, issue.path, issue.line, issue.message, issue.column]


def _answer(request: bytes) -> dict[str, Any]:
    try:
        source_yaml, catalog, destinations, cpu_seconds = json.loads(request)
        # ITIMER_PROF counts this process's CPU time (user and system).
        signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
        try:
            parsed, issues = check_manifest_here(source_yaml, _catalog_from(catalog), destinations)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except ManifestError as error:
        return {"outcome": "refused", "issues": [_issue_data(i) for i in error.issues]}
    except _OutOfTime:
        message = (
            f"took more than {cpu_seconds:g} s of CPU to read and check (the limit); "
            "split or simplify the manifest"
        )
        return {"outcome": "refused", "issues": [[None, "", None, message, None]]}
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return {"outcome": "failed"}
    return {
        "outcome": "checked",
        "manifest": base64.b64encode(parsed.manifest.SerializeToString()).decode(),
        "lines": dict(parsed.lines.lines),
        "issues": [_issue_data(i) for i in issues],
    }


def _serve() -> None:
    with contextlib.suppress(OSError):
        os.nice(_NICENESS)
    signal.signal(signal.SIGPROF, _out_of_time)
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    # Anything printed by accident goes to the log, not into the answers.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    while (request := _read_frame(requests)) is not None:
        payload = json.dumps(_answer(request)).encode()
        answers.write(_HEADER.pack(len(payload)) + payload)
        answers.flush()


if __name__ == "__main__":
    _serve()
