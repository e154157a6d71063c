"""PostgreSQL: one server per home, its data in `<home>/postgres/data`, migrated at start."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from services.launcher.infra.base import (
    Component,
    InfraError,
    PrerequisiteMissing,
    executable,
    log_tail,
    on_path,
)
from services.launcher.ports import PortBook
from services.runtime.database import migrate

# The database superuser, the database, and (when we are root) the OS user the server
# runs as: PostgreSQL refuses to run as root.
USER = "ampmesh"
DATABASE = "ampmesh"

BIN_DIR_VARIABLE = "AMPMESH_POSTGRES_BIN_DIR"
MISSING = (
    "PostgreSQL is missing: reinstall the project (pip install -e .) for the pgserver "
    "wheel's server, install postgresql (apt), or set AMPMESH_POSTGRES_BIN_DIR to a "
    "directory holding postgres and initdb"
)


@dataclass(frozen=True)
class Binaries:
    bin_dir: Path
    major: int

    @property
    def postgres(self) -> Path:
        return self.bin_dir / "postgres"

    @property
    def initdb(self) -> Path:
        return self.bin_dir / "initdb"


def _holds_server(bin_dir: Path) -> bool:
    return executable(bin_dir / "postgres") and executable(bin_dir / "initdb")


def candidate_bin_dirs() -> list[Path]:
    """Where a server may be, best first; AMPMESH_POSTGRES_BIN_DIR alone when it is set.

    The pgserver wheel comes first so every machine runs the same pinned server (its
    PostgreSQL 16 runs on Debian 12 as shipped: no shared library is missing). The
    wheel is located, not imported: importing pgserver loads its own runtime.
    """
    override = os.environ.get(BIN_DIR_VARIABLE)
    if override:
        return [Path(override)]
    found: list[Path] = []
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        found.append(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin")
    machine = on_path("postgres")
    if machine is not None:
        # Debian links /usr/local/bin/postgres into /usr/lib/postgresql/<major>/bin,
        # where initdb is.
        found.append(machine.resolve().parent)
    installed = Path("/usr/lib/postgresql")
    if installed.is_dir():
        versions = [p for p in installed.iterdir() if p.name.isdigit()]
        found.extend(p / "bin" for p in sorted(versions, key=lambda p: -int(p.name)))
    return [d for i, d in enumerate(found) if _holds_server(d) and d not in found[:i]]


def check_installed() -> None:
    if not candidate_bin_dirs():
        if os.environ.get(BIN_DIR_VARIABLE):
            raise PrerequisiteMissing(
                f"{BIN_DIR_VARIABLE}={os.environ[BIN_DIR_VARIABLE]} holds no postgres and "
                "initdb: point it at a PostgreSQL bin directory"
            )
        raise PrerequisiteMissing(MISSING)
    if os.geteuid() == 0 and not _user_exists() and on_path("useradd") is None:
        raise PrerequisiteMissing(
            f"PostgreSQL cannot run as root and there is no user {USER} nor useradd to "
            f"make one: install passwd (apt) or create a system user {USER}"
        )


def _user_exists() -> bool:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return True


@dataclass(frozen=True)
class RunAs:
    """The unprivileged user the server runs as when we are root."""

    uid: int
    gid: int
    groups: frozenset[int]

    @classmethod
    def lookup(cls) -> RunAs:
        entry = pwd.getpwnam(USER)
        groups = {g.gr_gid for g in grp.getgrall() if USER in g.gr_mem}
        return cls(entry.pw_uid, entry.pw_gid, frozenset({entry.pw_gid, *groups}))

    def can_enter(self, directory: Path) -> bool:
        info = directory.stat()
        if info.st_uid == self.uid:
            return bool(info.st_mode & stat.S_IXUSR)
        if info.st_gid in self.groups:
            return bool(info.st_mode & stat.S_IXGRP)
        return bool(info.st_mode & stat.S_IXOTH)

    def first_closed(self, path: Path) -> Path | None:
        """The first directory on the way to path (inclusive) this user cannot enter."""
        for directory in [*reversed(path.parents), path]:
            if directory.exists() and not self.can_enter(directory):
                return directory
        return None

    def spawn_options(self) -> dict[str, object]:
        # extra_groups=[] drops root's supplementary groups along with root.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


async def _run(argv: Sequence[str | os.PathLike[str]], log: Path, **options: object) -> int:
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            **options,  # type: ignore[arg-type]
        )
    return await process.wait()


async def _server_version(bin_dir: Path) -> int | None:
    """The major version of the server in bin_dir, or None if it does not run here."""
    try:
        process = await asyncio.create_subprocess_exec(
            bin_dir / "postgres",
            "--version",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    out, _ = await process.communicate()
    found = re.search(rb"\(PostgreSQL\) (\d+)", out)
    return int(found.group(1)) if process.returncode == 0 and found else None


class Postgres(Component):
    name = "postgres"
    # SIGINT is PostgreSQL's fast shutdown: roll back sessions, checkpoint, exit.
    stop_signal = signal.SIGINT

    def __init__(self, home: Path, ports: PortBook) -> None:
        super().__init__(home, ports)
        self.port = self.ports.get(self.name)
        self.binaries: Binaries | None = None
        self.run_as: RunAs | None = None

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def password_file(self) -> Path:
        return self.state_dir / "password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def endpoint(self) -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}/{DATABASE}"

    @property
    def database_url(self) -> str:
        return f"postgresql://{USER}:{self.password}@{self.host}:{self.port}/{DATABASE}"

    def service_env(self) -> dict[str, str]:
        return {"AMPMESH_DATABASE_URL": self.database_url}

    def check(self) -> None:
        check_installed()

    def spawn_options(self) -> dict[str, object]:
        return self.run_as.spawn_options() if self.run_as else {}

    def command(self) -> Sequence[str]:
        assert self.binaries is not None
        return [
            str(self.binaries.postgres),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            self.host,
            # No unix socket: only TCP, and no socket path length limit on deep homes.
            "-k",
            "",
        ]

    async def _pick_binaries(self) -> Binaries:
        """The first candidate that runs here (and, as root, that the server user reaches)."""
        rejected: list[str] = []
        for bin_dir in candidate_bin_dirs():
            closed = self.run_as.first_closed(bin_dir) if self.run_as else None
            if closed is not None:
                rejected.append(f"{bin_dir} (user {USER} cannot enter {closed})")
                continue
            major = await _server_version(bin_dir)
            if major is None:
                rejected.append(f"{bin_dir} (postgres --version fails there)")
                continue
            return Binaries(bin_dir, major)
        raise InfraError(f"no usable PostgreSQL server: {'; '.join(rejected)}")

    async def _ensure_user(self) -> RunAs:
        if not _user_exists():
            useradd = on_path("useradd")
            assert useradd is not None  # check() said so
            argv: list[str | os.PathLike[str]] = [
                useradd,
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ]
            if await _run(argv, self.log_path) != 0 and not _user_exists():
                raise InfraError(f"could not create the system user {USER}; see {self.log_path}")
        return RunAs.lookup()

    def _write_password_once(self) -> None:
        with contextlib.suppress(FileExistsError):
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24) + "\n")

    def _hand_over(self, run_as: RunAs) -> None:
        """Give <home>/postgres to the server's user, and make sure it can get there."""
        owners = {self.state_dir.stat().st_uid, self.password_file.stat().st_uid}
        if owners != {run_as.uid}:
            for directory, _, files in os.walk(self.state_dir):
                os.chown(directory, run_as.uid, run_as.gid)
                for file in files:
                    os.chown(Path(directory) / file, run_as.uid, run_as.gid)
        closed = run_as.first_closed(self.data_dir.parent)
        if closed is not None:
            raise InfraError(
                f"PostgreSQL runs as user {USER} (it refuses root), which cannot enter "
                f"{closed}: allow it (chmod o+x {closed}) or use an AMPMESH_HOME it can reach"
            )

    async def prepare(self) -> None:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self.run_as = await self._ensure_user()
        self.binaries = await self._pick_binaries()
        self._write_password_once()
        if self.run_as is not None:
            self._hand_over(self.run_as)
        version_file = self.data_dir / "PG_VERSION"
        if version_file.exists():
            made_by = version_file.read_text().strip()
            if made_by != str(self.binaries.major):
                raise InfraError(
                    f"{self.data_dir} was made by PostgreSQL {made_by} but the server found "
                    f"is PostgreSQL {self.binaries.major} ({self.binaries.bin_dir}): set "
                    f"{BIN_DIR_VARIABLE} to a PostgreSQL {made_by} bin directory, or move "
                    "the data directory away to start afresh"
                )
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise InfraError(
                f"{self.data_dir} is not empty and holds no PostgreSQL data (no PG_VERSION): "
                "move it away"
            )
        initdb: list[str | os.PathLike[str]] = [
            self.binaries.initdb,
            "-D",
            self.data_dir,
            "--username",
            USER,
            f"--pwfile={self.password_file}",
            "--auth-host=scram-sha-256",
            "--auth-local=peer",
            "--encoding=UTF8",
            "--no-locale",
        ]
        code = await _run(initdb, self.log_path, cwd=self.state_dir, **self.spawn_options())
        if code < 0:
            # Killed by a signal: seen once (SIGSEGV) while other meshes were starting on the
            # same two cores. A killed initdb cannot clean up, and the directory was empty
            # before it (checked above), so empty it and try once more; a real fault fails
            # again and is reported below.
            _empty(self.data_dir)
            code = await _run(initdb, self.log_path, cwd=self.state_dir, **self.spawn_options())
        if code != 0:
            raise InfraError(
                f"initdb failed with code {code}; its log ({self.log_path}) ends with:\n"
                f"{log_tail(self.log_path)}"
            )

    async def _connect(self, database: str, within: float) -> asyncpg.Connection:
        return await asyncpg.connect(
            host=self.host,
            port=self.port,
            user=USER,
            password=self.password,
            database=database,
            timeout=within,
        )

    async def ready(self, within: float) -> bool:
        try:
            connection = await self._connect("postgres", within)
        except asyncpg.InvalidAuthorizationSpecificationError as error:
            raise InfraError(
                f"PostgreSQL refused user {USER} with the password in {self.password_file} "
                f"({error.__class__.__name__}): {self.data_dir} was initialised with another; "
                "restore that file or move the data directory away"
            ) from None
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        await connection.close()
        return True

    async def after_ready(self) -> None:
        connection = await self._connect("postgres", 10.0)
        try:
            exists = await connection.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", DATABASE
            )
            if not exists:
                await connection.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await connection.close()
        try:
            await migrate(self.database_url)
        except Exception as error:
            first_line = str(error).splitlines()[0] if str(error) else ""
            raise InfraError(
                f"migrating {self.endpoint} failed: {error.__class__.__name__}: {first_line}"
            ) from error


async def probe(endpoint: str, home: Path, within: float) -> bool:
    """Connect as the launcher's services would, with the password kept in home."""
    url = urlsplit(endpoint)
    try:
        password = (home / "postgres" / "password").read_text().strip()
        connection = await asyncpg.connect(
            host=url.hostname,
            port=url.port,
            user=url.username or USER,
            password=password,
            database=url.path.lstrip("/") or DATABASE,
            timeout=within,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    await connection.close()
    return True


def _empty(directory: Path) -> None:
    """Remove what is inside directory, keeping the directory (and its owner)."""
    for entry in directory.iterdir() if directory.exists() else ():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
