"""What the fault-matrix suite measures and how it breaks things.

One fault at a time, on a mesh of the suite's own (tests/faults/conftest.py): a
20,000-record backfill is delivering and a stream of GetToken calls is running when one
process of the mesh is killed with SIGKILL, found the way an operator finds it (the pid
`ampmesh status` shows). Nothing in the test restarts anything: the launcher's supervisor
must. Then the suite measures what the issue's table asks for: how long until `ampmesh
status` reports every process healthy again, how many records never arrived, how many
arrived twice, how many provider pages the read requested beyond one pass, and whether
every token call made after recovery succeeded.

Receivers deduplicate on the message id (`webhook-id`/`svix-id`), as Standard Webhooks
asks of them: a message redelivered after a crash is not a duplicate record; the same
record in two different messages is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

from services.launcher.state import STATE_FILE, read_json, status
from services.runtime.channels import token_manager_channel
from tests.support.stack import Stack
from tests.support.webhooks import Receiver

RECORDS = 20_000


class DedupingReceiver(Receiver):
    """A receiver that, like a real one, takes each message id once."""

    def __init__(self) -> None:
        super().__init__(keep_requests=False)
        self.seen: set[str] = set()
        self.redelivered = 0

    def _tally(self, headers: dict[str, str], body: bytes) -> None:
        message_id = headers.get("svix-id", "")
        if message_id in self.seen:
            self.redelivered += 1
            return
        self.seen.add(message_id)
        super()._tally(headers, body)


@dataclass
class TokenStream:
    """GetToken calls, round robin over connections, at a steady pace, as the api and the
    temporal worker make them; every outcome is kept with its time."""

    stack: Stack
    project_id: str
    connection_ids: list[str]
    per_second: float = 40.0
    # (when the call started, time.monotonic(); its status code's name)
    outcomes: list[tuple[float, str]] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TokenStream]:
        task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        async with token_manager_channel(
            self.stack.endpoints["token-manager"], self.stack.credentials("temporal")
        ) as channel:
            stub = tm_grpc.TokenManagerServiceStub(channel)
            pending: set[asyncio.Task[None]] = set()
            turn = 0
            while True:
                connection = self.connection_ids[turn % len(self.connection_ids)]
                turn += 1
                call = asyncio.create_task(self._call(stub, connection))
                pending.add(call)
                call.add_done_callback(pending.discard)
                await asyncio.sleep(1 / self.per_second)

    async def _call(self, stub: tm_grpc.TokenManagerServiceStub, connection: str) -> None:
        request = tm.GetTokenRequest(connection_id=connection, project_id=self.project_id)
        started = time.monotonic()
        try:
            await stub.GetToken(request, timeout=10)
            code = "OK"
        except grpc.aio.AioRpcError as error:
            code = error.code().name
        self.outcomes.append((started, code))

    def failures_since(self, moment: float) -> Counter[str]:
        return Counter(code for at, code in self.outcomes if at >= moment and code != "OK")

    def calls_since(self, moment: float) -> int:
        return sum(1 for at, _ in self.outcomes if at >= moment)


def recorded_pid(home: Path, name: str) -> int:
    """The pid `ampmesh status` shows for a process of the mesh."""
    described = read_json(home / STATE_FILE)
    assert described is not None, "mesh.json is missing"
    for process in described["processes"]:
        if process["name"] == name:
            pid = process.get("pid")
            assert pid, f"{name} has no pid in mesh.json"
            return int(pid)
    raise AssertionError(f"no process {name!r} in mesh.json")


def kill_hard(pid: int) -> None:
    """kill -9, as an operator (or the OOM killer) would: the process only, not its group."""
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).wait(timeout=10)


async def healthy_again(
    home: Path, patience: float, killed: tuple[str, int] | None = None
) -> float:
    """Seconds until `ampmesh status` shows every process healthy (and the killed one,
    when given as (name, pid), running under a new pid)."""
    started = time.monotonic()
    last: dict[str, bool] = {}
    while time.monotonic() - started < patience:
        described = await status(home)
        if described is not None:
            processes = described["processes"]
            last = {p["name"]: p["healthy"] for p in processes}
            replaced = killed is None or any(
                p["name"] == killed[0] and p.get("pid") != killed[1] for p in processes
            )
            if replaced and all(last.values()):
                return time.monotonic() - started
        await asyncio.sleep(0.5)
    sick = sorted(n for n, ok in last.items() if not ok)
    raise AssertionError(f"the mesh was not healthy within {patience:.0f}s: {sick}")


async def provider_pages(sandbox: sandbox_pb2_grpc.SandboxControlServiceStub) -> int:
    """Record API requests the sandbox's HubSpot answered so far (any status)."""
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    for provider in counters.providers:
        if provider.provider == sandbox_pb2.PROVIDER_HUBSPOT:
            return sum(provider.api_requests_by_status.values())
    return 0


@dataclass
class Row:
    """One line of the suite's table."""

    fault: str
    seconds_to_healthy: float
    records_lost: int
    duplicates: int
    extra_pages: int
    pages_in_flight: int
    token_failures_after: int
    redelivered_messages: int

    @staticmethod
    def header() -> str:
        return (
            f"{'fault':<18} {'healthy after':>13} {'lost':>6} {'dupes':>6} "
            f"{'extra pages':>11} {'in flight':>9} {'token fails':>11} {'redelivered':>11}"
        )

    def line(self) -> str:
        return (
            f"{self.fault:<18} {self.seconds_to_healthy:>12.1f}s {self.records_lost:>6} "
            f"{self.duplicates:>6} {self.extra_pages:>11} {self.pages_in_flight:>9} "
            f"{self.token_failures_after:>11} {self.redelivered_messages:>11}"
        )


# The table's lines, in the order the faults ran (the conftest prints them at the end).
ROWS: list[Row] = []
