"""The supervisor on real, small processes: restarts on exit and on a hang, the exit
reason, the crash-loop limit, restarts on request that do not race automatic ones."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from services.launcher.supervisor import (
    FAILED,
    HELD,
    RUNNING,
    SupervisionError,
    SupervisionPolicy,
    Supervisor,
    Unit,
    kill_group,
)

FAST = SupervisionPolicy(
    interval=0.2,
    probe_timeout=0.5,
    failures=3,
    backoff_first=0.05,
    backoff_max=0.2,
    crash_loop_restarts=3,
    crash_loop_window=60,
    start_within=10,
    stop_grace=2,
)


class Sleeper(Unit):
    """A real process that sleeps; healthy while `alive_file` says "ok". With `crash`,
    every start after the first exits at once with code 3."""

    kind = "service"

    def __init__(self, name: str, directory: Path, *, crash: bool = False) -> None:
        self.name = name
        self.health = directory / f"{name}.health"
        self.crash = crash
        self.starts = 0
        self.stopped = False
        self._process: asyncio.subprocess.Process | None = None

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        return self._process

    @property
    def held(self) -> bool:
        return self.stopped

    async def start(self, within: float) -> None:
        self.starts += 1
        code = (
            "import sys; sys.exit(3)"
            if self.crash and self.starts > 1
            else "import time; time.sleep(600)"
        )
        self.health.write_text("ok")
        self.stopped = False
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, start_new_session=True
        )
        # "Healthy" means it is still running a moment later.
        await asyncio.sleep(0.2)
        if self._process.returncode is not None:
            raise RuntimeError(f"{self.name} exited with code {self._process.returncode}")

    async def stop(self, grace: float) -> int | None:
        assert self._process is not None
        self._process.terminate()
        return await self._process.wait()

    async def probe(self, within: float) -> bool:
        return self.health.read_text() == "ok"


@pytest.fixture
async def units(tmp_path: Path) -> AsyncIterator[list[Sleeper]]:
    made: list[Sleeper] = []
    yield made
    for unit in made:
        await kill_group(unit.process)


async def supervised(units: list[Sleeper], *new: Sleeper) -> Supervisor:
    units.extend(new)
    for unit in new:
        await unit.start(10)
    supervisor = Supervisor(new, FAST)
    supervisor.start()
    return supervisor


async def test_a_killed_process_is_restarted_with_a_new_pid_and_the_signal_recorded(
    units: list[Sleeper], tmp_path: Path
) -> None:
    unit = Sleeper("worker", tmp_path)
    supervisor = await supervised(units, unit)
    try:
        assert unit.process is not None
        first = unit.process.pid
        unit.process.send_signal(signal.SIGKILL)
        await asyncio.sleep(0.1)
        await supervisor.wait_healthy(10)
        record = supervisor.record("worker")
        assert unit.process.pid != first and record.pid == unit.process.pid
        assert psutil.Process(record.pid).create_time() == record.create_time
        assert (record.restarts, record.last_exit, record.state) == (1, "signal SIGKILL", RUNNING)
    finally:
        await supervisor.close()


async def test_a_process_that_stops_answering_is_killed_and_restarted(
    units: list[Sleeper], tmp_path: Path
) -> None:
    unit = Sleeper("hung", tmp_path)
    supervisor = await supervised(units, unit)
    try:
        assert unit.process is not None
        hung = unit.process
        unit.health.write_text("no")  # alive, but its health check fails from now on
        for _ in range(100):
            if supervisor.restarts("hung"):
                break
            await asyncio.sleep(0.1)
        await supervisor.wait_healthy(10)
        assert hung.returncode == -signal.SIGKILL  # the hung one did not linger
        assert supervisor.record("hung").last_exit == "health check failed 3 times"
    finally:
        await supervisor.close()


async def test_a_process_that_keeps_crashing_is_given_up_on_with_the_reason(
    units: list[Sleeper], tmp_path: Path
) -> None:
    crasher, steady = Sleeper("crasher", tmp_path, crash=True), Sleeper("steady", tmp_path)
    supervisor = await supervised(units, crasher, steady)
    try:
        assert crasher.process is not None
        crasher.process.send_signal(signal.SIGTERM)
        for _ in range(200):
            if supervisor.record("crasher").state == FAILED:
                break
            await asyncio.sleep(0.05)
        record = supervisor.record("crasher")
        assert record.state == FAILED and record.restarts == FAST.crash_loop_restarts
        assert record.reason is not None and record.reason.startswith("crash-looping")
        assert "exited with code 3" in (record.last_exit or "")
        assert supervisor.unhealthy() == ["crasher"]
        with pytest.raises(TimeoutError, match="crasher"):
            await supervisor.wait_healthy(0.5)
        starts = crasher.starts
        await asyncio.sleep(1)
        assert crasher.starts == starts  # it is no longer tried
        # A restart on request is a fresh start: it may succeed again.
        crasher.crash = False
        await supervisor.restart("crasher")
        assert supervisor.healthy()
    finally:
        await supervisor.close()


async def test_a_restart_on_request_and_an_automatic_one_do_not_race(
    units: list[Sleeper], tmp_path: Path
) -> None:
    unit = Sleeper("api", tmp_path)
    supervisor = await supervised(units, unit)
    try:
        assert unit.process is not None
        unit.process.send_signal(signal.SIGKILL)
        await unit.process.wait()
        await asyncio.gather(supervisor.restart("api"), supervisor.restart("api"))
        # One start for the kill; the requests that waited their turn found it done.
        assert unit.starts == 2 and supervisor.restarts("api") == 1
        running = unit.process
        await supervisor.restart("api")
        assert unit.process is not running and running.returncode is not None
        assert supervisor.record("api").last_exit == "restarted on request"
    finally:
        await supervisor.close()


async def test_a_process_stopped_on_purpose_stays_down_until_started(
    units: list[Sleeper], tmp_path: Path
) -> None:
    unit = Sleeper("held", tmp_path)
    supervisor = await supervised(units, unit)
    try:
        unit.stopped = True
        await unit.stop(1)
        await asyncio.sleep(1)
        assert unit.starts == 1 and supervisor.record("held").state == HELD
        assert supervisor.healthy()  # a held process is not counted as unhealthy
        await supervisor.restart("held")
        assert supervisor.record("held").state == RUNNING and unit.starts == 2
    finally:
        await supervisor.close()


async def test_an_unknown_name_lists_the_known_ones(units: list[Sleeper], tmp_path: Path) -> None:
    supervisor = await supervised(units, Sleeper("one", tmp_path))
    try:
        with pytest.raises(SupervisionError, match=r"no process is named 'two'; .*: one"):
            await supervisor.restart("two")
    finally:
        await supervisor.close()
