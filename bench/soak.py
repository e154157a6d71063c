"""A soak of mixed traffic: does any process of the mesh grow, and is any record lost?

Everything runs on the real local mesh with the provider sandbox (a temporary home,
stopped at the end). For --minutes, four kinds of traffic run at once through the public
API, as builders and their customers would send it:

1. Connects: a new connection every --connect-interval seconds, alternately imported
   (connections:generate with fresh sandbox tokens) and made by the OAuth connect flow
   (oauth-connect, the sandbox's consent, the api's callback, the token exchange).
2. Refresh storms: every --storm-interval seconds a connection whose access token
   expired a minute ago, then --callers concurrent GETs of it with includeCreds=true and
   refresh=ifExpired: every caller must get 200 and the same new token (one refresh),
   and a few concurrent refresh=force calls on a connection made earlier.
3. Backfills: --backfills loops, each with its own project and object; each round seeds
   --records new HubSpot records of its object in the sandbox, installs the integration
   for a new group (which starts the backfill) and waits until every record reached the
   receiver and the API reports the read's operation ended in success. The loops run
   back to back for the whole soak.
4. Deliveries: the backfills' pages go to a local webhook receiver (tests/support/
   webhooks.py) that checks every signature with the svix library and answers
   --failure-share of the requests (chosen at random) with 500, so messenger retries.
   Records are counted per installation, so the tally is exact: expected (what the
   sandbox holds) against delivered exactly once, lost, duplicated.

After --warmup minutes, the resident memory of every process of the mesh (each service,
each piece of infrastructure, Envoy; a process with its children, so PostgreSQL with its
backends) is sampled every --sample-every seconds until the traffic stops. Growth is
measured against the same run's figure right after the warm-up, not against a fixed
number (machines are noisy): "after warm-up" is the median of the first three samples,
"end" the median of the last three; beside them the trend (MiB per minute, least squares
over every sample), which tells a plateau from a steady climb. Target: no service grows
more than 10% (PASS/MISS), and zero lost records. The growth of the rest is printed with
its verdict but is no target: the infrastructure holds the data the soak adds (projects,
connections, deliveries, workflow histories) and the provider sandbox, a stand-in for
HubSpot, keeps what tests read back (every token it issued, every latency it measured)
and caches its last 64 searches, each holding the records of one backfill. A tree's RSS
counts a shared page once per process (PostgreSQL's shared buffers, once per backend):
the PSS column, which splits shared pages, is the growth to read for such trees.
Errors are counted by kind: HTTP answers of our API other than the expected, token
checks that failed, backfills that timed out, processes that changed pid or died.

Once the traffic stops, the backfills still running finish (up to --patience seconds),
a few seconds pass for late redeliveries, then the tally is printed. Exits 1 when a
record was lost or duplicated, a service grew more than 10%, or any error was counted.

    .venv/bin/python -m bench.soak                          # the full 20-minute soak
    .venv/bin/python -m bench.soak --minutes 3 --warmup 1   # a quick check of the bench

Not run in CI: it takes --minutes plus about a minute to start and stop the mesh.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from ampmesh.sandbox.v1 import sandbox_pb2_grpc

from bench._load import make_home
from services.launcher.mesh import Mesh, MeshOptions, running_mesh
from services.runtime.channels import mesh_channel
from tests.e2e.reads_world import ReadsWorld, make_world, provider_ids, seed
from tests.support.control_plane import admin_client
from tests.support.oauth_popup import connect_in_popup
from tests.support.sandbox import sandbox_connection
from tests.support.stack import Stack
from tests.support.webhooks import Answer, Receiver, serve

GROWTH_TARGET = 0.10
# Samples whose median is the "after warm-up" and the "end" figure.
EDGE_SAMPLES = 3
# How long a read's operation may take to be reported ended once its records arrived.
OPERATION_PATIENCE = 60.0
# After the last backfill finished, how long redeliveries may still come in.
LATE_REDELIVERIES = 10.0
BENCH = "bench (client, receiver)"
# The provider's stand-in, not a target: it keeps every token it issued and every latency
# it measured (what tests read back), and its last 64 searches (services/sandbox/hubspot.py
# MAX_SEARCHES) each hold an object's records as they were, so until 64 backfills ran it
# grows by a backfill's records each time.
SANDBOX = "sandbox"


# --- what happened ----------------------------------------------------------------------


@dataclass
class Tally:
    """Work done (by kind) and errors (by kind) over the whole soak."""

    done: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    def api(self, what: str, response: httpx.Response, expected: int = 200) -> bool:
        """Count an answer of our API; False (an error counted) unless it is expected."""
        if response.status_code == expected:
            return True
        self.error(f"{what}: HTTP {response.status_code}")
        return False


def _failure_kind(loop: str, failed: BaseException) -> str:
    """An error's kind: the loop, the exception's type and the first line of its message
    (the helpers' assertions carry the API's problem+json, never a token)."""
    first = str(failed).strip().splitlines()[0][:100] if str(failed).strip() else ""
    return f"{loop}: {type(failed).__name__}{': ' + first if first else ''}"


async def forever(
    loop: str, tally: Tally, stop_at: float, pause: float, step: Callable[[], Awaitable[None]]
) -> None:
    """Run step until stop_at, at most one start every pause seconds; a failed step counts
    as an error of its kind and the loop goes on (a soak reports, it does not stop)."""
    while time.monotonic() < stop_at:
        started = time.monotonic()
        try:
            await step()
        except Exception as failed:
            tally.error(_failure_kind(loop, failed))
        await asyncio.sleep(max(0.0, pause - (time.monotonic() - started)))


# --- the flaky receiver -----------------------------------------------------------------


class FlakyReceiver(Receiver):
    """The tests' receiver, failing a share of requests at random with 500 before looking
    at them, and counting read results per installation (record ids of two objects may
    collide: the sandbox draws HubSpot ids at random)."""

    def __init__(self, failure_share: float) -> None:
        super().__init__(keep_requests=False)
        self.failure_share = failure_share
        self.random = random.Random()
        self.by_installation: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.failed_on_purpose = 0

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if self.random.random() < self.failure_share:
            self.failed_on_purpose += 1
            return Answer(500, body=b"flaky on purpose")
        return super()._answer(path, headers, body)

    def _count(self, message: dict[str, Any]) -> None:
        records = self.by_installation[str(message.get("installationId", ""))]
        for entry in message.get("result") or ():
            records[str(entry.get("id"))] += 1

    async def wait_for_installation(
        self, installation_id: str, ids: set[str], patience: float
    ) -> set[str]:
        """Wait until every id arrived for the installation; the ids still missing."""
        seen = self.by_installation[installation_id]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience), self.arrived:
                await self.arrived.wait_for(lambda: ids <= seen.keys())
        return ids - seen.keys()


# --- memory -----------------------------------------------------------------------------


def processes_of(mesh: Mesh) -> dict[str, int]:
    """Every process of the mesh by name, as it runs now (a restarted one has a new pid)."""
    pids = {c.name: c.pid for c in mesh.components if c.pid is not None}
    pids.update({s.name: s.process.pid for s in mesh.services})
    if mesh.edge is not None and mesh.edge.pid is not None:
        pids[mesh.edge.name] = mesh.edge.pid
    return pids


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process and its children (this process: without them, since the
    whole mesh is its children). PSS splits a shared page among the processes sharing it:
    a tree's RSS counts PostgreSQL's shared buffers once per backend that touched them."""
    process = psutil.Process(pid)
    family = [process]
    if pid != os.getpid():
        family += process.children(recursive=True)
    rss = pss = 0
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            try:
                full = member.memory_full_info()
                rss, pss = rss + full.rss, pss + full.pss
            except psutil.AccessDenied:
                resident = member.memory_info().rss
                rss, pss = rss + resident, pss + resident
    return rss, pss


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    rss: int
    pss: int


