"""What a connection's providerMetadata holds besides what the caller typed in.

The catalog declares, per provider, the metadata inputs its modules need (`metadata.input`:
Salesforce's crm module needs `workspace`, its subdomain). The reference's connect UI
reads `connection.providerMetadata.<name>.value` for each of them after connecting and
asks the end user for any that is missing. A value the connection already knows is
filled in, with the reference's `source`: `token` when the provider's token response said
it (Salesforce's instance_url https://acme.my.salesforce.com gives workspace "acme"),
`input` when the caller gave it as providerWorkspaceRef. A value from the token wins over
one typed in (the provider knows its own subdomain); a typed one never replaces a value
already in providerMetadata.

The workspace in a URL is found where the provider's URL templates put {{.workspace}}:
the catalog entry's own templates, and the reference catalog's for the same provider,
because a catalog pointed at the provider sandbox (services/domain/catalog/sandbox.py)
replaces those templates by the sandbox's URL, while the sandbox's token answer names the
org as Salesforce does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ampmesh.platform.v1 import providers_pb2

from services.domain.catalog.loader import load_catalog

WORKSPACE = "workspace"
# ProviderMetadataInfo.source values (the reference's enum).
FROM_TOKEN = "token"  # noqa: S105 (a source name, not a secret)
FROM_INPUT = "input"


@functools.cache
def _reference_catalog() -> Mapping[str, providers_pb2.ProviderInfo]:
    return load_catalog()


def url_templates(info: providers_pb2.ProviderInfo) -> list[str]:
    """The provider's URL templates (authorize, token, API base): the entry's own, then
    the reference catalog's where they differ."""
    own = [info.oauth2_opts.auth_url, info.oauth2_opts.token_url, info.base_url]
    reference = _reference_catalog().get(info.name)
    if reference is not None:
        own += [reference.oauth2_opts.auth_url, reference.oauth2_opts.token_url]
        own.append(reference.base_url)
    return list(dict.fromkeys(t for t in own if t))


def declared_input(
    info: providers_pb2.ProviderInfo, name: str
) -> providers_pb2.MetadataItemInput | None:
    return next((item for item in info.metadata.input if item.name == name), None)


def with_workspace(
    info: providers_pb2.ProviderInfo,
    metadata: Mapping[str, Any],
    workspace: str | None,
    source: str,
) -> dict[str, Any]:
    """metadata (name -> ProviderMetadataInfo in its JSON mapping) with `workspace` filled
    from a workspace the connection knows, when the catalog declares it an input."""
    filled = dict(metadata)
    item = declared_input(info, WORKSPACE)
    if not workspace or item is None:
        return filled
    current = filled.get(WORKSPACE)
    has_value = isinstance(current, Mapping) and bool(str(current.get("value", "")).strip())
    if has_value and source != FROM_TOKEN:
        return filled
    value: dict[str, str] = {"value": workspace, "source": source}
    if item.HasField("display_name"):
        value["displayName"] = item.display_name
    filled[WORKSPACE] = value
    return filled
