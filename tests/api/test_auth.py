"""Customer JWT verification, scope granting and JWT key parsing, in-process (the end-to-end
tests in tests/e2e/test_jwt_auth.py and test_api_keys.py go through the edge)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.api.auth import (
    FRONTEND_SCOPE,
    FULL_SCOPE,
    Authenticator,
    CustomerClaims,
    Principal,
    TokenRejected,
    grants,
    new_api_key,
    token_key_id,
    verify_customer_jwt,
)
from services.api.platform.api_keys import _prefix_of
from services.api.platform.jwt_keys import KeyRefused, normalized_public_key
from tests.support.control_plane import b64url, customer_claims, new_rsa_key, sign_jwt, spki_pem

KID = "0b6f7f2e-3c57-4b39-9a51-0c0a8a6c1d2e"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


@pytest.fixture(scope="module")
def public_pem(private_key: rsa.RSAPrivateKey) -> str:
    return spki_pem(private_key.public_key())


def rejected(token: str, public_pem: str) -> str:
    with pytest.raises(TokenRejected) as refused:
        verify_customer_jwt(token, public_pem)
    message = str(refused.value)
    assert token not in message
    return message


def test_a_valid_token_yields_its_group_and_consumer(
    private_key: rsa.RSAPrivateKey, public_pem: str
) -> None:
    token = sign_jwt(private_key, customer_claims(), KID)
    assert token_key_id(token) == KID
    assert verify_customer_jwt(token, public_pem) == CustomerClaims("acme", "alice")


def test_tokens_without_a_kid_or_not_jwts_are_refused(private_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(TokenRejected, match="kid"):
        token_key_id(sign_jwt(private_key, customer_claims(), None))
    with pytest.raises(TokenRejected, match="well-formed"):
        token_key_id("not-a-jwt")


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 300}, "expired"),
        ({"exp": int(time.time()) + 900}, "too long"),
        ({"exp": None}, "lacks the exp claim"),
        ({"iat": None}, "lacks the iat claim"),
        ({"groupRef": None}, "lacks the groupRef claim"),
        ({"consumerRef": ""}, "lacks the consumerRef claim"),
        ({"groupRef": 7}, "lacks the groupRef claim"),
        ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 3700}, "not valid yet"),
        ({"exp": "tomorrow"}, "malformed"),
        ({"iat": str(int(time.time())), "exp": str(int(time.time()) + 700)}, "too long"),
        ({"aud": "someone-else"}, "audience"),
    ],
)
def test_each_bad_claim_is_named(
    private_key: rsa.RSAPrivateKey, public_pem: str, overrides: dict[str, Any], why: str
) -> None:
    assert why in rejected(sign_jwt(private_key, customer_claims(**overrides), KID), public_pem)


def test_a_signature_by_another_key_is_refused(public_pem: str) -> None:
    other = new_rsa_key()
    assert "signature" in rejected(sign_jwt(other, customer_claims(), KID), public_pem)


def test_alg_none_and_hs256_keyed_with_the_public_key_are_refused(
    private_key: rsa.RSAPrivateKey, public_pem: str
) -> None:
    claims = b64url(customer_claims())
    unsigned = f"{b64url({'alg': 'none', 'typ': 'JWT', 'kid': KID})}.{claims}."
    assert "RS256" in rejected(unsigned, public_pem)
    # The classic confusion: HMAC with the public key's text as the secret. PyJWT refuses to
    # sign with a PEM as an HMAC key, so the token is built by hand.
    signing_input = f"{b64url({'alg': 'HS256', 'typ': 'JWT', 'kid': KID})}.{claims}"
    mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert "RS256" in rejected(forged, public_pem)


def test_scopes_are_granted_only_by_who_holds_them() -> None:
    assert grants({FULL_SCOPE}, {FULL_SCOPE, FRONTEND_SCOPE})
    assert grants({FRONTEND_SCOPE}, {FRONTEND_SCOPE})
    assert not grants({FRONTEND_SCOPE}, {FULL_SCOPE})
    assert not grants(set(), {FRONTEND_SCOPE})


def test_a_customer_jwt_sees_only_its_group_and_is_no_builder() -> None:
    org, project = "org", "project"
    customer = Principal(org, project, frozenset({FRONTEND_SCOPE}), "jwt:k", "acme", "alice")
    builder = Principal(org, project, frozenset({FULL_SCOPE}), "api-key:amp_x")
    assert Authenticator.sees_group(customer, "acme")
    assert not Authenticator.sees_group(customer, "globex")
    assert not Authenticator.sees_group(customer, None)
    assert Authenticator.sees_group(builder, "globex") and Authenticator.sees_group(builder, None)
    assert builder.is_builder and not customer.is_builder


def test_keys_are_named_by_prefix_or_whole_key() -> None:
    key = new_api_key()
    assert _prefix_of(key.prefix) == key.prefix
    assert _prefix_of(key.secret) == key.prefix
    assert _prefix_of("amp_123") is None
    assert _prefix_of("xyz_0123456789ab") is None
    assert _prefix_of(key.prefix + "x") is None


def test_public_keys_must_be_rsa_pem_of_2048_bits_or_more(public_pem: str) -> None:
    assert normalized_public_key(public_pem) == public_pem
    pkcs1 = (
        serialization.load_pem_public_key(public_pem.encode())
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )
    assert normalized_public_key(pkcs1) == public_pem  # stored in one form

    small = spki_pem(new_rsa_key(1024).public_key())
    elliptic = spki_pem(ec.generate_private_key(ec.SECP256R1()).public_key())
    for refused, why in (
        (small, "1024-bit"),
        (elliptic, "must be an RSA"),
        ("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", "not a PEM"),
    ):
        with pytest.raises(KeyRefused, match=why):
            normalized_public_key(refused)
