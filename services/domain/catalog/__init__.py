"""The providers catalog: which SaaS providers ampmesh connects to, and how.

    catalog = load_catalog()  # at start; CatalogError when the data file is unusable

The api serves it (services/api/platform/providers.py), the token-manager reads each
provider's OAuth endpoints from it, the temporal workers its base URLs. The data file,
providers.json, is written by scripts/build_catalog.py.
"""

from services.domain.catalog.loader import DATA_FILE, CatalogError, load_catalog, parse_catalog

__all__ = ["DATA_FILE", "CatalogError", "load_catalog", "parse_catalog"]
