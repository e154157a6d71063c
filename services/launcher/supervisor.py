"""Supervision of the local mesh: every process is watched and restarted when it dies.

Once `running_mesh` has everything up, one `Supervisor` watches each process (a
`Unit`: our services, the infrastructure components, the Envoy edge). A process is
restarted when it exits, or when its health check fails `failures` times in a row (a hung
process: its whole process group is killed first). Restarts keep the process's port and
settings, so its peers and Envoy's static config still point at it. They back off
exponentially, and a process restarted `crash_loop_restarts` times within
`crash_loop_window` seconds is given up on: its state becomes "failed", with the reason.

One restart at a time per process: an automatic restart and one asked for (`restart`,
`ampmesh restart NAME`) never race, and a restart asked for while another was running is
satisfied by that one. A process stopped on purpose (`Unit.held`, e.g. `stop_service`)
is left down until something starts it again.

Every change (a new pid, a restart, health lost or regained) calls `on_change`, which
rewrites mesh.json, so `ampmesh status` shows current pids, restarts and exit reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

__all__ = [
    "FAILED",
    "HELD",
    "RESTARTING",
    "RUNNING",
    "ProcessRecord",
    "SupervisionError",
    "SupervisionPolicy",
    "Supervisor",
    "Unit",
    "exit_reason",
]

RUNNING, RESTARTING, FAILED, HELD = "running", "restarting", "failed", "stopped"


class SupervisionError(RuntimeError):
    """A restart that could not be done (unknown process, it failed to come back)."""


@dataclass(frozen=True)
class SupervisionPolicy:
    # A probe every `interval` seconds per process, each bounded by `probe_timeout`: about
    # seven cheap probes a second for the whole mesh, which a 2-core box does not feel.
    interval: float = 2.0
    probe_timeout: float = 2.0
    # Consecutive failed probes before a live process counts as hung (~10 s without an
    # answer): a busy JVM or a loaded box must not be mistaken for a dead one.
    failures: int = 5
    backoff_first: float = 0.5
    backoff_max: float = 30.0
    crash_loop_restarts: int = 5
    crash_loop_window: float = 300.0
    start_within: float = 90.0
    stop_grace: float = 15.0

    def backoff(self, recent_restarts: int) -> float:
        return min(self.backoff_max, self.backoff_first * 2**recent_restarts)


class Unit(ABC):
    """One supervised process: how to start it (and wait until healthy), stop it, probe it."""

    name: str
    kind: str  # "service" | "infrastructure" | "edge"

    @property
    @abstractmethod
    def process(self) -> asyncio.subprocess.Process | None:
        """The current process (None before its first start)."""

    @property
    def held(self) -> bool:
        """Stopped on purpose: not to be restarted until started again."""
        return False

    @abstractmethod
    async def start(self, within: float) -> None:
        """Start a new process (same port, same settings) and return once healthy."""

    @abstractmethod
    async def stop(self, grace: float) -> int | None:
        """Ask the process to stop; kill it after grace."""

    @abstractmethod
    async def probe(self, within: float) -> bool:
        """One health check of the running process."""


@dataclass
class ProcessRecord:
    """What the supervisor knows about one process; described in mesh.json."""

    name: str
    kind: str
    pid: int | None = None
    create_time: float | None = None
    state: str = RUNNING
    healthy: bool = True
    restarts: int = 0
    # "exit code 1", "signal SIGKILL", "health check failed 5 times", "restarted on request".
    last_exit: str | None = None
    # Why a failed process is given up on.
    reason: str | None = None
    generation: int = 0
    restart_times: list[float] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "createTime": self.create_time,
            "state": self.state,
            "healthy": self.healthy,
            "restarts": self.restarts,
            "lastExit": self.last_exit,
            "reason": self.reason,
        }


def exit_reason(returncode: int | None) -> str:
    """How a process ended, as an operator reads it."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def _create_time(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _alive(unit: Unit) -> bool:
    process = unit.process
    if process is None or process.returncode is not None:
        return False
    try:
        return bool(psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


async def kill_group(process: asyncio.subprocess.Process | None) -> None:
    """SIGKILL the process's whole group (it leads one: started in a new session), so
    nothing it spawned (PostgreSQL's backends, a JVM's helpers) outlives it, and reap it."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    await process.wait()


class Supervisor:
    """Watches units; restarts them; keeps a ProcessRecord for each."""

    def __init__(
        self,
        units: Sequence[Unit],
        policy: SupervisionPolicy | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.policy = policy or SupervisionPolicy()
        self.units = {unit.name: unit for unit in units}
        self.records = {unit.name: ProcessRecord(unit.name, unit.kind) for unit in units}
        self._on_change = on_change or (lambda: None)
        self._locks = {name: asyncio.Lock() for name in self.units}
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Condition()
        # Held by hold(): left down when they exit, until restart().
        self._held: set[str] = set()
        for unit in units:
            process = unit.process
            record = self.records[unit.name]
            record.pid = process.pid if process is not None else None
            record.create_time = _create_time(record.pid)

    # --- what callers read -----------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.units)

    def record(self, name: str) -> ProcessRecord:
        self._known(name)
        return self.records[name]

    def restarts(self, name: str) -> int:
        return self.record(name).restarts

    def unhealthy(self) -> list[str]:
        """Processes not running healthy now (held ones excepted). One killed a moment ago
        counts at once, before its watcher has noticed."""
        return [
            name
            for name, record in self.records.items()
            if record.state != HELD
            and (record.state != RUNNING or not record.healthy or not _alive(self.units[name]))
        ]

    def healthy(self) -> bool:
        return not self.unhealthy()

    async def wait_healthy(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109 (a deadline, reported)
        """Return once every process runs healthy (its last probe passed); TimeoutError
        naming the ones that are not, with their state and last exit."""
        deadline = time.monotonic() + timeout
        while self.unhealthy():
            # A process that just died may not be noticed yet: probe the rest now.
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                details = ", ".join(
                    f"{name} ({self.records[name].state}, last exit: "
                    f"{self.records[name].last_exit})"
                    for name in self.unhealthy()
                )
                raise TimeoutError(f"not healthy within {timeout:.0f}s: {details}")
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))

    def _known(self, name: str) -> None:
        if name not in self.units:
            raise SupervisionError(
                f"no process is named {name!r}; the mesh runs: {', '.join(self.units)}"
            )

    # --- running ---------------------------------------------------------------------

    def start(self) -> None:
        """Start watching every unit (they are running: the mesh is up)."""
        for unit in self.units.values():
            self._see(unit)
            self._tasks.append(asyncio.create_task(self._watch(unit), name=f"watch {unit.name}"))

    async def close(self) -> None:
        """Stop watching (before the mesh stops everything); restarts under way are cancelled."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def hold(self, name: str) -> None:
        """Leave the process down when it next exits (a test that kills it and needs it
        dead for a while); restart() brings it back and ends the hold."""
        self._known(name)
        self._held.add(name)

    def _is_held(self, unit: Unit) -> bool:
        return unit.held or unit.name in self._held

    async def restart(self, name: str, *, reason: str = "restarted on request") -> ProcessRecord:
        """Restart one process on purpose and return once it is healthy (a failed one is
        tried again, with a fresh crash-loop count). A restart that another caller (or
        the supervisor itself) completed while this one waited its turn counts."""
        self._known(name)
        unit, record = self.units[name], self.records[name]
        asked_at = record.generation
        self._held.discard(name)
        async with self._locks[name]:
            current = unit.process
            if (
                record.generation != asked_at
                and record.state == RUNNING
                and current is not None
                and current.returncode is None
            ):
                return record
            if current is not None and current.returncode is None:
                await unit.stop(self.policy.stop_grace)
                why = reason
            else:
                why = exit_reason(current.returncode) if current is not None else reason
            await kill_group(current)
            record.restart_times.clear()
            record.reason = None
            await self._start(unit, record, why)
            if record.state != RUNNING:
                raise SupervisionError(f"{name} did not come back: {record.last_exit}")
            return record

    async def _watch(self, unit: Unit) -> None:
        record = self.records[unit.name]
        failures = 0
        while True:
            process = unit.process
            held = self._is_held(unit)
            down = process is None or process.returncode is not None
            if process is None or record.state == FAILED or (held and down):
                if held and record.state not in (HELD, FAILED):
                    self._update(record, state=HELD, healthy=False)
                await asyncio.sleep(self.policy.interval)
                continue
            self._see(unit)
            exited = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), self.policy.interval)
                exited = True
            if process is not unit.process or self._is_held(unit):
                failures = 0
                continue  # restarted, or stopped on purpose, meanwhile
            if exited:
                why = exit_reason(process.returncode)
            else:
                if await self._probe(unit):
                    failures = 0
                    if not record.healthy and record.state == RUNNING:
                        self._update(record, healthy=True)
                    continue
                failures += 1
                if process is not unit.process:
                    continue
                if failures < self.policy.failures:
                    continue
                why = f"health check failed {failures} times"
            failures = 0
            await self._recover(unit, process, why)

    async def _probe(self, unit: Unit) -> bool:
        try:
            timeout = self.policy.probe_timeout
            return await asyncio.wait_for(unit.probe(timeout), timeout + 1.0)
        except Exception:  # a probe that cannot answer is a failed probe
            return False

    async def _recover(self, unit: Unit, process: asyncio.subprocess.Process, why: str) -> None:
        record = self.records[unit.name]
        async with self._locks[unit.name]:
            if unit.process is not process or self._is_held(unit):
                return  # someone restarted (or stopped) it while we waited our turn
            while True:
                now = time.monotonic()
                window = self.policy.crash_loop_window
                record.restart_times[:] = [t for t in record.restart_times if now - t < window]
                recent = len(record.restart_times)
                if recent >= self.policy.crash_loop_restarts:
                    await kill_group(unit.process)
                    self._update(
                        record,
                        state=FAILED,
                        healthy=False,
                        last_exit=why,
                        reason=(
                            f"crash-looping: restarted {recent} times within {window:.0f}s; "
                            f"last exit: {why}"
                        ),
                    )
                    return
                self._update(record, state=RESTARTING, healthy=False, last_exit=why)
                await asyncio.sleep(self.policy.backoff(recent))
                await kill_group(unit.process)
                await self._start(unit, record, why)
                if record.state == RUNNING:
                    return
                why = record.last_exit or why

    async def _start(self, unit: Unit, record: ProcessRecord, why: str) -> None:
        """One start attempt; the record says how it went."""
        record.restart_times.append(time.monotonic())
        record.restarts += 1
        self._update(record, state=RESTARTING, healthy=False, last_exit=why)
        try:
            await unit.start(self.policy.start_within)
        except Exception as error:  # whatever failed, the next attempt (or the limit) follows
            await kill_group(unit.process)
            self._update(record, last_exit=f"restart failed: {_first_line(error)}")
            return
        record.generation += 1
        self._see(unit)
        self._update(record, state=RUNNING, healthy=True)

    # --- bookkeeping -----------------------------------------------------------------

    def _see(self, unit: Unit) -> None:
        """Take the unit's current pid (it may have been started by someone else)."""
        record = self.records[unit.name]
        process = unit.process
        pid = process.pid if process is not None else None
        if pid != record.pid:
            record.pid, record.create_time = pid, _create_time(pid)
            if process is not None and process.returncode is None and record.state == HELD:
                record.state, record.healthy = RUNNING, True
            self._notify()

    def _update(self, record: ProcessRecord, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(record, key, value)
        self._notify()

    def _notify(self) -> None:
        with contextlib.suppress(Exception):  # a failed state write must not stop supervision
            self._on_change()
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()
