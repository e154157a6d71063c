"""What the tracing tests share: a backfill to a receiver, ended."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.e2e.reads_world import ReadsWorld, make_world, provider_ids, seed
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver

RECORDS = 40
PATIENCE = 120.0


async def backfilled(
    stack: Stack, sandbox: Any, receiver: Receiver
) -> tuple[ReadsWorld, dict[str, Any], dict[str, Any]]:
    """A world whose installation backfilled RECORDS records to receiver: the world, the
    installation and its ended read operation."""
    world = await make_world(stack, receiver.url(), f"traced_{uuid.uuid4().hex[:8]}")
    receiver.secrets[HOOK] = world.signing_key
    await seed(sandbox, world.object_name, RECORDS)
    ids = await provider_ids(stack, world.object_name)
    installation = await world.install("acme")
    missing = await receiver.wait_for_records(ids, PATIENCE)
    assert not missing, f"{len(missing)} of {len(ids)} records never arrived"
    deadline = time.monotonic() + PATIENCE
    while True:
        operations = await world.operations(installation["id"])
        ended = [o for o in operations if o["status"] in ("success", "failure")]
        if ended:
            return world, installation, ended[0]
        assert time.monotonic() < deadline, f"no read operation ended: {operations}"
        await asyncio.sleep(0.5)
