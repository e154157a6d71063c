"""The honest catalog: a manifest asking for an action ampmesh has no connector for is
refused at deploy time, naming the action, the provider and the line; and the one
declaration of supported actions agrees with the connectors that exist."""

from __future__ import annotations

import textwrap
from pathlib import Path

from services.domain.catalog import load_catalog
from services.domain.catalog.actions import (
    SUPPORTED_ACTIONS,
    Action,
    markdown_table,
    providers_supporting,
)
from services.domain.connectors.metadata_registry import METADATA_CONNECTORS
from services.domain.connectors.registry import CONNECTORS, SEARCHERS, WRITERS
from services.domain.manifest import load_manifest, validate_manifest
from tests.support.control_plane import line_of

CATALOG = load_catalog()
DESTINATIONS = {"hook"}


def issues(text: str) -> list[tuple[str, int | None, str]]:
    parsed = load_manifest(text)
    found = validate_manifest(parsed.manifest, CATALOG, DESTINATIONS, parsed.lines)
    return [(issue.path, issue.line, issue.message) for issue in found]


def manifest(provider: str, sections: str) -> str:
    return textwrap.dedent(
        """\
        specVersion: 1.0.0
        integrations:
          - name: sync
            provider: {provider}
        """
    ).format(provider=provider) + textwrap.indent(textwrap.dedent(sections), "    ")


READ_CONTACTS = """\
    read:
      objects:
        - objectName: contacts
          destination: hook
"""


def test_reads_of_the_providers_with_a_connector_deploy() -> None:
    assert issues(manifest("hubspot", READ_CONTACTS)) == []
    assert issues(manifest("salesforce", READ_CONTACTS.replace("contacts", "Account"))) == []


WRITE_CONTACTS = """\
    write:
      objects:
        - objectName: contacts
"""


def test_writes_of_the_providers_with_a_writer_deploy() -> None:
    assert issues(manifest("hubspot", READ_CONTACTS + WRITE_CONTACTS)) == []
    assert issues(manifest("salesforce", WRITE_CONTACTS.replace("contacts", "Account"))) == []


def test_a_write_section_is_refused_naming_the_action_the_provider_and_the_line() -> None:
    assert "asana" in CATALOG
    text = manifest("asana", WRITE_CONTACTS)
    ((path, line, message),) = issues(text)
    assert path == "integrations[0].write"
    assert line == line_of(text, "write:")
    assert "no write connector for provider 'asana'" in message
    assert "it is built for hubspot, salesforce" in message
    assert "remove the write section" in message


SUBSCRIBE_CONTACTS = """\
    subscribe:
      objects:
        - objectName: contacts
          destination: hook
"""


def test_subscribe_sections_of_the_providers_with_webhooks_deploy() -> None:
    assert issues(manifest("hubspot", READ_CONTACTS + SUBSCRIBE_CONTACTS)) == []
    assert issues(manifest("salesforce", READ_CONTACTS + SUBSCRIBE_CONTACTS)) == []


def test_a_subscribe_section_is_refused_where_there_is_no_subscribe_connector() -> None:
    assert "asana" in CATALOG
    text = manifest("asana", READ_CONTACTS + SUBSCRIBE_CONTACTS)
    found = {(path, message) for path, _, message in issues(text)}
    assert any(
        path == "integrations[0].subscribe"
        and "no subscribe connector for provider 'asana'" in message
        for path, message in found
    ), found


def test_a_hubspot_object_without_webhooks_is_refused_by_name() -> None:
    text = manifest(
        "hubspot",
        READ_CONTACTS.replace("contacts", "quotes")
        + SUBSCRIBE_CONTACTS.replace("contacts", "quotes"),
    )
    ((path, _, message),) = issues(text)
    assert path == "integrations[0].subscribe.objects[0].objectName"
    assert "HubSpot sends webhooks only for contacts, companies, deals, tickets" in message
    assert "'quotes' has none" in message


def test_reading_a_catalog_provider_without_a_connector_is_refused() -> None:
    assert "asana" in CATALOG
    text = manifest("asana", READ_CONTACTS)
    ((path, line, message),) = issues(text)
    assert (path, line) == ("integrations[0].read", line_of(text, "read:"))
    assert message.startswith(
        "ampmesh has no read connector for provider 'asana' (it is built for hubspot, "
        "salesforce): remove the read section"
    )


def test_sections_that_ask_nothing_of_a_connector_deploy() -> None:
    # proxy is a route, not a connector (see actions.py); an empty section asks for nothing.
    text = manifest("asana", "proxy:\n  enabled: true\nwrite:\n  objects: []\n")
    assert issues(text) == []


def test_the_declaration_matches_the_connectors_that_exist() -> None:
    assert providers_supporting(Action.READ) == sorted(CONNECTORS)
    assert providers_supporting(Action.SEARCH) == sorted(SEARCHERS)
    assert providers_supporting(Action.OBJECT_METADATA) == sorted(METADATA_CONNECTORS)
    assert providers_supporting(Action.WRITE) == sorted(WRITERS)
    assert set(SUPPORTED_ACTIONS) <= set(CATALOG)
    # The providers whose subscriptions services/domain/connectors/*_subscriptions.py register.
    assert providers_supporting(Action.SUBSCRIBE) == ["hubspot", "salesforce"]
    # The proxy serves whatever the catalog allows; the table names those proven against
    # the sandbox (tests/e2e/test_proxy.py), which the catalog must allow.
    for provider in providers_supporting(Action.PROXY):
        assert CATALOG[provider].support.proxy, provider


def test_the_table_lists_every_provider_and_action() -> None:
    assert markdown_table().splitlines() == [
        "| Provider | Read | Write | Search | Subscribe | Proxy | Object metadata |",
        "|---|---|---|---|---|---|---|",
        "| hubspot | yes | yes | yes | yes | yes | yes |",
        "| salesforce | yes | yes | yes | yes | yes | yes |",
    ]


def test_the_readme_shows_the_table_as_declared() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, (
        "README.md's table of supported actions is stale: paste the output of "
        "`python -m services.domain.catalog.actions`"
    )
