"""Delivery of read results and notifications: signatures (checked by svix and
standardwebhooks), idempotency, retries, Retry-After, leases, endpoint disabling."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from ampmesh.events.v1 import notifications_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.messenger.v1 import messenger_pb2 as pb

from services.domain.read_bodies import page_body
from services.messenger.__main__ import open_messenger
from services.messenger.bodies import json_body
from services.messenger.consumers import Consumers, InvalidEvent
from services.messenger.retry import retry_after_seconds
from services.messenger.signing import delivery_id
from services.runtime.envelopes import new_envelope
from tests.support.messenger import (
    Project,
    Running,
    attempts,
    delivery_row,
    page_envelope,
    settings_for,
    settled,
    until,
)
from tests.support.stack import Stack
from tests.support.webhooks import Answer, Receiver

pytestmark = pytest.mark.e2e


def id_of(envelope: Envelope, destination_id: str) -> str:
    return delivery_id(envelope.meta.project_id, envelope.meta.idempotency_key, destination_id)


async def test_read_result_is_delivered_signed(
    running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(
        receiver.url("/hook"), headers={"X-Tenant": "acme"}
    )
    receiver.secrets["/hook"] = secret
    envelope = page_envelope(project.id, destination, records=3)
    await running.consumers.read_result(envelope, {}, 1)

    (got,) = await receiver.wait_for("/hook", 1)
    assert got.verified, "svix and standardwebhooks must both accept the signature"
    # The exact JSON bytes the producer rendered: decompressed, not re-encoded.
    assert got.body == page_body(envelope.read_result_page)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-tenant"] == "acme"
    assert got.headers["webhook-id"] == got.headers["svix-id"] == id_of(envelope, destination)
    row = await settled(project.pool, id_of(envelope, destination), "succeeded")
    assert row["attempt_count"] == 1 and row["record_count"] == 3
    assert row["operation_id"] == envelope.read_result_page.message.operation_id
    (attempt,) = await attempts(project.pool, row["id"])
    assert attempt["outcome"] == pb.ATTEMPT_OUTCOME_SUCCESS and attempt["status_code"] == 200


async def test_a_plain_json_body_is_delivered_as_it_is_and_a_corrupt_one_refused(
    running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/plain"))
    receiver.secrets["/plain"] = secret
    plain = page_envelope(project.id, destination, records=2, compressed=False)
    await running.consumers.read_result(plain, {}, 1)
    (got,) = await receiver.wait_for("/plain", 1)
    assert got.verified and got.body == plain.read_result_page.body

    corrupt = page_envelope(project.id, destination)
    corrupt.read_result_page.body = b"not zlib"
    with pytest.raises(InvalidEvent, match="not valid zlib"):
        await running.consumers.read_result(corrupt, {}, 1)
    # Refused before anything was recorded: redelivery ends in the dead letters.
    assert await delivery_row(project.pool, id_of(corrupt, destination)) is None


async def test_redelivered_envelope_makes_one_delivery(
    running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/once"))
    receiver.secrets["/once"] = secret
    envelope = page_envelope(project.id, destination)
    again = Envelope.FromString(envelope.SerializeToString())
    again.meta.id = str(uuid.uuid4())  # the emulator redelivers; a republish has a new id
    await running.consumers.read_result(envelope, {}, 1)
    await running.consumers.read_result(again, {}, 2)
    await settled(project.pool, id_of(envelope, destination), "succeeded")
    await running.consumers.read_result(envelope, {}, 3)  # after success too
    await running.deliverer.idle()
    count = await project.pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE destination_id = $1::uuid", destination
    )
    assert count == 1
    assert len(receiver.at("/once")) == 1


async def test_server_error_is_retried_under_the_same_id(
    running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/flaky"))
    receiver.secrets["/flaky"] = secret
    receiver.script("/flaky", Answer(500, body=b"database down"))
    envelope = page_envelope(project.id, destination)
    await running.consumers.read_result(envelope, {}, 1)

    first, second = await receiver.wait_for("/flaky", 2)
    assert first.verified and second.verified
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    row = await settled(project.pool, id_of(envelope, destination), "succeeded")
    assert row["attempt_count"] == 2
    failed, succeeded = await attempts(project.pool, row["id"])
    assert failed["outcome"] == pb.ATTEMPT_OUTCOME_SERVER_ERROR
    assert failed["status_code"] == 500 and failed["response_body"] == "database down"
    assert succeeded["outcome"] == pb.ATTEMPT_OUTCOME_SUCCESS
    assert failed["trigger"] == succeeded["trigger"] == pb.ATTEMPT_TRIGGER_AUTOMATIC


async def test_429_retry_after_is_honoured(
    running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/slow-down"))
    receiver.secrets["/slow-down"] = secret
    receiver.script("/slow-down", Answer(429, headers={"Retry-After": "120"}))
    envelope = page_envelope(project.id, destination)
    await running.consumers.read_result(envelope, {}, 1)

    row = await settled(project.pool, id_of(envelope, destination), "retrying")
    (attempt,) = await attempts(project.pool, row["id"])
    assert attempt["outcome"] == pb.ATTEMPT_OUTCOME_RATE_LIMITED
    assert attempt["retry_after_seconds"] == 120
    wait = (row["next_attempt_at"] - attempt["started_at"]).total_seconds()
    assert 115 <= wait <= 125, wait  # Retry-After, not the 0.2 s backoff


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


async def test_gone_fails_without_retry(
    running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/gone"))
    receiver.secrets["/gone"] = secret
    receiver.script("/gone", Answer(410))
    envelope = page_envelope(project.id, destination)
    await running.consumers.read_result(envelope, {}, 1)
    row = await settled(project.pool, id_of(envelope, destination), "failed")
    assert row["attempt_count"] == 1 and row["last_status_code"] == 410
    assert row["completed_at"] is not None
    (attempt,) = await attempts(project.pool, row["id"])
    assert attempt["outcome"] == pb.ATTEMPT_OUTCOME_CLIENT_ERROR


async def test_unreachable_receiver_is_a_network_error(running: Running, project: Project) -> None:
    destination, _ = await project.destination("http://127.0.0.1:9/nothing-listens")
    envelope = page_envelope(project.id, destination)
    await running.consumers.read_result(envelope, {}, 1)
    delivery = id_of(envelope, destination)
    await until(
        project.pool,
        "SELECT true FROM webhook_delivery_attempts WHERE delivery_id = $1",
        delivery,
    )
    (attempt, *_) = await attempts(project.pool, delivery)
    assert attempt["outcome"] == pb.ATTEMPT_OUTCOME_NETWORK_ERROR
    assert attempt["status_code"] == 0 and attempt["error"]


async def test_a_dead_instances_delivery_is_taken_over_after_its_lease(
    stack: Stack, database: str, running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/takeover"))
    receiver.secrets["/takeover"] = secret
    # The first instance's attempt hangs: it dies before recording any outcome.
    receiver.script("/takeover", Answer(200, delay=30))
    envelope = page_envelope(project.id, destination)
    delivery = id_of(envelope, destination)
    async with open_messenger(settings_for(stack, database), consume_events=False) as (_, dying):
        await Consumers(dying.pool, dying).read_result(envelope, {}, 1)
        await receiver.wait_for("/takeover", 1)
    row = await delivery_row(project.pool, delivery)
    assert row is not None and row["status"] == "pending" and row["lease_until"] is not None

    # `running` (the surviving instance) claims it once the 2 s lease has ended.
    await settled(project.pool, delivery, "succeeded")
    first, second = receiver.at("/takeover")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery
    assert len(await attempts(project.pool, delivery)) == 1


async def test_sustained_failure_disables_the_endpoint(
    stack: Stack, database: str, project: Project, receiver: Receiver, creds_for: object
) -> None:
    destination, secret = await project.destination(receiver.url("/dying"), name="dying")
    receiver.secrets["/dying"] = secret
    receiver.script("/dying", *[Answer(503) for _ in range(2)])
    settings = settings_for(stack, database, disable_after=0, disable_min_failures=2)
    async with open_messenger(settings, consume_events=False) as (servicer, deliverer):
        consumers = Consumers(deliverer.pool, deliverer)
        first = page_envelope(project.id, destination)
        await consumers.read_result(first, {}, 1)
        await settled(project.pool, id_of(first, destination), "held")
        endpoint = await project.pool.fetchrow(
            "SELECT * FROM webhook_endpoints WHERE destination_id = $1::uuid", destination
        )
        assert endpoint["state"] == "disabled" and endpoint["consecutive_failures"] == 2
        assert "failing for" in endpoint["disable_reason"]

        outbox = await project.pool.fetch(
            "SELECT envelope FROM event_outbox WHERE source = 'messenger' "
            "AND topic = 'ampmesh-notifications'"
        )
        notices = [Envelope.FromString(r["envelope"]) for r in outbox]
        mine = [
            n
            for n in notices
            if n.notification.destination_webhook_disabled.data.destination_id == destination
        ]
        assert len(mine) == 1
        assert mine[0].meta.type == "destination.webhook.disabled"
        assert mine[0].notification.destination_webhook_disabled.data.url.endswith("/dying")

        # Deliveries to a disabled endpoint are held, not attempted.
        second = page_envelope(project.id, destination)
        await consumers.read_result(second, {}, 1)
        await settled(project.pool, id_of(second, destination), "held")
        assert len(receiver.at("/dying")) == 2

        from unittest.mock import MagicMock

        context = MagicMock()
        enabled = await servicer.EnableEndpoint(
            pb.EnableEndpointRequest(project_id=project.id, destination_id=destination),
            context,
        )
        assert enabled.state == pb.ENDPOINT_STATE_ENABLED
        for envelope in (first, second):
            await settled(project.pool, id_of(envelope, destination), "succeeded")
        resumed = await attempts(project.pool, id_of(second, destination))
        assert [a["trigger"] for a in resumed] == [pb.ATTEMPT_TRIGGER_ENDPOINT_ENABLED]


async def test_notifications_follow_event_topic_destination_routes(
    running: Running, project: Project, receiver: Receiver
) -> None:
    routed, secret = await project.destination(receiver.url("/routed"))
    receiver.secrets["/routed"] = secret
    await project.destination(receiver.url("/not-routed"))
    topic = await project.pool.fetchval(
        "INSERT INTO topics (project_id, name) VALUES ($1::uuid, 'reads') RETURNING id",
        project.id,
    )
    await project.pool.execute(
        "INSERT INTO notification_event_topic_routes (project_id, event_type, topic_id) "
        "VALUES ($1::uuid, 'read.backfill.done', $2)",
        project.id,
        topic,
    )
    await project.pool.execute(
        "INSERT INTO topic_destination_routes (project_id, topic_id, destination_id) "
        "VALUES ($1::uuid, $2, $3::uuid)",
        project.id,
        topic,
        routed,
    )
    notification = notifications_pb2.Notification()
    done = notification.read_backfill_done
    done.data.project_id = project.id
    done.data.object_name = "contacts"
    envelope = new_envelope(
        project_id=project.id,
        idempotency_key=f"backfill/{uuid.uuid4()}",
        source="test",
        notification=notification,
    )
    await running.consumers.notification(envelope, {}, 1)
    (got,) = await receiver.wait_for("/routed", 1)
    assert got.verified
    body = orjson.loads(got.body)
    assert body["notificationType"] == "read.backfill.done"
    assert body["data"]["projectId"] == project.id and body["data"]["objectName"] == "contacts"
    await settled(project.pool, id_of(envelope, routed), "succeeded")
    count = await project.pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE project_id = $1::uuid "
        "AND kind = 'notification'",
        project.id,
    )
    assert count == 1 and not receiver.at("/not-routed")


def test_whole_number_floats_print_as_integers() -> None:
    notification = notifications_pb2.Notification()
    data = notification.installation_created.data
    data.config.update({"count": 3, "ratio": 0.5, "nested": [{"n": 2}]})
    body = orjson.loads(json_body(notification.installation_created))
    assert body["data"]["config"] == {"count": 3, "ratio": 0.5, "nested": [{"n": 2}]}
    assert b"3.0" not in json_body(notification.installation_created)
