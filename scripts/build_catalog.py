"""Build the api service's providers catalog from the reference's public catalog.json.

    python scripts/build_catalog.py [CATALOG_JSON] [--out PATH]

CATALOG_JSON defaults to ../shared/reference/ampersand/connectors/catalog.json beside the
repository; PATH to services/domain/catalog/providers.json, which is committed: the service
never reads the reference. Re-running it on the same input writes the same bytes.

The catalog keeps the providers below, each entry as the reference has it (every field our
ProviderInfo contract models, which is all of them: an unknown field stops the build), and
only if it is usable (services/domain/catalog/checks.py). Left out although well known:
zoho (its URLs use data-centre domains the reference's catalog declares no source for),
braze and talkdesk (media URLs with leading spaces), snowflake (custom auth with no inputs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from services.domain.catalog.loader import DATA_FILE, CatalogError, parse_catalog

REPOSITORY = Path(__file__).resolve().parents[1]
REFERENCE_CATALOG = REPOSITORY.parent / "shared/reference/ampersand/connectors/catalog.json"

# The best-known SaaS of the reference's catalog, grouped by how they authenticate so that
# every auth kind the reference offers is served (it has no jwt or none provider).
PROVIDERS: tuple[str, ...] = (
    # OAuth2 authorization code
    "asana",
    "atlassian",
    "attio",
    "box",
    "calendly",
    "clickup",
    "close",
    "constantContact",
    "docusign",
    "dropbox",
    "dynamicsBusinessCentral",
    "dynamicsCRM",
    "figma",
    "github",
    "gong",
    "google",
    "greenhouse",
    "gusto",
    "hubspot",
    "intercom",
    "lever",
    "linear",
    "linkedIn",
    "microsoft",
    "miro",
    "netsuite",
    "notion",
    "outreach",
    "pipedrive",
    "quickbooks",
    "sageIntacct",
    "salesloft",
    "serviceNow",
    "shopify",
    "slack",
    "square",
    "typeform",
    "xero",
    "zendeskChat",
    "zendeskSupport",
    "zoom",
    # OAuth2 authorization code with PKCE
    "airtable",
    "klaviyo",
    "ringCentral",
    "salesforce",
    "zoomInfo",
    # OAuth2 client credentials
    "adobe",
    "helpScoutMailbox",
    "marketo",
    "payPal",
    "salesforceMarketing",
    "zuora",
    # OAuth2 password
    "sugarCRM",
    # API key in a header
    "activeCampaign",
    "aircall",
    "anthropic",
    "apollo",
    "brevo",
    "freshsales",
    "front",
    "iterable",
    "monday",
    "openAI",
    "segment",
    "sendGrid",
    "stripe",
    # API key in the query
    "hunter",
    "jotform",
    "lemlist",
    "smartlead",
    # Basic auth
    "amplitude",
    "ashby",
    "chargebee",
    "freshdesk",
    "freshservice",
    "insightly",
    "mailgun",
    "mixpanel",
    "recurly",
    # Custom auth
    "bigquery",
    "devrev",
    "gitlab",
    "netsuiteM2M",
    "salesforceJWT",
)


def build(reference: Mapping[str, Any], providers: Sequence[str] = PROVIDERS) -> str:
    """The data file's text: the chosen providers of a reference catalog document."""
    entries = reference.get("catalog")
    if not isinstance(entries, Mapping):
        raise CatalogError("the reference has no 'catalog' object")
    missing = sorted(set(providers) - set(entries))
    if missing:
        raise CatalogError(f"not in the reference catalog: {', '.join(missing)}")
    document = {
        "catalog": {name: entries[name] for name in providers},
        "timestamp": reference.get("timestamp", ""),
    }
    parse_catalog(document, "the chosen providers")
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("reference", nargs="?", type=Path, default=REFERENCE_CATALOG)
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    try:
        reference = json.loads(args.reference.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(
            f"build_catalog: cannot read {args.reference} ({error}); pass the path of the "
            "reference's connectors/catalog.json",
            file=sys.stderr,
        )
        return 1
    try:
        text = build(reference)
    except CatalogError as error:
        print(f"build_catalog: {args.reference}: {error}", file=sys.stderr)
        return 1
    args.out.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {len(PROVIDERS)} providers to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
