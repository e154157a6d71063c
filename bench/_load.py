"""Load generators for the benchmarks (bench.edge_overhead, bench.token_path, bench.proxy):
grpc.aio worker processes and h2load.

- `GrpcWorkers`: N processes (spawned, never forked: grpc does not survive a fork of a
  process that already used it), each holding one channel per way in and driving it with
  a closed loop (fixed concurrency) or an open loop (fixed request rate). Requests and
  responses stay bytes, so the client pays no protobuf cost the server does not.
- `h2load`: nghttp2's compiled generator for gRPC over h2c and for REST over HTTP/1.1.
  It has no client certificates, so it cannot reach the api service's mTLS port itself.

Every run starts and stops at instants the parent chooses, so several processes measure
the same window, and its result carries the generator's own CPU seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import struct
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import psutil

from services.runtime.channels import mesh_channel
from services.runtime.tls import ensure_service_credentials

CALL_TIMEOUT = 5.0
# An open loop never holds more calls than this in flight; the rest count as missed.
MAX_IN_FLIGHT = 2000
# Workers are told to start this far ahead, so every process begins the same window.
START_LEAD = 0.05
# Way names a GrpcWorkers pool understands.
DIRECT = "direct"
EDGE = "edge"


class LoadError(RuntimeError):
    """A load generator could not run; the message says which and why."""


def clock() -> float:
    # CLOCK_MONOTONIC is system-wide on Linux: the parent and every worker share it.
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@dataclass
class LoadResult:
    """One measured window of one generator."""

    ok: int
    seconds: float
    errors: Counter[str] = field(default_factory=Counter)
    # Sorted latencies of the successful calls, in seconds (what the open loops report).
    latencies: list[float] = field(default_factory=list)
    missed: int = 0
    generator_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, int(len(self.latencies) * q))
        return self.latencies[index] * 1000


# --- grpc.aio worker processes ----------------------------------------------------------


@dataclass(frozen=True)
class _Closed:
    way: str
    concurrency: int
    start: float
    stop: float


@dataclass(frozen=True)
class _Open:
    way: str
    rate: float
    start: float
    stop: float


@dataclass(frozen=True)
class _Fetch:
    way: str


@dataclass(frozen=True)
class _Targets:
    method: str
    request: bytes
    direct: str
    direct_identity: str
    server_identity: str
    edge: str
    cert_dir: str
    # Sent with every call on the direct channel (e.g. the token-manager's hash header).
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass
class _Tally:
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    missed: int = 0


class GrpcWorkers:
    """A pool of grpc.aio load processes; use as an async context manager.

    direct: an mTLS address (the api service's, or Envoy's internal token-manager listener),
    reached as `direct_identity` and checked to be `server_identity`, every call carrying
    `metadata` (added by the channel's interceptor, as token_manager_channel adds its hash
    header); edge: Envoy's plaintext gRPC listener.
    """

    def __init__(
        self,
        processes: int,
        *,
        method: str,
        request: bytes,
        direct: str,
        direct_identity: str,
        server_identity: str,
        edge: str,
        cert_dir: Path,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._targets = _Targets(
            method,
            request,
            direct,
            direct_identity,
            server_identity,
            edge,
            str(cert_dir),
            metadata,
        )
        self._count = processes
        self._workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._workers if p.pid is not None]

    async def __aenter__(self) -> GrpcWorkers:
        context = multiprocessing.get_context("spawn")
        for _ in range(self._count):
            parent, child = context.Pipe()
            process = context.Process(target=_worker_main, args=(child, self._targets))
            process.daemon = True
            process.start()
            child.close()
            self._workers.append((process, parent))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for _, connection in self._workers:
            with contextlib.suppress(OSError):
                connection.send(None)
        for process, connection in self._workers:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 5)
            connection.close()
        self._workers.clear()

    async def fetch(self, way: str) -> bytes:
        """One call's serialized response, through the first worker."""
        _, connection = self._workers[0]
        connection.send(_Fetch(way))
        reply = await _receive(connection, CALL_TIMEOUT + 30)
        if isinstance(reply, str):
            raise LoadError(f"{way}: {reply}")
        assert isinstance(reply, bytes)
        return reply

    async def closed(self, way: str, concurrency: int, seconds: float) -> LoadResult:
        """Every worker keeps concurrency/N calls in flight for `seconds`."""
        start = clock() + START_LEAD
        per_worker = _split(concurrency, self._count)
        return await self._run(
            [_Closed(way, n, start, start + seconds) for n in per_worker], seconds
        )

    async def open(self, way: str, rate: float, seconds: float) -> LoadResult:
        """Calls sent at a fixed total rate for `seconds`, whether earlier ones returned or
        not; latency counts from each call's send, as h2load's does."""
        start = clock() + START_LEAD
        share = rate / self._count
        return await self._run(
            [_Open(way, share, start, start + seconds) for _ in self._workers], seconds
        )

    async def _run(self, commands: list[_Closed] | list[_Open], seconds: float) -> LoadResult:
        processes = [psutil.Process(pid) for pid in self.pids]
        cpu_before = sum(_cpu(p) for p in processes)
        for (_, connection), command in zip(self._workers, commands, strict=True):
            connection.send(command)
        replies = [
            await _receive(connection, START_LEAD + seconds + CALL_TIMEOUT + 30)
            for _, connection in self._workers
        ]
        cpu = sum(_cpu(p) for p in processes) - cpu_before
        result = LoadResult(ok=0, seconds=seconds, generator_cpu=cpu)
        for reply in replies:
            if isinstance(reply, str):
                raise LoadError(reply)
            assert isinstance(reply, _Tally)
            result.ok += reply.ok
            result.errors.update(reply.errors)
            result.latencies.extend(reply.latencies)
            result.missed += reply.missed
        result.latencies.sort()
        return result


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def _receive(connection: Connection, within: float) -> object:
    def receive() -> object:
        try:
            if not connection.poll(within):
                raise LoadError(f"a load worker did not answer within {within:.0f}s")
            return connection.recv()
        except (EOFError, OSError):
            raise LoadError("a load worker exited (its traceback is above)") from None

    return await asyncio.to_thread(receive)


