"""What the messenger tests share: the settings and keyring of an in-process messenger, a
project that makes webhook destinations in its database, the running pieces, and the
events and waits of delivery tests."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from ampmesh.events.v1 import read_result_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope

from services.domain.destination_secrets import seal_secrets
from services.domain.read_bodies import set_body
from services.messenger.consumers import Consumers
from services.messenger.deliveries import Deliverer
from services.messenger.service import Messenger
from services.messenger.settings import MessengerSettings
from services.runtime.envelopes import new_envelope
from services.runtime.secretbox import SecretBox
from tests.support.stack import Stack, component

PATIENCE = 20.0  # bound of waits, never an assertion about speed


def page_envelope(
    project_id: str,
    destination_id: str,
    *,
    operation_id: str = "",
    page: int = 1,
    records: int = 3,
    compressed: bool = True,
) -> Envelope:
    """A read result page, its body compressed as the read workflows publish it (or, with
    compressed=False, as plain JSON: BODY_ENCODING_UNSPECIFIED)."""
    operation_id = operation_id or str(uuid.uuid4())
    body = orjson.dumps(
        {
            "projectId": project_id,
            "operationId": operation_id,
            "objectName": "contacts",
            "resultInfo": {"type": "inline", "numRecords": records},
            "result": [{"fields": {"id": str(i)}} for i in range(records)],
        }
    )
    message = read_result_pb2.WebhookMessage(
        project_id=project_id,
        operation_id=operation_id,
        installation_id=str(uuid.uuid4()),
        object_name="contacts",
        action="read",
        result_info=read_result_pb2.ResultInfo(type="inline", num_records=records),
    )
    read_result_page = read_result_pb2.ReadResultPage(
        message=message,
        destination_id=destination_id,
        page_number=page,
        part_number=1,
        part_count=1,
    )
    if compressed:
        set_body(read_result_page, body)
    else:
        read_result_page.body = body
    return new_envelope(
        project_id=project_id,
        idempotency_key=f"{operation_id}/page/{page}/part/1",
        source="test",
        read_result_page=read_result_page,
    )


async def delivery_row(pool: asyncpg.Pool, delivery_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", delivery_id)


async def until(pool: asyncpg.Pool, query: str, *args: Any, patience: float = PATIENCE) -> Any:
    """Poll query until it returns a truthy value (a bounded wait)."""
    async with asyncio.timeout(patience):
        while True:
            value = await pool.fetchval(query, *args)
            if value:
                return value
            await asyncio.sleep(0.05)


async def settled(pool: asyncpg.Pool, delivery_id: str, status: str) -> asyncpg.Record:
    await until(
        pool,
        "SELECT true FROM webhook_deliveries WHERE id = $1 AND status = $2",
        delivery_id,
        status,
    )
    row = await delivery_row(pool, delivery_id)
    assert row is not None
    return row


async def attempts(pool: asyncpg.Pool, delivery_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM webhook_delivery_attempts WHERE delivery_id = $1 ORDER BY number",
        delivery_id,
    )


KEYS = SecretBox.new_spec("messenger")
BOX = SecretBox.from_spec(KEYS)


def settings_for(stack: Stack, database: str, **extra: Any) -> MessengerSettings:
    pubsub = component(stack, "pubsub").service_env()
    return MessengerSettings.model_validate(
        {
            "service_name": "messenger",
            "database_url": database,
            "pubsub_emulator_host": pubsub["AMPMESH_PUBSUB_EMULATOR_HOST"],
            "pubsub_project": pubsub["AMPMESH_PUBSUB_PROJECT"],
            "secret_keys": KEYS,
            "allow_loopback_webhooks": True,
            "refuse_private_destinations": False,
            "backoff_first": 0.2,
            "backoff_cap": 0.5,
            "poll_interval": 0.1,
            "lease": 2.0,
            **extra,
        }
    )


@dataclass
class Project:
    id: str
    pool: asyncpg.Pool

    async def destination(
        self, url: str, headers: dict[str, str] | None = None, name: str = ""
    ) -> tuple[str, str]:
        """A webhook destination of the project: (id, whsec_ secret)."""
        destination_id = str(uuid.uuid4())
        secret = "whsec_" + __import__("base64").b64encode(uuid.uuid4().bytes * 2).decode()
        sealed = seal_secrets(BOX, destination_id, {"webhookSigningKey": secret})
        await self.pool.execute(
            "INSERT INTO destinations (id, project_id, name, type, metadata, secrets_sealed, "
            "secrets_key_id) VALUES ($1, $2, $3, 'webhook', $4::jsonb, $5, $6)",
            uuid.UUID(destination_id),
            uuid.UUID(self.id),
            name or f"hook-{destination_id[:8]}",
            orjson.dumps({"url": url, "headers": headers or {}}).decode(),
            sealed.data,
            sealed.key_id,
        )
        return destination_id, secret


@dataclass
class Running:
    messenger: Messenger
    deliverer: Deliverer
    consumers: Consumers
