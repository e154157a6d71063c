"""Who is calling: the caller's identity from its client certificate, and who may call.

mTLS already proves the caller holds a certificate from the mesh CA; the identity is the
DNS name in that certificate's SAN that is not one of the local names every leaf carries
(tls.LOCAL_DNS_NAMES, tls.LOCAL_IPS). The AccessPolicy then decides, per service, which
identities may call it (the token-manager, for instance, answers only "api" and "temporal").

Behind Envoy the peer certificate is Envoy's. Envoy then forwards the certificate of its
own client in the x-forwarded-client-cert header (XFCC, set with SANITIZE_SET, so a client
cannot supply its own), and the caller is the identity named there. The header is believed
only when the peer itself is a trusted forwarder ("envoy"): anyone else sending it is just
themselves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from grpc_health.v1 import health as _health

from services.runtime.tls import LOCAL_DNS_NAMES

SAN_PROPERTY = "x509_subject_alternative_name"
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
REFLECTION_SERVICE_V1 = "grpc.reflection.v1.ServerReflection"

XFCC_HEADER = "x-forwarded-client-cert"
# Peers whose XFCC header names the real caller.
TRUSTED_FORWARDERS = frozenset({"envoy"})

_caller: ContextVar[str | None] = ContextVar("ampmesh_caller_identity", default=None)


def identity_from_auth_context(auth_context: Mapping[str, Iterable[bytes]]) -> str | None:
    """The mesh identity in a peer's certificate SANs, or None when there is none."""
    return _identity_from_sans(tuple(auth_context.get(SAN_PROPERTY, ())))


# Asked on every RPC, about the few certificates our CA issued: remember the answers. The
# key is the SAN list itself, so a certificate naming someone else is never mistaken.
@lru_cache(maxsize=1024)
def _identity_from_sans(sans: tuple[bytes, ...]) -> str | None:
    for raw in sans:
        name = raw.decode("ascii", "replace")
        if name in LOCAL_DNS_NAMES or _is_ip(name):
            continue
        # Certificates we issue put the identity first (tls.issue_certificate); the first
        # remaining name is it.
        return name
    return None


def caller_identity(context: Any) -> str | None:
    """The identity of the peer of this RPC (a grpc.aio.ServicerContext), or None."""
    # Asked on every RPC. When the transport identifies peers by their SANs (any
    # certificate with one), those are the peer identities, in the same order: reading them
    # alone is ten times cheaper than building the whole auth context.
    if context.peer_identity_key() == SAN_PROPERTY:
        return _identity_from_sans(tuple(context.peer_identities() or ()))
    return identity_from_auth_context(context.auth_context())


def forwarded_identity(xfcc: str | None) -> str | None:
    """The mesh identity in the last element of an XFCC header (the one the trusted
    forwarder wrote), from its DNS= entries; None when there is none."""
    if not xfcc:
        return None
    # Elements are comma-separated, key=value pairs semicolon-separated; values may be
    # quoted. Our certificates' DNS names never contain ',', ';', '=' or quotes.
    element = xfcc.rsplit(",", 1)[-1]
    names = [
        value.strip().strip('"').encode("ascii", "replace")
        for key, _, value in (pair.partition("=") for pair in element.split(";"))
        if key.strip().lower() == "dns"
    ]
    return _identity_from_sans(tuple(names))


def resolve_caller(peer: str | None, xfcc: str | None) -> str | None:
    """The caller of an RPC: the peer, or whom the peer forwards for if it is trusted to."""
    if peer in TRUSTED_FORWARDERS:
        return forwarded_identity(xfcc) or peer
    return peer


def current_caller() -> str | None:
    """The caller's identity, set by the runtime's interceptor for the running RPC."""
    return _caller.get()


def set_current_caller(identity: str | None) -> object:
    return _caller.set(identity)


def reset_current_caller(token: object) -> None:
    _caller.reset(token)  # type: ignore[arg-type]


def service_of(method: str) -> str:
    """'/pkg.Service/Method' -> 'pkg.Service'."""
    return method.lstrip("/").split("/", 1)[0]


@dataclass(frozen=True)
class AccessPolicy:
    """Which identities may call which service of this server.

    allowed:      identities allowed to call any service here; None = any mesh identity.
    per_service:  overrides by full service name (e.g. "ampmesh.token.v1.TokenService").
    open_services: services any mesh identity may call whatever the rest says: health (load
                  balancers and Envoy probe it) and reflection (only enabled internally).
    """

    allowed: frozenset[str] | None = None
    per_service: Mapping[str, frozenset[str]] = field(default_factory=dict)
    open_services: frozenset[str] = frozenset(
        {_health.SERVICE_NAME, REFLECTION_SERVICE, REFLECTION_SERVICE_V1}
    )

    @classmethod
    def any_peer(cls) -> AccessPolicy:
        return cls()

    @classmethod
    def allow_only(cls, *identities: str) -> AccessPolicy:
        return cls(allowed=frozenset(identities))

    def allowed_for(self, method: str) -> frozenset[str] | None:
        """The identities allowed to call method; None means any mesh identity."""
        service = service_of(method)
        if service in self.open_services:
            return None
        return self.per_service.get(service, self.allowed)

    def denial(self, identity: str | None, method: str) -> str | None:
        """Why identity may not call method (a message for the caller), or None if it may."""
        if service_of(method) in self.open_services:
            return None  # the transport already required a certificate from our CA
        if identity is None:
            return f"{method} requires a client certificate naming a mesh identity"
        allowed = self.allowed_for(method)
        if allowed is None or identity in allowed:
            return None
        who = ", ".join(sorted(allowed)) or "nobody"
        return f"identity {identity!r} may not call {method} (allowed: {who})"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
