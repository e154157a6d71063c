"""Which database failures mean "PostgreSQL cannot be used right now" (down, restarting,
the connection lost) rather than anything about the statement: the runtime answers them
UNAVAILABLE, which callers retry (errors.py), and the pool retries what it safely can
(database.py). Kept apart from database.py, which the error path must not import (it
pulls in the migrations' machinery)."""

from __future__ import annotations

import asyncpg

SERVER_GONE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # 08xxx, ConnectionDoesNotExistError among them
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up, shutting down
    asyncpg.exceptions.AdminShutdownError,  # 57P01
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
)

# How soon a caller may try again, said in the UNAVAILABLE answer's RetryInfo.
RETRY_AFTER_SECONDS = 1.0


def unavailable(error: BaseException) -> bool:
    """Whether error says PostgreSQL cannot be used right now, not that the statement was
    wrong (connection refused or reset, the server starting or shutting down, the
    connection closed under the statement)."""
    if isinstance(error, (*SERVER_GONE, OSError)):
        return True
    if isinstance(error, asyncpg.exceptions.InternalClientError):
        # What asyncpg raises from a connection whose server ended it in the middle of an
        # exchange ("cannot switch to state 12; another operation (2) is in progress"):
        # seen when a backend is terminated between a statement's prepare and execute.
        return True
    if isinstance(error, asyncpg.InterfaceError):
        # The same class also reports misuse (two operations at once): only a closed
        # connection is the server's doing.
        return "closed" in str(error)
    return False
