"""A project's known activity, seeded as the services that own those rows store them
(scribe, messenger, the token-manager's events, the api's proxy rollup), with times
relative to now, so each figure the metrics service computes is known exactly."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg


@dataclass
class World:
    project_id: str
    project_name: str
    key: str
    stranger_key: str
    sync_integration: str
    other_integration: str
    # When the rows were seeded: times below are relative to it.
    seeded_at: datetime


async def seed(connection: asyncpg.Connection, project: uuid.UUID) -> tuple[str, str]:
    now = datetime.now(UTC)

    def ago(**delta: float) -> datetime:
        return now - timedelta(**delta)

    sync = await connection.fetchval(
        "INSERT INTO integrations (project_id, name, provider) "
        "VALUES ($1, 'sync', 'hubspot') RETURNING id",
        project,
    )
    other = await connection.fetchval(
        "INSERT INTO integrations (project_id, name, provider) "
        "VALUES ($1, 'other', 'salesforce') RETURNING id",
        project,
    )
    sync_installation = await connection.fetchval(
        "INSERT INTO installations (project_id, integration_id, group_ref) "
        "VALUES ($1, $2, 'acme') RETURNING id",
        project,
        sync,
    )
    other_installation = await connection.fetchval(
        "INSERT INTO installations (project_id, integration_id, group_ref) "
        "VALUES ($1, $2, 'globex') RETURNING id",
        project,
        other,
    )
    operations = [
        # (integration, installation, action, status, created, seconds to end, counts)
        (sync, sync_installation, "read", "success", ago(minutes=10), 30, {"recordsRead": 120}),
        (sync, sync_installation, "read", "success", ago(minutes=5), 90, {"recordsRead": 30}),
        (
            sync,
            sync_installation,
            "write",
            "failure",
            ago(minutes=2),
            10,
            {"recordsWritten": 5, "recordsFailed": 2},
        ),
        (
            other,
            other_installation,
            "read",
            "in_progress",
            ago(minutes=1),
            None,
            {"recordsRead": 7},
        ),
        # Three days ago: outside every window the tests ask for but the 31-day one.
        (sync, sync_installation, "read", "success", ago(days=3), 5, {"recordsRead": 1000}),
    ]
    for integration, installation, action, status, created, took, counts in operations:
        ended = None if took is None else created + timedelta(seconds=took)
        await connection.execute(
            "INSERT INTO operations (project_id, integration_id, installation_id, action_type, "
            "status, counts, created_at, updated_at, finished_at) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)",
            project,
            integration,
            installation,
            action,
            status,
            json.dumps(counts),
            created,
            ended or created,
            ended,
        )
    destination = await connection.fetchval(
        "INSERT INTO destinations (project_id, name, type, metadata) VALUES "
        "($1, 'hook', 'webhook', '{\"url\": \"https://example.com/hook\"}') RETURNING id",
        project,
    )
    await connection.execute(
        "INSERT INTO webhook_endpoints (destination_id, project_id, state, disabled_at) "
        "VALUES ($1, $2, 'disabled', $3)",
        destination,
        project,
        ago(hours=1),
    )
    deliveries = [
        # (installation, status, attempts, records, created, seconds to completion)
        (sync_installation, "succeeded", 1, 50, ago(minutes=9), 2),
        (sync_installation, "succeeded", 2, 50, ago(minutes=4), 4),
        (sync_installation, "failed", 3, 10, ago(minutes=8), 600),
        (other_installation, "retrying", 1, 10, ago(minutes=20), None),
    ]
    for installation, status, attempts, records, created, took in deliveries:
        await connection.execute(
            "INSERT INTO webhook_deliveries (id, project_id, destination_id, kind, event_type, "
            "event_id, installation_id, record_count, body, status, attempt_count, "
            "retry_deadline, created_at, completed_at) VALUES ($1, $2, $3, 'read_result', "
            "'read.page', $1, $4, $5, '\\x00', $6, $7, $8, $9, $10)",
            f"msg_{uuid.uuid4().hex}",
            project,
            destination,
            str(installation),
            records,
            status,
            attempts,
            created + timedelta(days=1),
            created,
            None if took is None else created + timedelta(seconds=took),
        )
    for state, created in (("pending", ago(minutes=30)), ("resolved", ago(hours=1))):
        await connection.execute(
            "INSERT INTO scribe_dead_letters (project_id, subscription, message_id, data, "
            "error, state, created_at) VALUES ($1, 'sub', $2, '\\x00', 'bad', $3, $4)",
            str(project),
            uuid.uuid4().hex,
            state,
            created,
        )
    for provider, status in (
        ("hubspot", "working"),
        ("hubspot", "working"),
        ("salesforce", "bad_credentials"),
    ):
        await connection.execute(
            "INSERT INTO connections (id, project_id, provider, group_ref, group_name, "
            "consumer_ref, consumer_name, auth_scheme, status) "
            "VALUES ($1, $2, $3, 'acme', 'Acme', 'alice', 'Alice', 'oauth2/authorizationCode', $4)",
            uuid.uuid4(),
            project,
            provider,
            status,
        )
    events = [
        ("ConnectionRefreshed", {"trigger": "REFRESH_TRIGGER_EXPIRY"}),
        ("ConnectionRefreshed", {"recovered": True}),
        (
            "ConnectionError",
            {"kind": "CONNECTION_ERROR_KIND_PROVIDER_UNAVAILABLE", "providerStatusCode": 503},
        ),
        # A revocation the builder asked for: no refresh was tried, none failed.
        ("ConnectionError", {"kind": "CONNECTION_ERROR_KIND_REVOKED"}),
    ]
    for kind, payload in events:
        await connection.execute(
            "INSERT INTO connection_events (project_id, idempotency_key, connection_id, type, "
            "event_time, event_id, payload) VALUES ($1, $2, 'c1', $3, $4, $2, $5::jsonb)",
            project,
            uuid.uuid4().hex,
            f"ampmesh.events.v1.{kind}",
            ago(minutes=30),
            json.dumps(payload),
        )
    minute = now.replace(second=0, microsecond=0) - timedelta(minutes=5)
    for status_class, calls in (("2xx", 7), ("5xx", 1)):
        await connection.execute(
            "INSERT INTO proxy_call_counts (project_id, status_class, minute, calls) "
            "VALUES ($1, $2, $3, $4)",
            str(project),
            status_class,
            minute,
            calls,
        )
    return str(sync), str(other)
