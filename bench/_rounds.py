"""How the load benchmarks (bench.edge_overhead, bench.token_path, bench.proxy) run and
report: what they share besides the generators in bench/_load.py.

- `fresh_mesh`: the real local mesh in a temporary home, removed afterwards (kept when the
  launcher failed: its message names a log inside it).
- `arrange` / `unpin`: the process under test alone on one core, everything else this
  benchmark started (Envoy, the rest of the mesh, the generators) on the others.
- `Rounds`: measures every way once per round, alternating the order, and measures a
  window again when other processes kept the machine busy during it; says how busy.
- `grpc_handled`: a service's own count of the calls it answered, per status code.
- `ratios` / `differences`: two ways compared round by round, `print_table` the per-way
  table with its CPU-per-1k-requests columns, `print_summary` a run's closing lines,
  `run` the entry point's error handling.

Not in bench/_load.py: that module is imported by the spawned load workers, and this one
brings in the launcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench._load import LoadError, make_home, pin, values_of
from services.launcher.edge import EdgeError
from services.launcher.infra.base import InfraError
from services.launcher.mesh import Mesh, MeshError, MeshOptions, running_mesh


class BenchError(RuntimeError):
    """The benchmark cannot run (or, where it checks, its result is invalid); one line
    says why."""


# --- the mesh and its arrangement on the cores ---------------------------------------------


@contextlib.asynccontextmanager
async def fresh_mesh(options: MeshOptions | None = None) -> AsyncIterator[Mesh]:
    """The local mesh in a fresh home, stopped at the end and its home removed."""
    home = make_home()
    try:
        async with running_mesh(home, options) as mesh:
            yield mesh
    except (MeshError, EdgeError, InfraError):
        raise  # the home stays: the message names a log inside it
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    shutil.rmtree(home, ignore_errors=True)


# What shares the other cores, unless a benchmark names more (bench.proxy adds the api).
REST_OF_THE_MESH = "Envoy, the load generators and the rest of the mesh"


def arrange(
    pid: int,
    pinned: bool,
    *,
    alone: str,
    others: str = REST_OF_THE_MESH,
    unpinned_name: str | None = None,
) -> str:
    """Pin process `pid` (the one a benchmark wants to be the bottleneck) to the first
    core, and every other process this one started, and this one, to the others; the
    line that says so. `alone` names that process in the line, `others` what shares the
    other cores. Unpinned, the line says the kernel places everything (naming the
    process `unpinned_name`, by default `alone`)."""
    if not pinned:
        return (
            f"arrangement: unpinned (the kernel places {unpinned_name or alone}, Envoy and "
            "the generators)"
        )
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise BenchError("pinning needs 2 cores or more: run with --no-pin")
    first, rest = {cores[0]}, set(cores[1:])
    for child in psutil.Process().children(recursive=True):
        pin(child.pid, first if child.pid == pid else rest)
    # This process too: the generators it starts next inherit the other cores.
    pin(os.getpid(), rest)
    return (
        f"arrangement: pinned - {alone} on core {cores[0]}; {others} on core(s) "
        f"{','.join(map(str, cores[1:]))}"
    )


def unpin() -> None:
    """Let the kernel place everything `arrange` pinned again."""
    cores = set(os.sched_getaffinity(0)) | set(range(psutil.cpu_count() or 1))
    for child in psutil.Process().children(recursive=True):
        pin(child.pid, cores)
    pin(os.getpid(), cores)


# --- rounds of windows -----------------------------------------------------------------------


class Way(Protocol):
    """One of the things a benchmark compares (a route, an RPC, a generator)."""

    @property
    def key(self) -> str: ...


class Window(Protocol):
    """One measured window of one way."""

    # CPU that none of the processes the benchmark accounts for used, in cores.
    @property
    def other_cores(self) -> float: ...

    # What the window's checks found wrong (empty when it is clean).
    @property
    def problems(self) -> list[str]: ...


W = TypeVar("W", bound=Way)
S = TypeVar("S", bound=Window)


@dataclass
class Rounds(Generic[W, S]):
    """Measures ways round after round with `measure` (one warm-up and window of one way,
    closed loop when the rate is None, else open at that rate) and keeps what the run
    saw: windows measured again, every window's problems, the kept windows' noise.

    Other processes on the machine (tests, builds) steal whole windows: a window in which
    they took more than `noisy_cores` is measured again, at most `max_repeats` times in a
    run (each costs a warm-up and a window). Past `deadline` (time.monotonic) the run
    stops with a BenchError.
    """

    measure: Callable[[W, float | None], Awaitable[S]]
    noisy_cores: float
    max_repeats: int
    deadline: float
    repeats: int = 0
    problems: list[str] = field(default_factory=list)
    kept: list[S] = field(default_factory=list)

    async def run(self, ways: Sequence[W], rounds: int, rate: float | None) -> dict[str, list[S]]:
        """Every way's windows, one per round, by way key."""
        results: dict[str, list[S]] = {way.key: [] for way in ways}
        for number in range(rounds):
            # Alternate the order, so a drift during a round does not favour one way.
            order = ways if number % 2 == 0 else tuple(reversed(ways))
            for way in order:
                if time.monotonic() > self.deadline:
                    raise BenchError("the benchmark ran past its time budget; use fewer --rounds")
                sample = await self.measure(way, rate)
                if sample.other_cores > self.noisy_cores and self.repeats < self.max_repeats:
                    self.repeats += 1
                    sample = await self.measure(way, rate)
                self.problems.extend(sample.problems)
                self.kept.append(sample)
                results[way.key].append(sample)
        return results

    def noise(self, besides: str, *, limits: bool = True) -> str:
        """How busy other processes kept the machine in the kept windows; `besides` names
        the processes a window accounts for. `limits` adds the machine's core count and
        the most windows a run measures again."""
        others = [s.other_cores for s in self.kept]
        machine = f" (of {psutil.cpu_count()})" if limits else ""
        most = f" (at most {self.max_repeats})" if limits else ""
        return (
            f"noise: besides {besides}, the machine was busy {statistics.median(others):.2f} "
            f"cores in the median window, {max(others):.2f} at most{machine}; {self.repeats} "
            f"window(s) measured again for being above {self.noisy_cores}{most}"
        )

    def print_noise(self, besides: str, measured: str) -> None:
        """The noise line, and a warning when most windows were noisy: then the figures
        measure the contention more than `measured`."""
        print(self.noise(besides))
        if statistics.median(s.other_cores for s in self.kept) > self.noisy_cores:
            print(
                "warning: other work kept the machine busy through most windows; these figures "
                f"measure that contention more than {measured}: run again when the machine is "
                "idle"
            )


