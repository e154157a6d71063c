"""How a destination's secrets (its webhook signing key) are sealed at rest: shared by the
api, which writes destinations, and messenger, which signs every delivery with the key.

The secrets are one JSON object (`{"webhookSigningKey": "whsec_..."}`) sealed as AES-GCM
ciphertext (services.runtime.secretbox) bound to its destination's row: a ciphertext
copied to another destination's row does not open.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from services.runtime.secretbox import Sealed, SecretBox

SIGNING_KEY = "webhookSigningKey"


def _associated(destination_id: str) -> bytes:
    return f"destinations:{destination_id}:secrets".encode()


def seal_secrets(box: SecretBox, destination_id: str, values: Mapping[str, str]) -> Sealed:
    return box.seal(json.dumps(dict(values)).encode(), _associated(destination_id))


def open_secrets(box: SecretBox, destination_id: str, key_id: str, data: bytes) -> dict[str, str]:
    """A destination's secrets ({"webhookSigningKey": ...}) from its row's sealed columns."""
    opened: dict[str, str] = json.loads(box.open(Sealed(key_id, data), _associated(destination_id)))
    return opened
