"""`python -m services.token_manager.reseal`: move every stored credential to the current key.

Key rotation without downtime: put a new key first in AMPMESH_SECRET_KEYS (keeping the old
ones after it) and restart the shards, which then seal with the new key and still open
rows sealed with the old ones; run this to re-seal the old rows; only then drop the old
key. Rows are re-sealed in small batches, each its own transaction holding its rows'
locks, so shards keep serving (and storing) while it runs. The Redis copies of re-sealed
rows are evicted, so no ciphertext under the old key outlives the pass there either.

Reads AMPMESH_DATABASE_URL, AMPMESH_SECRET_KEYS and (optionally) AMPMESH_REDIS_URL;
prints how many rows it re-sealed; exits 1 with one line when it cannot.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
import redis.asyncio
import redis.exceptions

from services.runtime.config import ConfigError, load_settings
from services.runtime.secretbox import Sealed, SecretBox, SecretBoxError
from services.token_manager.settings import TokenManagerSettings
from services.token_manager.store import associated_data, redis_key

BATCH = 100


async def reseal(
    pool: asyncpg.Pool, box: SecretBox, cache: redis.asyncio.Redis | None = None
) -> int:
    """Re-seal, with box's current key, every row sealed with another; returns how many."""
    total = 0
    while True:
        async with pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                "SELECT connection_id, credentials_sealed, credentials_key_id "
                "FROM connection_credentials WHERE credentials_key_id <> $1 "
                "ORDER BY connection_id LIMIT $2 FOR UPDATE SKIP LOCKED",
                box.current_id,
                BATCH,
            )
            for row in rows:
                bound = associated_data(row["connection_id"])
                plaintext = box.open(
                    Sealed(row["credentials_key_id"], bytes(row["credentials_sealed"])), bound
                )
                sealed = box.seal(plaintext, bound)
                # Not a change of the credentials: version and updated_at stay.
                await connection.execute(
                    "UPDATE connection_credentials SET credentials_sealed = $2, "
                    "credentials_key_id = $3 WHERE connection_id = $1",
                    row["connection_id"],
                    sealed.data,
                    sealed.key_id,
                )
        if cache is not None and rows:
            await cache.delete(*(redis_key(row["connection_id"]) for row in rows))
        total += len(rows)
        if len(rows) < BATCH:
            return total


async def _main() -> int:
    try:
        settings = load_settings(TokenManagerSettings, service_name="token-manager")
        box = SecretBox.from_spec(settings.secret_keys.get_secret_value())
    except (ConfigError, SecretBoxError) as error:
        print(f"reseal: AMPMESH_SECRET_KEYS or settings: {error}", file=sys.stderr)
        return 1
    database_url = settings.database_url.get_secret_value()
    if not database_url:
        print("reseal: AMPMESH_DATABASE_URL is required", file=sys.stderr)
        return 1
    redis_url = settings.redis_url.get_secret_value()
    cache = redis.asyncio.Redis.from_url(redis_url) if redis_url else None
    try:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    except (OSError, asyncpg.PostgresError) as error:
        print(f"reseal: cannot reach PostgreSQL: {error}", file=sys.stderr)
        return 1
    try:
        count = await reseal(pool, box, cache)
    except SecretBoxError as error:
        print(f"reseal: {error}; is the old key still in AMPMESH_SECRET_KEYS?", file=sys.stderr)
        return 1
    except (OSError, redis.exceptions.RedisError) as error:
        print(f"reseal: cannot reach Redis: {type(error).__name__}", file=sys.stderr)
        return 1
    finally:
        await pool.close()
        if cache is not None:
            await cache.aclose()
    print(f"re-sealed {count} credentials with key {box.current_id!r}")
    return 0


def main() -> None:
    sys.exit(asyncio.run(_main()))


if __name__ == "__main__":
    main()