def grpc_handled(metrics_url: str, service: str, method: str) -> Counter[str]:
    """How many calls of one RPC a service has answered since it started, per gRPC status
    code, from its Prometheus endpoint: what a window's checks compare with what the
    generator counted."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:  # noqa: S310 (loopback)
        text = response.read().decode()
    codes: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "grpc_server_handled":
            continue
        for sample in family.samples:
            labels = sample.labels
            ours = labels.get("grpc_service") == service and labels.get("grpc_method") == method
            if ours and sample.name.endswith("_total"):
                codes[labels["grpc_code"]] += int(sample.value)
    return codes


def ratios(rows: Mapping[str, Sequence[Any]], top: str, bottom: str, key: str) -> list[float]:
    """`key` of way `top` over the same of way `bottom`, round by round."""
    pairs = zip(values_of(rows[top], key), values_of(rows[bottom], key), strict=True)
    return [a / b for a, b in pairs]


def differences(rows: Mapping[str, Sequence[Any]], top: str, bottom: str, key: str) -> list[float]:
    """`key` of way `top` minus the same of way `bottom`, round by round."""
    pairs = zip(values_of(rows[top], key), values_of(rows[bottom], key), strict=True)
    return [a - b for a, b in pairs]


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuColumn:
    """A column of the median CPU seconds per 1k requests one process spent, read from
    each window's `<process>_cpu_s_per_1k`, right-aligned in `width` under `heading`
    (by default the process)."""

    process: str
    width: int
    heading: str = ""


def print_table(
    title: str,
    head: Sequence[str],
    rows: Iterable[tuple[Sequence[str], Sequence[Any]]],
    cpu: Sequence[CpuColumn],
    per: str = "requests",
) -> None:
    """A table of one row per way: `head` the padded headings of the benchmark's own
    columns, each row its padded cells and its windows, followed by the `cpu` columns
    under "CPU s per 1k <per>". Columns are joined by a space, so a wide value never runs
    into the next one."""
    print(title)
    print("  " + " ".join(head) + f" CPU s per 1k {per}")
    headings = "".join(f"{c.heading or c.process:>{c.width}}" for c in cpu)
    print("  " + " ".join(" " * len(h) for h in head) + " " + headings)
    for cells, samples in rows:
        used = "".join(
            f"{statistics.median(values_of(samples, f'{c.process}_cpu_s_per_1k')):>{c.width}.3f}"
            for c in cpu
        )
        print("  " + " ".join(cells) + " " + used)


def print_summary(started: float, summary: Mapping[str, Any]) -> None:
    """A run's last lines: how long it took since `started` (time.monotonic, before the
    mesh started), then its figures and every window as one line of JSON."""
    print(f"total {time.monotonic() - started:.0f}s including mesh start and stop")
    print(json.dumps(summary))


# --- the entry point -----------------------------------------------------------------------

T = TypeVar("T")


def run(name: str, bench: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark's coroutine; when it cannot run, say why in one line prefixed by
    `name` and exit 1."""
    try:
        return asyncio.run(bench)
    except (BenchError, LoadError, MeshError, EdgeError, InfraError) as failed:
        # The launcher's errors may append a log tail: its first line says what failed.
        print(f"{name}: {str(failed).splitlines()[0]}", file=sys.stderr)
        sys.exit(1)
