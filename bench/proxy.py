"""What the proxy host adds to a provider call, against calling the provider directly.

The call is GET /sandbox/echo/bench of a customer's Salesforce (the provider sandbox: a
uvicorn Starlette app answering a small JSON description of the request), made two ways on
the real local mesh (brought up with the sandbox in a temporary home, stopped at the end):

  direct      GET <sandbox>/salesforce/sandbox/echo/bench with the connection's bearer token;
  via proxy   GET <proxy host>/sandbox/echo/bench with a builder's proxy headers (API key,
              project, installation): Envoy's Lua filter applies the api's decision, kept
              per worker for its cache lifetime, and forwards with the connection's token.

A third way, at full load only: the proxy in throttle mode (x-amp-rate-limiter-mode:
throttle), in which Envoy asks the api for every call; it shows what deciding each call
in Python would cost, and its maximum is below the half-load rate.

The setup is a builder's (tests/e2e/proxy_world.py): a project with the Salesforce app,
an integration with `proxy: {enabled: true}`, a connection holding sandbox tokens from the
password grant, and an installation. Salesforce because it has no documented rate limit
(HubSpot's 100 calls per 10 s would be enforced by the proxy). Before measuring, one call
each way checks that both reach the same route with the same token, and that the proxied
call carries none of the caller's credentials.

For each way: the maximum throughput (closed loop: --connections HTTP/1.1 connections,
each with one request in flight, for --seconds after a separate --warmup run) with its
p50/p99, then p50/p99 at half load (open loop: requests sent at a fixed rate whether or
not earlier ones returned, at half of direct's median maximum, the same rate for both
ways, so the latencies compare at equal load). The generator is h2load (compiled;
Debian's nghttp2-client); its --rps sends in bursts above 100 req/s per connection, so
open loops run one connection per h2load process below that, their phases spread evenly
(bench/_load.py). Rounds alternate the ways and their order, so the noise of a shared
2-core machine hits both; each figure is the median over the rounds with [lowest to
highest] beside it.

Every window is checked against the sandbox's own counters (reset before each window):
requests that reached the echo route (at least as many as the generator counted, or the
proxy answered some itself), non-200 answers, and the sandbox's own p50 per request. The
api's Authorize calls during the window show how often an Envoy worker asked for a
decision instead of reusing its cached one; CPU seconds per 1k requests of Envoy, the api
process, the sandbox and the generator show who works per call: Envoy and the provider,
and the api only for Envoy's access log stream (its proxy metrics, a batch a second).

Arrangement. By default the sandbox is pinned to one core and Envoy, the generators and
the rest of the mesh to the other, as if the provider ran on its own machine: the
sandbox is the bottleneck of both ways ("sandbox core" near 100%), and the proxy's cost
shows as what Envoy's hop takes from throughput and adds to latency. --no-pin lets the
kernel place everything (all then compete for both cores).

    .venv/bin/python -m bench.proxy [--seconds 10] [--warmup 2] [--rounds 3]
        [--connections 32] [--no-pin] [--no-throttle]

Reading it: the targets are proxy / direct throughput >= 0.8, and added p50 <= 1 ms and
added p99 <= 3 ms at half load; each prints PASS or MISS on its median. "provider p50" is
the sandbox's own time per request (its handler, from its counters); "max ms" the slowest
call of the median window, where a stall (every call of a worker asking the api at once
when its decision expires) shows first. An HTTP/1.1 connection has one call in flight, so
a stall longer than an open-loop connection's send period (about 11 ms) delays that
connection's next sends, timed from when they leave: a stall's weight in p99 is, if
anything, understated. A window in which
other processes took more than NOISY_CORES of CPU is measured again, a few times a run,
and the "noise" line says how busy the machine was. Problems a window's checks find
(errors, answers the provider did not give, a rate the proxy could not sustain) are
printed as warnings: the benchmark reports, it does not assert, and exits 0 once it has
measured (1 only when it could not run). Takes about 4 minutes 30 seconds with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from bench._load import (
    H2LOAD_MAX_RPS_PER_CONNECTION,
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
from services.launcher.mesh import Mesh, MeshOptions
from tests.e2e.proxy_world import ProxyWorld, proxy_world
from tests.support.sandbox import controlling
from tests.support.stack import Stack

PROVIDER = "salesforce"
PATH = "/sandbox/echo/bench"
ROUTE = "echo"
AUTHZ_SERVICE = "ampmesh.edge.v1.ProxyAuthorizationService"
AUTHZ_METHOD = "Authorize"
ORIGIN = "x-amp-proxy-origin"
# A window in which other processes kept this much CPU busy is measured again, at most
# MAX_REPEATS times in a run (each costs a warm-up and a window).
NOISY_CORES = 0.25
MAX_REPEATS = 4
# Targets (issue 15): on the medians over the rounds.
THROUGHPUT_TARGET = 0.8
P50_TARGET_MS = 1.0
P99_TARGET_MS = 3.0


@dataclass(frozen=True)
class Way:
    key: str
    label: str


DIRECT = Way("direct", "direct to provider")
PROXY = Way("proxy", "via proxy host")
# x-amp-rate-limiter-mode: throttle makes every call ask the api (a hold recorded through
# another edge must stop it): what deciding each call in Python would cost. Measured at
# full load only; its maximum is below the half-load rate.
THROTTLE = Way("throttle", "proxy, throttle")
WAYS = (DIRECT, PROXY)
# The processes whose CPU each window splits per request (the generator's comes apart).
PROCESSES = ("envoy", "api", "sandbox")
CPU_COLUMNS = (
    CpuColumn("envoy", 6),
    CpuColumn("api", 7),
    CpuColumn("sandbox", 8),
    CpuColumn("generator", 7, heading="gen"),
)


@dataclass
class Sample:
    """One measured window of one way."""

    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    # The sandbox's own p50 (request received to answer sent), over the window.
    provider_p50_ms: float
    envoy_cpu_s_per_1k: float
    api_cpu_s_per_1k: float
    sandbox_cpu_s_per_1k: float
    generator_cpu_s_per_1k: float
    sandbox_core: float
    # CPU that neither Envoy, the api, the sandbox nor the generator used, in cores: the
    # rest of the mesh, this process, and whatever else runs on the machine (noise).
    other_cores: float
    served: int
    authorize_calls: int
    # What this window's checks found wrong (empty when it is clean).
    problems: list[str] = field(default_factory=list)


@dataclass
class Bench:
    mesh: Mesh
    control: sandbox_pb2_grpc.SandboxControlServiceStub
    urls: dict[str, str]
    headers: dict[str, dict[str, str]]
    seconds: float
    warmup: float
    connections: int

    def pids(self) -> dict[str, int]:
        edge = self.mesh.edge
        assert edge is not None and edge.pid is not None
        return {
            "envoy": edge.pid,
            "api": self.mesh.service("api").process.pid,
            "sandbox": self.mesh.service("sandbox").process.pid,
        }

    def load(self, way: Way, rate: float | None, seconds: float) -> Awaitable[LoadResult]:
        """One run of h2load over HTTP/1.1: closed loop, or open at `rate` requests/s."""
        url, headers = self.urls[way.key], self.headers[way.key]
        if rate is None:
            return h2load(
                url, seconds=seconds, clients=self.connections, http1=True, headers=headers
            )
        return h2load_open(url, rate=rate, seconds=seconds, http1=True, headers=headers)

    async def measure(self, way: Way, rate: float | None) -> Sample:
        await self.load(way, rate, self.warmup)
        pids = self.pids()
        authorize_before = await asyncio.to_thread(_authorize_calls, self.endpoint("api-metrics"))
        # The counters restart here, so they hold this window's requests only (and the
        # sandbox's own latency of them); read before the CPU, so reading costs nothing.
        await self.control.Reset(
            sandbox_pb2.ResetRequest(scopes=[sandbox_pb2.RESET_SCOPE_COUNTERS])
        )
        started, cpu_before, busy_before = time.monotonic(), _cpu(pids), machine_busy()
        result = await self.load(way, rate, self.seconds)
        ended, cpu_after, busy_after = time.monotonic(), _cpu(pids), machine_busy()
        counters = await self.control.GetCounters(sandbox_pb2.GetCountersRequest())
        authorize = await asyncio.to_thread(_authorize_calls, self.endpoint("api-metrics"))
        served = int(counters.proxy_test_requests_by_route[ROUTE])
        not_ok = {int(s): int(n) for s, n in counters.api_requests_by_status.items() if s != 200}
        what = f"{way.label} ({'max' if rate is None else 'half load'})"
        problems: list[str] = []
        if result.errors or not_ok:
            problems.append(
                f"{what}: generator errors {dict(result.errors)}, provider non-200 answers {not_ok}"
            )
        if served < result.ok:
            problems.append(
                f"{what}: the generator counted {result.ok} successes, the provider saw "
                f"only {served}"
            )
        if rate is not None and result.rate < 0.95 * rate:
            problems.append(
                f"{what}: {result.rate:.0f} req/s answered of {rate:.0f} intended: it could "
                "not sustain the half load"
            )
        per = 1000 / max(served, 1)
        wall = ended - started
        used = {name: cpu_after[name] - cpu_before[name] for name in PROCESSES}
        ours = sum(used.values()) + result.generator_cpu
        return Sample(
            rate=result.rate,
            p50_ms=result.percentile_ms(0.50),
            p99_ms=result.percentile_ms(0.99),
            max_ms=result.latencies[-1] * 1000 if result.latencies else float("nan"),
            provider_p50_ms=counters.api_latency.p50.ToNanoseconds() / 1e6,
            envoy_cpu_s_per_1k=used["envoy"] * per,
            api_cpu_s_per_1k=used["api"] * per,
            sandbox_cpu_s_per_1k=used["sandbox"] * per,
            generator_cpu_s_per_1k=result.generator_cpu * per,
            sandbox_core=used["sandbox"] / wall,
            other_cores=max(0.0, busy_after - busy_before - ours) / wall,
            served=served,
            authorize_calls=authorize - authorize_before,
            problems=problems,
        )

    def endpoint(self, name: str) -> str:
        return self.mesh.endpoints()[name]


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def _authorize_calls(metrics_url: str) -> int:
    """How many Authorize calls the api has answered (any status) since it started."""
    return sum(grpc_handled(metrics_url, AUTHZ_SERVICE, AUTHZ_METHOD).values())


async def check_same_call(world: ProxyWorld, urls: dict[str, str], token: str) -> str:
    """Both ways must reach the echo route of one provider with the connection's token,
    the proxied one without the caller's credentials; describe the answers. Never shows
    a token or key: only whether they matched."""
    async with httpx.AsyncClient(timeout=10) as client:
        direct = await client.get(urls["direct"], headers={"authorization": f"Bearer {token}"})
        proxied = await client.get(urls["proxy"], headers=world.headers())
        throttled = await client.get(
            urls["proxy"], headers=world.headers(x_amp_rate_limiter_mode="throttle")
        )
    for way, answer in (("direct", direct), ("via proxy", proxied), ("throttled", throttled)):
        if answer.status_code != 200:
            raise BenchError(f"{way}: HTTP {answer.status_code} from {answer.url.path}")
    for way, answer in (("via proxy", proxied), ("throttled", throttled)):
        if answer.headers.get(ORIGIN) != "provider":
            raise BenchError(f"{way}: {ORIGIN} is {answer.headers.get(ORIGIN)!r}, not provider")
    seen_direct, seen_proxied = direct.json(), proxied.json()
    expected = f"/{PROVIDER}{PATH}"
    for way, seen in (("direct", seen_direct), ("via proxy", seen_proxied)):
        if seen["path"] != expected:
            raise BenchError(f"{way}: the provider saw path {seen['path']!r}, not {expected!r}")
        if seen["headers"].get("authorization") != f"Bearer {token}":
            raise BenchError(f"{way}: the provider did not get the connection's token")
    leaked = [h for h in ("x-api-key", "x-amp-project-id") if h in seen_proxied["headers"]]
    if leaked:
        raise BenchError(f"via proxy: the provider received the caller's {leaked}")
    return (
        f"same call both ways: GET {expected} with the connection's token; answers of "
        f"{len(direct.content)} bytes direct, {len(proxied.content)} bytes via the proxy "
        "(the echo lists the request's headers, which Envoy adds to)"
    )


def _print_table(title: str, results: dict[str, list[Sample]]) -> None:
    width = 25
    head = [f"{'way':<19}", f"{'req/s':<{width}}", f"{'p50 ms':<{width}}"]
    head += [f"{'p99 ms':<{width}}", f"{'max ms':<8}", f"{'provider p50':<12}"]
    head.append(f"{'sandbox core':<12}")
    rows = []
    for way in (w for w in (DIRECT, PROXY, THROTTLE) if w.key in results):
        samples = results[way.key]
        cells = [f"{way.label:<19}"]
        cells.append(f"{spread(values_of(samples, 'rate'), '.0f'):<{width}}")
        cells.append(f"{spread(values_of(samples, 'p50_ms'), '.2f'):<{width}}")
        cells.append(f"{spread(values_of(samples, 'p99_ms'), '.2f'):<{width}}")
        cells.append(f"{statistics.median(values_of(samples, 'max_ms')):<8.1f}")
        provider = statistics.median(values_of(samples, "provider_p50_ms"))
        cells.append(f"{f'{provider:.2f} ms':<12}")
        cells.append(f"{statistics.median(values_of(samples, 'sandbox_core')):<12.0%}")
        rows.append((cells, samples))
    print_table(title, head, rows, CPU_COLUMNS)


def _verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def report(
    peak: dict[str, list[Sample]],
    half: dict[str, list[Sample]],
    rate: float,
    rounds: Rounds[Way, Sample],
) -> dict[str, Any]:
    throughput = ratios(peak, "proxy", "direct", "rate")
    p50 = differences(half, "proxy", "direct", "p50_ms")
    p99 = differences(half, "proxy", "direct", "p99_ms")
    print("ratios, median [lowest to highest] over the rounds (ways compared within a round):")
    print(
        f"  throughput, proxy / direct:  {spread(throughput, '.2f')}  "
        f"(target >= {THROUGHPUT_TARGET})  "
        f"{_verdict(statistics.median(throughput) >= THROUGHPUT_TARGET)}"
    )
    print(
        f"  p50 added at {rate:.0f} req/s, proxy - direct:  {spread(p50, '+.2f')} ms  "
        f"(target <= {P50_TARGET_MS:g} ms)  {_verdict(statistics.median(p50) <= P50_TARGET_MS)}"
    )
    print(
        f"  p99 added at {rate:.0f} req/s, proxy - direct:  {spread(p99, '+.2f')} ms  "
        f"(target <= {P99_TARGET_MS:g} ms)  {_verdict(statistics.median(p99) <= P99_TARGET_MS)}"
    )
    throttled: list[float] = []
    if THROTTLE.key in peak:
        throttled = ratios(peak, THROTTLE.key, "direct", "rate")
        print(
            f"  throughput, proxy in throttle mode (the api decides every call) / direct:  "
            f"{spread(throttled, '.2f')}  (no target: the cost a decision per call would have)"
        )
    proxied = [s for rows in (peak, half) for s in rows["proxy"]]
    asked = sum(s.authorize_calls for s in proxied)
    calls = sum(s.served for s in proxied)
    print(
        f"decisions: the api answered {asked} Authorize calls for {calls} proxied calls "
        "outside throttle mode (each Envoy worker reuses a decision for its cache lifetime)"
    )
    rounds.print_noise("Envoy, the api, the sandbox and the generator", measured="the proxy")
    return {
        "half_load_rate": rate,
        "windows_repeated": rounds.repeats,
        "proxy_over_direct_throughput": throughput,
        "throttle_over_direct_throughput": throttled,
        "p50_added_ms": p50,
        "p99_added_ms": p99,
        "authorize_calls": asked,
        "proxied_calls": calls,
        "max": {k: [asdict(s) for s in v] for k, v in peak.items()},
        "half": {k: [asdict(s) for s in v] for k, v in half.items()},
    }


async def _bench(args: argparse.Namespace) -> list[str]:
    """Run the benchmark on a mesh in a fresh home; the problems its checks found."""
    require_h2load()
    started = time.monotonic()
    async with fresh_mesh(MeshOptions(sandbox=True)) as mesh:
        summary, problems = await _on_mesh(mesh, args, deadline=started + args.budget)
    print_summary(started, summary)
    return problems


async def _on_mesh(
    mesh: Mesh, args: argparse.Namespace, deadline: float
) -> tuple[dict[str, Any], list[str]]:
    stack = Stack(mesh, mesh.endpoints())
    world = await proxy_world(stack, PROVIDER)
    await world.http.aclose()
    # The access token the connection holds (the first of the password grant's pair).
    token = world.secrets[0]
    urls = {
        "direct": f"{stack.endpoints['sandbox-http']}/{PROVIDER}{PATH}",
        "proxy": f"{stack.endpoints['proxy']}{PATH}",
    }
    urls[THROTTLE.key] = urls["proxy"]
    headers = {
        "direct": {"authorization": f"Bearer {token}"},
        "proxy": world.headers(),
        THROTTLE.key: world.headers(x_amp_rate_limiter_mode="throttle"),
    }
    same = await check_same_call(world, urls, token)
    # The provider alone on a core, as if on its own machine: it is the bottleneck both ways.
    arrangement = arrange(
        mesh.service("sandbox").process.pid,
        not args.no_pin,
        alone="the sandbox (the provider)",
        others="Envoy, the api, the load generators and the rest of the mesh",
        unpinned_name="the sandbox",
    )
    async with controlling(stack) as control:
        bench = Bench(mesh, control, urls, headers, args.seconds, args.warmup, args.connections)
        rounds = Rounds(bench.measure, NOISY_CORES, MAX_REPEATS, deadline)
        print(
            f"proxy: GET {PATH} of {PROVIDER} (the sandbox), {args.rounds} rounds, "
            f"{args.seconds:g}s windows after {args.warmup:g}s warm-up "
            f"(mesh up in {mesh.started_in:.1f}s)"
        )
        print(arrangement)
        print(
            f"generator: h2load over HTTP/1.1; closed loop {args.connections} connections in "
            f"one process, open loop one process per connection at most "
            f"{H2LOAD_MAX_RPS_PER_CONNECTION:.0f} req/s"
        )
        print(same)
        full_ways = WAYS if args.no_throttle else (*WAYS, THROTTLE)
        peak = await rounds.run(full_ways, args.rounds, None)
        _print_table(
            f"full load (closed loop, {args.connections} connections, one request in flight each):",
            peak,
        )
        rate = statistics.median(s.rate for s in peak["direct"]) / 2
        half = await rounds.run(WAYS, args.rounds, rate)
        _print_table(
            f"half load (open loop at {rate:.0f} req/s, half of direct's median max, both ways):",
            half,
        )
        return report(peak, half, rate, rounds), rounds.problems


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up before each window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--connections", type=int, default=32, help="closed-loop connections (one request each)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument(
        "--no-throttle", action="store_true", help="skip the throttle-mode full-load windows"
    )
    args = parser.parse_args()
    # Two phases x rounds x ways, plus repeats, x (warm-up + window + checks), plus the
    # mesh's start, setup and stop.
    windows = args.rounds * (2 * len(WAYS) + (0 if args.no_throttle else 1)) + MAX_REPEATS
    estimate = windows * (args.warmup + args.seconds + 0.6) + 60
    if args.rounds < 1 or args.seconds <= 0 or args.warmup < 0 or estimate > 900:
        parser.error(f"rounds/seconds would take ~{estimate:.0f}s; keep it under 900s")
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    args.budget = estimate + 60
    problems = run("proxy bench", _bench(args))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    # It reports; it does not assert: a missed target or a warning is in the output.


if __name__ == "__main__":
    main()
