"""Point the catalog's HubSpot and Salesforce entries at the provider sandbox.

With `ampmesh up --sandbox` the api serves a catalog whose hubspot and salesforce
entries name the sandbox's OAuth and record endpoints (services/sandbox, paths in
services/sandbox/http_api.py), so the real connector code runs against it: whatever reads
these URLs from the catalog reaches the sandbox without knowing it is one. Everything else
in the entries stays as the reference describes the real provider.
"""

from __future__ import annotations

from collections.abc import Mapping

from ampmesh.platform.v1 import providers_pb2

# provider -> (base URL, authorize path, token path), relative to the sandbox's URL.
SANDBOXED = {
    "hubspot": ("/hubspot", "/hubspot/oauth/authorize", "/hubspot/oauth/v1/token"),
    "salesforce": (
        "/salesforce",
        "/salesforce/services/oauth2/authorize",
        "/salesforce/services/oauth2/token",
    ),
}


def point_at_sandbox(
    catalog: Mapping[str, providers_pb2.ProviderInfo], sandbox_url: str
) -> dict[str, providers_pb2.ProviderInfo]:
    """A copy of catalog whose sandboxed providers use sandbox_url (no workspace needed:
    the sandbox is one instance for every "workspace")."""
    root = sandbox_url.rstrip("/")
    pointed = dict(catalog)
    for name, (base, authorize, token) in SANDBOXED.items():
        if name not in catalog:
            continue
        info = providers_pb2.ProviderInfo()
        info.CopyFrom(catalog[name])
        # A module on the provider's own host (HubSpot's crm: <base>/crm) is served by the
        # sandbox too, under the same path; one elsewhere (Pardot) is left as it is.
        for module in info.modules.values():
            if module.base_url.startswith(info.base_url):
                module.base_url = root + base + module.base_url[len(info.base_url) :]
        info.base_url = root + base
        info.oauth2_opts.auth_url = root + authorize
        info.oauth2_opts.token_url = root + token
        info.oauth2_opts.explicit_workspace_required = False
        pointed[name] = info
    return pointed
