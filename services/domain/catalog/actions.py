"""What ampmesh itself can do with each provider: the one declaration of supported actions.

The providers catalog (providers.json) says what a provider's API offers, as the
reference's catalog does; this table says what ampmesh has built on top of it. A
manifest asking for an action that is not here is refused at deploy time
(services/domain/manifest/checks.py), rather than failing when the first read, write or
event is due; the README's table of providers and actions is printed from here
(`markdown_table`, asserted equal by tests/domain/test_supported_actions.py).

Each action has code behind it, which the tests also assert:
- read: a read connector in services/domain/connectors/registry.py (CONNECTORS);
- search: a search connector there too (SEARCHERS), over the objects an installation reads;
- objectMetadata: a metadata connector in services/domain/connectors/metadata_registry.py
  (hydrated revisions, the object metadata operations);
- write: a writer in services/domain/connectors/registry.py (WRITERS);
- subscribe: not built for any provider yet;
- proxy: a route, not a connector: the proxy host (services/api/proxy, envoy/proxy.lua)
  serves every catalog provider whose catalog entry allows proxying, from its base URL
  and the connection's credentials. The table lists it for the providers the sandbox
  proves it against end to end; a `proxy:` section asks for nothing at deploy time (a
  provider the catalog does not allow is refused when called, naming it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from enum import StrEnum


class Action(StrEnum):
    """An action of the reference's manifest or API, by the name the README uses."""

    READ = "read"
    WRITE = "write"
    SEARCH = "search"
    SUBSCRIBE = "subscribe"
    PROXY = "proxy"
    OBJECT_METADATA = "objectMetadata"


# Provider (catalog name) -> the actions ampmesh supports for it. A provider of the
# catalog that is not listed supports none: it can be connected, not used.
SUPPORTED_ACTIONS: Mapping[str, frozenset[Action]] = {
    "hubspot": frozenset(
        {
            Action.READ,
            Action.WRITE,
            Action.SEARCH,
            Action.PROXY,
            Action.OBJECT_METADATA,
            Action.SUBSCRIBE,
        }
    ),
    "salesforce": frozenset(
        {
            Action.READ,
            Action.WRITE,
            Action.SEARCH,
            Action.PROXY,
            Action.OBJECT_METADATA,
            Action.SUBSCRIBE,
        }
    ),
}

# What a manifest section asks of the provider (search rides on read: an installation
# searches the objects it reads, so it needs no section of its own).
MANIFEST_SECTIONS: Mapping[str, Action] = {
    "read": Action.READ,
    "write": Action.WRITE,
    "subscribe": Action.SUBSCRIBE,
}

# The README's column headings, in order.
_HEADINGS: Mapping[Action, str] = {
    Action.READ: "Read",
    Action.WRITE: "Write",
    Action.SEARCH: "Search",
    Action.SUBSCRIBE: "Subscribe",
    Action.PROXY: "Proxy",
    Action.OBJECT_METADATA: "Object metadata",
}


def supports(provider: str, action: Action) -> bool:
    """Whether ampmesh can do `action` with `provider`."""
    return action in SUPPORTED_ACTIONS.get(provider, frozenset())


def providers_supporting(action: Action) -> list[str]:
    """The providers ampmesh can do `action` with, sorted."""
    return sorted(name for name, actions in SUPPORTED_ACTIONS.items() if action in actions)


def unsupported_reason(
    provider: str,
    action: Action,
    table: Mapping[str, Collection[Action]] = SUPPORTED_ACTIONS,
) -> str:
    """Why a manifest may not ask for `action` with `provider` (for deploy issues)."""
    others = sorted(name for name, actions in table.items() if action in actions)
    where = (
        f"it is built for {', '.join(others)}" if others else "it is not built for any provider yet"
    )
    has = sorted(table.get(provider, ()))
    offered = f"; with {provider} ampmesh supports {', '.join(has)}" if has else ""
    return f"ampmesh has no {action} connector for provider {provider!r} ({where}{offered})"


def markdown_table(providers: Iterable[str] | None = None) -> str:
    """The README's table: one row per provider, one column per action."""
    names = sorted(SUPPORTED_ACTIONS) if providers is None else list(providers)
    head = "| Provider | " + " | ".join(_HEADINGS.values()) + " |"
    rule = "|---|" + "---|" * len(_HEADINGS)
    rows = [
        f"| {name} | "
        + " | ".join("yes" if supports(name, action) else "no" for action in _HEADINGS)
        + " |"
        for name in names
    ]
    return "\n".join([head, rule, *rows])


if __name__ == "__main__":  # `python -m services.domain.catalog.actions` prints the table
    print(markdown_table())
