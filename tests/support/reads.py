"""What the read tests on the stack's Temporal share: an installation of HubSpot contacts
inserted as the control plane stores it, a subscription of the test's own that watches a
topic, and the record ids of read-result pages."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.workflows.v1 import object_target_pb2 as target_pb2
from google.api_core.exceptions import DeadlineExceeded

from services.domain.read_bodies import page_body

OBJECT = "contacts"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Installation:
    project_id: str
    integration_id: str
    installation_id: str
    connection_id: str
    destination_id: str

    def target(self) -> target_pb2.ObjectTarget:
        return target_pb2.ObjectTarget(
            project_id=self.project_id,
            integration_id=self.integration_id,
            installation_id=self.installation_id,
            connection_id=self.connection_id,
            provider="hubspot",
            object_name=OBJECT,
        )


REVISION = {
    "name": "crm",
    "provider": "hubspot",
    "read": {
        "objects": [
            {
                "objectName": OBJECT,
                "destination": "hooks",
                "schedule": "*/10 * * * *",
                "backfill": {"defaultPeriod": {"fullHistory": True}},
                "delivery": {"pageSize": 50},
            }
        ]
    },
}


async def make_installation(pool: asyncpg.Pool, org_id: str) -> Installation:
    async with pool.acquire() as db, db.transaction():
        project = await db.fetchval(
            "INSERT INTO projects (org_id, name, app_name) VALUES ($1, $2, 'reads') "
            "RETURNING id::text",
            uuid.UUID(org_id),
            f"reads-{uuid.uuid4().hex[:10]}",
        )
        destination = await db.fetchval(
            "INSERT INTO destinations (project_id, name, type, metadata) "
            "VALUES ($1::uuid, 'hooks', 'webhook', '{}') RETURNING id::text",
            project,
        )
        integration = await db.fetchval(
            "INSERT INTO integrations (project_id, name, provider) VALUES ($1::uuid, 'crm', "
            "'hubspot') RETURNING id::text",
            project,
        )
        revision = await db.fetchval(
            "INSERT INTO revisions (integration_id, spec_version, content) "
            "VALUES ($1::uuid, '1.0.0', $2::jsonb) RETURNING id",
            integration,
            json.dumps(REVISION),
        )
        await db.execute(
            "UPDATE integrations SET latest_revision_id = $1 WHERE id = $2::uuid",
            revision,
            integration,
        )
        connection = str(uuid.uuid4())
        await db.execute(
            "INSERT INTO connections (id, project_id, provider, group_ref, group_name, "
            "consumer_ref, consumer_name, auth_scheme) VALUES ($1::uuid, $2::uuid, 'hubspot', "
            "'g1', 'Group 1', 'c1', 'Consumer 1', 'oauth2/authorizationCode')",
            connection,
            project,
        )
        installation = await db.fetchval(
            "INSERT INTO installations (project_id, integration_id, group_ref, group_name, "
            "connection_id, created_at) VALUES ($1::uuid, $2::uuid, 'g1', 'Group 1', $3::uuid, "
            "$4) RETURNING id::text",
            project,
            integration,
            connection,
            T0 - timedelta(days=1),
        )
        config = {"provider": "hubspot", "read": {"objects": {OBJECT: {"objectName": OBJECT}}}}
        await db.execute(
            "INSERT INTO configs (installation_id, revision_id, content) "
            "VALUES ($1::uuid, $2, $3::jsonb)",
            installation,
            revision,
            json.dumps(config),
        )
    return Installation(project, integration, installation, connection, destination)


@dataclass
class Watch:
    """A subscription of the test's own on a topic; everything pulled from it."""

    subscriber: Any
    name: str
    seen: list[Envelope] = field(default_factory=list)

    def pull(self) -> int:
        try:
            # Few per pull: a page is up to 300 KB and a pull's answer at most 4 MB.
            answer = self.subscriber.pull(subscription=self.name, max_messages=12, timeout=2)
        except DeadlineExceeded:
            return 0
        if answer.received_messages:
            self.subscriber.acknowledge(
                subscription=self.name, ack_ids=[m.ack_id for m in answer.received_messages]
            )
        self.seen += [Envelope.FromString(m.message.data) for m in answer.received_messages]
        return len(answer.received_messages)

    async def drain(self) -> list[Envelope]:
        """Pull until the subscription has nothing more for a moment."""
        while await asyncio.to_thread(self.pull):
            pass
        return self.seen

    def of(self, operation_id: str, payload: str) -> list[Any]:
        found = []
        for envelope in self.seen:
            if envelope.WhichOneof("payload") != payload:
                continue
            message = getattr(envelope, payload)
            if payload == "read_result_page":
                if message.message.operation_id == operation_id:
                    found.append(envelope)
            elif payload == "notification" or getattr(message, "operation_id", "") == operation_id:
                found.append(envelope)
        return found


def body_ids(pages: list[Envelope]) -> list[str]:
    ids = []
    for envelope in pages:
        body = orjson.loads(page_body(envelope.read_result_page))
        assert body["resultInfo"]["numRecords"] == len(body["result"])
        ids += [entry["id"] for entry in body["result"]]
    return ids
