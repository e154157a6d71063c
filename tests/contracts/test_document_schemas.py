"""The manifest, config, webhook and notification contracts against the reference schemas.

JSON holding every property of the reference schema (each oneOf alternative in turn)
must parse into our message, so every name the reference documents is a field of ours.
"""

from __future__ import annotations

import pytest
from ampmesh.events.v1 import notifications_pb2, read_result_pb2
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from tests.support.reference import example_instance, load, one_per_oneof, reference_dir

CASES = [
    ("manifest/manifest.yaml", "Manifest", manifest_pb2.Manifest),
    ("manifest/manifest.yaml", "Integration", manifest_pb2.Integration),
    ("config/config.yaml", "ConfigContent", config_pb2.ConfigContent),
    ("webhook/webhook.yaml", "WebhookMessage", read_result_pb2.WebhookMessage),
]
# Each notification payload of the reference, and the message of ours that prints it.
_NOTIFICATIONS = {
    "InstallationCreatedNotificationPayload": "InstallationCreatedNotification",
    "InstallationUpdatedNotificationPayload": "InstallationUpdatedNotification",
    "InstallationDeletedNotificationPayload": "InstallationDeletedNotification",
    "ReadBackfillDoneNotificationPayload": "ReadBackfillDoneNotification",
    "ReadSchedulePausedNotificationPayload": "ReadSchedulePausedNotification",
    "ReadTriggeredDoneNotificationPayload": "ReadTriggeredDoneNotification",
    "TriggeredReadErrorNotificationPayload": "ReadTriggeredErrorNotification",
    "WriteAsyncDoneNotificationPayload": "WriteAsyncDoneNotification",
    "SubscribeCreateErrorNotificationPayload": "SubscribeCreateErrorNotification",
    "ConnectionCreatedNotificationPayload": "ConnectionCreatedNotification",
    "ConnectionErrorNotificationPayload": "ConnectionErrorNotification",
    "ConnectionRefreshedNotificationPayload": "ConnectionRefreshedNotification",
    "ConnectionUpdatedNotificationPayload": "ConnectionUpdatedNotification",
    "ConnectionDeletedNotificationPayload": "ConnectionDeletedNotification",
    "DestinationWebhookDisabledNotificationPayload": "DestinationWebhookDisabledNotification",
}
CASES += [
    ("notifications/notifications.yaml", ref, getattr(notifications_pb2, ours))
    for ref, ours in _NOTIFICATIONS.items()
]


@pytest.mark.parametrize(("document", "schema", "message"), CASES, ids=[c[1] for c in CASES])
def test_reference_schema_parses_into_our_message(
    document: str, schema: str, message: type[Message]
) -> None:
    path = reference_dir() / document
    spec = load(path)["components"]["schemas"][schema]
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]
    for branch in range(3):
        instance = one_per_oneof(example_instance(spec, path, branch=branch), descriptor, branch)
        json_format.ParseDict(instance, message(), ignore_unknown_fields=False)
