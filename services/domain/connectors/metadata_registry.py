"""Which metadata connector describes which provider's objects (and upserts its custom
fields): HubSpot and Salesforce, as the reference supports."""

from __future__ import annotations

from services.domain.connectors.hubspot_metadata import HubSpotMetadata
from services.domain.connectors.metadata import MetadataConnector
from services.domain.connectors.salesforce_metadata import SalesforceMetadata

# Stateless, like the record connectors: one of each serves every call.
METADATA_CONNECTORS: dict[str, MetadataConnector] = {
    connector.provider: connector for connector in (HubSpotMetadata(), SalesforceMetadata())
}


def metadata_connector_for(provider: str) -> MetadataConnector | None:
    """The metadata connector of a catalog provider; None when ampmesh has none."""
    return METADATA_CONNECTORS.get(provider)


def supported() -> str:
    """The providers with a metadata connector, for messages."""
    return ", ".join(sorted(METADATA_CONNECTORS))
