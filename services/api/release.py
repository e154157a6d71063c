"""A deployment's release step and the gate every service pod waits at.

    python -m services.api.release
        the Kubernetes Job `ampmesh-release`: migrate the database to the code's head
        (services.runtime.database.migrate; a no-op when already there) and, when
        AMPMESH_ADMIN_API_KEY is set, make that key an org admin key of the default org
        (services.api.bootstrap.register_admin_key; only its digest is stored, the key is
        never logged). Exit 0 done, 1 failed (one line why), 2 a setting is missing/bad.
    python -m services.api.release wait [--timeout S]
        every service pod's init container: exit 0 once the schema is at the code's head
        (or at a revision this code does not know: a newer release migrated, and an old
        pod rescheduled mid-rollout must still start), 1 with one line after S seconds
        (default 300; kubelet then restarts the init container with backoff).

    python -m services.api.release new-key
        print a fresh API key for the Secret's admin-api-key (nothing is stored: the Job
        registers it).

Settings: AMPMESH_DATABASE_URL (required), AMPMESH_ADMIN_API_KEY (optional, the Job only),
AMPMESH_LOG_LEVEL / AMPMESH_LOG_FORMAT.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

import asyncpg
from alembic.script import ScriptDirectory
from pydantic import Field, SecretStr

from services.api.auth import new_api_key
from services.api.bootstrap import AdminKeyError, register_admin_key
from services.runtime.config import ConfigError, ServiceSettings, load_settings
from services.runtime.database import alembic_config, head_revision, migrate
from services.runtime.logs import configure_logging, get_logger

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2
NAME = "release"
DEFAULT_WAIT_SECONDS = 300.0
# Between looks at the schema while waiting: cheap for the database, quick for the pod.
_POLL_SECONDS = 2.0
_CONNECT_TIMEOUT = 5.0

_log = get_logger("ampmesh.release")


class ReleaseSettings(ServiceSettings):
    """What the release Job and the wait-for-schema init container read."""

    database_url: SecretStr = Field(
        ...,
        description="PostgreSQL URL (postgresql://user:password@host:port/db[?sslmode=...])",
    )
    admin_api_key: SecretStr | None = Field(
        None,
        description="the release Job makes this API key an org admin key of the default org "
        "(registered once, only its digest stored); unset: no admin key is registered",
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


async def release(settings: ReleaseSettings) -> int:
    """Migrate, then register the admin key; the Job's exit code."""
    url = settings.database_url.get_secret_value()
    try:
        head = await migrate(url)
    except Exception as error:  # any failure is one line, never a traceback
        # asyncpg's and alembic's messages name host, port, user and SQL, never the password.
        _log.error("migration failed", error=_first_line(error))
        return EXIT_FAILED
    _log.info("schema at head", revision=head)
    if settings.admin_api_key is None:
        _log.info("no admin key configured", variable=settings.env_var("admin_api_key"))
        return EXIT_OK
    try:
        admin, registered = await register_admin_key(url, settings.admin_api_key.get_secret_value())
    except AdminKeyError as error:
        _log.error(f"{settings.env_var('admin_api_key')}: {error}")
        return EXIT_FAILED
    except (OSError, asyncpg.PostgresError) as error:
        _log.error("registering the admin key failed", error=_first_line(error))
        return EXIT_FAILED
    _log.info(
        "admin key registered" if registered else "admin key already registered",
        org_id=admin.org_id,
    )
    return EXIT_OK


async def current_revision(database_url: str) -> str | None:
    """The database's alembic revision; None before the first migration."""
    connection = await asyncpg.connect(database_url, timeout=_CONNECT_TIMEOUT)
    try:
        try:
            revision = await connection.fetchval("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            return None
        return str(revision) if revision is not None else None
    finally:
        await connection.close()


def _known_revisions() -> set[str]:
    return {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


async def wait_for_schema(settings: ReleaseSettings, within: float) -> int:
    """Exit 0 once the schema is at head (or newer), 1 after `within` seconds."""
    url = settings.database_url.get_secret_value()
    head = head_revision()
    known = _known_revisions()
    deadline = time.monotonic() + within
    seen = "not looked at yet"
    while True:
        try:
            revision = await current_revision(url)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            seen = f"unreachable ({_first_line(error)})"
        else:
            if revision == head:
                _log.info("schema at head", revision=head)
                return EXIT_OK
            if revision is not None and revision not in known:
                _log.info("schema newer than this code", revision=revision, head=head)
                return EXIT_OK
            seen = f"at {revision}" if revision else "not migrated"
        if time.monotonic() >= deadline:
            _log.error(
                f"the database schema did not reach {head} within {within:g}s: "
                f"the database is {seen}; has the ampmesh-release job run?"
            )
            return EXIT_FAILED
        await asyncio.sleep(_POLL_SECONDS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.api.release",
        description="Migrate the database and register the admin key (the release Job), "
        "or wait until the schema is at the code's head.",
    )
    commands = parser.add_subparsers(dest="command")
    wait = commands.add_parser("wait", help="exit 0 once the schema is at the code's head")
    wait.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        help=f"seconds to wait before exiting 1 (default {DEFAULT_WAIT_SECONDS:g})",
    )
    commands.add_parser("new-key", help="print a fresh API key for AMPMESH_ADMIN_API_KEY")
    args = parser.parse_args(argv)
    if args.command == "new-key":
        print(new_api_key().secret)
        return EXIT_OK
    if args.command == "wait" and args.timeout < 0:
        parser.error("--timeout must not be negative")
    try:
        settings = load_settings(ReleaseSettings, service_name=NAME)
    except ConfigError as error:
        # Logging is not configured yet (its level is a setting): a plain line.
        print(f"{NAME}: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "wait":
        return asyncio.run(wait_for_schema(settings, args.timeout))
    return asyncio.run(release(settings))


if __name__ == "__main__":
    sys.exit(main())
