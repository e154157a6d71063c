"""The builders' provider apps (OAuth clients), as the token-manager reads them.

The api owns the `provider_apps` table; the token-manager only reads a client's id and
secret (sealed as services.domain.client_secrets says), at each use, so a rotated client
secret applies at once.
"""

from __future__ import annotations

import asyncpg

from services.domain.client_secrets import open_client_secret
from services.runtime.secretbox import SecretBox
from services.token_manager.provider import ClientApp
from services.token_manager.refresh import AppLookup


def provider_apps(pool: asyncpg.Pool, box: SecretBox) -> AppLookup:
    """Reads a builder's provider app at each use, so a rotated client secret applies at
    once. (The api owns provider_apps; the token-manager only reads the client's id and
    secret, sealed as services.domain.client_secrets says.)"""

    async def lookup(app_id: str, project_id: str) -> ClientApp | None:
        try:
            row = await pool.fetchrow(
                "SELECT id, client_id, client_secret_sealed, client_secret_key_id "
                "FROM provider_apps WHERE id = $1::uuid AND project_id = $2::uuid",
                app_id,
                project_id,
            )
        except (asyncpg.DataError, ValueError):
            return None  # not a UUID: no such app
        if row is None:
            return None
        secret = open_client_secret(
            box, str(row["id"]), row["client_secret_key_id"], bytes(row["client_secret_sealed"])
        )
        return ClientApp(row["client_id"], secret)

    return lookup
