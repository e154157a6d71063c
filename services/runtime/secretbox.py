"""Secrets at rest: AES-256-GCM (cryptography's AESGCM) with a keyring that rotates.

A SecretBox seals with its current key and opens with any key it holds; every sealed value
is stored beside the id of the key that sealed it, so a new key can become current while
old rows still open, and a re-encryption pass can move them over at leisure.

The keyring comes from AMPMESH_SECRET_KEYS: comma-separated `id:base64key` entries, the
first being current (`ampmesh up` makes one in its home). Sealed bytes are nonce (12) +
ciphertext + tag; the associated data binds a value to where it belongs (e.g. the row id
and column), so a ciphertext copied to another row does not open there.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.runtime.entrypoint import StartupError

_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SecretBoxError(ValueError):
    """A keyring that cannot be used, or a sealed value that does not open. The message
    never contains key material or plaintext."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    data: bytes


class SecretBox:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise SecretBoxError("the keyring is empty")
        for key_id, key in keys:
            if not _KEY_ID.match(key_id):
                raise SecretBoxError(f"key id {key_id!r} must be 1-32 letters, digits, - or _")
            if len(key) != 32:
                raise SecretBoxError(f"key {key_id!r} must be 32 bytes (AES-256)")
        self.current_id = keys[0][0]
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}

    @classmethod
    def from_spec(cls, spec: str) -> SecretBox:
        """From `id:base64key[,id:base64key…]`, the first current."""
        keys: list[tuple[str, bytes]] = []
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            key_id, separator, encoded = entry.partition(":")
            if not separator:
                raise SecretBoxError("each keyring entry must be id:base64key")
            try:
                keys.append((key_id, base64.b64decode(encoded, validate=True)))
            except (binascii.Error, ValueError):
                raise SecretBoxError(f"key {key_id!r} is not valid base64") from None
        return cls(keys)

    @staticmethod
    def new_spec(key_id: str | None = None) -> str:
        """A keyring spec holding one fresh random key."""
        key_id = key_id or f"k{secrets.token_hex(4)}"
        return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"

    def seal(self, plaintext: bytes, associated: bytes) -> Sealed:
        nonce = os.urandom(_NONCE_BYTES)
        box = self._keys[self.current_id]
        return Sealed(self.current_id, nonce + box.encrypt(nonce, plaintext, associated))

    def open(self, sealed: Sealed, associated: bytes) -> bytes:
        box = self._keys.get(sealed.key_id)
        if box is None:
            raise SecretBoxError(f"no key {sealed.key_id!r} in the keyring")
        nonce, body = sealed.data[:_NONCE_BYTES], sealed.data[_NONCE_BYTES:]
        try:
            return box.decrypt(nonce, body, associated)
        except InvalidTag:
            raise SecretBoxError(
                f"a value sealed with key {sealed.key_id!r} does not open (tampered, or "
                "bound to another place)"
            ) from None


def keyring_from_settings(spec: str) -> SecretBox:
    """The service's keyring from AMPMESH_SECRET_KEYS, or a one-line StartupError."""
    try:
        return SecretBox.from_spec(spec)
    except SecretBoxError as error:
        raise StartupError(f"AMPMESH_SECRET_KEYS: {error}") from None
