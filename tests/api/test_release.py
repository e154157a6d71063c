"""The release Job (`python -m services.api.release`) and the wait-for-schema gate every
service pod runs first, as processes against a real PostgreSQL, with only the environment
a pod gets."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.api.auth import FULL_SCOPE, key_digest, new_api_key
from services.launcher.infra import Postgres
from services.runtime.database import head_revision
from tests.support.own_infra import own_component


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[str]:
    async with own_component(Postgres, "release") as component:
        yield component.database_url


@pytest.fixture
async def database(server: str) -> str:
    """A database of its own, never migrated: what a fresh managed PostgreSQL holds."""
    name = f"release_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


async def _run(*args: str, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run the module as a pod would; its exit code and every line it wrote."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.api.release",
        *args,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode().splitlines()


async def _admin_keys(url: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(
            await connection.fetch(
                "SELECT org_id, project_id, active, scopes, secret_sha256 FROM api_keys"
            )
        )
    finally:
        await connection.close()


async def test_the_job_migrates_and_registers_the_admin_key_once(database: str) -> None:
    key = new_api_key().secret
    env = {"AMPMESH_DATABASE_URL": database, "AMPMESH_ADMIN_API_KEY": key}

    code, lines = await _run(env=env)
    assert code == 0, lines
    assert any("admin key registered" in line for line in lines), lines
    [row] = await _admin_keys(database)
    assert row["secret_sha256"] == key_digest(key)
    assert row["project_id"] is None and row["active"] and FULL_SCOPE in row["scopes"]

    code, lines = await _run(env=env)  # a Job re-run (a retried or repeated release)
    assert code == 0, lines
    assert any("admin key already registered" in line for line in lines), lines
    assert len(await _admin_keys(database)) == 1
    password = urlsplit(database).password
    assert password
    for line in lines:
        assert key not in line and password not in line


async def test_pods_wait_until_the_job_has_migrated(database: str) -> None:
    env = {"AMPMESH_DATABASE_URL": database}
    code, lines = await _run("wait", "--timeout", "0", env=env)
    assert code == 1
    [line] = lines
    assert head_revision() in line and "not migrated" in line

    waiting = asyncio.create_task(_run("wait", "--timeout", "120", env=env))
    await asyncio.sleep(1)
    assert not waiting.done()
    code, lines = await _run(env=env)
    assert code == 0, lines
    assert any("no admin key configured" in line for line in lines)
    code, lines = await waiting
    assert code == 0, lines
    assert await _admin_keys(database) == []


async def test_new_key_prints_a_key_the_job_accepts(database: str) -> None:
    code, lines = await _run("new-key", env={})
    assert code == 0
    [key] = lines
    code, lines = await _run(env={"AMPMESH_DATABASE_URL": database, "AMPMESH_ADMIN_API_KEY": key})
    assert code == 0, lines
    [row] = await _admin_keys(database)
    assert row["secret_sha256"] == key_digest(key)


async def test_a_malformed_admin_key_is_one_line_naming_the_variable(database: str) -> None:
    secret = "not-a-key-but-a-secret-all-the-same"
    env = {"AMPMESH_DATABASE_URL": database, "AMPMESH_ADMIN_API_KEY": secret}
    code, lines = await _run(env=env)
    assert code == 1
    errors = [line for line in lines if '"error"' in line]
    assert len(errors) == 1 and "AMPMESH_ADMIN_API_KEY" in errors[0], lines
    assert not any(secret in line for line in lines)
    assert await _admin_keys(database) == []


async def test_a_revoked_key_is_not_made_admin_again(database: str) -> None:
    key = new_api_key().secret
    env = {"AMPMESH_DATABASE_URL": database, "AMPMESH_ADMIN_API_KEY": key}
    code, _ = await _run(env=env)
    assert code == 0
    connection = await asyncpg.connect(database)
    try:  # the operator's key was later revoked
        await connection.execute("UPDATE api_keys SET active = false")
    finally:
        await connection.close()
    code, lines = await _run(env=env)
    assert code == 1
    assert any("AMPMESH_ADMIN_API_KEY" in line and "revoked" in line for line in lines), lines


async def test_without_a_database_url_both_commands_exit_2_naming_it() -> None:
    for args in ((), ("wait",)):
        code, lines = await _run(*args, env={})
        assert code == 2
        assert lines == [
            "release: configuration error: AMPMESH_DATABASE_URL is required but not set"
        ]
