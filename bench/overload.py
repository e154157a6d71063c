"""What the public edge does when it is asked for more than it can serve.

On a fresh local mesh (its edge configured from the environment, AMPMESH_EDGE_*, as `up`
would: services/launcher/edge.py, OverloadSettings), one cheap authenticated call,
GET /v1/projects/{project} on the api listener (an API key lookup and one row), sent with
KEYS API keys of one project so the per-key limits alone do not decide the outcome:

1. capacity: closed loops at rising concurrency (1, 2, 4, ... CONCURRENCY), each for a few
   seconds; the capacity is the best rate of 200s. A loop that meets a 429 or 503 says so
   (the limits, not the api, set that figure: raise them for the run, see below).
2. unloaded: an open loop at a tenth of the capacity: p50 and p99 of the answers.
3. loaded: an open loop at twice the capacity for --seconds (30): the share of 200, 429 and
   503 answers, any other status (target: none), the p99 of the 200s and its ratio to the
   unloaded p99 (target: at most 3), and whether every 429/503 carried Retry-After and
   problem+json (sampled with a Python client beside the load).
4. after: whether every process of the mesh is healthy, and the call answers 200 again.

The open loops are h2load over h2c (bench._load.h2load_open: the rate is spread over
one-connection processes, so a slow answer never holds back the next request, and the
latency is what a client waiting for its answer sees), one set of processes per key.

    .venv/bin/python -m bench.overload [--seconds 30] [--keys 8]
    AMPMESH_EDGE_MAX_REQUESTS=100000 AMPMESH_EDGE_RATE_LIMIT_PER_KEY=100000 \\
        .venv/bin/python -m bench.overload     # the same load with nothing shed

The process exits 1 when a target is missed. Takes about a minute and a half with the
defaults (bringing the mesh up included).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import psutil

from bench._load import (
    H2LOAD_MAX_RPS_PER_CONNECTION,
    H2LOAD_OPEN_LEAD,
    LoadResult,
    _h2load,
    _H2loadRun,
    cpu_seconds,
    h2load,
    machine_busy,
)
from bench._rounds import BenchError, fresh_mesh, run
from services.launcher.mesh import Mesh, MeshOptions
from services.launcher.state import status

CONCURRENCY = (1, 2, 4, 8, 16, 32)
CAPACITY_SECONDS = 3.0
UNLOADED_SECONDS = 8.0
UNLOADED_SHARE = 0.1
OVERLOAD = 2.0
TARGET_P99_RATIO = 3.0
SHED = {429, 503}
# Streams each open-loop connection may keep in flight: enough that slow answers never stop
# it sending on time (h2load sends nothing while every stream is busy, which would turn the
# open loop into a closed one and hide the latency overload causes).
OPEN_STREAMS = 256


@dataclass
class Answers:
    """A load window's answers: the 200s' latencies, and every status counted."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, result: LoadResult) -> None:
        self.statuses[200] += len(result.latencies)
        self.latencies.extend(result.latencies)
        for error, count in result.errors.items():
            status = error.removeprefix("HTTP ")
            self.statuses[int(status) if status.isdigit() else 0] += count
        self.seconds = max(self.seconds, result.seconds)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok_rate(self) -> float:
        return self.statuses[200] / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    def share(self, status: int) -> float:
        return self.statuses[status] / self.total if self.total else 0.0

    def others(self) -> dict[int, int]:
        return {s: n for s, n in sorted(self.statuses.items()) if s not in {200, *SHED}}


async def _world(mesh: Mesh, keys: int) -> tuple[str, list[str]]:
    """The URL of one project, and `keys` API keys of it."""
    api = mesh.endpoints()["api"]
    assert mesh.admin is not None
    headers = {"x-api-key": mesh.admin.api_key}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as admin:
        created = await admin.post(
            "/v1/projects", json={"name": f"overload-{time.time_ns()}", "appName": "bench"}
        )
        if created.status_code != 201:
            raise BenchError(f"could not create a project: {created.status_code} {created.text}")
        project = created.json()["id"]
        secrets = []
        for n in range(keys):
            made = await admin.post(
                f"/v1/projects/{project}/api-keys", json={"label": f"load-{n}", "scopes": ["full"]}
            )
            if made.status_code != 201:
                raise BenchError(f"could not create an API key: {made.status_code} {made.text}")
            secrets.append(made.json()["key"])
    url = f"{api}/v1/projects/{project}"
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(url, headers={"x-api-key": secrets[0]})
    if answer.status_code != 200:
        raise BenchError(f"GET {url} answered {answer.status_code}: {answer.text[:200]}")
    return url, secrets


