"""The api's side of subscribe actions: an installation's row in `subscriptions`, kept in
the transaction that changes the installation, and the SyncSubscriptions workflow started
after it commits. The workflow (services/temporal/subscribe) registers or removes the
difference at the provider; nothing here calls a provider.

- A saved config (create, update, patch, a switch of connection) whose subscribe section
  has objects, or an installation that already has a row, makes the row `pending` with
  `change` moved on: the workflow of that change (`sync_workflow_id(installation, change)`)
  brings the provider in step, and a config without subscribe objects removes what was
  registered.
- A deletion makes the row `removing` (change moved on) and keeps it: the worker removes
  the provider-side subscriptions, then the row.
- Starting the workflow happens after commit. If Temporal refuses or cannot be reached,
  the row stays `pending` (or `removing`) and the request is answered as usual: the
  worker's sweep of stale rows starts what was not started (H4's side), so a change is
  never lost, only late. A start is keyed by the change, so a sweep racing the api's own
  start runs it once.

Deleting an installation and its connection (`keeps_connection`): the api leaves the
connection in place when the installation's row has provider-side subscriptions
(`registered` not empty) or may be getting some (`pending`: a registration may be under
way), since removing a Salesforce event relay needs the connection's token. The worker,
once it has removed the subscriptions and deleted the row, removes the connection if no
installation uses it (DeleteCredentials through the token-manager, then the row, as
connection_removal.remove_if_unused does).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from ampmesh.manifest.v1 import config_pb2
from ampmesh.workflows.v1 import subscriptions_pb2

from services.api.context import ApiContext
from services.api.reads import meta_for
from services.domain.subscribe_names import SUBSCRIBE_QUEUE, SYNC_WORKFLOW, sync_workflow_id
from services.runtime.logs import get_logger

__all__ = ["Sync", "installation_deleted", "installation_saved", "start"]

_log = get_logger("ampmesh.api.subscriptions")

# How long the api waits on Temporal for a start after commit: the change is saved, so a
# slow Temporal delays the answer at most this much, and the sweep starts it later.
_START_TIMEOUT = timedelta(seconds=5)

_UPSERT = """
    INSERT INTO subscriptions (installation_id, project_id, integration_id, provider,
                               connection_id, status, change)
    VALUES ($1, $2, $3, $4, $5, 'pending', 1)
    ON CONFLICT (installation_id) DO UPDATE SET
        connection_id = EXCLUDED.connection_id, status = 'pending', error = '',
        change = subscriptions.change + 1, updated_at = now()
    RETURNING change
"""
_PENDING = """
    UPDATE subscriptions SET connection_id = $2, status = 'pending', error = '',
        change = change + 1, updated_at = now()
    WHERE installation_id = $1
    RETURNING change
"""
# The row before the change decides whether the connection stays (see the module's
# docstring); the row locked, so a worker's write of `registered` is seen or waits.
_REMOVING = """
    WITH before AS (
        SELECT installation_id, status, registered <> '{}'::jsonb AS has_registered
        FROM subscriptions WHERE installation_id = $1 FOR UPDATE
    )
    UPDATE subscriptions s SET status = 'removing', change = s.change + 1, updated_at = now()
    FROM before WHERE s.installation_id = before.installation_id
    RETURNING s.change, s.integration_id, before.status AS status_before, before.has_registered
"""


@dataclass(frozen=True)
class Sync:
    """A committed change SyncSubscriptions is to bring in step."""

    project_id: str
    integration_id: str
    installation_id: str
    change: int
    deleted: bool = False
    # The deleted installation's connection stays for the worker to remove.
    keeps_connection: bool = False

    @property
    def workflow_id(self) -> str:
        return sync_workflow_id(self.installation_id, self.change)


async def installation_saved(
    conn: asyncpg.Connection,
    *,
    project_id: str,
    integration_id: uuid.UUID,
    provider: str,
    installation_id: uuid.UUID,
    connection_id: uuid.UUID | None,
    content: config_pb2.ConfigContent,
) -> Sync | None:
    """In the transaction that saved the installation's config or connection: its row
    made pending, change moved on; None when it neither subscribes nor did."""
    if content.subscribe.objects:
        change = await conn.fetchval(
            _UPSERT,
            installation_id,
            uuid.UUID(project_id),
            integration_id,
            provider,
            connection_id,
        )
    else:
        change = await conn.fetchval(_PENDING, installation_id, connection_id)
    if change is None:
        return None
    return Sync(project_id, str(integration_id), str(installation_id), change)


async def installation_deleted(
    conn: asyncpg.Connection, project_id: str, installation_id: uuid.UUID
) -> Sync | None:
    """In the transaction that deletes the installation: its row made `removing`, change
    moved on; None when it has no row (it never subscribed)."""
    row = await conn.fetchrow(_REMOVING, installation_id)
    if row is None:
        return None
    return Sync(
        project_id,
        str(row["integration_id"]),
        str(installation_id),
        row["change"],
        deleted=True,
        keeps_connection=row["has_registered"] or row["status_before"] == "pending",
    )


async def start(ctx: ApiContext, sync: Sync | None) -> None:
    """After commit: start the change's SyncSubscriptions. Never fails the call, whose
    change is committed: a refusal leaves the row for the worker's sweep, and a log line."""
    if sync is None:
        return
    if ctx.reads is None:
        _log.warning(
            "subscriptions left for the sweep: this api runs without Temporal",
            installation_id=sync.installation_id,
            change=sync.change,
        )
        return
    workflow_input = subscriptions_pb2.SyncSubscriptionsInput(
        meta=meta_for(subscriptions_pb2.SyncSubscriptionsInput, sync.project_id, sync.workflow_id),
        installation_id=sync.installation_id,
        integration_id=sync.integration_id,
        installation_deleted=sync.deleted,
    )
    try:
        await ctx.reads.temporal.start_workflow(
            SYNC_WORKFLOW,
            workflow_input,
            id=sync.workflow_id,
            task_queue=SUBSCRIBE_QUEUE,
            rpc_timeout=_START_TIMEOUT,
        )
    # Whatever the start raises (refused, already started by the sweep, Temporal
    # unreachable: a bare RuntimeError from the lazy client), the change is committed and
    # the sweep takes it from here; the caller must not see an error for a saved change.
    except Exception as error:
        _log.warning(
            "subscriptions workflow not started; the sweep will start it",
            installation_id=sync.installation_id,
            workflow_id=sync.workflow_id,
            error=type(error).__name__,
        )
        return
    _log.info(
        "subscriptions workflow started",
        installation_id=sync.installation_id,
        workflow_id=sync.workflow_id,
        deleted=sync.deleted,
    )
