"""Removing a connection: its credentials deleted by the token-manager (which asks the
provider to revoke them first, and announces connection.deleted), then its row.

DeleteConnection removes the connection it names, unless installations use it: it is
refused then (FAILED_PRECONDITION, reason CONNECTION_IN_USE, naming them), since deleting
it would leave them pointing at nothing, their reads and writes failing with no
connection to re-authenticate. Uninstalling them removes it with the last one.
DeleteInstallation removes the connection its installation leaves unused, as the reference
documents ("This will also delete the associated Connection if it is not used by any other
Installations"): the embeddable UI relies on it, sending a customer who uninstalled back
to the connect screen.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from ampmesh.token.v1 import token_manager_pb2 as tm

from services.api.context import ApiContext
from services.api.token_errors import abort_token_manager, require_token_manager
from services.runtime.errors import abort_with_details, error_info
from services.runtime.logs import get_logger

# Response headers (gRPC initial metadata) saying whether the provider revoked the
# credentials: the connection goes either way (a provider that cannot be reached must not
# keep it for ever), and the caller is told.
REVOCATION_HEADERS = ("x-ampmesh-revoked-at-provider", "x-ampmesh-revocation-detail")
_log = get_logger("ampmesh.api.connections")
# Installations a refusal names in its message (all of them are in its ErrorInfo count).
NAMED_USERS = 10


async def refuse_if_used(ctx: ApiContext, context: Any, connection_id: uuid.UUID) -> None:
    """FAILED_PRECONDITION naming the installations that use the connection, if any."""
    rows = await ctx.pool.fetch(
        "SELECT id, count(*) OVER () AS total FROM installations WHERE connection_id = $1 "
        "ORDER BY created_at, id LIMIT $2",
        connection_id,
        NAMED_USERS,
    )
    if not rows:
        return
    total = rows[0]["total"]
    named = ", ".join(str(row["id"]) for row in rows)
    more = f" and {total - len(rows)} more" if total > len(rows) else ""
    await abort_with_details(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        f"connection {str(connection_id)!r} is used by {total} installation(s): {named}{more}; "
        "delete those installations first (the last one's deletion removes the connection)",
        error_info(
            "CONNECTION_IN_USE",
            metadata={"installationCount": str(total), "installationIds": named},
        ),
    )


async def delete_credentials(
    ctx: ApiContext, context: Any, project_id: str, connection_id: uuid.UUID
) -> tuple[tuple[str, str], ...]:
    """Revoke and delete the connection's credentials; the revocation headers to send.
    Credentials already gone (an earlier delete stopped half-way) are not an error."""
    tokens = await require_token_manager(ctx, context)
    try:
        call = tokens.DeleteCredentials(
            tm.DeleteCredentialsRequest(
                connection_id=str(connection_id), project_id=project_id, revoke_at_provider=True
            )
        )
        await call
        return _revocation(await call.initial_metadata())
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            await abort_token_manager(context, error, "delete the connection's credentials")
    return ()


async def remove_if_unused(
    ctx: ApiContext, project_id: str, connection_id: uuid.UUID | None
) -> tuple[tuple[str, str], ...]:
    """After an installation is deleted: remove its connection if no installation uses
    it any more; the revocation headers to send. Never fails the call, whose installation
    is already gone: a token-manager that cannot delete the credentials leaves the
    connection as it was (whole, usable, deletable by its owner), and says so in the log."""
    if connection_id is None:
        return ()
    used = await ctx.pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM installations WHERE connection_id = $1)", connection_id
    )
    if used or ctx.tokens is None:
        return ()
    try:
        call = ctx.tokens.DeleteCredentials(
            tm.DeleteCredentialsRequest(
                connection_id=str(connection_id), project_id=project_id, revoke_at_provider=True
            )
        )
        await call
        revocation = _revocation(await call.initial_metadata())
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            _log.warning(
                "the connection an uninstall left unused is kept: its credentials could "
                "not be deleted",
                connection_id=str(connection_id),
                code=error.code().name,
            )
            return ()
        revocation = ()
    # Unless an installation took the connection up meanwhile (its credentials are gone
    # then too; that installation's next call says to reconnect).
    await ctx.pool.execute(
        "DELETE FROM connections WHERE project_id = $1 AND id = $2 "
        "AND NOT EXISTS (SELECT 1 FROM installations WHERE connection_id = $2)",
        uuid.UUID(project_id),
        connection_id,
    )
    return revocation


def _revocation(metadata: Any) -> tuple[tuple[str, str], ...]:
    return tuple((key, str(value)) for key, value in (metadata or ()) if key in REVOCATION_HEADERS)
