"""Verifying a provider's webhook before anything reads its body.

- HubSpot (v3): `X-HubSpot-Signature-v3` is base64(HMAC-SHA256(client secret, method +
  URI + body + timestamp)), with the URI as the provider called it (HubSpot first decodes
  the few percent-escapes in its table, so a signer and a verifier agree however the URL
  was written) and the timestamp `X-HubSpot-Request-Timestamp` (ms since the epoch), which
  must be within 5 minutes of now either way (a replayed request is refused once stale).
- Salesforce event relay: `X-Ampmesh-Relay-Token` is the installation's relay token, of
  which only its SHA-256 is stored.

Every comparison is constant-time. A failure raises NotVerified with the reason for the
log line; callers answer every reason alike (401), so a caller learns nothing about which
part was wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from services.domain.subscribe_names import HUBSPOT_MAX_AGE_SECONDS, relay_token_digest

# HubSpot's v3 rule decodes these escapes in the URI before signing.
_HUBSPOT_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


class NotVerified(Exception):
    """The request is not what the provider would send; str() is the reason (for logs)."""


def _hubspot_uri(uri: str) -> str:
    for escape, character in _HUBSPOT_DECODED.items():
        uri = uri.replace(escape, character).replace(escape.lower(), character)
    return uri


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature HubSpot sends for this request."""
    message = method.upper().encode() + _hubspot_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_hubspot(
    *,
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: float,
) -> None:
    """NotVerified unless signature is HubSpot's for this request, signed within 5 minutes
    of now (seconds since the epoch)."""
    if not signature:
        raise NotVerified("no X-HubSpot-Signature-v3 header")
    if not timestamp:
        raise NotVerified("no X-HubSpot-Request-Timestamp header")
    if not uri:
        raise NotVerified("no original URI (the request did not come through the edge)")
    if not timestamp.isdigit() or len(timestamp) > 16:
        raise NotVerified("X-HubSpot-Request-Timestamp is not milliseconds since the epoch")
    age = now - int(timestamp) / 1000
    if age > HUBSPOT_MAX_AGE_SECONDS:
        raise NotVerified(f"signed {age:.0f}s ago (at most {HUBSPOT_MAX_AGE_SECONDS}s)")
    if -age > HUBSPOT_MAX_AGE_SECONDS:
        raise NotVerified(f"signed {-age:.0f}s in the future")
    expected = hubspot_signature(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise NotVerified("the signature does not match the provider app's client secret")


def check_relay_token(token: str | None, stored_sha256: bytes | None) -> None:
    """NotVerified unless token's SHA-256 is stored_sha256."""
    if not stored_sha256:
        raise NotVerified("the installation has no relay token (not registered yet)")
    if not token:
        raise NotVerified("no X-Ampmesh-Relay-Token header")
    if not hmac.compare_digest(relay_token_digest(token), bytes(stored_sha256)):
        raise NotVerified("the relay token does not match the installation's")
