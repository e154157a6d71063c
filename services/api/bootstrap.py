"""The first credential: a default org and its admin API key.

A fresh deployment has no key to call the API with. `ampmesh up` (or a deployment's
release step) calls `ensure_admin`, which makes the org "default" and an org admin key (no
project: it may create projects and their keys) the first time, and keeps the key's secret
in a 0600 file so later runs and `ampmesh status --json` can show it. The database holds
only its digest. `rotate_admin_key` replaces it: the old key stops working at once.

A cluster has no home to keep a key file in: the operator makes the key and puts it in a
Secret, and the release Job (services.api.release) calls `register_admin_key`, which
makes that key an org admin key of the default org when its digest is not registered yet.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.api.auth import FULL_SCOPE, KEY_PREFIX, PREFIX_LENGTH, key_digest, new_api_key

DEFAULT_ORG_LABEL = "default"
ADMIN_KEY_LABEL = "org admin (made by ampmesh up)"
RELEASE_KEY_LABEL = "org admin (registered by the release job)"

# What new_api_key() makes: amp_<12 hex>_<at least 32 bytes, url-safe base64>. An operator
# makes one with `python -m services.api.release new-key`.
_API_KEY_SHAPE = re.compile(rf"{re.escape(KEY_PREFIX)}[0-9a-f]{{12}}_[A-Za-z0-9_-]{{43,}}")


class AdminKeyError(ValueError):
    """The configured admin key cannot be made an org admin key. str() is one line and
    never holds the key."""


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


def is_api_key(secret: str) -> bool:
    """Whether secret has the shape of a key new_api_key() makes."""
    return _API_KEY_SHAPE.fullmatch(secret) is not None


async def register_admin_key(database_url: str, secret: str) -> tuple[AdminCredential, bool]:
    """Make `secret` an active org admin key of the default org unless it already is one;
    returns the credential and whether it was registered now. AdminKeyError when the
    key is malformed, or registered as something else (a project key, a revoked key, or
    a different key under its prefix): an admin key silently kept out would lock the
    operator out."""
    if not is_api_key(secret):
        raise AdminKeyError(
            f"not an ampmesh API key (expected {KEY_PREFIX}<12 hex digits>_<43+ url-safe "
            "characters>; `python -m services.api.release new-key` makes one)"
        )
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            row = await connection.fetchrow(
                "SELECT org_id, project_id, active, scopes FROM api_keys WHERE secret_sha256 = $1",
                key_digest(secret),
            )
            if row is not None:
                if row["project_id"] is not None or not row["active"]:
                    raise AdminKeyError(
                        "the key is registered as a project key or is revoked; "
                        "make a new one for the admin key"
                    )
                if FULL_SCOPE not in row["scopes"]:
                    raise AdminKeyError("the key is registered without the full scope")
                return AdminCredential(str(row["org_id"]), secret), False
            prefix = secret[:PREFIX_LENGTH]
            if await connection.fetchval("SELECT 1 FROM api_keys WHERE prefix = $1", prefix):
                raise AdminKeyError(
                    "another key is registered under this key's prefix; make a new one"
                )
            org_id = await _default_org(connection)
            await connection.execute(
                "INSERT INTO api_keys (org_id, project_id, prefix, secret_sha256, label, "
                "scopes) VALUES ($1, NULL, $2, $3, $4, $5)",
                org_id,
                prefix,
                key_digest(secret),
                RELEASE_KEY_LABEL,
                [FULL_SCOPE],
            )
            return AdminCredential(org_id, secret), True
    finally:
        await connection.close()
