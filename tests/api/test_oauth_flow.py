"""The OAuth flow's pure parts: the authorization URL built from catalog entries, PKCE,
what a token response says about the connection, and the callback page's escaping."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import parse_qs, urlsplit

from ampmesh.platform.v1 import providers_pb2

from services.api.platform import oauth_flow
from services.domain.catalog import load_catalog

CATALOG = load_catalog()


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_hubspot_url_carries_the_protocol_parameters_and_app_params() -> None:
    url = oauth_flow.authorization_url(
        CATALOG["hubspot"],
        client_id="client-1",
        redirect_uri="http://127.0.0.1:8080/callbacks/v1/oauth",
        scopes=["crm.objects.contacts.read", "oauth"],
        state="st",
        values={},
        extra_params={"optional_scope": ["a", "b"]},
    )
    assert url.startswith("https://app.hubspot.com/oauth/authorize?")
    assert query(url) == {
        "optional_scope": ["a b"],
        "response_type": ["code"],
        "client_id": ["client-1"],
        "redirect_uri": ["http://127.0.0.1:8080/callbacks/v1/oauth"],
        "state": ["st"],
        "scope": ["crm.objects.contacts.read oauth"],
    }


def test_salesforce_url_fills_the_workspace_and_sends_the_pkce_challenge() -> None:
    info = CATALOG["salesforce"]
    verifier, challenge = oauth_flow.pkce_pair()
    assert 43 <= len(verifier) <= 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge == expected.rstrip(b"=").decode()
    url = oauth_flow.authorization_url(
        info,
        client_id="c",
        redirect_uri="http://r/cb",
        scopes=[],
        state="s",
        values=oauth_flow.template_values("acme", {}),
        code_challenge=challenge,
    )
    parts = urlsplit(url)
    assert parts.netloc == "acme.my.salesforce.com"
    got = query(url)
    assert got["prompt"] == ["login"]  # the catalog's authURLParams
    assert got["code_challenge"] == [challenge]
    assert got["code_challenge_method"] == ["S256"]
    assert "scope" not in got
    assert oauth_flow.auth_scheme(info) == "oauth2/authorizationCodePKCE"


def test_a_catalog_param_never_overrides_the_protocol() -> None:
    info = providers_pb2.ProviderInfo(name="x", auth_type="oauth2")
    info.oauth2_opts.grant_type = "authorizationCode"
    info.oauth2_opts.auth_url = "https://x.example/auth?tenant=t"
    info.oauth2_opts.auth_url_params["response_type"] = "token"
    url = oauth_flow.authorization_url(
        info, client_id="c", redirect_uri="http://r", scopes=[], state="s", values={}
    )
    assert query(url)["response_type"] == ["code"]
    assert query(url)["tenant"] == ["t"]


def test_missing_template_values_are_named() -> None:
    salesforce = CATALOG["salesforce"]
    assert oauth_flow.missing_values(salesforce, {}, []) == ["workspace"]
    assert oauth_flow.missing_values(salesforce, {"workspace": "acme"}, []) == []
    dynamics = CATALOG["dynamicsCRM"]
    scopes = list(dynamics.oauth2_opts.scope_mappings)
    assert "region" in oauth_flow.missing_values(dynamics, {"workspace": "w"}, scopes)


def test_the_workspace_comes_from_the_instance_url_where_the_catalog_puts_it() -> None:
    salesforce = CATALOG["salesforce"]
    facts = oauth_flow.token_facts(
        salesforce, {"instance_url": "https://acme-dev.my.salesforce.com", "id": "x"}
    )
    assert facts.workspace == "acme-dev"
    # A URL of another shape (the sandbox's loopback instance) is not a workspace.
    assert oauth_flow.token_facts(salesforce, {"instance_url": "http://127.0.0.1:9/sf"}) == (
        oauth_flow.TokenFacts()
    )
    assert oauth_flow.token_facts(CATALOG["hubspot"], {"hub_id": 1}) == oauth_flow.TokenFacts()


def test_other_token_fields_become_metadata() -> None:
    info = providers_pb2.ProviderInfo(name="x", auth_type="oauth2")
    other = info.oauth2_opts.token_metadata_fields.other_fields.add()
    other.name, other.display_name, other.path = "site", "Site", "owner.siteUrl"
    other.capture = r"https://(?P<result>[^.]+)\."
    facts = oauth_flow.token_facts(info, {"owner": {"siteUrl": "https://blue.example.com"}})
    assert facts.metadata == {"site": {"value": "blue", "source": "token", "displayName": "Site"}}


def test_the_page_escapes_everything_it_interpolates() -> None:
    hostile = '</script><script>alert("x")</script>&amp;\u2028'
    page = oauth_flow.result_page(error=hostile).decode()
    assert "</script><script>" not in page
    assert 'alert("x")</script>' not in page
    script = re.search(r"var message = (.*);\n", page)
    assert script is not None
    assert json.loads(script.group(1)) == {
        "eventType": "AUTHORIZATION_FAILED",
        "data": {"error": hostile},
    }
    assert "&lt;/script&gt;" in page  # the visible text, HTML-escaped


def test_the_success_page_names_the_connection() -> None:
    page = oauth_flow.result_page(connection_id="c0ffee").decode()
    assert "AUTHORIZATION_SUCCEEDED" in page and '"connection": "c0ffee"' in page
    assert "window.opener.postMessage" in page and "window.close()" in page


def test_states_are_random_and_stored_as_digests() -> None:
    first, second = oauth_flow.new_state(), oauth_flow.new_state()
    assert first != second and len(first) >= 43
    assert oauth_flow.state_digest(first) == hashlib.sha256(first.encode()).digest()
