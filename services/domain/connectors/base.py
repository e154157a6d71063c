"""What every connector offers the read workflows: one page of one object's records in a
modification-time window, and the few facts the platform needs about each record.

A window holds the records changed in it and the records deleted in it (as the provider
still returns them: HubSpot's archived records, Salesforce's recycle bin); `deleted`
tells them apart.

A connector speaks one provider's documented record API (paths, query shapes, paging
tokens, error bodies). Everything else is shared: authentication comes from the
token-manager, retries and Retry-After from `connectors.http`, field selection and
mappings from `reads.shape`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import aiohttp


@dataclass(frozen=True)
class ReadRequest:
    """One page to fetch."""

    # The provider's object name, as the manifest's objectName gives it (e.g. `contacts`,
    # `Account`).
    object_name: str
    # Provider field names to ask for; empty asks for the connector's default set.
    fields: Sequence[str]
    # Modification-time window: since inclusive (None: no lower bound), until exclusive
    # (None: no upper bound).
    since: datetime | None
    until: datetime | None
    # The connector's token from the previous Page; "" for the first page of the window.
    page_token: str = ""
    # Records per page; 0 means the connector's default (capped at the provider's limit).
    page_size: int = 0


@dataclass
class Page:
    """One page as the provider returned it."""

    # Every record exactly as the provider's API returned it (parsed JSON objects).
    records: list[dict[str, Any]]
    # Token of the next page; "" when the window has no further page.
    next_page_token: str
    # The provider's count of records in the window, when it says (Salesforce totalSize,
    # HubSpot search `total`).
    estimated_total: int | None = None


@dataclass(frozen=True)
class ProviderAuth:
    """Where and how to call the provider for one connection."""

    # The provider's API root for this connection (the catalog's base URL with the
    # workspace filled in), without a trailing slash.
    base_url: str
    # Headers that authenticate a request (from the token-manager's GetToken).
    headers: Mapping[str, str] = field(default_factory=dict)
    # Query parameters that authenticate a request, for providers that want them there.
    query: Mapping[str, str] = field(default_factory=dict)


class TokenRejected(Exception):
    """The provider refused the access token (401): refresh it and call again."""


class ProviderUnavailable(Exception):
    """The provider kept answering 429 or 5xx, or could not be reached, after the
    connector's own retries: try the page again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderRequestError(Exception):
    """The provider refused the request itself (4xx other than 401 and 429): retrying
    will not help. The message names the provider's error, never a credential."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        # The HTTP status and the provider's error code (e.g. `INVALID_QUERY_LOCATOR`),
        # for callers that handle one refusal specially.
        self.status = status
        self.code = code


class PageTokenExpired(ProviderRequestError):
    """The provider dropped the query a page token belongs to (Salesforce forgets a query
    cursor left idle about 15 minutes): read the window again from a fresh first page,
    starting at the newest modification time already read (records come in that order)."""


class Connector(Protocol):
    """One provider's record API."""

    # The catalog's provider name (`hubspot`, `salesforce`).
    provider: str

    async def read_page(
        self, http: aiohttp.ClientSession, auth: ProviderAuth, request: ReadRequest
    ) -> Page: ...

    def record_id(self, raw: Mapping[str, Any]) -> str:
        """The record's id at the provider."""
        ...

    def modified_time(self, raw: Mapping[str, Any]) -> datetime | None:
        """When the record last changed (the field the window filters on)."""
        ...

    def field_values(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The record's field values keyed by lower-cased provider field name (HubSpot's
        `properties`; a Salesforce row without `attributes`)."""
        ...

    def deleted(self, raw: Mapping[str, Any]) -> bool:
        """Whether the provider returned the record as deleted (HubSpot `archived`,
        Salesforce `IsDeleted`)."""
        ...
