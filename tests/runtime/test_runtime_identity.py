"""Caller identity from certificate SANs, and the access policy (no sockets)."""

from __future__ import annotations

from services.runtime.identity import (
    AccessPolicy,
    forwarded_identity,
    identity_from_auth_context,
    resolve_caller,
)

TOKENS = "/ampmesh.token.v1.TokenService/GetToken"
ADMIN = "/ampmesh.token.v1.TokenAdmin/Rotate"
HEALTH = "/grpc.health.v1.Health/Check"


def test_identity_is_the_first_san_that_is_not_a_local_name() -> None:
    sans = {"x509_subject_alternative_name": [b"localhost", b"127.0.0.1", b"api", b"other"]}
    assert identity_from_auth_context(sans) == "api"
    local_only = {"x509_subject_alternative_name": [b"localhost", b"::1", b"127.0.0.1"]}
    assert identity_from_auth_context(local_only) is None
    assert identity_from_auth_context({}) is None


def test_policy_per_service_overrides_and_open_health() -> None:
    policy = AccessPolicy(
        allowed=frozenset({"api", "temporal"}),
        per_service={"ampmesh.token.v1.TokenAdmin": frozenset({"launcher"})},
    )
    assert policy.denial("api", TOKENS) is None
    assert policy.denial("launcher", ADMIN) is None
    assert policy.denial("api", ADMIN) == (
        f"identity 'api' may not call {ADMIN} (allowed: launcher)"
    )
    assert policy.denial("messenger", HEALTH) is None  # probes come from any identity
    assert policy.denial(None, TOKENS) is not None
    assert AccessPolicy.any_peer().denial("anyone", TOKENS) is None
    assert AccessPolicy.allow_only().denial("api", TOKENS) == (
        f"identity 'api' may not call {TOKENS} (allowed: nobody)"
    )


def test_forwarded_identity_reads_the_last_xfcc_element_dns_names() -> None:
    assert forwarded_identity("Hash=1;DNS=localhost;DNS=api") == "api"
    assert forwarded_identity('By=spiffe://a;Hash=1;DNS="temporal"') == "temporal"
    # Two hops: the element the trusted forwarder appended (the last) counts.
    assert forwarded_identity("Hash=1;DNS=messenger,Hash=2;DNS=api") == "api"
    assert forwarded_identity("Hash=1;URI=spiffe://x") is None
    assert forwarded_identity("") is None and forwarded_identity(None) is None


def test_only_trusted_forwarders_speak_for_someone_else() -> None:
    assert resolve_caller("envoy", "Hash=1;DNS=api") == "api"
    assert resolve_caller("envoy", None) == "envoy"
    assert resolve_caller("messenger", "Hash=1;DNS=api") == "messenger"
    assert resolve_caller(None, "Hash=1;DNS=api") is None
