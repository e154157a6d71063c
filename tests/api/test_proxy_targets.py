"""Where a proxied call may go: only the host the catalog names, with the connection's
values as host labels in their places (services/api/proxy/targets.py)."""

from __future__ import annotations

import pytest
from ampmesh.manifest.v1 import manifest_pb2
from ampmesh.platform.v1 import providers_pb2

from services.api.proxy.targets import (
    Target,
    TargetError,
    base_url_template,
    proxy_target,
)

SALESFORCE = "https://{{.workspace}}.my.salesforce.com"


def test_a_workspace_fills_its_label() -> None:
    assert proxy_target(SALESFORCE, {"workspace": "acme--dev.sandbox"}, "salesforce") == Target(
        "https", "acme--dev.sandbox.my.salesforce.com", ""
    )


def test_the_base_urls_path_and_port_are_kept() -> None:
    target = proxy_target("http://127.0.0.1:8081/hubspot/", {}, "hubspot")
    assert target == Target("http", "127.0.0.1:8081", "/hubspot")
    assert proxy_target("https://{{ .workspace }}.aha.io/api", {"workspace": "x"}, "aha") == (
        Target("https", "x.aha.io", "/api")
    )


@pytest.mark.parametrize(
    "workspace",
    [
        "evil.com/",  # a path
        "evil.com#",  # a fragment
        "evil.com?",  # a query
        "user@evil.com",  # a user
        "evil.com:443",  # a port
        "a b",
        "-dash",
        "dots..",
        ".",
        "x" * 64,  # a label longer than 63
        "",
    ],
)
def test_a_value_that_is_not_host_labels_is_refused(workspace: str) -> None:
    with pytest.raises(TargetError) as refused:
        proxy_target(SALESFORCE, {"workspace": workspace}, "salesforce")
    assert "workspace" in str(refused.value)


def test_a_value_cannot_make_the_host_another_one() -> None:
    # Labels only: the host stays a subdomain of the catalog's.
    target = proxy_target(SALESFORCE, {"workspace": "evil.com"}, "salesforce")
    assert target.authority == "evil.com.my.salesforce.com"
    with pytest.raises(TargetError):
        proxy_target("https://{{.workspace}}", {"workspace": "evil.com@good.com"}, "p")


def test_a_catalog_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(TargetError):
        proxy_target("file:///etc/passwd", {}, "p")


def test_use_module_picks_the_modules_base_url() -> None:
    info = providers_pb2.ProviderInfo(base_url="https://api.hubapi.com", default_module="crm")
    info.modules["crm"].base_url = "https://api.hubapi.com/crm"
    plain = manifest_pb2.Integration(provider="hubspot")
    assert base_url_template(info, plain) == "https://api.hubapi.com"
    moduled = manifest_pb2.Integration(provider="hubspot")
    moduled.proxy.use_module = True
    assert base_url_template(info, moduled) == "https://api.hubapi.com/crm"
    moduled.module = "marketing"  # not in the catalog: the provider's own URL
    assert base_url_template(info, moduled) == "https://api.hubapi.com"