def _worker_main(connection: Connection, targets: _Targets) -> None:
    asyncio.run(_worker_loop(connection, targets))


async def _worker_loop(connection: Connection, targets: _Targets) -> None:
    credentials = ensure_service_credentials(
        Path(targets.cert_dir), targets.direct_identity, create=False
    )
    channels = {
        # No retries and no request-id propagation: each call is one attempt of one RPC.
        DIRECT: mesh_channel(
            targets.direct,
            credentials,
            server_identity=targets.server_identity,
            retry=None,
            timeout=None,
            propagate_request_id=False,
            metadata=(lambda method, request: targets.metadata) if targets.metadata else None,
        ),
        EDGE: grpc.aio.insecure_channel(targets.edge),
    }
    calls = {way: channel.unary_unary(targets.method) for way, channel in channels.items()}
    try:
        while True:
            command = await asyncio.to_thread(connection.recv)
            if command is None:
                return
            try:
                reply: object
                if isinstance(command, _Fetch):
                    reply = await calls[command.way](targets.request, timeout=CALL_TIMEOUT)
                elif isinstance(command, _Closed):
                    reply = await _closed_loop(calls[command.way], targets.request, command)
                else:
                    assert isinstance(command, _Open)
                    reply = await _open_loop(calls[command.way], targets.request, command)
            except grpc.aio.AioRpcError as failed:
                reply = f"{failed.code().name}: {failed.details()}"
            connection.send(reply)
    finally:
        for channel in channels.values():
            await channel.close()


async def _sleep_until(instant: float) -> None:
    delay = instant - clock()
    if delay > 0:
        await asyncio.sleep(delay)


async def _closed_loop(
    call: grpc.aio.UnaryUnaryMultiCallable, request: bytes, run: _Closed
) -> _Tally:
    tally = _Tally()
    await _sleep_until(run.start)

    async def caller() -> None:
        while clock() < run.stop:
            try:
                await call(request, timeout=CALL_TIMEOUT)
            except grpc.aio.AioRpcError as failed:
                tally.errors[failed.code().name] += 1
                continue
            # A call still in flight at the end belongs to no window: it is not counted.
            if clock() <= run.stop:
                tally.ok += 1

    await asyncio.gather(*(caller() for _ in range(run.concurrency)))
    return tally


