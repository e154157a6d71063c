"""Where messenger's POSTs may connect: the webhook client's resolver, which refuses a
host name resolving to an address the URL rules forbid (loopback, private, link-local,
reserved) unless the deployment's settings allow it.

The check is made on the addresses the connection is then opened to, not on an earlier
lookup: a name checked when its destination was saved (or a moment before the POST) can
resolve elsewhere by the time messenger connects (DNS rebinding). aiohttp keeps what the
resolver returned for RESOLUTION_TTL seconds, so a POST costs no lookup within that time.
Literal addresses never reach a resolver; the URL check (webhook_url_problem) covers them.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from services.domain.webhook_urls import (
    Resolver,
    WebhookUrlPolicy,
    address_problem,
    parse_address,
)

# Seconds aiohttp reuses a name's (checked) addresses: long enough that a busy
# destination is not resolved on every POST, short enough to follow DNS changes.
RESOLUTION_TTL = 10


class RefusedAddress(OSError):
    """A host name resolved to an address the URL rules refuse; str() says which rule."""


class CheckedResolver(AbstractResolver):
    """Resolves a name (the system resolver, or resolve when given) and refuses it when
    any of its addresses breaks policy, as the check when a destination is saved does."""

    def __init__(self, policy: WebhookUrlPolicy, resolve: Resolver | None = None) -> None:
        self._policy = policy
        self._resolve = resolve
        self._system: ThreadedResolver | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolve is None:
            if self._system is None:
                self._system = ThreadedResolver()
            found = await self._system.resolve(host, port, family)
        else:
            found = [_result(host, text, port) for text in await self._resolve(host)]
        name = host.rstrip(".")
        for result in found:
            address = parse_address(result["host"])
            if address is None:
                raise RefusedAddress(f"host {name!r} resolved to an unreadable address")
            why = address_problem(name, address, self._policy)
            if why is not None:
                raise RefusedAddress(why)
        return found

    async def close(self) -> None:
        if self._system is not None:
            await self._system.close()


def _result(host: str, text: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    return ResolveResult(
        hostname=host,
        host=text,
        port=port,
        family=family,
        proto=socket.IPPROTO_TCP,
        flags=socket.AI_NUMERICHOST,
    )
