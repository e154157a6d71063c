"""A shard's fastest tier: opened credentials in a bounded LRU, dropped the moment any
shard changes them (invalidation.py), and aged out as a last resort.

Entries are ordered by their stamp (store.Row.stamp). An invalidation drops the copy
older than the change it announces and remembers that stamp for a while (`_floors`), so a
read that fetched the older credentials before the change but finishes after hearing of
it cannot put them back. `clear()` (the shard stopped hearing of changes) also moves an
epoch on: a read started before it cannot fill the cache after it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar


class Entry(Protocol):
    @property
    def connection_id(self) -> str: ...

    @property
    def stamp(self) -> str: ...


# How long an invalidation's stamp is remembered: longer than any read in flight takes.
FLOOR_SECONDS = 120.0
MAX_FLOORS = 100_000


E = TypeVar("E", bound=Entry)


class MemoryCache(Generic[E]):
    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self._entries: OrderedDict[str, tuple[float, E]] = OrderedDict()
        self._floors: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl_seconds
        self.epoch = 0
        # False while the shard cannot hear of changes: nothing is served or kept.
        self.enabled = True

    def get(self, connection_id: str) -> E | None:
        if not self.enabled:
            return None
        entry = self._entries.get(connection_id)
        if entry is None:
            return None
        stored_at, value = entry
        if time.monotonic() - stored_at > self._ttl:
            del self._entries[connection_id]
            return None
        self._entries.move_to_end(connection_id)
        return value

    def put(self, value: E, epoch: int | None = None) -> None:
        """Keeps value, unless the cache is off, was cleared since `epoch` (what the
        reader saw before it read), or has heard of a newer change of the connection."""
        if self._max <= 0 or not self.enabled or (epoch is not None and epoch != self.epoch):
            return
        connection_id = value.connection_id
        floor = self._floors.get(connection_id)
        if floor is not None and value.stamp < floor[0]:
            return
        current = self._entries.get(connection_id)
        if current is not None and value.stamp < current[1].stamp:
            return
        self._entries[connection_id] = (time.monotonic(), value)
        self._entries.move_to_end(connection_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def invalidate(self, connection_id: str, stamp: str) -> None:
        """A change with this stamp committed: drop any older copy, refuse older ones."""
        current = self._entries.get(connection_id)
        if current is not None and current[1].stamp < stamp:
            del self._entries[connection_id]
        now = time.monotonic()
        floor = self._floors.pop(connection_id, None)
        self._floors[connection_id] = (max(stamp, floor[0]) if floor else stamp, now)
        while self._floors:
            oldest, (_, at) = next(iter(self._floors.items()))
            if now - at <= FLOOR_SECONDS and len(self._floors) <= MAX_FLOORS:
                break
            del self._floors[oldest]

    def evict(self, connection_id: str) -> None:
        self._entries.pop(connection_id, None)

    def clear(self) -> None:
        self._entries.clear()
        self._floors.clear()
        self.epoch += 1

    def __len__(self) -> int:
        return len(self._entries)
