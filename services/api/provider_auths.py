"""Connections' provider auth (base URL and credentials), kept for a few seconds so the api
calling a provider in a loop (writes, search) asks the token-manager once per connection
per AUTH_REUSE_SECONDS rather than on every call. An entry ends earlier when its token
would expire within TOKEN_MARGIN; a token the provider refuses is refreshed by the caller
and replaces it. Secrets stay in process memory, never in a log.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from cachetools import TTLCache

from services.domain.connectors.base import ProviderAuth

AUTH_REUSE_SECONDS = 10.0
# A kept token must stay valid at least this long after it is handed out.
TOKEN_MARGIN = 30.0
MAX_CONNECTIONS = 10_000


class ProviderAuths:
    def __init__(self, reuse_seconds: float = AUTH_REUSE_SECONDS) -> None:
        self.reuse_seconds = reuse_seconds
        # connection id -> (auth, time.monotonic() after which it is not used)
        self._kept: TTLCache[str, tuple[ProviderAuth, float]] = TTLCache(
            maxsize=MAX_CONNECTIONS, ttl=reuse_seconds
        )

    def get(self, connection_id: str) -> ProviderAuth | None:
        kept = self._kept.get(connection_id)
        if kept is None or kept[1] <= time.monotonic():
            return None
        return kept[0]

    def put(self, connection_id: str, auth: ProviderAuth, expires: datetime | None) -> None:
        seconds = self.reuse_seconds
        if expires is not None:
            seconds = min(seconds, (expires - datetime.now(UTC)).total_seconds() - TOKEN_MARGIN)
        if seconds > 0:
            self._kept[connection_id] = (auth, time.monotonic() + seconds)