class Memory:
    """RSS of every process, sampled every `every` seconds from start_at until stopped."""

    def __init__(self, mesh: Mesh, tally: Tally, every: float) -> None:
        self.mesh = mesh
        self.tally = tally
        self.every = every
        self.services = {s.name for s in mesh.services}
        self.pids = processes_of(mesh)
        self.samples: defaultdict[str, list[Sample]] = defaultdict(list)

    def sample(self) -> None:
        current = processes_of(self.mesh)
        for name, pid in current.items():
            if self.pids.get(name) != pid:
                self.tally.error(f"process {name}: restarted (pid {self.pids.get(name)} -> {pid})")
                self.pids[name] = pid
            try:
                self.samples[name].append(Sample(time.monotonic(), *tree_memory(pid)))
            except psutil.NoSuchProcess:
                self.tally.error(f"process {name}: gone")
        self.samples[BENCH].append(Sample(time.monotonic(), *tree_memory(os.getpid())))

    async def run(self, start_at: float, stop_at: float) -> None:
        # Restarts during the warm-up count too: the pids are checked from the start.
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        while time.monotonic() < stop_at:
            started = time.monotonic()
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(max(0.0, self.every - (time.monotonic() - started)))
        await asyncio.to_thread(self.sample)


@dataclass
class Growth:
    name: str
    kind: str  # service, stand-in (the provider sandbox), infrastructure or client
    after_warmup: int
    end: int
    peak: int
    samples: int
    slope: float  # bytes per minute, least squares over every sample after the warm-up
    pss_ratio: float  # the same growth measured in PSS

    @property
    def ratio(self) -> float:
        return _ratio(self.after_warmup, self.end)

    @property
    def verdict(self) -> str:
        return "PASS" if self.ratio <= GROWTH_TARGET else "MISS"


