"""What the Envoy edge costs one cheap RPC, against calling the api service directly.

The RPC is ProviderService/GetProvider("salesforce") (REST: GET /v1/providers/salesforce),
reached three ways on the real local mesh (brought up in a temporary home, stopped at the
end), after checking that all three return the same message:

  direct gRPC     the api process's own port: gRPC over mTLS, as builder-mcp calls it;
  gRPC via Envoy  Envoy's public gRPC listener (h2c), proxied to api over mTLS;
  REST via Envoy  Envoy's REST listener (HTTP/1.1), transcoded to gRPC, then as above.

For each way: the maximum throughput (closed loop: a fixed number of calls in flight for a
fixed time, after a warm-up) and the p50/p99 latency at half load (open loop: requests
sent at a fixed rate whether or not earlier ones returned; the rate is half of direct
gRPC's measured maximum, the same for every way). Rounds alternate the ways, and their
order, so the noise of a shared 2-core machine hits all; each figure is the median over
the rounds with [lowest to highest] beside it.

Generators. A Python client saturates early, so: grpc.aio in several processes for the
two gRPC ways (the only generator here with client certificates, which direct needs), and
h2load (compiled; Debian's nghttp2-client) for REST. gRPC via Envoy is measured by both:
that row bridges the generators, and the "chained" figures combine steps that each
compare like with like (grpc.aio: via Envoy vs direct; h2load: REST vs gRPC via Envoy).
h2load counts any HTTP 200 as success, so every window is checked against the api's own
per-code counters (OK only, and at least as many as the generator counted). h2load's
--rps sends in bursts above 100 req/s per connection, so its open loops run one
connection per h2load process at under 100 req/s, their phases spread evenly.

Arrangement. By default the api process is pinned to one core, and Envoy, the generators
and the rest of the mesh to the other, so the Python api service is the bottleneck in
every way and the edge's cost shows as what it takes from that bottleneck; --no-pin lets
the kernel place everything (all then compete for both cores).

    .venv/bin/python -m bench.edge_overhead [--seconds 4] [--rounds 3] [--no-pin]

Reading it: "api core" is how busy the api process was (about 100% means it was the
bottleneck); "CPU s per 1k requests" splits the cost between the api, Envoy and the
generator. The targets: REST via Envoy / direct throughput >= 0.9, and p99 added at half
load <= 1 ms. On these machines a trivial request's p99 already varies by a few ms from
window to window, so read p99 differences against the spread printed beside them, and
the "noise" line (CPU that other processes took during the windows; a window in which
they took more than NOISY_CORES is measured again, a few times a run). A window that fails
its checks (errors, non-OK answers, a generator falling behind) makes the run print
INVALID and exit 1. Takes about 2 minutes 20 seconds with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from typing import Any

from ampmesh.platform.v1 import providers_pb2
from google.protobuf import json_format

from bench._load import (
    DIRECT,
    EDGE,
    H2LOAD_MAX_RPS_PER_CONNECTION,
    GrpcWorkers,
    LoadResult,
    cpu_seconds,
    h2load,
    h2load_open,
    machine_busy,
    require_h2load,
    spread,
    values_of,
)
from bench._rounds import (
    BenchError,
    CpuColumn,
    Rounds,
    arrange,
    differences,
    fresh_mesh,
    grpc_handled,
    print_summary,
    print_table,
    ratios,
    run,
)
from services.launcher.mesh import Mesh

SERVICE = "ampmesh.platform.v1.ProviderService"
METHOD = "GetProvider"
PROVIDER = "salesforce"
# The api service allows envoy, builder-mcp and mcpanda; builder-mcp is a real direct caller.
DIRECT_IDENTITY = "builder-mcp"
# A window in which other processes kept this much CPU busy is measured again, at most
# MAX_REPEATS times in a run (each costs a warm-up and a window).
NOISY_CORES = 0.25
MAX_REPEATS = 6


@dataclass(frozen=True)
class Way:
    key: str
    label: str
    generator: str


WAYS = (
    Way("direct", "direct gRPC (mTLS)", "grpc.aio"),
    Way("grpc-edge", "gRPC via Envoy", "grpc.aio"),
    Way("grpc-edge-h2load", "gRPC via Envoy", "h2load h2c"),
    Way("rest-edge", "REST via Envoy", "h2load http/1.1"),
)
CPU_COLUMNS = (
    CpuColumn("api", 6),
    CpuColumn("envoy", 7),
    CpuColumn("generator", 7, heading="gen"),
)


@dataclass
class Sample:
    """One measured window of one way."""

    rate: float
    p50_ms: float | None  # open loops only
    p99_ms: float | None
    api_cpu_s_per_1k: float
    envoy_cpu_s_per_1k: float
    generator_cpu_s_per_1k: float
    api_core: float
    # CPU that neither the api, Envoy nor the generator used, in cores: the rest of the
    # mesh, this process, and whatever else runs on the machine (noise).
    other_cores: float
    served: int
    # What this window's checks found wrong (empty when it is valid).
    problems: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    at: float
    api_cpu: float
    envoy_cpu: float
    machine_busy: float
    codes: Counter[str]


@dataclass
class Bench:
    mesh: Mesh
    workers: GrpcWorkers
    seconds: float
    warmup: float
    concurrency: int

    @property
    def endpoints(self) -> dict[str, str]:
        return self.mesh.endpoints()

    def request(self) -> bytes:
        return providers_pb2.GetProviderRequest(provider=PROVIDER).SerializeToString()

    def load(self, way: Way, rate: float | None, seconds: float) -> Awaitable[LoadResult]:
        """One run of a way's generator: closed loop, or open at `rate` requests/s."""
        grpc_url = f"http://{self.endpoints['grpc']}/{SERVICE}/{METHOD}"
        rest_url = f"{self.endpoints['api']}/v1/providers/{PROVIDER}"
        request = self.request()
        # gRPC generators use one HTTP/2 connection per worker with the calls multiplexed,
        # h2load over h2c the same shape; HTTP/1.1 needs a connection per call in flight.
        connections = len(self.workers.pids)
        streams = max(1, self.concurrency // connections)
        if way.key in ("direct", "grpc-edge"):
            target = DIRECT if way.key == "direct" else EDGE
            if rate is None:
                return self.workers.closed(target, self.concurrency, seconds)
            return self.workers.open(target, rate, seconds)
        if way.key == "grpc-edge-h2load":
            if rate is not None:
                return h2load_open(grpc_url, rate=rate, seconds=seconds, grpc_message=request)
            return h2load(
                grpc_url,
                seconds=seconds,
                clients=connections,
                streams=streams,
                grpc_message=request,
            )
        if rate is not None:
            return h2load_open(rest_url, rate=rate, seconds=seconds, http1=True)
        return h2load(rest_url, seconds=seconds, clients=self.concurrency, http1=True)

    async def measure(self, way: Way, rate: float | None) -> Sample:
        await self.load(way, rate, self.warmup)
        before = await self.snapshot()
        result = await self.load(way, rate, self.seconds)
        after = await self.snapshot()
        served = after.codes["OK"] - before.codes["OK"]
        failed = {c: n - before.codes[c] for c, n in after.codes.items() if c != "OK"}
        failed = {c: n for c, n in failed.items() if n}
        what = f"{way.label} ({way.generator}, {'max' if rate is None else 'half load'})"
        problems: list[str] = []
        if result.errors or failed:
            problems.append(
                f"{what}: generator errors {dict(result.errors)}, api non-OK answers {failed}"
            )
        if served < result.ok:
            problems.append(
                f"{what}: the generator counted {result.ok} successes, the api only {served}"
            )
        if result.missed:
            problems.append(f"{what}: the generator fell behind, {result.missed} not sent")
        if rate is not None and result.rate < 0.95 * rate:
            problems.append(f"{what}: {result.rate:.0f} req/s answered, {rate:.0f} intended")
        per = 1000 / max(served, 1)
        wall = after.at - before.at
        api_cpu = after.api_cpu - before.api_cpu
        envoy_cpu = after.envoy_cpu - before.envoy_cpu
        ours = api_cpu + envoy_cpu + result.generator_cpu
        return Sample(
            rate=result.rate,
            p50_ms=None if rate is None else result.percentile_ms(0.50),
            p99_ms=None if rate is None else result.percentile_ms(0.99),
            api_cpu_s_per_1k=api_cpu * per,
            envoy_cpu_s_per_1k=envoy_cpu * per,
            generator_cpu_s_per_1k=result.generator_cpu * per,
            api_core=api_cpu / wall,
            other_cores=max(0.0, after.machine_busy - before.machine_busy - ours) / wall,
            served=served,
            problems=problems,
        )

    async def snapshot(self) -> Snapshot:
        url = self.endpoints["api-metrics"]
        codes = await asyncio.to_thread(grpc_handled, url, SERVICE, METHOD)
        edge = self.mesh.edge
        assert edge is not None and edge.pid is not None
        return Snapshot(
            at=time.monotonic(),
            api_cpu=cpu_seconds(self.mesh.service("api").process.pid),
            envoy_cpu=cpu_seconds(edge.pid),
            machine_busy=machine_busy(),
            codes=codes,
        )


async def check_same_message(bench: Bench) -> str:
    """The three ways must return one message; describe it."""
    direct = providers_pb2.ProviderInfo.FromString(await bench.workers.fetch(DIRECT))
    via_edge = providers_pb2.ProviderInfo.FromString(await bench.workers.fetch(EDGE))
    url = f"{bench.endpoints['api']}/v1/providers/{PROVIDER}"

    def get() -> tuple[int, bytes]:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return int(response.status), response.read()

    status, body = await asyncio.to_thread(get)
    rest = json.loads(body)
    expected = json_format.MessageToDict(direct, always_print_fields_with_no_presence=True)
    if direct.name != PROVIDER:
        raise BenchError(f"direct gRPC returned provider {direct.name!r}, not {PROVIDER!r}")
    if via_edge != direct:
        raise BenchError("gRPC via Envoy returned a different message than direct gRPC")
    if status != 200 or rest != expected:
        raise BenchError(f"REST via Envoy (HTTP {status}) returned a different message")
    return (
        f"same message three ways: ProviderInfo {direct.name!r}, "
        f"{direct.ByteSize()} bytes protobuf, {len(body)} bytes JSON"
    )


def _print_table(title: str, results: dict[str, list[Sample]], latency: bool) -> None:
    width = 22
    names = ["p50 ms", "p99 ms"] if latency else ["api core"]
    widths = [width] * 2 if latency else [8]
    head = [f"{'way':<19}", f"{'generator':<16}", f"{'req/s':<{width}}"]
    head += [f"{n:<{w}}" for n, w in zip(names, widths, strict=True)]
    rows = []
    for way in WAYS:
        samples = results[way.key]
        cells = [f"{way.label:<19}", f"{way.generator:<16}"]
        cells.append(f"{spread(values_of(samples, 'rate'), '.0f'):<{width}}")
        if latency:
            cells.append(f"{spread(values_of(samples, 'p50_ms'), '.2f'):<{width}}")
            cells.append(f"{spread(values_of(samples, 'p99_ms'), '.2f'):<{width}}")
        else:
            cells.append(f"{statistics.median(values_of(samples, 'api_core')):<8.0%}")
        rows.append((cells, samples))
    print_table(title, head, rows, CPU_COLUMNS)


def report(
    peak: dict[str, list[Sample]],
    half: dict[str, list[Sample]],
    rate: float,
    rounds: Rounds[Way, Sample],
) -> dict[str, Any]:
    rest_direct = ratios(peak, "rest-edge", "direct", "rate")
    grpc_direct = ratios(peak, "grpc-edge", "direct", "rate")
    rest_grpc = ratios(peak, "rest-edge", "grpc-edge-h2load", "rate")
    chained = [a * b for a, b in zip(grpc_direct, rest_grpc, strict=True)]
    p99_rest = differences(half, "rest-edge", "direct", "p99_ms")
    p99_grpc = differences(half, "grpc-edge", "direct", "p99_ms")
    p99_rest_step = differences(half, "rest-edge", "grpc-edge-h2load", "p99_ms")
    p99_chained = [a + b for a, b in zip(p99_grpc, p99_rest_step, strict=True)]
    print("ratios, median [lowest to highest] over the rounds (ways compared within a round):")
    print(
        f"  throughput, REST via Envoy / direct gRPC:  {spread(rest_direct, '.2f')}  "
        "(target >= 0.9; h2load / grpc.aio)"
    )
    print(
        f"    chained, one generator per step:  {spread(chained, '.2f')}  "
        f"(gRPC via Envoy / direct, grpc.aio: {statistics.median(grpc_direct):.2f}; "
        f"REST / gRPC via Envoy, h2load: {statistics.median(rest_grpc):.2f})"
    )
    print(
        f"  p99 added at {rate:.0f} req/s, REST via Envoy - direct gRPC:  "
        f"{spread(p99_rest, '+.2f')} ms  (target <= 1 ms; h2load - grpc.aio)"
    )
    print(
        f"    chained, one generator per step:  {spread(p99_chained, '+.2f')} ms  "
        f"(gRPC via Envoy - direct, grpc.aio: {statistics.median(p99_grpc):+.2f}; "
        f"REST - gRPC via Envoy, h2load: {statistics.median(p99_rest_step):+.2f})"
    )
    rounds.print_noise("api, Envoy and the generator", measured="the edge")
    return {
        "half_load_rate": rate,
        "windows_repeated": rounds.repeats,
        "rest_over_direct_throughput": rest_direct,
        "rest_over_direct_throughput_chained": chained,
        "p99_added_ms_rest_vs_direct": p99_rest,
        "p99_added_ms_chained": p99_chained,
        "max": {k: [asdict(s) for s in v] for k, v in peak.items()},
        "half": {k: [asdict(s) for s in v] for k, v in half.items()},
    }


async def _bench(args: argparse.Namespace) -> list[str]:
    """Run the benchmark on a mesh in a fresh home; the problems found (none if valid)."""
    require_h2load()
    started = time.monotonic()
    async with fresh_mesh() as mesh:
        summary, problems = await _on_mesh(mesh, args, deadline=started + args.budget)
    print_summary(started, summary)
    return problems


async def _on_mesh(
    mesh: Mesh, args: argparse.Namespace, deadline: float
) -> tuple[dict[str, Any], list[str]]:
    # The api alone on a core, the bottleneck every way: the edge's cost is what it takes.
    arrangement = arrange(mesh.service("api").process.pid, not args.no_pin, alone="api")
    endpoints = mesh.endpoints()
    request = providers_pb2.GetProviderRequest(provider=PROVIDER).SerializeToString()
    mesh.credentials(DIRECT_IDENTITY)  # issued here; the workers only load it
    async with GrpcWorkers(
        args.workers,
        method=f"/{SERVICE}/{METHOD}",
        request=request,
        direct=endpoints["api-service"],
        direct_identity=DIRECT_IDENTITY,
        server_identity="api",
        edge=endpoints["grpc"],
        cert_dir=mesh.cert_dir,
    ) as workers:
        bench = Bench(mesh, workers, args.seconds, args.warmup, args.concurrency)
        rounds = Rounds(bench.measure, NOISY_CORES, MAX_REPEATS, deadline)
        same = await check_same_message(bench)
        print(
            f"edge overhead: {SERVICE}/{METHOD}({PROVIDER}), {args.rounds} rounds, "
            f"{args.seconds:g}s windows after {args.warmup:g}s warm-up "
            f"(mesh up in {mesh.started_in:.1f}s)"
        )
        print(arrangement)
        print(
            f"generators: grpc.aio in {args.workers} processes, one HTTP/2 connection each; "
            f"h2load, closed loop one process, open loop one process per connection "
            f"at most {H2LOAD_MAX_RPS_PER_CONNECTION:.0f} req/s; "
            f"{args.concurrency} calls in flight in closed loops"
        )
        print(same)
        peak = await rounds.run(WAYS, args.rounds, None)
        _print_table(
            f"maximum throughput (closed loop, {args.concurrency} in flight):", peak, False
        )
        rate = statistics.median(s.rate for s in peak["direct"]) / 2
        half = await rounds.run(WAYS, args.rounds, rate)
        _print_table(
            f"half load (open loop at {rate:.0f} req/s, half of direct gRPC's median max):",
            half,
            True,
        )
        return report(peak, half, rate, rounds), rounds.problems


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up before each window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop calls in flight")
    parser.add_argument("--workers", type=int, default=2, help="grpc.aio load processes")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    args = parser.parse_args()
    # Two phases x rounds x ways, plus repeats, x (warm-up + window + scrapes), plus the
    # mesh's start and stop.
    windows = 2 * args.rounds * len(WAYS) + MAX_REPEATS
    estimate = windows * (args.warmup + args.seconds + 0.4) + 30
    if args.rounds < 1 or args.seconds <= 0 or args.warmup < 0 or estimate > 300:
        parser.error(f"rounds/seconds would take ~{estimate:.0f}s; keep it under 300s")
    if args.concurrency < args.workers or args.workers < 1:
        parser.error("--concurrency must be at least --workers, which must be at least 1")
    args.budget = estimate + 60
    problems = run("edge_overhead", _bench(args))
    for problem in problems:
        print(f"INVALID: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
