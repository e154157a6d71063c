"""The api's cache of providers' object descriptions, per connection and object.

An install UI asks for the same objects again and again while a customer configures an
installation (the hydrated revision, then each object's metadata), and the provider's
answer changes rarely (a custom field added), so each (connection, object) description is
kept for a lifetime (AMPMESH_FIELD_METADATA_TTL_SECONDS, 300 by default; 0 turns the
cache off). The cache is in process (cachetools' TTLCache): each api replica keeps its
own, so a replica may answer a description up to one lifetime old, and an upsert through
ampmesh drops only the entry of the replica that made it. Metadata is the provider's to
change at any time anyway (a field added in Salesforce's setup), so any cache is best
effort; a shared one would need a Redis client the api does not have yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TTLCache

from services.domain.connectors.metadata import ObjectDescription

DEFAULT_TTL_SECONDS = 300.0
# Entries kept at most (oldest first out): one per connection and object described.
MAX_ENTRIES = 10_000
_ABSENT = object()


class FieldMetadataCache:
    """Object descriptions by (connection id, object name), each for ttl seconds; also
    that a provider has no such object (None), which a hydrated revision naming an object
    the instance lacks would otherwise ask again on every load of the configure screen."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL_SECONDS,
        maxsize: int = MAX_ENTRIES,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._entries: TTLCache[tuple[str, str], ObjectDescription | None] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl, timer=timer) if ttl > 0 else None
        )

    @staticmethod
    def _key(connection_id: str, object_name: str) -> tuple[str, str]:
        # Salesforce's object names are case-insensitive and HubSpot's lower-case, so an
        # upsert of "Account" drops what a describe of "account" cached.
        return connection_id, object_name.lower()

    def get(self, connection_id: str, object_name: str) -> ObjectDescription | None:
        """The cached description; None when there is none (or the object is missing)."""
        if self._entries is None:
            return None
        return self._entries.get(self._key(connection_id, object_name))

    def is_missing(self, connection_id: str, object_name: str) -> bool:
        """Whether the provider said, within the lifetime, that it has no such object."""
        if self._entries is None:
            return False
        # One lookup: an entry may expire between two.
        return self._entries.get(self._key(connection_id, object_name), _ABSENT) is None

    def put(
        self, connection_id: str, object_name: str, description: ObjectDescription | None
    ) -> None:
        """Keep a description, or (None) that the provider has no such object."""
        if self._entries is not None:
            self._entries[self._key(connection_id, object_name)] = description

    def invalidate(self, connection_id: str, object_name: str) -> None:
        if self._entries is not None:
            self._entries.pop(self._key(connection_id, object_name), None)