KINDS = ("service", "stand-in", "infrastructure", "client")


def _kind(memory: Memory, name: str) -> str:
    if name == BENCH:
        return "client"
    if name == SANDBOX:
        return "stand-in"
    return "service" if name in memory.services else "infrastructure"


def _ratio(before: float, after: float) -> float:
    return after / before - 1 if before else 0.0


def _edges(values: list[int]) -> tuple[int, int]:
    """The figure after the warm-up and at the end: medians of the first and last samples."""
    edge = min(EDGE_SAMPLES, len(values))
    return int(statistics.median(values[:edge])), int(statistics.median(values[-edge:]))


def growth(memory: Memory) -> list[Growth]:
    rows = []
    for name, samples in memory.samples.items():
        if len(samples) < 2:
            continue
        rss = [s.rss for s in samples]
        after_warmup, end = _edges(rss)
        slope = statistics.linear_regression([s.at / 60 for s in samples], rss).slope
        rows.append(
            Growth(
                name=name,
                kind=_kind(memory, name),
                after_warmup=after_warmup,
                end=end,
                peak=max(rss),
                samples=len(rss),
                slope=slope,
                pss_ratio=_ratio(*_edges([s.pss for s in samples])),
            )
        )
    # Services first (the target is theirs), then the sandbox, the infrastructure, this process.
    return sorted(rows, key=lambda r: (KINDS.index(r.kind), r.name))


# --- the traffic ------------------------------------------------------------------------


