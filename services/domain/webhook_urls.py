"""Where webhooks may go: the rules a destination's URL must meet, checked by the api
when a destination is saved and again by messenger before it sends (a host's addresses
can change after it was saved).

https:// only; http:// only to loopback when the deployment allows it (the local mesh);
with refuse_private_destinations, the host must resolve to public addresses only, so a
destination cannot reach the deployment's own network (SSRF). Messenger checks names'
addresses where it connects (`address_problem` on each address its resolver returns), so
that the address checked is the one connected to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import urlsplit

MAX_URL = 2048
RESOLVE_TIMEOUT_SECONDS = 3.0

Resolver = Callable[[str], Awaitable[list[str]]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookUrlPolicy(Protocol):
    """The deployment's choices the rules follow (the api's ApiPolicy has them)."""

    @property
    def allow_loopback_webhooks(self) -> bool: ...

    @property
    def refuse_private_destinations(self) -> bool: ...


async def resolve_host(host: str) -> list[str]:
    """The addresses host resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _is_loopback_name(host: str) -> bool:
    # RFC 6761: localhost and its subdomains are always loopback.
    return host == "localhost" or host.endswith(".localhost")


def _as_ip(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4-mapped IPv6 address (::ffff:10.0.0.1) reaches the IPv4 host it holds.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_kind(address: IpAddress) -> str | None:
    """Why a destination must not reach address ("a private address", …), or None when
    it is a public unicast address."""
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a private address"
    return None


# Named in a refusal, so that an operator knows which setting decides it.
REFUSE_PRIVATE_SETTING = "AMPMESH_REFUSE_PRIVATE_DESTINATIONS"


def address_problem(host: str, address: IpAddress, policy: WebhookUrlPolicy) -> str | None:
    """Why a destination on host must not reach address under policy, or None."""
    if not policy.refuse_private_destinations:
        return None
    if address.is_loopback and policy.allow_loopback_webhooks:
        return None
    kind = address_kind(address)
    if kind is None:
        return None
    return (
        f"host {host!r} resolves to {address}, {kind}: destinations must be reachable on "
        f"the public internet ({REFUSE_PRIVATE_SETTING})"
    )


def parse_address(text: str) -> IpAddress | None:
    """text as an IP address (an IPv6 zone left out; an IPv4-mapped one as IPv4)."""
    return _as_ip(text.split("%")[0])


async def webhook_url_problem(
    url: str,
    policy: WebhookUrlPolicy,
    resolve: Resolver = resolve_host,
    *,
    check_names: bool = True,
) -> str | None:
    """Why url cannot be a webhook destination under policy, or None when it can.

    https:// only; http:// only to a loopback host (127.0.0.0/8, ::1, localhost) when
    policy.allow_loopback_webhooks. With policy.refuse_private_destinations, the host must
    resolve (within RESOLVE_TIMEOUT_SECONDS) to public addresses only; loopback ones pass
    when loopback webhooks are allowed. check_names=False leaves a host name's addresses
    to the caller (a literal address is still checked): messenger checks them as it
    connects.
    """
    if not url:
        return "is required: an absolute https:// URL"
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (urlsplit checks the port only when asked)
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("https", "http") or not host:
        return "must be an absolute https:// URL"
    literal = _as_ip(host)
    loopback = _is_loopback_name(host) or (literal is not None and literal.is_loopback)
    if scheme == "http":
        if not policy.allow_loopback_webhooks:
            return "must use https://"
        if not loopback:
            return (
                "must use https://; http:// is allowed only to loopback hosts (127.0.0.1, "
                "::1, localhost) in this deployment"
            )
    if not policy.refuse_private_destinations:
        return None
    if literal is not None:
        addresses = [literal]
    elif not check_names:
        return None
    else:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                resolved = await resolve(host)
        except TimeoutError:
            return f"host {host!r} did not resolve within {RESOLVE_TIMEOUT_SECONDS:g} s"
        except (OSError, UnicodeError):
            return f"host {host!r} does not resolve"
        addresses = [a for a in (parse_address(text) for text in resolved) if a]
        if not addresses:
            return f"host {host!r} does not resolve"
    for address in addresses:
        why = address_problem(host, address, policy)
        if why is not None:
            return why
    return None
