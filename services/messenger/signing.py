"""Delivery ids and Standard Webhooks signatures (which Svix receivers accept too)."""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNING_KEY_PREFIX = "whsec_"


def delivery_id(project_id: str, idempotency_key: str, destination_id: str) -> str:
    """The message id of one event's delivery to one destination: the same for every
    redelivery of the event, so neither messenger nor the receiver acts on it twice.
    128 bits of SHA-256 (base32, lower case) keep collisions out of reach."""
    digest = hashlib.sha256(
        f"{project_id}\x00{idempotency_key}\x00{destination_id}".encode()
    ).digest()
    return "msg_" + base64.b32encode(digest[:16]).decode().rstrip("=").lower()


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError when it is not one."""
    if not secret.startswith(SIGNING_KEY_PREFIX):
        raise ValueError("a webhook signing key starts with whsec_")
    return base64.b64decode(secret.removeprefix(SIGNING_KEY_PREFIX), validate=True)


def signature_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Both header families: webhook-* (Standard Webhooks) and svix-*, same values."""
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)  # no copy of a large body
    signature = "v1," + base64.b64encode(mac.digest()).decode()
    stamp = str(timestamp)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": signature,
        "svix-id": message_id,
        "svix-timestamp": stamp,
        "svix-signature": signature,
    }
