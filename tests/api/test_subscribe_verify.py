"""Verifying providers' webhooks (services/api/subscribe/verify.py): HubSpot's v3
signature, checked against a computation written from HubSpot's documentation rather than
from our code, its 5-minute window both ways, and Salesforce relay tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from services.api.subscribe.verify import (
    NotVerified,
    check_hubspot,
    check_relay_token,
    hubspot_signature,
    relay_token_digest,
)

SECRET = "a1b2c3d4-client-secret"
URI = "http://127.0.0.1:18031/v1/projects/p/integrations/i?extra=1"
BODY = b'[{"eventId":1,"subscriptionType":"contact.creation","portalId":62515,"objectId":7}]'
NOW = 1_765_000_000.0
STAMP = str(int(NOW * 1000))


def documented_signature(secret: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot: 'Create a utf-8 encoded string that concatenates together the following:
    requestMethod + requestUri + requestBody + timestamp', HMAC SHA-256 with the app's
    secret, base64."""
    source = ("POST" + uri + body.decode("utf-8") + timestamp).encode("utf-8")
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def check(**changes: object) -> None:
    arguments: dict[str, object] = {
        "secret": SECRET,
        "method": "POST",
        "uri": URI,
        "body": BODY,
        "signature": documented_signature(SECRET, URI, BODY, STAMP),
        "timestamp": STAMP,
        "now": NOW,
    }
    arguments.update(changes)
    check_hubspot(**arguments)  # type: ignore[arg-type]


def test_a_request_signed_as_hubspot_documents_is_verified() -> None:
    assert hubspot_signature(SECRET, "POST", URI, BODY, STAMP) == documented_signature(
        SECRET, URI, BODY, STAMP
    )
    check()
    # Non-ASCII bodies are signed as their UTF-8 bytes.
    body = '[{"propertyValue":"Zoë ☃"}]'.encode()
    check(body=body, signature=documented_signature(SECRET, URI, body, STAMP))


def test_hubspots_decoded_escapes_sign_like_their_characters() -> None:
    escaped = "http://h/v1/projects/p%3Ax/integrations/i?a=%2Fb"
    plain = "http://h/v1/projects/p:x/integrations/i?a=/b"
    check(uri=escaped, signature=documented_signature(SECRET, plain, BODY, STAMP))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"secret": "another-secret"}, "does not match"),
        ({"body": BODY + b" "}, "does not match"),
        ({"uri": URI.replace("/i?", "/j?")}, "does not match"),
        ({"uri": URI.replace("extra=1", "extra=2")}, "does not match"),
        ({"timestamp": str(int(STAMP) + 1)}, "does not match"),
        ({"signature": None}, "no X-HubSpot-Signature-v3"),
        ({"signature": ""}, "no X-HubSpot-Signature-v3"),
        ({"timestamp": None}, "no X-HubSpot-Request-Timestamp"),
        ({"timestamp": "12:00"}, "not milliseconds"),
        ({"uri": ""}, "no original URI"),
    ],
)
def test_anything_else_is_refused(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(NotVerified, match=reason):
        check(**changes)


@pytest.mark.parametrize(
    ("offset", "verified"), [(-299, True), (-301, False), (299, True), (301, False)]
)
def test_signatures_hold_five_minutes_either_way(offset: int, verified: bool) -> None:
    stamp = str(int((NOW + offset) * 1000))
    signature = documented_signature(SECRET, URI, BODY, stamp)
    if verified:
        check(timestamp=stamp, signature=signature)
    else:
        with pytest.raises(NotVerified, match=r"ago|future"):
            check(timestamp=stamp, signature=signature)


def test_relay_tokens_match_by_their_sha256() -> None:
    token = "mZ8x-token_value"
    stored = hashlib.sha256(token.encode()).digest()
    assert relay_token_digest(token) == stored
    check_relay_token(token, stored)
    for given, kept, reason in [
        ("wrong", stored, "does not match"),
        (None, stored, "no X-Ampmesh-Relay-Token"),
        ("", stored, "no X-Ampmesh-Relay-Token"),
        (token, None, "no relay token"),
    ]:
        with pytest.raises(NotVerified, match=reason):
            check_relay_token(given, kept)
