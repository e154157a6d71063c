"""What every connector offers writes: create, update or delete records of one object, one
record or a batch, and the per-record outcome in request order.

Fields arrive in the provider's own names: the builder's mapped names and the
installation's field settings were applied before (services/domain/write_plan.py). A
connector speaks one provider's documented write API and reports what the provider said
about each record; it decides nothing about retrying except through its exceptions:

- TokenRejected (401): refresh the token and write again;
- ProviderUnavailable (429, 5xx, network, after `max_wait` of the shared retries in
  connectors.http): the caller may try the whole batch again later;
- anything the provider refused about a record is that record's ItemOutcome (success
  false, the provider's message), never an exception, so a batch reports every record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import aiohttp

from services.domain.connectors.base import ProviderAuth


class WriteType(StrEnum):
    """What a write does (the reference's `type`)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class WriteItem:
    """One record to write."""

    # Field values by provider field name (no id: that is record_id).
    fields: Mapping[str, Any] = field(default_factory=dict)
    # The provider's id of the record: required for update and delete, empty for create.
    record_id: str = ""
    # Provider-specific associations to create with the record (HubSpot's
    # `{"to": {"id": ...}, "types": [...]}`), passed as given.
    associations: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class WriteBatch:
    """One write request to the provider: records of one object, one type."""

    object_name: str
    type: WriteType
    items: Sequence[WriteItem]
    # True: when one record fails, none is written (the provider's all-or-none where it
    # has one; HubSpot creates are rolled back by archiving; HubSpot updates ignore it).
    # It covers one request: a longer batch (over max_batch) is refused whole, unwritten.
    all_or_none: bool = False
    # Extra HTTP headers the builder asked to send (Salesforce's Sforce-* headers).
    headers: Mapping[str, str] = field(default_factory=dict)
    # True when an earlier attempt of this same batch may have reached the provider (a
    # retried activity whose previous attempt died mid-call). A create the provider
    # refuses as a duplicate of an existing record it names is then that record's
    # success, not a failure: the earlier attempt wrote it (HubSpot contacts, unique by
    # email; Salesforce has no such answer, see salesforce_writes.py). Likewise a delete
    # whose record the provider no longer has. Both say so in the outcome's warnings.
    may_have_written: bool = False
    # Single-record endpoints are used when the request was for one record (the
    # reference's `record`), batch endpoints otherwise, even for a batch of one.
    single: bool = False


@dataclass
class ItemOutcome:
    """What the provider did with one record."""

    success: bool
    # The provider's id of the record written (create, update; the deleted id on delete).
    record_id: str = ""
    # What the provider returned about the record, when it returned something.
    data: dict[str, Any] | None = None
    # Why it failed, in the provider's words (credentials never included).
    errors: list[str] = field(default_factory=list)


@dataclass
class WriteOutcome:
    """The provider's answer to one WriteBatch."""

    # One per WriteBatch.items, in the same order.
    items: list[ItemOutcome]
    # The provider's raw response body, when a single-record write failed.
    raw_response: str | None = None
    # Problems that did not stop the write.
    warnings: list[str] = field(default_factory=list)


class Writer(Protocol):
    """One provider's record-writing API."""

    # The catalog's provider name (`hubspot`, `salesforce`).
    provider: str
    # Most records one batch request may carry (HubSpot 100, Salesforce 200); longer
    # batches are split by the writer.
    max_batch: int

    async def write(
        self,
        http: aiohttp.ClientSession,
        auth: ProviderAuth,
        batch: WriteBatch,
        *,
        max_wait: float = 20.0,
    ) -> WriteOutcome:
        """Write the batch. Raises TokenRejected or ProviderUnavailable (module docstring);
        every other refusal is an ItemOutcome."""
        ...
