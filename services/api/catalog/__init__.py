"""The providers catalog: which SaaS providers ampmesh connects to, and how.

    catalog = load_catalog()  # at start; CatalogError when the data file is unusable
    service = provider_catalog_service(catalog)  # ProviderService, for the MeshServer

The data file, providers.json, is written by scripts/build_catalog.py.
"""

from services.api.catalog.loader import DATA_FILE, CatalogError, load_catalog, parse_catalog
from services.api.catalog.service import (
    ANONYMOUS_METHODS,
    ProviderCatalog,
    provider_catalog_service,
)

__all__ = [
    "ANONYMOUS_METHODS",
    "DATA_FILE",
    "CatalogError",
    "ProviderCatalog",
    "load_catalog",
    "parse_catalog",
    "provider_catalog_service",
]
