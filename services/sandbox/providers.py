"""The providers the sandbox emulates: their numbers (as the control API's), their names in
the catalog, and where their OAuth endpoints are."""

from __future__ import annotations

import enum


class Provider(enum.IntEnum):
    """Mirrors ampmesh.sandbox.v1.Provider (same numbers)."""

    UNSPECIFIED = 0
    HUBSPOT = 1
    SALESFORCE = 2


CATALOG_NAMES = {Provider.HUBSPOT: "hubspot", Provider.SALESFORCE: "salesforce"}

PATHS = {
    Provider.HUBSPOT: {
        "base": "/hubspot",
        "authorize": "/hubspot/oauth/authorize",
        "token": "/hubspot/oauth/v1/token",
        "revoke": "/hubspot/oauth/v1/revoke",
    },
    Provider.SALESFORCE: {
        "base": "/salesforce",
        "authorize": "/salesforce/services/oauth2/authorize",
        "token": "/salesforce/services/oauth2/token",
        "revoke": "/salesforce/services/oauth2/revoke",
    },
}

# The one account each emulated provider has: the HubSpot portal (hub id) every token
# belongs to, and the Salesforce org and its user (what token introspection and the
# change events name).
HUBSPOT_PORTAL_ID = 2026018
HUBSPOT_DOMAIN = "sandbox.hubspot.test"
SALESFORCE_ORG_ID = "00D5g000004SbxTEAS"
SALESFORCE_USER_ID = "0055g00000A1b2CAAR"
