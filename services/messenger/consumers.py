"""The two subscriptions messenger consumes: read-result pages and notifications, each
turned into deliveries (recorded before the event is acked)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import asyncpg
from ampmesh.events.v1 import topics_pb2
from ampmesh.events.v1.envelope_pb2 import Envelope

from services.domain.read_bodies import page_body
from services.messenger.bodies import notification_body
from services.messenger.deliveries import Deliverer
from services.messenger.rows import NOTIFICATION, READ_RESULT, NewDelivery
from services.messenger.signing import delivery_id
from services.runtime.database import is_uuid
from services.runtime.logs import get_logger
from services.runtime.pubsub_topology import subscription_id

# As topics.proto declares them (the launcher creates exactly those).
READ_RESULTS_SUBSCRIPTION = subscription_id(topics_pb2.TOPIC_READ_RESULTS, "messenger")
NOTIFICATIONS_SUBSCRIPTION = subscription_id(topics_pb2.TOPIC_NOTIFICATIONS, "messenger")
DISABLED_TYPE = "destination.webhook.disabled"

_log = get_logger("ampmesh.messenger.consumers")


class InvalidEvent(ValueError):
    """The event lacks what its contract promises: nacked (dead-lettered in the end)."""


class Consumers:
    def __init__(self, pool: asyncpg.Pool, deliverer: Deliverer) -> None:
        self.pool = pool
        self.deliverer = deliverer

    async def read_result(
        self, envelope: Envelope, attributes: Mapping[str, str], delivery_attempt: int | None
    ) -> None:
        """ReadResultPage -> one delivery of its body to its destination."""
        if envelope.WhichOneof("payload") != "read_result_page":
            _log.warning("not a read result; ignored", event_type=envelope.meta.type)
            return
        meta, page = envelope.meta, envelope.read_result_page
        if not is_uuid(meta.project_id) or not meta.idempotency_key:
            raise InvalidEvent(f"event {meta.id}: project_id and idempotency_key are required")
        if not is_uuid(page.destination_id):
            # No destination could ever take it: logged and dropped, not retried forever.
            _log.error("read result names no destination; dropped", event_id=meta.id)
            return
        try:
            body = page_body(page)
        except ValueError as error:
            raise InvalidEvent(f"event {meta.id}: {error}") from None
        target = await self.deliverer.target(page.destination_id)
        if target is None or target.project_id != meta.project_id:
            _log.error(
                "read result's destination is not the project's; dropped",
                event_id=meta.id,
                destination_id=page.destination_id,
            )
            return
        message = page.message
        await self.deliverer.record(
            NewDelivery(
                id=delivery_id(meta.project_id, meta.idempotency_key, page.destination_id),
                project_id=meta.project_id,
                destination_id=page.destination_id,
                kind=READ_RESULT,
                event_type=meta.type,
                event_id=meta.id,
                body=body,
                operation_id=message.operation_id,
                installation_id=message.installation_id,
                object_name=message.object_name,
                record_count=message.result_info.num_records,
            )
        )

    async def notification(
        self, envelope: Envelope, attributes: Mapping[str, str], delivery_attempt: int | None
    ) -> None:
        """Notification -> one delivery per destination its routes reach (event type ->
        topic -> destination)."""
        if envelope.WhichOneof("payload") != "notification":
            _log.warning("not a notification; ignored", event_type=envelope.meta.type)
            return
        meta = envelope.meta
        if not is_uuid(meta.project_id) or not meta.idempotency_key:
            raise InvalidEvent(f"event {meta.id}: project_id and idempotency_key are required")
        try:
            event_type, body = notification_body(envelope.notification)
        except ValueError:
            _log.error("notification without a payload; dropped", event_id=meta.id)
            return
        destinations = await self.pool.fetch(
            """
            SELECT DISTINCT d.id FROM notification_event_topic_routes et
            JOIN topic_destination_routes td
              ON td.topic_id = et.topic_id AND td.project_id = et.project_id
            JOIN destinations d ON d.id = td.destination_id AND d.project_id = td.project_id
            WHERE et.project_id = $1::uuid AND et.event_type = $2 AND d.type = 'webhook'
            """,
            meta.project_id,
            event_type,
        )
        skip = ""
        if event_type == DISABLED_TYPE:
            # Telling a dead endpoint it is dead would only be held.
            skip = envelope.notification.destination_webhook_disabled.data.destination_id
        await asyncio.gather(
            *(
                self.deliverer.record(
                    NewDelivery(
                        id=delivery_id(meta.project_id, meta.idempotency_key, str(row["id"])),
                        project_id=meta.project_id,
                        destination_id=str(row["id"]),
                        kind=NOTIFICATION,
                        event_type=event_type,
                        event_id=meta.id,
                        body=body,
                    )
                )
                for row in destinations
                if str(row["id"]) != skip
            )
        )