async def _open_loop(call: grpc.aio.UnaryUnaryMultiCallable, request: bytes, run: _Open) -> _Tally:
    tally = _Tally()
    in_flight: set[asyncio.Task[None]] = set()

    async def one() -> None:
        sent = clock()
        try:
            await call(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as failed:
            tally.errors[failed.code().name] += 1
            return
        tally.ok += 1
        # From the send, as h2load measures: nothing waits for a response before sending,
        # so there is no coordinated omission; the event loop's own lateness in sending
        # (its timers have millisecond resolution) is left out for both generators.
        tally.latencies.append(clock() - sent)

    total = int((run.stop - run.start) * run.rate)
    for k in range(total):
        scheduled = run.start + k / run.rate
        await _sleep_until(scheduled)
        if len(in_flight) >= MAX_IN_FLIGHT:
            tally.missed += 1
            continue
        task = asyncio.create_task(one())
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight, timeout=CALL_TIMEOUT + 1)
    return tally


# --- h2load -------------------------------------------------------------------------------

_REQUESTS = re.compile(
    r"requests: (?P<total>\d+) total, \d+ started, (?P<done>\d+) done, (?P<ok>\d+) succeeded, "
    r"(?P<failed>\d+) failed, (?P<errored>\d+) errored, (?P<timeout>\d+) timeout"
)
# h2load's --rps timer fires at most every 10 ms, sending everything due at once: above
# 100 req/s a connection sends bursts. Open loops keep each connection below that.
H2LOAD_MAX_RPS_PER_CONNECTION = 90.0
# Warm-up inside each open-loop h2load process, before the common measured window.
H2LOAD_OPEN_LEAD = 0.1


