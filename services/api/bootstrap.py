"""The first credential: a default org and its admin API key.

A fresh deployment has no key to call the API with. `ampmesh up` (or a deployment's
release step) calls `ensure_admin`, which makes the org "default" and an org admin key (no
project: it may create projects and their keys) the first time, and keeps the key's secret
in a 0600 file so later runs and `ampmesh status --json` can show it. The database holds
only its digest. `rotate_admin_key` replaces it: the old key stops working at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.api.auth import FULL_SCOPE, key_digest, new_api_key

DEFAULT_ORG_LABEL = "default"
ADMIN_KEY_LABEL = "org admin (made by ampmesh up)"


@dataclass(frozen=True)
class AdminCredential:
    org_id: str
    api_key: str


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")


def _read_secret(path: Path) -> str:
    # A few bytes from a local file, at start or from the CLI: not worth a thread.
    return path.read_text().strip() if path.exists() else ""


async def _default_org(connection: asyncpg.Connection) -> str:
    org = await connection.fetchval("SELECT id FROM orgs ORDER BY created_at, id LIMIT 1")
    if org is None:
        org = await connection.fetchval(
            "INSERT INTO orgs (label) VALUES ($1) RETURNING id", DEFAULT_ORG_LABEL
        )
    return str(org)


async def _issue(connection: asyncpg.Connection, org_id: str, key_file: Path) -> str:
    key = new_api_key()
    await connection.execute(
        "INSERT INTO api_keys (org_id, project_id, prefix, secret_sha256, label, scopes) "
        "VALUES ($1, NULL, $2, $3, $4, $5)",
        org_id,
        key.prefix,
        key.digest,
        ADMIN_KEY_LABEL,
        [FULL_SCOPE],
    )
    _write_secret(key_file, key.secret)
    return key.secret


async def ensure_admin(database_url: str, key_file: Path) -> AdminCredential:
    """The default org and a working admin key, made the first time only."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            secret = _read_secret(key_file)
            if secret:
                org = await connection.fetchval(
                    "SELECT org_id FROM api_keys WHERE secret_sha256 = $1 AND active "
                    "AND project_id IS NULL",
                    key_digest(secret),
                )
                if org is not None:
                    return AdminCredential(str(org), secret)
            org_id = await _default_org(connection)
            return AdminCredential(org_id, await _issue(connection, org_id, key_file))
    finally:
        await connection.close()


async def rotate_admin_key(database_url: str, key_file: Path) -> AdminCredential:
    """A new admin key for the org of the current one; the current one is deleted."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            old = _read_secret(key_file)
            org = await connection.fetchval(
                "DELETE FROM api_keys WHERE secret_sha256 = $1 AND project_id IS NULL "
                "RETURNING org_id",
                key_digest(old),
            )
            org_id = str(org) if org is not None else await _default_org(connection)
            return AdminCredential(org_id, await _issue(connection, org_id, key_file))
    finally:
        await connection.close()
