"""Where a proxied call goes: the catalog's base URL, filled with the connection's values.

The host a call reaches must come from the catalog alone. A connection's values (its
workspace, its provider metadata) fill the catalog's `{{.name}}` variables, so each must
be a plain run of host-name labels, and the filled URL must keep the template's scheme
and name exactly the host the template names with the values put in: a value can pick
the customer's own subdomain, never another host, port, user or path.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from ampmesh.manifest.v1 import manifest_pb2
from ampmesh.platform.v1 import providers_pb2

# The catalog's URL templates: Go's {{.name}} / {{ .name }}.
_PLACEHOLDER = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Host-name labels (RFC 1123), dot-separated: no port, user, path, query or fragment.
_LABELS = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
MAX_VALUE_LENGTH = 253


class TargetError(ValueError):
    """The call cannot be sent anywhere safe; the message says why (never a secret)."""


@dataclass(frozen=True)
class Target:
    scheme: str  # "https", or "http" for a plain-text catalog URL (the sandbox)
    authority: str  # host[:port]
    path_prefix: str  # "" or "/..." without a trailing slash


def base_url_template(
    info: providers_pb2.ProviderInfo, integration: manifest_pb2.Integration
) -> str:
    """The catalog URL proxied calls are relative to: the module's when the integration
    sets proxy.useModule and the provider has that module, else the provider's."""
    if integration.proxy.use_module:
        module = integration.module or info.default_module
        if module and module in info.modules and info.modules[module].base_url:
            return info.modules[module].base_url
    return info.base_url


def proxy_target(template: str, values: Mapping[str, str], provider: str) -> Target:
    """The scheme, host and path prefix of `template` with `values` filled in."""
    needed = sorted(set(_PLACEHOLDER.findall(template)))
    for name in needed:
        value = values.get(name, "")
        if not value:
            raise TargetError(
                f"the catalog's base URL for {provider} needs {name}, which the connection "
                "does not have: reconnect it naming its workspace"
            )
        if len(value) > MAX_VALUE_LENGTH or not _LABELS.fullmatch(value):
            raise TargetError(
                f"the connection's {name} is not a host name label (letters, digits, '-' "
                f"and '.'), so it cannot be put into {provider}'s base URL"
            )
    filled = _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
    # The host the template names, with the values in it: what the filled URL must name.
    template_parts = urllib.parse.urlsplit(_PLACEHOLDER.sub("x", template))
    parts = urllib.parse.urlsplit(filled)
    expected_host = _PLACEHOLDER.sub(
        lambda match: values[match.group(1)], _template_host(template)
    ).lower()
    if (
        parts.scheme not in ("http", "https")
        or parts.scheme != template_parts.scheme
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or (parts.hostname or "") != expected_host
    ):
        raise TargetError(f"the catalog's base URL for {provider} is not one the proxy can use")
    authority = parts.hostname or ""
    if parts.port is not None:
        authority = f"{authority}:{parts.port}"
    return Target(scheme=parts.scheme, authority=authority, path_prefix=parts.path.rstrip("/"))


def _template_host(template: str) -> str:
    """The host part of a URL template, variables left in."""
    rest = template.split("://", 1)[-1]
    host = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return host.rsplit(":", 1)[0] if re.search(r":\d+$", host) else host
