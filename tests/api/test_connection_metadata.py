"""A connection's providerMetadata filled from what the connection knows: the workspace
the token response names (source `token`) or the caller gave (source `input`), for the
providers whose catalog entry declares a `workspace` input, against the real catalog and
against one pointed at the provider sandbox."""

from __future__ import annotations

from services.api.platform import oauth_flow
from services.api.platform.connection_metadata import (
    FROM_INPUT,
    FROM_TOKEN,
    url_templates,
    with_workspace,
)
from services.domain.catalog import load_catalog
from services.domain.catalog.sandbox import point_at_sandbox
from services.sandbox.oauth_routes import SALESFORCE_INSTANCE_URL, SALESFORCE_MY_DOMAIN

CATALOG = load_catalog()
SANDBOXED = point_at_sandbox(CATALOG, "http://127.0.0.1:9")


def test_salesforce_gets_its_workspace_from_the_token_with_its_source() -> None:
    salesforce = CATALOG["salesforce"]
    facts = oauth_flow.token_facts(salesforce, {"instance_url": "https://acme.my.salesforce.com"})
    assert facts.workspace == "acme"
    filled = with_workspace(salesforce, {}, facts.workspace, FROM_TOKEN)
    assert filled == {"workspace": {"value": "acme", "source": "token", "displayName": "Subdomain"}}


def test_the_sandbox_token_names_a_workspace_the_sandboxed_catalog_recognises() -> None:
    salesforce = SANDBOXED["salesforce"]
    # The sandboxed entry's own templates have no {{.workspace}}; the reference's do.
    assert all("workspace" not in t for t in url_templates(salesforce)[:3])
    facts = oauth_flow.token_facts(salesforce, {"instance_url": SALESFORCE_INSTANCE_URL})
    assert facts.workspace == SALESFORCE_MY_DOMAIN
    # The sandbox's own loopback address is still no workspace.
    assert oauth_flow.token_facts(
        salesforce, {"instance_url": "http://127.0.0.1:9/salesforce"}
    ) == (oauth_flow.TokenFacts())


def test_the_token_wins_over_what_was_typed_and_typed_values_never_replace() -> None:
    salesforce = CATALOG["salesforce"]
    typed = {"workspace": {"value": "typo", "source": "input"}}
    assert with_workspace(salesforce, typed, "acme", FROM_TOKEN)["workspace"]["value"] == "acme"
    assert with_workspace(salesforce, typed, "other", FROM_INPUT) == typed
    blank = {"workspace": {"value": " ", "source": "input"}}
    assert with_workspace(salesforce, blank, "acme", FROM_INPUT)["workspace"] == {
        "value": "acme",
        "source": "input",
        "displayName": "Subdomain",
    }
    # Other metadata stays as it was.
    other = {"businessUnitId": {"value": "0Uv1", "source": "input"}}
    assert (
        with_workspace(salesforce, other, "acme", FROM_TOKEN)["businessUnitId"]
        == (other["businessUnitId"])
    )


def test_nothing_is_added_where_the_catalog_declares_no_workspace_or_none_is_known() -> None:
    assert with_workspace(CATALOG["hubspot"], {}, "acme", FROM_TOKEN) == {}
    assert with_workspace(CATALOG["salesforce"], {}, None, FROM_TOKEN) == {}
    assert with_workspace(CATALOG["salesforce"], {}, "", FROM_INPUT) == {}
