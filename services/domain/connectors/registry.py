"""Which connector reads (searches, writes) which provider, and how to call it for one
connection. What each provider supports is declared in services/domain/catalog/actions.py;
tests/domain/test_supported_actions.py keeps the two in step."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ampmesh.platform.v1 import providers_pb2
from ampmesh.token.v1 import token_manager_pb2

from services.domain.connectors.base import Connector, ProviderAuth
from services.domain.connectors.hubspot import HubSpotConnector
from services.domain.connectors.hubspot_writes import HubSpotWriter
from services.domain.connectors.salesforce import SalesforceConnector
from services.domain.connectors.salesforce_writes import SalesforceWriter
from services.domain.connectors.search import HubSpotSearcher, SalesforceSearcher, Searcher
from services.domain.connectors.writes import Writer

# Connectors hold no per-connection state, so one of each serves every read.
CONNECTORS: dict[str, Connector] = {
    connector.provider: connector for connector in (HubSpotConnector(), SalesforceConnector())
}
# Searchers are stateless too (the Search API).
SEARCHERS: dict[str, Searcher] = {
    searcher.provider: searcher for searcher in (HubSpotSearcher(), SalesforceSearcher())
}
# Writers are stateless too: a WriteBatch carries all a write needs.
WRITERS: dict[str, Writer] = {
    writer.provider: writer for writer in (HubSpotWriter(), SalesforceWriter())
}
# The catalog's URL templates: Go's {{.name}} / {{ .name }}.
_PLACEHOLDER = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class NoConnector(KeyError):
    """No connector reads (or writes) this provider's records."""

    def __str__(self) -> str:
        return str(self.args[0])


def connector_for(provider: str) -> Connector:
    """The connector of a catalog provider; NoConnector (a KeyError) when there is none."""
    try:
        return CONNECTORS[provider]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise NoConnector(
            f"reading {provider!r} records is not supported yet (connectors exist for {known})"
        ) from None


def writer_for(provider: str) -> Writer:
    """The writer of a catalog provider; NoConnector (a KeyError) when there is none."""
    try:
        return WRITERS[provider]
    except KeyError:
        known = ", ".join(sorted(WRITERS))
        raise NoConnector(
            f"writing {provider!r} records is not supported yet (writers exist for {known})"
        ) from None


def provider_auth(
    info: providers_pb2.ProviderInfo,
    workspace: str,
    token: token_manager_pb2.GetTokenResponse,
    metadata: Mapping[str, str] | None = None,
) -> ProviderAuth:
    """The catalog's base URL with the connection's workspace (and metadata) filled in,
    and the token-manager's attachments as headers and query parameters."""
    values = {**(metadata or {}), "workspace": workspace}
    missing = sorted({name for name in _PLACEHOLDER.findall(info.base_url) if not values.get(name)})
    if missing:
        raise ValueError(
            f"the catalog's base URL for {info.name or 'the provider'} needs "
            f"{', '.join(missing)}, which the connection does not have: reconnect it "
            "naming its workspace"
        )
    base_url = _PLACEHOLDER.sub(lambda match: values[match.group(1)], info.base_url)
    headers, query = token_credentials(token)
    return ProviderAuth(base_url=base_url.rstrip("/"), headers=headers, query=query)


def token_credentials(
    token: token_manager_pb2.GetTokenResponse,
) -> tuple[dict[str, str], dict[str, str]]:
    """The token-manager's attachments as (headers, query parameters) for a request."""
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    access = token.token
    for attachment in access.attachments:
        if attachment.location == token_manager_pb2.ATTACHMENT_LOCATION_QUERY:
            query[attachment.name] = attachment.value
        else:
            headers[attachment.name] = attachment.value
    if not access.attachments and access.token:
        # A token-manager answer without attachment rules: OAuth's default.
        headers["Authorization"] = f"{access.token_type or 'Bearer'} {access.token}"
    return headers, query
