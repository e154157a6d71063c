"""How a provider app's OAuth client secret is sealed at rest: shared by the api, which
writes provider apps, and the token-manager, which reads the secret at each code exchange
and refresh (so a rotated secret applies at once).

The secret is AES-GCM ciphertext (services.runtime.secretbox) bound to its app's row: a
ciphertext copied to another app's row does not open.
"""

from __future__ import annotations

from services.runtime.secretbox import Sealed, SecretBox


def _associated(app_id: str) -> bytes:
    return f"provider_apps:{app_id}:client_secret".encode()


def seal_client_secret(box: SecretBox, app_id: str, secret: str) -> Sealed:
    return box.seal(secret.encode(), _associated(app_id))


def open_client_secret(box: SecretBox, app_id: str, key_id: str, data: bytes) -> str:
    """A provider app's client secret, from its row's client_secret_* columns."""
    return box.open(Sealed(key_id, data), _associated(app_id)).decode()
