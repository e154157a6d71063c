"""Per-connection call rates the proxy keeps to, before the provider is called.

Where a provider documents a limit per connected account, the table below holds it;
a deployment can change or add limits with AMPMESH_PROXY_RATE_LIMITS, a comma-separated
list of `provider=calls/seconds` (`provider=0` lifts a limit). A call over the limit is
answered 429 with Retry-After by the edge, and never reaches the provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    calls: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.calls} calls per {self.seconds} s"


# Documented per-account limits (the strictest tier, so every customer stays inside).
DOCUMENTED: dict[str, RateLimit] = {
    # developers.hubspot.com/docs/api/usage-details: 100 requests per 10 seconds per
    # account for OAuth apps (110 for some tiers).
    "hubspot": RateLimit(100, 10),
}

_ENTRY = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*=\s*(?:(0)|(\d+)\s*/\s*(\d+)\s*s?)\s*")


class RateLimitSettingError(ValueError):
    """AMPMESH_PROXY_RATE_LIMITS could not be read; the message names the entry."""


def parse_rate_limits(text: str) -> dict[str, RateLimit | None]:
    """`hubspot=100/10,pipedrive=0` -> {"hubspot": RateLimit(100, 10), "pipedrive": None}."""
    limits: dict[str, RateLimit | None] = {}
    for entry in (part for part in text.split(",") if part.strip()):
        match = _ENTRY.fullmatch(entry)
        if match is None:
            raise RateLimitSettingError(
                f"AMPMESH_PROXY_RATE_LIMITS: {entry.strip()!r} is not provider=calls/seconds "
                "(e.g. hubspot=100/10) or provider=0"
            )
        provider, off, calls, seconds = match.groups()
        if off:
            limits[provider] = None
            continue
        if int(calls) < 1 or not 1 <= int(seconds) <= 86400:
            raise RateLimitSettingError(
                f"AMPMESH_PROXY_RATE_LIMITS: {entry.strip()!r} needs at least 1 call over "
                "1 to 86400 seconds"
            )
        limits[provider] = RateLimit(int(calls), int(seconds))
    return limits


def rate_limits(setting: str = "") -> dict[str, RateLimit]:
    """The documented limits, changed by the deployment's setting."""
    merged: dict[str, RateLimit | None] = {**DOCUMENTED, **parse_rate_limits(setting)}
    return {provider: limit for provider, limit in merged.items() if limit is not None}
