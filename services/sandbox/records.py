"""The sandbox's records: seeded per provider and object, generated from a seed, touched on
demand, written through the providers' write APIs, and kept in two sorted indexes (by id
and by modification time) that the record APIs slice by bisection.

Field values are JSON scalars. Seeded ones are text; a write keeps what the provider
would store: HubSpot text only (hubspot_writes.py turns numbers and booleans into the
strings HubSpot answers with), Salesforce typed values (a number stays a number, and a
cleared field is None, read back as null).

Every face of the process shares one store in one event loop, so no locking is needed:
nothing here awaits.
"""

from __future__ import annotations

import bisect
import itertools
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sandbox.providers import Provider


@dataclass(eq=False)
class Record:
    """One record: its id, field values and times, whatever the provider's shape."""

    id: str
    fields: dict[str, Any]
    created: datetime
    modified: datetime
    # Rendered pieces the provider faces reuse on every page; emptied whenever the
    # record changes.
    cache: dict[str, Any] = field(default_factory=dict, repr=False)
    # HubSpot associations given when the record was created, as given; nothing reads
    # them back yet.
    associations: list[dict[str, Any]] = field(default_factory=list, repr=False)
    # When the record was deleted (HubSpot archived it, Salesforce moved it to the
    # recycle bin): it is then a tombstone, which only the deleted-record reads find.
    deleted: datetime | None = None

    def hubspot_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """HubSpot's always-present properties, and the whole record with every property
        (what a page without `properties` lists)."""
        cached = self.cache.get("hubspot")
        if cached is None:
            created, updated = hubspot_time(self.created), hubspot_time(self.modified)
            system = {
                "createdate": created,
                "hs_lastmodifieddate": updated,
                "hs_object_id": self.id,
            }
            whole = {
                "id": self.id,
                "properties": {**system, **self.fields},
                "createdAt": created,
                "updatedAt": updated,
                "archived": self.deleted is not None,
            }
            if self.deleted is not None:
                whole["archivedAt"] = hubspot_time(self.deleted)
            cached = self.cache["hubspot"] = (system, whole)
        return cached

    def salesforce_values(self) -> dict[str, Any]:
        """Every field of the Salesforce row, system fields included, by API name."""
        cached = self.cache.get("salesforce")
        if cached is None:
            modified = salesforce_time(self.modified)
            cached = self.cache["salesforce"] = {
                "Id": self.id,
                "CreatedDate": salesforce_time(self.created),
                "LastModifiedDate": modified,
                "SystemModstamp": modified,
                "IsDeleted": self.deleted is not None,
                **self.fields,
            }
        return cached

    def prime(self, provider: Provider) -> None:
        """Render now what the first page would otherwise render."""
        if provider is Provider.HUBSPOT:
            self.hubspot_parts()
        else:
            self.salesforce_values()

    def revise(self, provider: Provider, fields: dict[str, Any], when: datetime) -> None:
        """Take these field values (all of them, not only the changed ones) as of `when`."""
        self.fields = fields
        self.modified = when
        self.cache.clear()
        self.prime(provider)

    def bury(self, provider: Provider, when: datetime) -> None:
        """Become a tombstone deleted at `when` (Salesforce's deletion is a modification:
        its LastModifiedDate and SystemModstamp move on; HubSpot's keeps updatedAt)."""
        self.deleted = when
        if provider is Provider.SALESFORCE:
            self.modified = when
        self.cache.clear()
        self.prime(provider)


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The names whose values differ (set, changed or cleared), in a stable order."""
    names = list(after) + [name for name in before if name not in after]
    return [name for name in names if before.get(name) != after.get(name)]


def hubspot_time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def salesforce_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def id_key(provider: Provider, record_id: str) -> int | str:
    """How a provider orders its ids: HubSpot's are numbers, Salesforce's strings."""
    return int(record_id) if provider is Provider.HUBSPOT else record_id


def to_millis(moment: datetime) -> datetime:
    """The time as the providers keep it (milliseconds), so reads compare what they show."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: an exact, cheap key for comparing times."""
    return (moment - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"]
_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne"]
_INDUSTRIES = ["Technology", "Retail", "Finance", "Healthcare", "Energy", "Media"]
_CITIES = ["Paris", "Lisbon", "Oslo", "Austin", "Kyoto", "Nairobi", "Lima"]
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def _fields(provider: Provider, object_name: str, rng: random.Random) -> dict[str, str]:
    first, last, company = rng.choice(_FIRST), rng.choice(_LAST), rng.choice(_WORDS)
    number = rng.randrange(1000, 9999)
    if provider is Provider.HUBSPOT:
        if object_name == "contacts":
            return {
                "firstname": first,
                "lastname": last,
                "email": f"{first}.{last}{number}@example.com".lower(),
                "company": company,
                "phone": f"+1-555-{number}",
            }
        if object_name == "companies":
            return {
                "name": f"{company} {number}",
                "domain": f"{company}{number}.example.com".lower(),
                "industry": rng.choice(_INDUSTRIES),
                "city": rng.choice(_CITIES),
            }
        return {"name": f"{company} {last} {number}", "amount": str(rng.randrange(100, 99999))}
    if object_name == "Account":
        return {
            "Name": f"{company} {number}",
            "Industry": rng.choice(_INDUSTRIES),
            "Phone": f"+1-555-{number}",
            "BillingCity": rng.choice(_CITIES),
            "AnnualRevenue": str(rng.randrange(10_000, 9_999_999)),
        }
    if object_name == "Contact":
        return {
            "FirstName": first,
            "LastName": last,
            "Email": f"{first}.{last}{number}@example.com".lower(),
            "Phone": f"+1-555-{number}",
        }
    return {"Name": f"{company} {last} {number}"}


def _new_id(provider: Provider, object_name: str, rng: random.Random) -> str:
    if provider is Provider.HUBSPOT:
        return str(rng.randrange(10**9, 10**10))
    # Salesforce ids: a 3-character key prefix naming the object, then 15 characters.
    prefix = {"Account": "001", "Contact": "003", "Opportunity": "006"}.get(object_name, "a0X")
    return prefix + "".join(rng.choices(_BASE62, k=15))


_GENERATIONS = itertools.count(1)


def _write_ids() -> random.Random:
    return random.Random("writes")  # noqa: S311 (test data)


class ObjectRecords:
    """One object's records, in creation order and indexed for paging.

    Pages are answered by bisecting two sorted views (by id, and by modification time
    then id) instead of sorting or scanning per request, so a page costs its own size.
    The views are rebuilt on the first read after a change: seeding and touching happen
    in bursts between reads, so one sort per burst is all they cost.
    """

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.in_order: list[Record] = []
        self._by_id: list[Record] = []
        self._id_keys: list[int | str] = []
        self._by_modified: list[Record] = []
        self._modified_keys: list[tuple[int, int | str]] = []
        self._stale = True
        # Id -> record, for the writes' lookups; built on first use after a change.
        self._ids: dict[str, Record] | None = None
        # Unique among all objects' states past and present, and new after every
        # change: answers derived from the records can be cached under it.
        self.generation = next(_GENERATIONS)
        # The deleted records (tombstones), indexed as the live ones; made on first use.
        self._tombstones: ObjectRecords | None = None

    @property
    def tombstones(self) -> ObjectRecords:
        if self._tombstones is None:
            self._tombstones = ObjectRecords(self.provider)
        return self._tombstones

    def bury(self, ids: set[str], when: datetime) -> list[Record]:
        """Delete these live records as the provider does: they leave the live views and
        are kept as tombstones (deleted at `when`). The records buried."""
        buried = [record for record in self.in_order if record.id in ids]
        if not buried:
            return []
        for record in buried:
            record.bury(self.provider, to_millis(when))
        self.remove({record.id for record in buried})
        tombstones = self.tombstones
        # A record deleted again (an id reused after a reset of writes) replaces its
        # older tombstone.
        tombstones.remove({record.id for record in buried})
        tombstones.add(buried)
        return buried

    def changed(self, *, same_ids: bool = False) -> None:
        """After any change; `same_ids` when no record came or went (the id map holds)."""
        self._stale = True
        if not same_ids:
            self._ids = None
        self.generation = next(_GENERATIONS)

    def get(self, record_id: str) -> Record | None:
        if self._ids is None:
            self._ids = {record.id: record for record in self.in_order}
        return self._ids.get(record_id)

    # add and remove keep the id map, so a run of writes does not rebuild it per request.

    def add(self, records: list[Record]) -> None:
        if not records:
            return
        for record in records:
            record.prime(self.provider)
        self.in_order.extend(records)
        self.changed(same_ids=True)
        if self._ids is not None:
            self._ids.update((record.id, record) for record in records)

    def remove(self, ids: set[str]) -> None:
        self.in_order[:] = [record for record in self.in_order if record.id not in ids]
        self.changed(same_ids=True)
        if self._ids is not None:
            for record_id in ids:
                self._ids.pop(record_id, None)

    def by_id(self) -> tuple[list[Record], list[int | str]]:
        """Records sorted by id, and their sort keys (for bisect)."""
        self._index()
        return self._by_id, self._id_keys

    def by_modified(self) -> tuple[list[Record], list[tuple[int, int | str]]]:
        """Records sorted by modification time then id, and their keys
        ((micros(modified), id key), for bisect)."""
        self._index()
        return self._by_modified, self._modified_keys

    def _index(self) -> None:
        if not self._stale:
            return
        provider = self.provider
        keyed = [((micros(r.modified), id_key(provider, r.id)), r) for r in self.in_order]
        keyed.sort(key=lambda pair: pair[0])
        self._modified_keys = [key for key, _ in keyed]
        self._by_modified = [record for _, record in keyed]
        self._by_id = sorted(self.in_order, key=lambda r: id_key(provider, r.id))
        self._id_keys = [id_key(provider, r.id) for r in self._by_id]
        self._stale = False


def window(
    keys: list[tuple[int, int | str]],
    lower: int | None,
    lower_inclusive: bool,
    upper: int | None,
    upper_inclusive: bool,
) -> tuple[int, int]:
    """The [start, stop) slice of ObjectRecords.by_modified() whose times (microseconds)
    lie within the bounds (None: unbounded)."""
    start = 0
    if lower is not None:
        start = bisect.bisect_left(keys, (lower if lower_inclusive else lower + 1,))
    stop = len(keys)
    if upper is not None:
        stop = bisect.bisect_left(keys, (upper + 1 if upper_inclusive else upper,))
    return start, max(start, stop)


class RecordStore:
    """Records per (provider, object)."""

    def __init__(self) -> None:
        self._objects: dict[tuple[Provider, str], ObjectRecords] = {}
        self._write_ids = _write_ids()

    def records(self, provider: Provider, object_name: str) -> list[Record]:
        """The object's records in creation order."""
        found = self._objects.get((provider, object_name))
        return found.in_order if found is not None else []

    def object(self, provider: Provider, object_name: str) -> ObjectRecords:
        """The object's records with their indexes (empty when none were seeded)."""
        found = self._objects.get((provider, object_name))
        return found if found is not None else ObjectRecords(provider)

    def clear(self) -> None:
        self._objects.clear()
        self._write_ids = _write_ids()

    def objects(self) -> list[tuple[Provider, str, ObjectRecords]]:
        """Every object the store holds (what persistence.py keeps)."""
        return [(provider, name, found) for (provider, name), found in self._objects.items()]

    @property
    def write_ids(self) -> random.Random:
        """Where the ids of records writes create come from (kept with the records, so a
        restarted sandbox does not hand out an id again)."""
        return self._write_ids

    def writable(self, provider: Provider, object_name: str) -> ObjectRecords:
        """The object's records, kept in the store (a write may create the object)."""
        return self._objects.setdefault((provider, object_name), ObjectRecords(provider))

    def locate(self, provider: Provider, record_id: str) -> tuple[str, Record] | None:
        """Which of the provider's objects holds the record, and the record: a
        Salesforce collection delete names ids only, and a HubSpot association may
        point at any object."""
        for (owner, object_name), records in self._objects.items():
            found = records.get(record_id) if owner is provider else None
            if found is not None:
                return object_name, found
        return None

    def new_id(self, provider: Provider, object_name: str, pending: set[str]) -> str:
        """An id for a record a write creates, shaped as seeded ones are, unused in the
        object and not among `pending` (the ids of a batch not yet added); the same after
        every reset, as seeds are."""
        records = self.object(provider, object_name)
        while True:
            record_id = _new_id(provider, object_name, self._write_ids)
            if (
                record_id not in pending
                and records.get(record_id) is None
                and records.tombstones.get(record_id) is None
            ):
                return record_id

    def seed(
        self,
        provider: Provider,
        object_name: str,
        count: int,
        seed: int,
        modified_from: datetime,
        modified_until: datetime,
        *,
        replace: bool,
    ) -> list[Record]:
        """Create count records; the same arguments (and prior records) give the same ones."""
        if replace:
            self._objects.pop((provider, object_name), None)
        records = self._objects.setdefault((provider, object_name), ObjectRecords(provider))
        existing = records.in_order
        taken = {record.id for record in existing}
        # Keyed by everything that should change the outcome, so adding to an object
        # does not repeat the ids already there.
        rng = random.Random(f"{provider.name}/{object_name}/{seed}/{len(existing)}")  # noqa: S311 (test data)
        span = modified_until - modified_from
        created: list[Record] = []
        for index in range(count):
            record_id = _new_id(provider, object_name, rng)
            while record_id in taken:
                record_id = _new_id(provider, object_name, rng)
            taken.add(record_id)
            modified = modified_until if count == 1 else modified_from + span * index / (count - 1)
            modified = modified.replace(microsecond=modified.microsecond // 1000 * 1000)
            age = timedelta(seconds=rng.randrange(0, 30 * 86400))
            values = _fields(provider, object_name, rng)
            created.append(Record(record_id, values, modified - age, modified))
        for record in created:
            record.prime(provider)
        existing.extend(created)
        records.changed()
        return created

    def touch(
        self,
        provider: Provider,
        object_name: str,
        ids: list[str],
        count: int,
        seed: int,
        when: datetime,
        changes: dict[str, list[str]] | None = None,
    ) -> list[Record]:
        """Give some records new values and a new modification time; `changes` (when
        given) receives each record's changed field names."""
        records = self.records(provider, object_name)
        rng = random.Random(f"touch/{provider.name}/{object_name}/{seed}")  # noqa: S311
        if ids:
            by_id = {record.id: record for record in records}
            missing = [record_id for record_id in ids if record_id not in by_id]
            if missing:
                raise KeyError(", ".join(missing))
            chosen = [by_id[record_id] for record_id in ids]
        else:
            chosen = rng.sample(records, min(count, len(records)))
        when = to_millis(when)
        for record in chosen:
            before = record.fields
            record.revise(provider, _fields(provider, object_name, rng), when)
            if changes is not None:
                changes[record.id] = changed_fields(before, record.fields)
        if chosen:
            self._objects[(provider, object_name)].changed()
        return chosen
