"""What both writers do before and around the provider's answer: records refused before any
call (an update without its id), all-or-none batches that cannot be atomic, splitting
into the provider's batch size, the builder's headers, and a refusal in the provider's
words without the connection's credentials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from services.domain.connectors.base import ProviderAuth
from services.domain.connectors.http import CLIENT_ERRORS, ProviderResponse, redact, send
from services.domain.connectors.writes import ItemOutcome, WriteBatch, WriteOutcome, WriteType

# Longest refusal kept per record (they end up in operation logs and API answers).
MAX_ERROR = 1000
NOT_WRITTEN = "not written: another record of the batch was refused (all_or_none)"
# Headers the connector itself sets: the builder's value would break the request (its
# body is JSON) or replace the connection's credentials.
_OWN_HEADERS = frozenset({"authorization", "content-type", "content-length", "host"})


@dataclass
class Prepared:
    """A batch checked before any call: what is already decided and what to send."""

    # One per item; None for the items still to be written.
    outcomes: list[ItemOutcome | None]
    # Indices of the items to send, split into the provider's batch size.
    chunks: list[list[int]]
    headers: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def finished(self, raw_response: str | None = None) -> WriteOutcome:
        """The outcome, every item decided."""
        items = [
            outcome
            if outcome is not None
            else ItemOutcome(success=False, errors=["the connector never decided this record"])
            for outcome in self.outcomes
        ]
        return WriteOutcome(items=items, raw_response=raw_response, warnings=self.warnings)


def prepare(
    batch: WriteBatch, auth: ProviderAuth, *, max_batch: int, atomic: bool, provider: str
) -> Prepared:
    """Check the batch before writing. `atomic`: whether all_or_none holds for this
    provider and type; then a record refused here, or more records than one request
    carries (all-or-none covers one request), writes nothing at all."""
    if batch.single and len(batch.items) != 1:
        raise ValueError(f"a single-record write carries one record, not {len(batch.items)}")
    headers, warnings = passthrough_headers(batch.headers, auth)
    outcomes: list[ItemOutcome | None] = [
        _local_refusal(batch.type, index, item.record_id) for index, item in enumerate(batch.items)
    ]
    pending = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if atomic and len(pending) > max_batch:
        reason = (
            f"not written: all_or_none covers one {provider} request of at most {max_batch} "
            f"records, and this batch has {len(batch.items)}; send smaller batches"
        )
        outcomes = [ItemOutcome(success=False, errors=[reason]) for _ in batch.items]
        pending = []
    elif atomic and len(pending) < len(batch.items):
        outcomes = [
            outcome or ItemOutcome(success=False, errors=[NOT_WRITTEN]) for outcome in outcomes
        ]
        pending = []
    chunks = [pending[start : start + max_batch] for start in range(0, len(pending), max_batch)]
    return Prepared(outcomes=outcomes, chunks=chunks, headers=headers, warnings=warnings)


def _local_refusal(kind: WriteType, index: int, record_id: str) -> ItemOutcome | None:
    if kind is WriteType.CREATE and record_id:
        return ItemOutcome(
            success=False,
            errors=[
                f"record {index}: a record to create has no id yet, but record_id is {record_id!r}"
            ],
        )
    if kind is not WriteType.CREATE and not record_id:
        return ItemOutcome(
            success=False, errors=[f"record {index}: a record to {kind} needs its record_id"]
        )
    return None


def passthrough_headers(
    wanted: Mapping[str, str], auth: ProviderAuth
) -> tuple[dict[str, str], list[str]]:
    """The builder's headers to send on every request, and a warning per header dropped
    because the connector sets it (the credentials above all)."""
    own = _OWN_HEADERS | {name.lower() for name in auth.headers}
    headers: dict[str, str] = {}
    warnings: list[str] = []
    for name, value in wanted.items():
        if name.lower() in own:
            warnings.append(f"header {name!r} was not sent: the connector sets it")
        else:
            headers[name] = value
    return headers, warnings


def refusal(code: object, message: object, auth: ProviderAuth) -> str:
    """A provider's refusal of one record, `CODE: message`, in the provider's words."""
    text = str(message or "").strip() or "refused without a message"
    if code:
        text = f"{code}: {text}"
    return redact(text, auth)[:MAX_ERROR]


def raw_text(content: bytes, auth: ProviderAuth) -> str:
    """A provider's answer as text for WriteOutcome.raw_response."""
    return redact(content.decode("utf-8", "replace"), auth)


class WriteCall:
    """One WriteBatch's requests to a provider: what both writers' calls share."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        auth: ProviderAuth,
        batch: WriteBatch,
        prepared: Prepared,
        max_wait: float,
    ) -> None:
        self.http, self.auth, self.batch = http, auth, batch
        self.prepared, self.max_wait = prepared, max_wait

    async def _send(
        self, method: str, url: str, body: Any = None, params: dict[str, str] | None = None
    ) -> ProviderResponse:
        """One request with the builder's headers; 4xx answers come back (per-record
        refusals are read from them)."""
        return await send(
            self.http,
            method,
            url,
            auth=self.auth,
            json=body,
            params=params,
            headers=self.prepared.headers,
            max_wait=self.max_wait,
            accept=CLIENT_ERRORS,
            # A create sent again after a lost answer could be written twice; a retried
            # write (Temporal, may_have_written) can tell, this call cannot.
            resend_unanswered=self.batch.type is not WriteType.CREATE,
        )
