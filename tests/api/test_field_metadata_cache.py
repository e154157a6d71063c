"""The api's cache of object descriptions: an entry lives for its lifetime, per connection
and object (Salesforce's names case-insensitively), an upsert's invalidation drops it at
once, and a lifetime of 0 turns caching off."""

from __future__ import annotations

from services.api.metadata_cache import FieldMetadataCache
from services.domain.connectors.metadata import ObjectDescription


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_for_its_lifetime_then_is_fetched_again() -> None:
    clock = Clock()
    cache = FieldMetadataCache(ttl=300, timer=clock)
    described = ObjectDescription("Account", "Account")
    cache.put("conn-1", "Account", described)
    clock.now += 299
    assert cache.get("conn-1", "account") is described
    assert cache.get("conn-2", "Account") is None
    clock.now += 2
    assert cache.get("conn-1", "Account") is None


def test_invalidation_drops_the_entry_whatever_the_case_of_the_name() -> None:
    cache = FieldMetadataCache(ttl=300)
    cache.put("conn-1", "account", ObjectDescription("account", "Account"))
    cache.put("conn-1", "Contact", ObjectDescription("Contact", "Contact"))
    cache.invalidate("conn-1", "Account")
    assert cache.get("conn-1", "account") is None
    assert cache.get("conn-1", "Contact") is not None


def test_a_lifetime_of_zero_caches_nothing() -> None:
    cache = FieldMetadataCache(ttl=0)
    cache.put("conn-1", "contacts", ObjectDescription("contacts", "Contact"))
    assert cache.get("conn-1", "contacts") is None
    cache.invalidate("conn-1", "contacts")  # nothing to drop, and no error


def test_a_missing_object_is_remembered_for_its_lifetime_and_dropped_by_invalidation() -> None:
    clock = Clock()
    cache = FieldMetadataCache(ttl=300, timer=clock)
    assert not cache.is_missing("conn-1", "spaceships")
    cache.put("conn-1", "spaceships", None)
    assert cache.is_missing("conn-1", "Spaceships")
    assert cache.get("conn-1", "spaceships") is None
    clock.now += 301
    assert not cache.is_missing("conn-1", "spaceships")
    cache.put("conn-1", "spaceships", None)
    cache.invalidate("conn-1", "spaceships")  # an upsert may have created it
    assert not cache.is_missing("conn-1", "spaceships")