@dataclass
class Soak:
    args: argparse.Namespace
    stack: Stack
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub
    receiver: FlakyReceiver
    tally: Tally
    world: ReadsWorld  # the project connects and storms use (its object is never read)
    stop_at: float
    # installation id -> the record ids the sandbox held for its backfill
    expected: dict[str, set[str]] = field(default_factory=dict)
    # Connections made by the storms, whose refresh tokens the sandbox still accepts.
    refreshable: list[str] = field(default_factory=list)
    serial: int = 0

    def group(self, kind: str) -> str:
        self.serial += 1
        return f"soak-{kind}-{self.serial}-{uuid.uuid4().hex[:6]}"

    async def connect(self) -> None:
        """One connection: imported tokens and the OAuth flow, in turn."""
        group = self.group("connect")
        if self.serial % 2:
            await sandbox_connection(self.stack, self.world.http, "hubspot", group)
            self.tally.done["connections imported"] += 1
            return
        async with admin_client(self.stack) as admin:
            started = await admin.post(
                "/v1/oauth-connect",
                json={
                    "projectIdOrName": self.world.project_id,
                    "provider": "hubspot",
                    "groupRef": group,
                    "consumerRef": f"{group}-user",
                },
            )
        if not self.tally.api("oauth-connect", started):
            return
        await connect_in_popup(self.stack, started.text)
        self.tally.done["connections by the OAuth flow"] += 1

    async def storm(self) -> None:
        """Concurrent callers of a connection whose token expired: one new token for all."""
        connection, tokens = await sandbox_connection(
            self.stack, self.world.http, "hubspot", self.group("storm"), expires_in=-60
        )
        path = f"/connections/{connection['id']}"
        params = {"includeCreds": "true", "refresh": "ifExpired"}
        answers = await asyncio.gather(
            *(self.world.http.get(path, params=params) for _ in range(self.args.callers)),
            return_exceptions=True,
        )
        handed: set[str] = set()
        for answer in answers:
            if isinstance(answer, BaseException):
                self.tally.error(_failure_kind("storm GET", answer))
            elif self.tally.api("storm GET ifExpired", answer):
                handed.add(answer.json()["oauth2AuthorizationCode"]["accessToken"]["token"])
        self.tally.done["storm calls"] += len(answers)
        self.tally.done["storms"] += 1
        if len(handed) > 1:
            self.tally.error("storm: callers got different tokens (more than one refresh)")
        if tokens["access_token"] in handed:
            self.tally.error("storm: the expired token was handed out")
        self.refreshable = [*self.refreshable[-19:], connection["id"]]
        await self.forced()

    async def forced(self) -> None:
        """A few concurrent refresh=force calls on a connection a storm made earlier."""
        target = random.choice(self.refreshable)
        params = {"includeCreds": "true", "refresh": "force"}
        answers = await asyncio.gather(
            *(
                self.world.http.get(f"/connections/{target}", params=params)
                for _ in range(self.args.forced)
            ),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                self.tally.error(_failure_kind("forced GET", answer))
            else:
                self.tally.api("forced GET refresh=force", answer)
        self.tally.done["forced refresh calls"] += len(answers)

    async def operation_end(self, world: ReadsWorld, installation_id: str) -> str:
        """How the installation's read operation ended, as the API reports it (scribe
        records it after the last page): success, failure, or what it still says after
        OPERATION_PATIENCE seconds."""
        deadline = time.monotonic() + OPERATION_PATIENCE
        status = "nothing (no operation listed)"
        while time.monotonic() < deadline:
            listed = await world.http.get(
                f"/integrations/{world.integration['id']}/installations/{installation_id}"
                "/operations"
            )
            if not self.tally.api("list operations", listed):
                return f"HTTP {listed.status_code}"
            for operation in listed.json()["results"]:
                status = str(operation["status"])
                if status in ("success", "failure"):
                    return status
            await asyncio.sleep(0.5)
        return f"{status} after {OPERATION_PATIENCE:.0f} s"

    async def backfills(self, index: int) -> None:
        """Back-to-back backfills of one project's own object until the soak ends."""
        object_name = f"soak_{index}_{uuid.uuid4().hex[:6]}"
        world = await make_world(self.stack, self.receiver.url(f"/hook/{index}"), object_name)
        self.receiver.secrets[f"/hook/{index}"] = world.signing_key

        async def one() -> None:
            await seed(self.sandbox, object_name, self.args.records)
            ids = await provider_ids(self.stack, object_name)
            installation = await world.install(self.group(f"backfill{index}"))
            self.expected[installation["id"]] = ids
            missing = await self.receiver.wait_for_installation(
                installation["id"], ids, self.args.patience
            )
            if missing:
                self.tally.error(f"backfill: {len(missing)} records not there after patience")
                return
            self.tally.done["records backfilled"] += len(ids)
            ended = await self.operation_end(world, installation["id"])
            if ended == "success":
                self.tally.done["backfills"] += 1
            else:
                self.tally.error(f"backfill: every record arrived, the operation says {ended}")

        try:
            await forever("backfill", self.tally, self.stop_at, 0.0, one)
        finally:
            await world.http.aclose()
            await world.read_http.aclose()


# --- the run ----------------------------------------------------------------------------


def print_report(soak: Soak, rows: list[Growth], minutes: float, warmup: float) -> list[str]:
    """The figures; the problems (none when the soak met its targets)."""
    problems: list[str] = []
    print(
        f"\nsoak: {minutes:g} min of traffic ({warmup:g} min warm-up), "
        f"{os.cpu_count()} cores, memory sampled every {soak.args.sample_every:g} s"
    )
    print(
        f"\n{'process':<26} {'after warm-up':>13} {'end':>9} {'peak':>9} {'growth':>8} "
        f"{'trend':>12} {'PSS':>7}"
    )
    for row in rows:
        mark = row.verdict if row.kind == "service" else f"({row.verdict}, {row.kind})"
        print(
            f"{row.name:<26} {row.after_warmup / 2**20:>9.0f} MiB {row.end / 2**20:>5.0f} MiB "
            f"{row.peak / 2**20:>5.0f} MiB {row.ratio:>+7.1%} {row.slope / 2**20:>+6.1f} MiB/min"
            f" {row.pss_ratio:>+7.1%}  {mark}"
        )
        if row.kind == "service" and row.verdict == "MISS":
            problems.append(f"{row.name} grew {row.ratio:+.1%} (target <= {GROWTH_TARGET:.0%})")
    if rows:
        print(
            f"({rows[0].samples} samples each; after warm-up and end: medians of "
            f"{EDGE_SAMPLES}; trend: least squares over all; PSS: the growth in proportional "
            f"set size; the target, <= {GROWTH_TARGET:.0%} in RSS, is the services')"
        )

    expected = sum(len(ids) for ids in soak.expected.values())
    delivered_once = lost = duplicates = 0
    for installation, ids in soak.expected.items():
        seen = soak.receiver.by_installation.get(installation, Counter())
        delivered_once += sum(1 for i in ids if seen.get(i) == 1)
        lost += sum(1 for i in ids if i not in seen)
        duplicates += sum(n - 1 for n in seen.values() if n > 1)
    unexpected = sum(
        len(seen.keys() - soak.expected.get(installation, set()))
        for installation, seen in soak.receiver.by_installation.items()
    )
    received = soak.receiver.received
    print(f"\nrecords: {expected:,} expected in {len(soak.expected)} backfills")
    print(f"  delivered exactly once {delivered_once:,}, lost {lost:,}, duplicates {duplicates:,}")
    print(f"  not expected (another installation's, or unknown) {unexpected:,}")
    print(
        f"  receiver: {len(received.messages):,} verified deliveries, "
        f"{soak.receiver.failed_on_purpose:,} answered 500 on purpose, "
        f"{received.bad_signatures:,} bad signatures"
    )
    if lost or duplicates or unexpected or received.bad_signatures:
        problems.append(
            f"records: {lost} lost, {duplicates} duplicates, {unexpected} unexpected, "
            f"{received.bad_signatures} bad signatures"
        )
    print("\ntraffic:")
    for kind, count in sorted(soak.tally.done.items()):
        print(f"  {kind:<32} {count:>8,}")
    print(f"\nerrors: {sum(soak.tally.errors.values()):,}")
    for kind, count in soak.tally.errors.most_common():
        print(f"  {count:>6,}  {kind}")
    if soak.tally.errors:
        problems.append(f"{sum(soak.tally.errors.values())} errors")
    return problems


async def run(args: argparse.Namespace) -> list[str]:
    home = make_home()
    try:
        async with running_mesh(home, MeshOptions(sandbox=True)) as mesh:
            print(f"soak: mesh with the provider sandbox up in {mesh.started_in:.1f}s", flush=True)
            stack = Stack(mesh, mesh.endpoints())
            channel = mesh_channel(
                stack.endpoints["sandbox"], stack.credentials("tests"), server_identity="sandbox"
            )
            receiver = FlakyReceiver(args.failure_share)
            async with channel, serve(receiver):
                tally = Tally()
                world = await make_world(stack, receiver.url("/unused"), "soak_connects")
                started = time.monotonic()
                soak = Soak(
                    args=args,
                    stack=stack,
                    sandbox=sandbox_pb2_grpc.SandboxControlServiceStub(channel),
                    receiver=receiver,
                    tally=tally,
                    world=world,
                    stop_at=started + args.minutes * 60,
                )
                memory = Memory(mesh, tally, args.sample_every)
                # The storms' forced refreshes need a connection a storm made.
                await soak.storm()
                traffic = [
                    forever("connect", tally, soak.stop_at, args.connect_interval, soak.connect),
                    forever("storm", tally, soak.stop_at, args.storm_interval, soak.storm),
                    *(soak.backfills(index) for index in range(args.backfills)),
                ]
                progress = asyncio.create_task(report_progress(soak, started))
                sampling = asyncio.create_task(memory.run(started + args.warmup * 60, soak.stop_at))
                # Backfills running when the time is up finish (they wait for their
                # records), so the tally covers every backfill started.
                await asyncio.gather(*traffic)
                progress.cancel()
                await sampling
                await asyncio.sleep(LATE_REDELIVERIES)
                await world.http.aclose()
                await world.read_http.aclose()
                return print_report(soak, growth(memory), args.minutes, args.warmup)
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def report_progress(soak: Soak, started: float) -> None:
    while True:
        await asyncio.sleep(60)
        done = ", ".join(f"{k} {v:,}" for k, v in sorted(soak.tally.done.items()))
        print(
            f"[{(time.monotonic() - started) / 60:4.1f} min] {done}; "
            f"errors {sum(soak.tally.errors.values())}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="traffic, warm-up included")
    parser.add_argument("--warmup", type=float, default=3.0, help="minutes before sampling")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds")
    parser.add_argument("--records", type=int, default=3000, help="records per backfill")
    parser.add_argument("--backfills", type=int, default=2, help="concurrent backfill loops")
    parser.add_argument("--connect-interval", type=float, default=2.0, help="seconds")
    parser.add_argument("--storm-interval", type=float, default=5.0, help="seconds")
    parser.add_argument("--callers", type=int, default=50, help="concurrent calls per storm")
    parser.add_argument("--forced", type=int, default=3, help="refresh=force calls per storm")
    parser.add_argument(
        "--failure-share", type=float, default=0.2, help="deliveries the receiver fails"
    )
    parser.add_argument("--patience", type=float, default=300.0, help="seconds a backfill may take")
    args = parser.parse_args()
    if not 0 < args.warmup < args.minutes:
        parser.error("--warmup must be more than 0 and less than --minutes")
    if (args.minutes - args.warmup) * 60 < EDGE_SAMPLES * 2 * args.sample_every:
        parser.error(f"sample at least {2 * EDGE_SAMPLES} times after the warm-up")
    if not 0 <= args.failure_share < 1:
        parser.error("--failure-share must be at least 0 and less than 1")
    if min(args.records, args.backfills, args.callers, args.forced) < 1:
        parser.error("--records, --backfills, --callers and --forced must be at least 1")
    problems = asyncio.run(run(args))
    for problem in problems:
        print(f"MISS: {problem}")
    sys.stdout.flush()
    os._exit(1 if problems else 0)  # temporalio can crash at interpreter exit (sdk-python #300)


if __name__ == "__main__":
    main()
