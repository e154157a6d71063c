"""Which browser origins may call the public REST surfaces, and the edge's CORS policy.

Browsers call the api from a builder's own pages (the reference's embeddable UI,
`@amp-labs/react`, sends x-api-key, x-amp-client and x-amp-client-version, so every call is
preflighted). The edge answers CORS itself, before anything else reads the request
(envoy/rest_listener.yaml.tmpl, envoy/cors.lua); this module says which origins it allows:

    AMPMESH_CORS_ALLOWED_ORIGINS=https://app.example.com,https://admin.example.com
    AMPMESH_CORS_ALLOWED_ORIGINS=*          # any origin (the default)

Exact origins (scheme://host[:port], as a browser sends them in Origin) or `*`. Allowing
any origin echoes the request's Origin rather than answering `*`, as one list does, so a
cache keeps answers per origin (Vary: Origin). No credentials: the clients authenticate
with headers (x-api-key, authorization), never cookies, so Access-Control-Allow-Credentials
is not sent and a page cannot ride on a user's cookies.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENVIRONMENT_VARIABLE = "AMPMESH_CORS_ALLOWED_ORIGINS"
ANY_ORIGIN = "*"

# What the reference's clients send besides the CORS-safelisted headers: the api key and
# bearer tokens, the React library's client headers, the proxy's and search's x-amp-*
# headers, and a request id of the client's own.
ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "x-amp-client",
    "x-amp-client-version",
    "x-amp-group-ref",
    "x-amp-installation-id",
    "x-amp-integration-name",
    "x-amp-project-id",
    "x-amp-proxy-version",
    "x-amp-rate-limiter-mode",
    "x-amp-request-type",
    "x-api-key",
    "x-request-id",
)
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Response headers a page may read besides the safelisted ones: when to retry, the request
# id problem+json also reports, where a created resource is, and why a connection was
# revoked (services/api/platform/connections.py).
EXPOSED_HEADERS = (
    "location",
    "retry-after",
    "x-amp-retry-after",
    "x-amp-retryable",
    "x-ampmesh-revocation-detail",
    "x-ampmesh-revoked-at-provider",
    "x-request-id",
)
# How long a browser may reuse a preflight's answer (seconds; browsers cap it, Chromium at
# 2 hours).
MAX_AGE = 3600

# scheme://host[:port], as browsers send Origin: no path, query, fragment or credentials.
_ORIGIN = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(?P<port>\d{1,5}))?$"
)


class CorsSettingError(ValueError):
    """AMPMESH_CORS_ALLOWED_ORIGINS holds something that is not an origin."""


@dataclass(frozen=True)
class CorsSettings:
    """The origins allowed to call the public REST surfaces (empty: any origin)."""

    origins: tuple[str, ...] = ()

    @property
    def any_origin(self) -> bool:
        return not self.origins

    @classmethod
    def parse(cls, text: str) -> CorsSettings:
        """From a comma-separated list of exact origins, or `*` (blank: any origin)."""
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items or items == [ANY_ORIGIN]:
            return cls()
        if ANY_ORIGIN in items:
            raise CorsSettingError(
                f"{ENVIRONMENT_VARIABLE}: '*' allows any origin and cannot be listed "
                "with others; give either '*' or exact origins"
            )
        origins: list[str] = []
        for item in items:
            origin = item.lower()
            match = _ORIGIN.match(origin)
            if not match or match.group("scheme") not in ("http", "https"):
                raise CorsSettingError(
                    f"{ENVIRONMENT_VARIABLE}: {item!r} is not an origin; write "
                    "scheme://host[:port] as a browser sends it, e.g. https://app.example.com"
                )
            port = match.group("port")
            if port is not None and not 0 < int(port) < 65536:
                raise CorsSettingError(f"{ENVIRONMENT_VARIABLE}: {item!r} has no valid port")
            if origin not in origins:
                origins.append(origin)
        return cls(tuple(origins))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> CorsSettings:
        environ = os.environ if environ is None else environ
        return cls.parse(environ.get(ENVIRONMENT_VARIABLE, ""))

    def policy(self) -> dict[str, Any]:
        """Envoy's CorsPolicy for a virtual host (typed_per_filter_config of the cors filter)."""
        if self.any_origin:
            # Matches every Origin, which Envoy then echoes.
            matchers: list[dict[str, Any]] = [{"safe_regex": {"regex": ".*"}}]
        else:
            # Browsers send the origin in lower case; a configured one was lowered above.
            matchers = [{"exact": origin} for origin in self.origins]
        return {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
            "allow_origin_string_match": matchers,
            "allow_methods": ",".join(ALLOWED_METHODS),
            "allow_headers": ",".join(ALLOWED_HEADERS),
            "expose_headers": ",".join(EXPOSED_HEADERS),
            "max_age": str(MAX_AGE),
            "allow_credentials": False,
            # A preflight from an origin not allowed is answered here too (without CORS
            # headers, so the browser refuses), never passed on to the transcoder.
            "forward_not_matching_preflights": False,
        }

    def unread_request_headers(self) -> list[dict[str, Any]]:
        """CORS headers for Envoy's replies to requests it never read (431: headers too
        large), which no filter sees: `*` when any origin is allowed (the reply is a fixed
        problem+json, nothing a page could misuse), else none (the Origin is unknown)."""
        if not self.any_origin:
            return []
        return [
            {
                "header": {"key": "access-control-allow-origin", "value": ANY_ORIGIN},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ]
