"""Subscribe deliveries (`action: "subscribe"` ReadResultPages, no operation) as the
subscribe consumer renders them: delivered signed like read pages, recorded once per
idempotency key, and invisible to what messenger tells reads about their pages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.events.v1.provider_events_pb2 import ProviderEvent
from ampmesh.messenger.v1 import messenger_pb2 as pb

from services.domain.connectors.registry import connector_for
from services.domain.read_bodies import page_body
from services.messenger.recorded_pages import RecordedPages
from services.messenger.signing import delivery_id
from services.temporal.subscribe import deliveries
from services.temporal.subscribe.deliveries import RecordEvent
from services.temporal.subscribe.targets import Target, object_routes
from tests.support.messenger import Project, Running, page_envelope, settled
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.e2e


def subscribe_envelope(project_id: str, destination_id: str, installation_id: str) -> Envelope:
    routes = object_routes(
        {"read": {"objects": [{"objectName": "contacts", "destination": "hooks"}]}},
        {
            "read": {"objects": {"contacts": {"selectedFields": {"firstname": True}}}},
            "subscribe": {
                "objects": {
                    "contacts": {
                        "objectName": "contacts",
                        "destination": "hooks",
                        "createEvent": {"enabled": "always"},
                    }
                }
            },
        },
        "crm",
        "",
        {"hooks": destination_id},
    )
    route = routes["contacts"]
    target = Target(
        installation_id=installation_id,
        account_id="1",
        project_id=project_id,
        integration_id=str(uuid.uuid4()),
        connection_id=str(uuid.uuid4()),
        group_ref="g1",
        group_name="Group 1",
        consumer_ref="c1",
        consumer_name="Consumer 1",
        workspace="",
        installation_time=datetime(2026, 1, 1, tzinfo=UTC),
        objects=routes,
    )
    event = ProviderEvent(
        event_id="42",
        account_id="1",
        object_name="contacts",
        record_id="7",
        provider_event_type="contact.creation",
        subscribe_event_type="create",
    )
    event.raw_event.update({"eventId": 42, "objectId": 7})
    raw: dict[str, Any] = {"id": "7", "properties": {"firstname": "Ada", "email": "a@x.io"}}
    head = deliveries.header(target, route, "hubspot")
    record_event = RecordEvent(event)
    rendered = deliveries.entry(connector_for("hubspot"), route, record_event, raw)
    return deliveries.envelope(
        target, route, head, deliveries.message_of(head), record_event, rendered
    )


async def test_a_subscribe_page_is_delivered_signed_once_and_not_counted_for_any_read(
    running: Running, project: Project, receiver: Receiver
) -> None:
    destination, secret = await project.destination(receiver.url("/subscribe"), name="hooks")
    receiver.secrets["/subscribe"] = secret
    installation = str(uuid.uuid4())
    envelope = subscribe_envelope(project.id, destination, installation)
    assert envelope.meta.idempotency_key == f"subscribe/{installation}/42"
    again = Envelope.FromString(envelope.SerializeToString())
    again.meta.id = str(uuid.uuid4())  # the batch processed again: a new event, same key
    await running.consumers.read_result(envelope, {}, 1)
    await running.consumers.read_result(again, {}, 1)

    (got,) = await receiver.wait_for("/subscribe", 1)
    assert got.verified, "svix and standardwebhooks must both accept the signature"
    assert got.body == page_body(envelope.read_result_page)
    body = orjson.loads(got.body)
    assert body["action"] == "subscribe" and "operationId" not in body
    assert body["resultInfo"] == {"type": "inline", "numRecords": 1}
    (entry,) = body["result"]
    assert entry["subscribeEventType"] == "create" and entry["id"] == "7"
    assert entry["fields"] == {"firstname": "Ada"}
    made = delivery_id(project.id, envelope.meta.idempotency_key, destination)
    row = await settled(project.pool, made, "succeeded")
    assert row["operation_id"] == "" and row["installation_id"] == installation
    assert row["record_count"] == 1
    count = await project.pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE destination_id = $1::uuid", destination
    )
    assert count == 1

    # A read delivering to the same destination counts its own pages only.
    read_page = page_envelope(project.id, destination)
    await running.consumers.read_result(read_page, {}, 1)
    await receiver.wait_for("/subscribe", 2)
    recorded = await RecordedPages(project.pool, running.deliverer).CountRecordedPages(
        pb.CountRecordedPagesRequest(
            project_id=project.id,
            operation_id=read_page.read_result_page.message.operation_id,
            destination_id=destination,
        ),
        None,
    )
    assert recorded.recorded == 1 and recorded.destination_found
