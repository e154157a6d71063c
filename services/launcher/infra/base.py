"""What every infrastructure component shares: spawning, readiness, stopping, errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from services.launcher.ports import HOST, PortBook

# How often a component that is starting is probed.
_POLL = 0.1


class InfraError(RuntimeError):
    """A component could not start or stop. str() is one line, plus a log tail if it died."""


class PrerequisiteMissing(InfraError):
    """Something to install is missing; str() says exactly what."""


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def on_path(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


class Component(ABC):
    """One external process of the local mesh, a child of the launcher.

    Subclasses say how to spawn it (`command`), how to tell it is ready (`ready`), what
    to do once it is (`after_ready`), and what services need to reach it.
    """

    name: str
    # The signal that asks the process for a graceful (fast) shutdown.
    stop_signal: signal.Signals = signal.SIGTERM

    def __init__(self, home: Path, ports: PortBook) -> None:
        self.home = home.resolve()
        self.ports = ports
        self.process: asyncio.subprocess.Process | None = None
        # Set by stop(), cleared by start(): the supervisor leaves a component stopped on
        # purpose down.
        self.stopped_on_purpose = False

    # What a subclass provides.

    @abstractmethod
    def command(self) -> Sequence[str]:
        """The argv to spawn (resolved binaries: prerequisites were checked)."""

    @abstractmethod
    async def ready(self, within: float) -> bool:
        """One real probe: True when the process serves what services need."""

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """What `ampmesh status` shows; never holds a secret."""

    @abstractmethod
    def service_env(self) -> dict[str, str]:
        """The AMPMESH_* variables every service gets to reach this component."""

    @abstractmethod
    def check(self) -> None:
        """Raise PrerequisiteMissing if something to install is missing (no processes)."""

    async def prepare(self) -> None:
        """Runs before the spawn: make state directories, initialise data."""
        self.state_dir.mkdir(parents=True, exist_ok=True)

    async def after_ready(self) -> None:  # noqa: B027 (optional hook)
        """Runs once the component is ready: create databases, topics, …"""

    def spawn_options(self) -> dict[str, object]:
        """Extra keyword arguments for create_subprocess_exec (user, env, …)."""
        return {}

    # Shared behaviour.

    @property
    def state_dir(self) -> Path:
        return self.home / self.name

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    @property
    def host(self) -> str:
        return HOST

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _died(self, during: str) -> InfraError:
        assert self.process is not None
        return InfraError(
            f"{self.name} exited with code {self.process.returncode} {during}; "
            f"its log ({self.log_path}) ends with:\n{log_tail(self.log_path)}"
        )

    async def start(self, within: float = 60.0) -> None:
        """Spawn the process and wait until a real probe says it is ready."""
        if self.process is not None and self.process.returncode is None:
            raise InfraError(f"{self.name} is already running (pid {self.process.pid})")
        self.check()
        self.stopped_on_purpose = False
        deadline = time.monotonic() + within
        await self.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, object] = {"cwd": self.state_dir}
        options.update(self.spawn_options())
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Ctrl-C in the terminal reaches only the launcher, which stops us in order.
                start_new_session=True,
                **options,  # type: ignore[arg-type]
            )
        try:
            await self._wait_ready(deadline, within)
            await self.after_ready()
        except BaseException:
            await self.stop(grace=5.0)
            self.stopped_on_purpose = False  # it failed; nobody asked for it to stay down
            raise

    async def _wait_ready(self, deadline: float, within: float) -> None:
        assert self.process is not None
        while True:
            if self.process.returncode is not None:
                raise self._died("during start")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InfraError(
                    f"{self.name} was not ready within {within:.0f}s; "
                    f"its log ({self.log_path}) ends with:\n{log_tail(self.log_path)}"
                )
            if await self.ready(min(2.0, remaining)):
                return
            # The process may have died while the probe ran.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), _POLL)

    async def stop(self, grace: float = 15.0) -> int | None:
        """Ask the process to stop, kill its process group after `grace` seconds.

        Returns the exit code, or None when it had to be killed (or never ran).
        """
        process = self.process
        self.stopped_on_purpose = True
        if process is None:
            return None
        if process.returncode is not None:
            return process.returncode
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(self.stop_signal)
        try:
            return await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            # The whole group: PostgreSQL's backends and Java's helpers die with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            return None
