"""The launcher's infrastructure components, each a real server in a temporary home."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from services.launcher.infra import (
    InfraError,
    Postgres,
    PrerequisiteMissing,
    PubSub,
    Redis,
    Temporal,
    check_prerequisites,
    probe,
)
from services.launcher.infra.postgres import USER
from services.launcher.ports import PortBook
from services.runtime.database import head_revision, migrate
from services.runtime.pubsub_topology import emulator_publisher, topology

is_root = os.geteuid() == 0


def _new_home() -> Path:
    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700, and as root PostgreSQL runs as
    # an unprivileged user that could not reach it.
    home = Path(tempfile.mkdtemp(prefix="ampmesh-infra-", dir="/tmp"))
    home.chmod(0o755)
    return home


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    home = _new_home()
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def scratch_home() -> Iterator[Path]:
    home = _new_home()
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def ports(home: Path) -> PortBook:
    return PortBook(home)


@pytest.fixture(scope="module")
async def postgres(home: Path, ports: PortBook) -> AsyncIterator[Postgres]:
    component = Postgres(home, ports)
    await component.start()
    yield component
    await component.stop()


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(query))
    finally:
        await connection.close()


async def test_postgres_is_ready_migrated_and_probed(postgres: Postgres, home: Path) -> None:
    assert postgres.pid is not None
    assert await probe("postgres", postgres.endpoint, home)
    url = postgres.service_env()["AMPMESH_DATABASE_URL"]
    versions = await _fetch(url, "SELECT version_num FROM alembic_version")
    assert [r["version_num"] for r in versions] == [head_revision()]
    tables = await _fetch(
        url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    names = [r["tablename"] for r in tables]
    assert {"alembic_version", "orgs", "projects", "api_keys", "operations"} <= set(names)


async def test_migrate_again_is_a_no_op(postgres: Postgres) -> None:
    url = postgres.service_env()["AMPMESH_DATABASE_URL"]
    identity = "SELECT oid, xmin FROM pg_class WHERE relname IN ('orgs', 'projects') ORDER BY oid"
    before = await _fetch(url, identity)
    assert await migrate(url) == head_revision()
    assert await _fetch(url, identity) == before
    versions = await _fetch(url, "SELECT version_num FROM alembic_version")
    assert [r["version_num"] for r in versions] == [head_revision()]


async def test_password_stays_out_of_endpoint_and_log(postgres: Postgres) -> None:
    password = postgres.password
    assert password and password in postgres.service_env()["AMPMESH_DATABASE_URL"]
    assert postgres.endpoint == f"postgresql://{USER}@127.0.0.1:{postgres.port}/ampmesh"
    assert stat.S_IMODE(postgres.password_file.stat().st_mode) == 0o600
    assert password not in postgres.log_path.read_text()


async def test_postgres_keeps_rows_across_restart(postgres: Postgres, home: Path) -> None:
    url = postgres.service_env()["AMPMESH_DATABASE_URL"]
    await _fetch(url, "INSERT INTO orgs (label) VALUES ('Acme Inc')")
    first_pid = postgres.pid

    assert await postgres.stop() == 0
    assert not await probe("postgres", postgres.endpoint, home)

    again = Postgres(home, PortBook(home))  # what a second `ampmesh up` makes
    await again.start()
    try:
        assert again.pid != first_pid
        url = again.service_env()["AMPMESH_DATABASE_URL"]
        rows = await _fetch(url, "SELECT label FROM orgs")
        assert [r["label"] for r in rows] == ["Acme Inc"]
    finally:
        assert await again.stop() == 0


async def test_redis_keeps_keys_across_restart(home: Path, ports: PortBook) -> None:
    server = Redis(home, ports)
    await server.start()
    try:
        assert await probe("redis", server.endpoint, home)
        client = redis.asyncio.Redis.from_url(server.service_env()["AMPMESH_REDIS_URL"])
        await client.set("ampmesh:test", "kept")
        await client.aclose()
    finally:
        assert await server.stop() == 0
    assert not await probe("redis", server.endpoint, home)

    await server.start()
    try:
        client = redis.asyncio.Redis.from_url(server.endpoint)
        assert await client.get("ampmesh:test") == b"kept"
        await client.aclose()
    finally:
        assert await server.stop() == 0


async def test_temporal_serves_the_ampmesh_namespace(home: Path, ports: PortBook) -> None:
    server = Temporal(home, ports)
    await server.start()
    try:
        assert await probe("temporal", server.endpoint, home)
        env = server.service_env()
        assert env["AMPMESH_TEMPORAL_NAMESPACE"] == "ampmesh"
        client = await Client.connect(env["AMPMESH_TEMPORAL_ADDRESS"], namespace="ampmesh")
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="ampmesh")
        )
        assert described.namespace_info.name == "ampmesh"
        assert (home / "temporal" / "temporal.db").exists()
    finally:
        assert await server.stop() == 0
    assert not await probe("temporal", server.endpoint, home)


async def test_pubsub_emulator_starts_with_the_topology(home: Path, ports: PortBook) -> None:
    emulator = PubSub(home, ports)
    await emulator.start()
    try:
        assert await probe("pubsub", emulator.endpoint, home)
        env = emulator.service_env()
        assert env["AMPMESH_PUBSUB_EMULATOR_HOST"] == emulator.endpoint
        project = env["AMPMESH_PUBSUB_PROJECT"]
        with emulator_publisher(emulator.endpoint) as publisher:
            names = {t.name for t in publisher.list_topics(project=f"projects/{project}")}
        layout = topology(project)
        assert names == {layout.topic_path(t) for t in layout.topics}
    finally:
        assert await emulator.stop() == 0
    assert not await probe("pubsub", emulator.endpoint, home)


def test_a_missing_pubsub_emulator_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, scratch_home: Path
) -> None:
    monkeypatch.setenv("AMPMESH_PUBSUB_EMULATOR", str(scratch_home / "no-such-emulator"))
    with pytest.raises(PrerequisiteMissing) as missing:
        check_prerequisites()
    message = str(missing.value)
    assert "\n" not in message
    assert "google-cloud-cli-pubsub-emulator" in message and "Java" in message


async def test_a_missing_emulator_fails_start_without_a_process(
    monkeypatch: pytest.MonkeyPatch, scratch_home: Path
) -> None:
    monkeypatch.setenv("AMPMESH_PUBSUB_EMULATOR", str(scratch_home / "no-such-emulator"))
    emulator = PubSub(scratch_home, PortBook(scratch_home))
    with pytest.raises(PrerequisiteMissing):
        await emulator.start()
    assert emulator.pid is None


async def test_a_process_that_dies_at_start_is_reported_with_its_log(
    monkeypatch: pytest.MonkeyPatch, scratch_home: Path
) -> None:
    failing = scratch_home / "redis-server"
    failing.write_text("#!/bin/sh\necho 'FATAL: cannot bind' >&2\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.setenv("AMPMESH_REDIS_SERVER", str(failing))
    with pytest.raises(InfraError) as failed:
        await Redis(scratch_home, PortBook(scratch_home)).start(within=10)
    first, *tail = str(failed.value).splitlines()
    assert "redis exited with code 3" in first
    assert "FATAL: cannot bind" in tail


async def test_a_data_dir_of_another_major_version_is_left_alone(scratch_home: Path) -> None:
    data = scratch_home / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("9\n")
    with pytest.raises(InfraError, match="made by PostgreSQL 9"):
        await Postgres(scratch_home, PortBook(scratch_home)).start()
    assert sorted(p.name for p in data.iterdir()) == ["PG_VERSION"]


@pytest.mark.skipif(not is_root, reason="only root hands PostgreSQL to another user")
async def test_an_unreachable_home_is_named_not_opened() -> None:
    closed = Path(tempfile.mkdtemp(prefix="ampmesh-closed-", dir="/tmp"))  # 0700
    try:
        home = closed / "home"
        home.mkdir()
        with pytest.raises(InfraError, match=f"cannot enter {closed}:"):
            await Postgres(home, PortBook(home)).start()
        assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    finally:
        shutil.rmtree(closed, ignore_errors=True)
