"""An event published through the outbox survives a restart of the Pub/Sub emulator (which
keeps nothing) that happens before its consumer took it: the publishing service's relay
notices the new bus and publishes again what it published within its replay window."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import psutil
import pytest

from tests.support.control_plane import create_project, database_url
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

PATIENCE = 90.0  # bound of waits (a restart, a relay's look, scribe's pull), not a speed


async def until_true(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_an_event_not_yet_consumed_survives_an_emulator_restart(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    mesh = stack.mesh
    project = (await create_project(admin, "bus", "Bus restart"))["name"]
    database = await asyncpg.connect(database_url(stack))
    scribe = mesh.service("scribe").process.pid
    mesh.hold("scribe")  # stopped, so that the event waits on the bus, unconsumed
    try:
        os.kill(scribe, signal.SIGTERM)
        await asyncio.to_thread(psutil.Process(scribe).wait, 30)
        created = await admin.post(
            f"/v1/projects/{project}/connections:generate",
            json={
                "provider": "hubspot",
                "groupRef": "acme",
                "consumerRef": "user-1",
                "oauth2AuthorizationCode": {"accessToken": {"token": "imported-bus-restart"}},
            },
        )
        assert created.status_code == 201, created.text
        connection_id = created.json()["id"]
        assert "updateTime" not in created.json()

        async def published() -> bool:
            # The token-manager's connection.created event, handed to Pub/Sub.
            return bool(
                await database.fetchval(
                    "SELECT bool_and(published_at IS NOT NULL) FROM event_outbox "
                    "WHERE source = 'token-manager' AND position($1::bytea in envelope) > 0",
                    connection_id.encode(),
                )
            )

        await until_true(published, "the token-manager never published the event")
        await mesh.restart_process("pubsub")
    finally:
        try:
            await mesh.restart("scribe")
        finally:
            await database.close()
    await mesh.wait_healthy()

    async def recorded() -> bool:
        shown = await admin.get(f"/v1/projects/{project}/connections/{connection_id}")
        assert shown.status_code == 200, shown.text
        return "updateTime" in shown.json()

    await until_true(
        recorded, "scribe never recorded the connection's creation: the event was lost"
    )
