"""SecretBox: sealed values open only with their key and their place; keys rotate."""

from __future__ import annotations

import pytest

from services.runtime.secretbox import Sealed, SecretBox, SecretBoxError


def test_sealed_values_open_in_their_place_only() -> None:
    box = SecretBox.from_spec(SecretBox.new_spec("k1"))
    sealed = box.seal(b"client-secret", b"provider_apps:1:client_secret")
    assert sealed.key_id == "k1" and b"client-secret" not in sealed.data
    assert box.open(sealed, b"provider_apps:1:client_secret") == b"client-secret"
    with pytest.raises(SecretBoxError, match="does not open") as moved:
        box.open(sealed, b"provider_apps:2:client_secret")  # copied to another row
    assert "client-secret" not in str(moved.value)
    tampered = Sealed(sealed.key_id, sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(SecretBoxError):
        box.open(tampered, b"provider_apps:1:client_secret")


def test_a_new_current_key_seals_while_old_values_still_open() -> None:
    old_spec = SecretBox.new_spec("old")
    old = SecretBox.from_spec(old_spec)
    sealed_before = old.seal(b"v", b"x")
    rotated = SecretBox.from_spec(f"{SecretBox.new_spec('new')},{old_spec}")
    assert rotated.current_id == "new"
    assert rotated.open(sealed_before, b"x") == b"v"
    assert rotated.seal(b"v", b"x").key_id == "new"
    with pytest.raises(SecretBoxError, match="no key 'new'"):
        old.open(rotated.seal(b"v", b"x"), b"x")


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("", "empty"),
        ("k1", "id:base64key"),
        ("k1:not base64!", "base64"),
        ("k1:c2hvcnQ=", "32 bytes"),
        ("bad id!:" + "A" * 44, "key id"),
    ],
)
def test_unusable_keyrings_are_refused_without_echoing_keys(spec: str, why: str) -> None:
    with pytest.raises(SecretBoxError, match=why) as refused:
        SecretBox.from_spec(spec)
    assert "A" * 20 not in str(refused.value)