def require_h2load() -> str:
    path = shutil.which("h2load")
    if path is None:
        raise LoadError("h2load is missing: install it with `apt-get install nghttp2-client`")
    return path


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: uncompressed flag, 4-byte big-endian length, bytes."""
    return b"\x00" + struct.pack(">I", len(message)) + message


@dataclass(frozen=True)
class _H2loadRun:
    """One h2load process: started `delay` seconds after the first, measuring `seconds`
    after its own `warmup`."""

    delay: float
    clients: int
    streams: int
    seconds: float
    warmup: float = 0.0
    rps_per_client: float | None = None


async def h2load(
    url: str,
    *,
    seconds: float,
    clients: int,
    streams: int = 1,
    grpc_message: bytes | None = None,
    http1: bool = False,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """A closed loop: `clients` connections, each keeping `streams` requests in flight.

    grpc_message: send this protobuf as a gRPC unary call (POST over h2c). h2load counts
    every HTTP 200 as success, whatever the grpc-status trailer says: callers must check
    the status elsewhere (bench.edge_overhead reads the server's per-code counters).
    headers: sent with every request (they appear on h2load's command line, so only a
    benchmark mesh's own throwaway credentials belong there).
    """
    run = _H2loadRun(delay=0.0, clients=clients, streams=streams, seconds=seconds)
    return await _h2load([run], url, seconds, grpc_message, http1, headers)


async def h2load_open(
    url: str,
    *,
    rate: float,
    seconds: float,
    grpc_message: bytes | None = None,
    http1: bool = False,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """An open loop at `rate` requests/s in total, spread over one-connection h2load
    processes of at most H2LOAD_MAX_RPS_PER_CONNECTION each.

    One process per connection, because the clients of one h2load start (and fire their
    timers) in phase. Process i starts i periods and i/N of a period after the first, so
    the connections' phases are spread evenly over a period, and warms up until the last
    has started: every process measures the same window.
    """
    connections = max(1, math.ceil(rate / H2LOAD_MAX_RPS_PER_CONNECTION))
    per_connection = rate / connections
    period = 1 / per_connection
    spacing = period * (1 + 1 / connections)
    runs = [
        _H2loadRun(
            delay=i * spacing,
            clients=1,
            # h2c: room for a slow response without delaying the next send.
            streams=1 if http1 else 8,
            seconds=seconds,
            warmup=H2LOAD_OPEN_LEAD + (connections - 1 - i) * spacing,
            rps_per_client=per_connection,
        )
        for i in range(connections)
    ]
    return await _h2load(runs, url, seconds, grpc_message, http1, headers)


async def _h2load(
    runs: list[_H2loadRun],
    url: str,
    seconds: float,
    grpc_message: bytes | None,
    http1: bool,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    binary = require_h2load()
    limit = max(r.delay + r.warmup for r in runs) + seconds + 30
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as directory:
        folder = Path(directory)
        common = ["--threads=1"]
        if http1:
            common.append("--h1")
        if grpc_message is not None:
            body = folder / "request.bin"
            body.write_bytes(grpc_frame(grpc_message))
            common += [f"--data={body}", "--header=content-type: application/grpc"]
            common.append("--header=te: trailers")
        common += [f"--header={name}: {value}" for name, value in (headers or {}).items()]
        # The h2load processes are our only children that exit while this runs, so the
        # children's rusage delta is their CPU (the mesh and the grpc.aio workers are
        # reaped only at the end).
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        processes: list[asyncio.subprocess.Process] = []
        logs: list[Path] = []
        first = clock()
        try:
            for number, run in enumerate(runs):
                await _sleep_until(first + run.delay)
                logs.append(folder / f"requests-{number}.tsv")
                command = [binary, *common, f"--log-file={logs[-1]}"]
                command += [f"--clients={run.clients}", f"--max-concurrent-streams={run.streams}"]
                command.append(f"--duration={round(run.seconds * 1000)}ms")
                if run.warmup:
                    command.append(f"--warm-up-time={round(run.warmup * 1000)}ms")
                if run.rps_per_client is not None:
                    command.append(f"--rps={run.rps_per_client:.3f}")
                processes.append(
                    await asyncio.create_subprocess_exec(
                        *command,
                        url,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.STDOUT,
                    )
                )
            outputs = await asyncio.wait_for(
                asyncio.gather(*(p.communicate() for p in processes)), limit
            )
        except TimeoutError:
            raise LoadError(f"h2load did not finish within {limit:.0f}s") from None
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = LoadResult(
            ok=0,
            seconds=seconds,
            generator_cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        )
        for process, (output, _), log in zip(processes, outputs, logs, strict=True):
            _add_h2load_output(result, process.returncode, output.decode(errors="replace"), log)
    result.latencies.sort()
    return result


def _add_h2load_output(result: LoadResult, code: int | None, text: str, log: Path) -> None:
    counts = _REQUESTS.search(text)
    if code != 0 or counts is None:
        last = text.strip().splitlines()[-1:] or ["(no output)"]
        raise LoadError(f"h2load failed (exit {code}): {last[0]}")
    result.ok += int(counts["ok"])
    logged_errors = 0
    # The log holds the measured window only (not the warm-up): one line per request.
    for line in log.read_text().splitlines():
        _, status, micros = line.split("\t")[:3]
        if status.startswith("2"):
            result.latencies.append(int(micros) / 1e6)
        else:
            result.errors[f"HTTP {status}"] += 1
            logged_errors += 1
    unlogged = sum(int(counts[kind]) for kind in ("failed", "errored", "timeout"))
    if unlogged > logged_errors:
        result.errors["h2load failed, errored or timed out"] += unlogged - logged_errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    return _cpu(psutil.Process(pid))


def pin(pid: int, cores: set[int]) -> None:
    """Set the CPU affinity of every thread of a process (os.sched_setaffinity on a pid
    moves only its main thread; threads started later inherit from their creator)."""
    with contextlib.suppress(psutil.Error):
        for thread in psutil.Process(pid).threads():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.sched_setaffinity(thread.id, cores)


# --- what every benchmark's run and report share -----------------------------------------


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (guest time is inside user time)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + t.steal)


def values_of(samples: Sequence[Any], key: str) -> list[float]:
    """One measured attribute of every sample (all of them must have it)."""
    values = [getattr(s, key) for s in samples]
    assert all(v is not None for v in values), key
    return values


def spread(values: Sequence[float], fmt: str) -> str:
    """The median and, in brackets, the lowest and highest value over the rounds."""
    middle = statistics.median(values)
    return f"{middle:{fmt}} [{min(values):{fmt}} to {max(values):{fmt}}]"


def make_home() -> Path:
    """A fresh AMPMESH_HOME for a benchmark's mesh."""
    home = Path(tempfile.mkdtemp(prefix="ampmesh-bench-"))
    home.chmod(0o755)  # PostgreSQL runs as an unprivileged user when we are root
    return home