async def _closed(url: str, keys: list[str], concurrency: int) -> Answers:
    processes = min(concurrency, len(keys))
    streams = max(1, concurrency // processes)
    results = await asyncio.gather(
        *(
            h2load(
                url,
                seconds=CAPACITY_SECONDS,
                clients=1,
                streams=streams,
                headers={"x-api-key": keys[n]},
            )
            for n in range(processes)
        )
    )
    answers = Answers()
    for result in results:
        answers.add(result)
    return answers


async def _open_loop(url: str, key: str, rate: float, seconds: float) -> LoadResult:
    """bench._load.h2load_open's spread of one-connection processes, with OPEN_STREAMS."""
    connections = max(1, math.ceil(rate / H2LOAD_MAX_RPS_PER_CONNECTION))
    period = connections / rate
    spacing = period * (1 + 1 / connections)
    runs = [
        _H2loadRun(
            delay=i * spacing,
            clients=1,
            streams=OPEN_STREAMS,
            seconds=seconds,
            warmup=H2LOAD_OPEN_LEAD + (connections - 1 - i) * spacing,
            rps_per_client=rate / connections,
        )
        for i in range(connections)
    ]
    return await _h2load(runs, url, seconds, None, False, {"x-api-key": key})


async def _open(url: str, keys: list[str], rate: float, seconds: float) -> Answers:
    per_key = rate / len(keys)
    results = await asyncio.gather(*(_open_loop(url, key, per_key, seconds) for key in keys))
    answers = Answers()
    for result in results:
        answers.add(result)
    return answers


@dataclass
class Sampled:
    """What a Python client beside the load saw of the shed answers' shape."""

    shed: int = 0
    well_formed: int = 0
    problems: list[str] = field(default_factory=list)


async def _sample_shapes(url: str, key: str, until: float, sampled: Sampled) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        while time.monotonic() < until:
            response = await client.get(url, headers={"x-api-key": key})
            if response.status_code in SHED:
                sampled.shed += 1
                body = response.json() if response.headers.get("content-type") else {}
                good = (
                    response.headers.get("content-type") == "application/problem+json"
                    and body.get("status") == response.status_code
                    and bool(body.get("title"))
                    and bool(body.get("detail"))
                    and response.headers.get("retry-after", "").isdigit()
                )
                if good:
                    sampled.well_formed += 1
                elif len(sampled.problems) < 3:
                    sampled.problems.append(f"{response.status_code} {dict(response.headers)}")
            await asyncio.sleep(0.01)


async def _healthy_within(mesh: Mesh, patience: float) -> bool:
    """Whether `ampmesh status` finds every process healthy within patience seconds."""
    deadline = time.monotonic() + patience
    while True:
        described = await status(mesh.home)
        processes = (described or {}).get("processes", [])
        unhealthy = [p["name"] for p in processes if not p.get("healthy")]
        if processes and not unhealthy:
            return True
        if time.monotonic() > deadline:
            print(f"   unhealthy: {unhealthy or 'no mesh.json'}")
            return False
        await asyncio.sleep(1)


async def bench(seconds: float, keys: int) -> bool:
    async with fresh_mesh(MeshOptions()) as mesh:
        if mesh.edge is None:
            raise BenchError("the mesh has no edge")
        print(f"edge settings: {mesh.edge.overload}")
        url, secrets = await _world(mesh, keys)

        print(f"\n1. capacity (closed loops of {CAPACITY_SECONDS:.0f} s, {keys} keys)")
        best = 0.0
        for concurrency in CONCURRENCY:
            answers = await _closed(url, secrets, concurrency)
            shed = {s: n for s, n in answers.statuses.items() if s != 200}
            print(
                f"   {concurrency:>3} in flight: {answers.ok_rate:7.0f} req/s of 200, "
                f"p50 {answers.percentile_ms(0.5):6.1f} ms, "
                f"p99 {answers.percentile_ms(0.99):6.1f} ms"
                + (f", not 200: {shed}" if shed else "")
            )
            best = max(best, answers.ok_rate)
        if best <= 0:
            raise BenchError("no call succeeded while measuring capacity")
        print(f"   capacity: {best:.0f} req/s")

        rate = best * UNLOADED_SHARE
        unloaded = await _open(url, secrets, rate, UNLOADED_SECONDS)
        p50, p99 = unloaded.percentile_ms(0.5), unloaded.percentile_ms(0.99)
        print(f"\n2. unloaded ({rate:.0f} req/s for {UNLOADED_SECONDS:.0f} s)")
        print(f"   p50 {p50:.1f} ms, p99 {p99:.1f} ms, statuses {dict(unloaded.statuses)}")

        rate = best * OVERLOAD
        print(f"\n3. loaded ({rate:.0f} req/s, {OVERLOAD:.0f}x capacity, for {seconds:.0f} s)")
        sampled = Sampled()
        # Who had the CPU: under overload the api needs its share, and the edge's shedding,
        # the generators and other work on the machine compete with it.
        pids = {"api": mesh.service("api").process.pid, "envoy": mesh.edge.pid}
        before = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
        busy_before, started = machine_busy(), time.monotonic()
        sampler = asyncio.create_task(
            _sample_shapes(url, secrets[0], time.monotonic() + seconds, sampled)
        )
        loaded = await _open(url, secrets, rate, seconds)
        await sampler
        window = time.monotonic() - started
        cores = {
            name: (cpu_seconds(pid) - before[name]) / window
            for name, pid in pids.items()
            if pid and name in before
        }
        machine = (machine_busy() - busy_before) / window
        loaded_p99 = loaded.percentile_ms(0.99)
        ratio = loaded_p99 / p99 if p99 else float("inf")
        # Fewer than offered: the generator fell behind (the machine is short of CPU).
        print(f"   answers: {loaded.total} ({loaded.total / seconds:.0f}/s of {rate:.0f}/s sent)")
        for status in (200, 429, 503):
            print(f"   {status}: {loaded.share(status):6.1%}")
        others = loaded.others()
        print(f"   other statuses: {others or 'none'}")
        print(
            f"   accepted: {loaded.ok_rate:.0f} req/s, p50 {loaded.percentile_ms(0.5):.1f} ms, "
            f"p99 {loaded_p99:.1f} ms = {ratio:.2f}x unloaded p99 "
            f"(target <= {TARGET_P99_RATIO:.0f}x)"
        )
        print(
            f"   cores busy: api {cores.get('api', 0):.2f}, envoy {cores.get('envoy', 0):.2f}, "
            f"whole machine {machine:.2f} (of {psutil.cpu_count()})"
        )
        print(
            f"   shed answers sampled: {sampled.shed}, with problem+json and Retry-After: "
            f"{sampled.well_formed}" + (f"; e.g. {sampled.problems}" if sampled.problems else "")
        )

        print("\n4. after")
        healthy = await _healthy_within(mesh, 30.0)
        async with httpx.AsyncClient(timeout=10) as client:
            again = await client.get(url, headers={"x-api-key": secrets[-1]})
        print(f"   mesh healthy: {healthy}; the call answers {again.status_code}")

    met = (
        not others
        and ratio <= TARGET_P99_RATIO
        and sampled.well_formed == sampled.shed
        and healthy
        and again.status_code == 200
    )
    print(f"\n{'targets met' if met else 'TARGETS MISSED'}")
    if loaded.latencies and unloaded.latencies:
        spread = statistics.quantiles(sorted(loaded.latencies), n=100)
        print(f"(loaded p90 {spread[89] * 1000:.1f} ms, p95 {spread[94] * 1000:.1f} ms)")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the overload")
    parser.add_argument("--keys", type=int, default=8, help="API keys sending the load")
    args = parser.parse_args()
    if not run("bench.overload", bench(args.seconds, args.keys)):
        sys.exit(1)


if __name__ == "__main__":
    main()
