"""The Envoy edge: its configuration, rendered from envoy/*.tmpl, and its process.

The edge is the mesh's front door (ARCHITECTURE.md, boundaries A and B):

- one REST listener per public surface (api, read, write, search, proxy), each with its
  own grpc_json_transcoder limited to that surface's services, problem+json errors
  (local_reply_config plus envoy/problem.lua), and the REST shapes the contracts declare
  but the transcoder does not do (gen/envoy/routes.json: bare-array bodies, 201/204,
  tolerated query parameters), plus `?apiKey=` on read and write (envoy/api_key.lua);
- on the REST listeners, CORS first: Envoy's cors filter with the deployment's policy
  (services/launcher/cors.py) on each virtual host, envoy/cors.lua making a preflight's
  answer a 204, and a catch-all route so every request finds the policy (errors and
  Envoy's own replies carry Access-Control-Allow-Origin too);
- a gRPC listener for native clients of the public services;
- on both, envoy/request_guard.lua: headers gRPC metadata cannot carry are refused (400
  problem+json, or gRPC INVALID_ARGUMENT) before the request goes anywhere;
- on the REST listeners, envoy/body_shape.lua: where the contract wants a list or a map,
  a body that holds something else is refused (400) before the lenient transcoder reads
  it (gen/envoy/routes.json's bodyShape);
- an internal mTLS listener in front of the token-manager shards, ring-hashed on
  x-ampmesh-connection-id, forwarding the caller's identity in x-forwarded-client-cert;
- on every public listener, a client's own x-request-id kept when it is sane
  (envoy/request_id.lua), else a fresh one; echoed in the response;
- load it cannot serve shed rather than queued (OverloadSettings): a token bucket per API
  key (x-api-key, or the Authorization header) on each public listener, answered 429 with
  Retry-After, and caps on the public requests in flight to the api (circuit breakers:
  one for the write surface, one for the others), answered 503 with Retry-After, both
  problem+json; the internal listeners (token-manager, proxy-authz), the edge's own calls
  and health checks are never shed by them;
- the admin interface, on 127.0.0.1;
- in a pod only (services/launcher/edge_config.py renders the same configuration from
  the environment): the public and token-manager listeners on the pod's address, each
  route group's own api Deployment (ApiAddresses), and a health listener for kubelet's
  probes and Prometheus (envoy/health_listener.yaml.tmpl);
- with AMPMESH_OTLP_ENDPOINT set (TracingSettings), traces: each public listener starts
  or continues a W3C trace, sends `traceparent` on to the api and exports its spans over
  OTLP/gRPC (envoy/tracing.yaml.tmpl); unset, the configuration has no tracing at all.

    edge = Edge(home, PortBook(home), home / "certs")
    edge.endpoints()                      # known before it starts: ports are booked
    edge.render("127.0.0.1:50051", {"token-manager-0": "127.0.0.1:50061", ...})
    await edge.start()                    # ready, and every cluster has a healthy host
    ...
    await edge.stop()

The templates' placeholders are filled with JSON values, and the fragments are assembled
into one document, written as <home>/envoy/edge.yaml beside copies of the Lua scripts
and the descriptor set it loads, so a running edge never changes under a rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import os
import re
import shutil
import signal
import string
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from google.api import annotations_pb2
from ruamel.yaml import YAML

from services.domain.routes import ROUTE_GROUPS
from services.launcher.cors import CorsSettingError, CorsSettings
from services.launcher.ports import HOST, PortBook
from services.runtime.tls import ensure_service_credentials

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "envoy"
GEN_ENVOY = REPO / "gen" / "envoy"
ENVOY = Path(sys.executable).parent / "envoy"

SURFACES = ("api", "read", "write", "search", "proxy", "subscribe")
# The api service's route group each transcoded REST surface serves
# (services/domain/routes.py). The proxy surface transcodes nothing: it forwards on
# Envoy's data path (envoy/proxy_listener.yaml.tmpl).
GROUP_OF_SURFACE = {
    "api": "platform",
    "read": "read",
    "write": "write",
    "search": "search",
    "subscribe": "subscribe",
}
PROXY = "proxy"
TRANSCODED_SURFACES = tuple(GROUP_OF_SURFACE)
# The reference accepts `?apiKey=` on these hosts.
API_KEY_SURFACES = frozenset({"read", "write"})
# The reference's write responses leave default values out; every other surface prints them.
COMPACT_SURFACES = frozenset({"write"})
# The public host providers send change webhooks to (the reference's
# subscribe-webhook.withampersand.com). Its bodies are raw bytes (google.api.HttpBody) the
# api verifies signatures over, so nothing reshapes or judges them on the way; providers
# add query parameters of their own, which are ignored rather than refused; and the URL
# the provider called reaches the api in x-ampmesh-original-uri (envoy/original_uri.lua).
# Providers cannot send an API key, so the per-key rate limit has nothing to key on:
# it is off on this host. Keying on the path or the client's address instead would
# answer 429 to a provider's burst, which it retries later, delaying every event behind
# it; the api cap (circuit breaker) is what bounds the load, as on the other hosts, and
# the providers bound their own concurrency (HubSpot's maxConcurrentRequests).
SUBSCRIBE = "subscribe"
# Only through the REST host, where the edge sets the URL the signature covers: over
# native gRPC a caller would choose x-ampmesh-original-uri itself.
REST_ONLY_GROUPS = frozenset({SUBSCRIBE})
# Members these services' answers leave out when they are "" (problem.lua, `omitEmpty`):
# an installation's config shows what the customer chose, and the reference leaves out a
# read object's destination and schedule nobody chose, where a proto3 string prints "".
# `optional` on those fields would say so in the contract, but buf's FILE rules count it a
# breaking change, and printing no defaults at all would drop the empty maps the
# reference requires (selectedFields, selectedFieldMappings).
OMIT_EMPTY: dict[str, tuple[str, ...]] = {
    "ampmesh.platform.v1.InstallationService": ("destination", "schedule"),
}

# Listener name -> the PortBook name of its port. Prefixed, because the PortBook is the
# home's and the services book their gRPC ports under their own names ("api", ...).
PORT_NAMES = {
    **{surface: f"edge-{surface}" for surface in SURFACES},
    "grpc": "edge-grpc",
    "token-manager": "edge-token-manager",
    "proxy-authz": "edge-proxy-authz",
    "envoy-admin": "envoy-admin",
}

LUA_FILTER = "envoy.filters.http.lua"
BODY_SHAPE_FILTER = "envoy.filters.http.lua.body_shape"
REQUEST_GUARD_FILTER = "envoy.filters.http.lua.request_guard"
CORS_FILTER = "envoy.filters.http.cors"
BUFFER_FILTER = "envoy.filters.http.buffer"
# The Lua scripts the edge loads, each with the libraries put in front of it (see write_lua).
LUA_SCRIPTS: dict[str, tuple[str, ...]] = {
    "problem.lua": ("json.lua",),
    "api_key.lua": (),
    "request_guard.lua": (),
    "body_shape.lua": ("json.lua",),
    "cors.lua": (),
    "proxy.lua": ("json.lua",),
    "request_id.lua": (),
    "original_uri.lua": (),
}
ORIGINAL_URI_FILTER = "envoy.filters.http.lua.original_uri"
REQUEST_ID_FILTER = "envoy.filters.http.lua.request_id"
# Where the connection manager's early header mutation puts a client's x-request-id, before
# it makes a fresh one for the request: request_id.lua puts it back when it is sane.
CLIENT_REQUEST_ID_ASIDE = "x-ampmesh-client-request-id"
CLIENT_REQUEST_ID = {
    "name": "envoy.http.early_header_mutation.header_mutation",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation"
        ".header_mutation.v3.HeaderMutation",
        "mutations": [
            # A client's own aside header is not an id it chose.
            {"remove": CLIENT_REQUEST_ID_ASIDE},
            {
                "append": {
                    "header": {"key": CLIENT_REQUEST_ID_ASIDE, "value": "%REQ(x-request-id)%"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            },
            {"remove": "x-request-id"},
        ],
    },
}
RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit"
# The api again, for the write surface: its own cap (OverloadSettings.max_write_requests).
API_WRITE = "api_write"
# The api again, for the edge's own calls (proxy-authz decisions, the proxy's access log
# stream): the same host, its own connection and no cap, so public load never sheds them.
API_INTERNAL = "api_internal"
# The read surface's api, only when it is not the api's (ApiAddresses.read): capped apart,
# as a Deployment of its own has its own capacity.
API_READ = "api_read"
# The health listener's route to the admin interface's Prometheus exposition.
ENVOY_ADMIN = "envoy_admin"
TRANSCODER_FILTER = "envoy.filters.http.grpc_json_transcoder"
TIMEOUT = "15s"
# The cluster of the REST listeners' catch-all route; none is defined (see _rest_routes).
UNROUTED = "unrouted"


class EdgeError(RuntimeError):
    """The edge could not be configured or started; the message says why (and quotes its log)."""


# How long a client shed by the edge is told to wait (Retry-After, seconds): the per-key
# buckets refill every second, and a second is long against a request's usual
# milliseconds, short against a client's patience.
RETRY_AFTER_SECONDS = 1
# Distinct keys each listener keeps a bucket for (least recently used go first). A flood of
# made-up keys each gets a fresh bucket: the circuit breaker is what bounds that.
RATE_LIMIT_KEYS = 10000
# The request headers a caller authenticates with, each with its own buckets: the
# descriptor's value is the header's, kept in Envoy's memory only (never logged, and the
# 429 does not quote it).
RATE_LIMITED_HEADERS = {"x-api-key": "api_key", "authorization": "authorization"}
# OverloadSettings' fields, and the environment variables that set them.
OVERLOAD_VARIABLES = {
    "per_key_rate": "AMPMESH_EDGE_RATE_LIMIT_PER_KEY",
    "per_key_burst": "AMPMESH_EDGE_RATE_LIMIT_BURST",
    "max_requests": "AMPMESH_EDGE_MAX_REQUESTS",
    "max_write_requests": "AMPMESH_EDGE_MAX_WRITE_REQUESTS",
    "max_pending_requests": "AMPMESH_EDGE_MAX_PENDING_REQUESTS",
}


@dataclass(frozen=True)
class OverloadSettings:
    """How much the public edge accepts before it sheds.

    per_key_rate: requests a second one API key (or bearer token) may send to each public
    listener, refilled each second; per_key_burst: how many it may send at once after a
    quiet spell (the bucket's size). max_requests: requests in flight to the api at once
    from the api, read and search listeners and native gRPC together; beyond it a request
    is answered 503 at once instead of queueing behind the api's backlog.
    max_write_requests: the same for the write listener, on its own: a synchronous write
    waits seconds on the provider while costing the api little, so a cap sized for cheap
    calls would shed writes the api could well hold, and writes never crowd out reads.
    max_pending_requests: requests waiting for a connection to the api (one HTTP/2
    connection per cluster, so only while it opens). Where the read surface has an api of
    its own (a cluster's api-read Deployment, ApiAddresses.read), that api has a cap of
    max_requests of its own: it is capacity of its own, not a share of the api's.

    The defaults, from bench/overload.py on the 2-core development machine (shared, so
    noisy): the api served a cheap authenticated GET at 210 to 440 req/s at best, reached
    with 8 (most runs) to 16 requests in flight; more in flight only queued, and under twice
    that load with 32 to 48 allowed in flight the api's throughput collapsed (150 req/s,
    p99 of seconds) while with 8 it held (424 req/s, p99 3.5x unloaded). One key may send
    about that capacity (so one key alone cannot push the api past it through its own
    bucket: overload takes several keys, which the cap covers), two seconds' worth at once.
    Writes: room for the heaviest client the suite runs (32 asynchronous writes in flight
    on one key) twice over.

    The cap is not the measured 8, though: it is the whole deployment's, so 8 would answer
    503 to one embeddable UI loading a page beside a builder's script, or to one burst of
    50 refresh calls (bench/soak.py). 64 bounds the api's queue (a p99 of a second or so
    under twice its capacity, not unbounded) without refusing ordinary bursts; a
    deployment that prefers a tight p99 over bursts sets AMPMESH_EDGE_MAX_REQUESTS to its
    own measured figure.
    """

    per_key_rate: int = 400
    per_key_burst: int = 800
    max_requests: int = 64
    max_write_requests: int = 64
    max_pending_requests: int = 64

    def __post_init__(self) -> None:
        for name, variable in OVERLOAD_VARIABLES.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EdgeError(f"{variable}: {value!r} is not a whole number of at least 1")
        if self.per_key_burst < self.per_key_rate:
            raise EdgeError(
                f"{OVERLOAD_VARIABLES['per_key_burst']} ({self.per_key_burst}) is below "
                f"{OVERLOAD_VARIABLES['per_key_rate']} ({self.per_key_rate}): a key could never "
                "send its whole second's worth"
            )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> OverloadSettings:
        """The defaults, with each variable that is set read as a whole number (the burst
        defaults to twice the rate when only the rate is set)."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, variable in OVERLOAD_VARIABLES.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            if not text.isdigit() or int(text) < 1:
                raise EdgeError(f"{variable}: {text[:40]!r} is not a whole number of at least 1")
            values[name] = int(text)
        if "per_key_rate" in values and "per_key_burst" not in values:
            values["per_key_burst"] = 2 * values["per_key_rate"]
        return cls(**values)

    def rate_limit_filter(self, stat_prefix: str, *, grpc: bool = False) -> dict[str, Any]:
        """The local_ratelimit filter of a public listener: a bucket per key."""
        everything = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
        per_key = {
            "max_tokens": self.per_key_burst,
            "tokens_per_fill": self.per_key_rate,
            "fill_interval": "1s",
        }
        config: dict[str, Any] = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3"
            ".LocalRateLimit",
            "stat_prefix": f"{stat_prefix}_per_key",
            "filter_enabled": everything,
            "filter_enforced": everything,
            # Required beside the descriptors, and never the limit: a request with no key
            # (which the api answers 401) is bounded by the circuit breaker.
            "token_bucket": {
                "max_tokens": 1_000_000_000,
                "tokens_per_fill": 1_000_000_000,
                "fill_interval": "1s",
            },
            "always_consume_default_token_bucket": False,
            # One bucket per distinct value: an entry with no value is a template.
            "max_dynamic_descriptors": RATE_LIMIT_KEYS,
            "rate_limits": [
                {"actions": [{"request_headers": {"header_name": h, "descriptor_key": k}}]}
                for h, k in RATE_LIMITED_HEADERS.items()
            ],
            "descriptors": [
                {"entries": [{"key": k}], "token_bucket": per_key}
                for k in RATE_LIMITED_HEADERS.values()
            ],
            "response_headers_to_add": [
                {
                    "header": {"key": "retry-after", "value": str(RETRY_AFTER_SECONDS)},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
        }
        if grpc:
            # What gRPC clients' retry policies read as "slow down", not "server down".
            config["rate_limited_as_resource_exhausted"] = True
        return {"name": RATE_LIMIT_FILTER, "typed_config": config}

    def api_circuit_breakers(self, max_requests: int) -> dict[str, Any]:
        """A capped api cluster's thresholds (the edge's own calls use API_INTERNAL, which
        has none)."""
        return {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_requests": max_requests,
                    "max_pending_requests": min(max_requests, self.max_pending_requests),
                }
            ]
        }


@dataclass(frozen=True)
class TracingSettings:
    """Where the edge sends its spans (AMPMESH_OTLP_ENDPOINT, as the services read it) and
    the share of new traces it records (AMPMESH_TRACE_SAMPLE_RATIO); empty: no tracing."""

    otlp_endpoint: str = ""
    sample_ratio: float = 1.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TracingSettings:
        environ = os.environ if environ is None else environ
        endpoint = environ.get("AMPMESH_OTLP_ENDPOINT", "").strip()
        text = environ.get("AMPMESH_TRACE_SAMPLE_RATIO", "").strip() or "1"
        try:
            ratio = float(text)
        except ValueError:
            ratio = -1.0
        if not 0 <= ratio <= 1:
            raise EdgeError(f"AMPMESH_TRACE_SAMPLE_RATIO: {text[:40]!r} is not between 0 and 1")
        if endpoint and not re.fullmatch(r"https?://[^/\s]+/?", endpoint):
            raise EdgeError("AMPMESH_OTLP_ENDPOINT: not http://host:port or https://host:port")
        return cls(endpoint, ratio)

    def fragments(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        """The connection managers' `tracing`, the collector's cluster and the runtime
        layer batching exports; None when off."""
        if not self.otlp_endpoint:
            return None
        scheme, _, address = self.otlp_endpoint.rstrip("/").partition("://")
        host, port = split_address(address)
        filled = _fill(
            "tracing.yaml.tmpl", sample_percent=self.sample_ratio * 100, host=host, port=port
        )
        cluster: dict[str, Any] = filled["cluster"]
        if scheme == "https":
            cluster["transport_socket"] = {
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"
                    ".UpstreamTlsContext",
                    "sni": host,
                    "common_tls_context": {
                        "alpn_protocols": ["h2"],
                        "validation_context": {
                            "trusted_ca": {"filename": SYSTEM_CAS},
                            "match_typed_subject_alt_names": [
                                {"san_type": "DNS", "matcher": {"exact": host}}
                            ],
                        },
                    },
                },
            }
        return filled["tracing"], cluster, filled["runtime"]


@dataclass(frozen=True)
class ApiAddresses:
    """Where the edge sends each route group's calls (host:port each).

    api serves every group the others do not take (platform, search, subscribe, and
    native gRPC of the proxy's service); read: the read surface and the Read API's gRPC;
    write: the write surface and the Write API's gRPC; proxy: the edge's own calls (the
    proxy's decisions and its access-log stream). Empty: the api's. The launcher runs one
    api serving every group, so it gives one address; a cluster runs the groups as
    Deployments of their own (deploy/, AMPMESH_ENABLE_<GROUP>_ROUTES).
    """

    api: str
    read: str = ""
    write: str = ""
    proxy: str = ""

    def of(self, group: str) -> str:
        """The address of read, write or proxy (the api's when unset)."""
        address: str = getattr(self, group) or self.api
        return address

    def cluster_of(self, group: str) -> str:
        """The cluster the public calls of a route group (ROUTE_GROUPS) go to."""
        if group == "write":
            return API_WRITE
        if group == "read" and self.of("read") != self.api:
            return API_READ
        return "api"


@dataclass(frozen=True)
class RouteFacts:
    """What the edge does for one transcoded method (one entry of gen/envoy/routes.json)."""

    path: str  # the transcoded gRPC path, /pkg.Service/Method
    rest: tuple[str, ...]  # its REST bindings, "VERB /template"
    unwrap: str = ""  # JSON member whose value is the whole REST body
    success_status: int = 200
    ignore_unknown_query_parameters: bool = False
    body_field: str = ""  # the request field the REST body is bound to ("" for * or none)
    body_shape: Mapping[str, Any] | None = None  # where the body holds lists and maps
    omit_empty: tuple[str, ...] = ()  # members left out of the response when "" (OMIT_EMPTY)

    @property
    def service(self) -> str:
        return self.path.strip("/").split("/", 1)[0]

    @property
    def lua_metadata(self) -> dict[str, Any]:
        """What problem.lua reads from the route (see envoy/problem.lua)."""
        metadata: dict[str, Any] = {}
        if self.unwrap:
            metadata["unwrap"] = self.unwrap
        if self.success_status != 200:
            metadata["successStatus"] = self.success_status
        if self.body_field:
            metadata["bodyField"] = self.body_field
        if self.omit_empty:
            metadata["omitEmpty"] = list(self.omit_empty)
        return metadata


def load_route_facts(path: Path = GEN_ENVOY / "routes.json") -> list[RouteFacts]:
    """The per-method facts scripts/envoy_descriptor.py derived from the contracts."""
    entries: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return [
        RouteFacts(
            path=method,
            rest=tuple(facts.get("rest", ())),
            unwrap=facts.get("unwrap", ""),
            success_status=int(facts.get("successStatus", 200)),
            ignore_unknown_query_parameters=bool(facts.get("ignoreUnknownQueryParameters")),
            body_field=facts.get("bodyField", ""),
            body_shape=facts.get("bodyShape"),
        )
        for method, facts in sorted(entries.items())
    ]


def http_bindings(rule: Any) -> tuple[str, ...]:
    """A google.api.HttpRule's REST bindings as "VERB /template" (as routes.json has them)."""
    kind = rule.WhichOneof("pattern")
    found: list[str] = []
    if kind == "custom":
        found.append(f"{rule.custom.kind.upper()} {rule.custom.path}")
    elif kind:
        found.append(f"{kind.upper()} {getattr(rule, kind)}")
    for extra in rule.additional_bindings:
        found.extend(http_bindings(extra))
    return tuple(found)


def with_omitted_empties(facts: list[RouteFacts]) -> list[RouteFacts]:
    """facts, with every REST method of OMIT_EMPTY's services given its members (a
    method routes.json has no facts for gets some, its bindings read from the contract)."""
    by_path = {fact.path: fact for fact in facts}
    for services in ROUTE_GROUPS.values():
        for service in services:
            omitted = OMIT_EMPTY.get(service.full_name)
            if not omitted:
                continue
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                rest = http_bindings(method.GetOptions().Extensions[annotations_pb2.http])
                if not rest:
                    continue
                fact = by_path.get(path) or RouteFacts(path=path, rest=rest)
                by_path[path] = dataclasses.replace(fact, omit_empty=omitted)
    return [by_path[path] for path in sorted(by_path)]


def template_regex(template: str) -> str:
    """A RE2 regex matching the URL paths of a google.api.http path template.

    `{var}` and `{var=*}` match one segment, `{var=**}` any number; other variable
    patterns do not occur in our contracts and are refused rather than guessed.
    """
    parts: list[str] = []
    position = 0
    for variable in re.finditer(r"\{([^}=]+)(?:=([^}]*))?\}", template):
        parts.append(re.escape(template[position : variable.start()]))
        pattern = variable.group(2) or "*"
        if pattern == "*":
            parts.append("[^/]+")
        elif pattern == "**":
            parts.append(".+")
        else:
            raise EdgeError(f"path template {template!r}: cannot route variable pattern {pattern}")
        position = variable.end()
    parts.append(re.escape(template[position:]))
    return "".join(parts)


def surface_services(surface: str) -> list[str]:
    """Full names of the public services a REST surface transcodes."""
    return sorted(service.full_name for service in ROUTE_GROUPS[GROUP_OF_SURFACE[surface]])


def public_services() -> list[str]:
    """Full names of the public services native gRPC clients may call."""
    return sorted(
        s.full_name
        for group, services in ROUTE_GROUPS.items()
        if group not in REST_ONLY_GROUPS
        for s in services
    )


def split_address(address: str) -> tuple[str, int]:
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise EdgeError(f"upstream address {address!r} is not host:port")
    return host, int(port)


def _fill(template: str, **values: Any) -> Any:
    """Parse envoy/<template> with each $placeholder replaced by the JSON of its value."""
    text = (TEMPLATES / template).read_text()
    try:
        filled = string.Template(text).substitute(
            {key: json.dumps(value) for key, value in values.items()}
        )
    except KeyError as missing:
        raise EdgeError(f"envoy/{template} needs a value for {missing}") from None
    return YAML(typ="safe", pure=True).load(filled)


def _api_route(cluster: str = "api") -> dict[str, Any]:
    return {
        "cluster": cluster,
        "timeout": TIMEOUT,
        # A gRPC client's deadline (grpc-timeout) applies, up to the route's timeout.
        "max_stream_duration": {"grpc_timeout_header_max": TIMEOUT},
    }


def _keep_client_request_id(manager: dict[str, Any], lua: Path, position: int) -> None:
    """Make a connection manager keep a client's sane x-request-id (envoy/request_id.lua),
    the Lua at `position` among its filters: before any that may answer the request."""
    manager["early_header_mutation_extensions"] = [copy.deepcopy(CLIENT_REQUEST_ID)]
    manager["http_filters"].insert(position, _lua_filter(REQUEST_ID_FILTER, lua))


def _filter_index(filters: list[dict[str, Any]], name: str) -> int:
    return next(n for n, f in enumerate(filters) if f["name"] == name)


def _rest_path_routes(fact: RouteFacts, cluster: str, **extras: Any) -> list[dict[str, Any]]:
    """A route for each of fact's REST bindings, matched on the path and verb a client
    sends, with extras (metadata, per-filter config)."""
    routes = []
    for binding in fact.rest:
        verb, template = binding.split(" ", 1)
        match = {
            "safe_regex": {"regex": template_regex(template)},
            "headers": [{"name": ":method", "string_match": {"exact": verb}}],
        }
        routes.append({"match": match, "route": _api_route(cluster), **extras})
    return routes


def _rest_routes(
    services: list[str],
    facts: list[RouteFacts],
    transcoder: dict[str, Any],
    cluster: str,
    *,
    raw_bodies: bool = False,
) -> list[dict[str, Any]]:
    """raw_bodies: the surface's bodies are raw bytes (SUBSCRIBE): no body shape, and
    unknown query parameters ignored on every route."""
    mine = [f for f in facts if f.service in services]
    if raw_bodies:
        mine = [
            dataclasses.replace(f, body_shape=None, ignore_unknown_query_parameters=True)
            for f in mine
        ]
    routes: list[dict[str, Any]] = []
    # Matched on the REST request, before transcoding: body_shape.lua, which runs before
    # the transcoder, reads the shape from the route of the REST path, and the transcoder
    # reads its per-route configuration from it (the transcoded path's route, which
    # problem.lua reads on the way out, is chosen after the transcoder).
    for fact in mine:
        extras: dict[str, Any] = {}
        if fact.body_shape:
            metadata = {BODY_SHAPE_FILTER: {"bodyShape": fact.body_shape}}
            extras["metadata"] = {"filter_metadata": metadata}
        if fact.ignore_unknown_query_parameters:
            tolerant = copy.deepcopy(transcoder)
            tolerant["ignore_unknown_query_parameters"] = True
            tolerant["request_validation_options"]["reject_unknown_query_parameters"] = False
            extras["typed_per_filter_config"] = {TRANSCODER_FILTER: tolerant}
        if extras:
            routes += _rest_path_routes(fact, cluster, **extras)
    # Matched on the transcoded path: the REST shape problem.lua gives the response.
    for fact in mine:
        if fact.lua_metadata:
            routes.append(
                {
                    "match": {"path": fact.path},
                    "route": _api_route(cluster),
                    "metadata": {"filter_metadata": {LUA_FILTER: fact.lua_metadata}},
                }
            )
    routes.extend({"match": {"prefix": f"/{s}/"}, "route": _api_route(cluster)} for s in services)
    # Last, so any request has a route: the cors filter takes its policy from the route
    # the request matches, and with none (or a direct_response, which it also skips) sends
    # no CORS headers, not even on the transcoder's 404 for an unknown path. Its cluster
    # does not exist, so what reaches it (only a native gRPC call of an unknown service:
    # the transcoder answers unknown REST paths) is a 404 (NC) and never leaves the edge.
    routes.append(
        {
            "match": {"prefix": "/"},
            "route": {"cluster": UNROUTED, "cluster_not_found_response_code": "NOT_FOUND"},
        }
    )
    return routes


def render_config(
    *,
    ports: Mapping[str, int],
    api_address: str | ApiAddresses,
    token_manager_shards: Mapping[str, str],
    cert_dir: Path,
    descriptor: Path,
    lua: Mapping[str, Path],
    route_facts: list[RouteFacts],
    cors: CorsSettings | None = None,
    overload: OverloadSettings | None = None,
    proxy_access_log: Path = Path("/dev/stdout"),
    tracing: TracingSettings | None = None,
    listen_host: str = HOST,
    admin_host: str = HOST,
    sds_dir: Path | None = None,
) -> dict[str, Any]:
    """The whole Envoy configuration, as a document (pure: reads only the templates).

    ports: the port of each listener, keyed as in PORT_NAMES, and "health" for the
    health listener (none without it); api_address: the api of every route group, or
    each group's (ApiAddresses); token_manager_shards: each shard's name (what the ring
    hashes on) and host:port; listen_host: where the public and token-manager listeners
    bind (the proxy-authz listener stays on loopback: only the edge's own Lua calls it);
    admin_host: the admin interface's; lua: where each of
    LUA_SCRIPTS is, as write_lua() wrote it; cors: the origins browsers may call from
    (default: any); overload: what the public listeners accept before shedding (default:
    OverloadSettings()); proxy_access_log: the file the proxy host logs each call to;
    tracing: where the public listeners' spans go (default: nowhere, no tracing at all);
    sds_dir: where write_sds() wrote the edge's certificate and CA as SDS resources: Envoy
    then takes up a renewed certificate without a restart (None: it reads them once).
    """
    if not token_manager_shards:
        raise EdgeError("the edge needs at least one token-manager shard")
    cors = cors or CorsSettings()
    overload = overload or OverloadSettings()
    certs = {
        "envoy_cert": str(cert_dir / "envoy.pem"),
        "envoy_key": str(cert_dir / "envoy.key"),
        "ca_cert": str(cert_dir / "ca.pem"),
    }
    addresses = api_address if isinstance(api_address, ApiAddresses) else ApiAddresses(api_address)
    api_host, api_port = split_address(addresses.api)
    shards = {
        name: split_address(address) for name, address in sorted(token_manager_shards.items())
    }
    endpoints = [
        {
            "endpoint": {
                "hostname": name,
                "address": {"socket_address": {"address": host, "port_value": port}},
            }
        }
        for name, (host, port) in shards.items()
    ]
    config = _fill(
        "edge.yaml.tmpl",
        admin_host=admin_host,
        admin_port=ports["envoy-admin"],
        api_host=api_host,
        api_port=api_port,
        token_manager_endpoints=endpoints,
        api_circuit_breakers=overload.api_circuit_breakers(overload.max_requests),
        **certs,
    )
    listeners: list[Any] = config["static_resources"]["listeners"]
    route_facts = with_omitted_empties(route_facts)
    listeners.extend(
        _proxy_listeners(ports, lua, cors, descriptor, proxy_access_log, overload, listen_host)
    )
    clusters = config["static_resources"]["clusters"]
    clusters.extend(_proxy_clusters(ports["proxy-authz"]))
    api = next(c for c in clusters if c["name"] == "api")
    copies: list[tuple[str, str, dict[str, Any] | None]] = [
        (
            API_WRITE,
            addresses.of("write"),
            overload.api_circuit_breakers(overload.max_write_requests),
        ),
        # Envoy's defaults (1024 each) are far above what the edge itself asks.
        (API_INTERNAL, addresses.of("proxy"), None),
    ]
    if addresses.cluster_of("read") == API_READ:
        copies.append(
            (API_READ, addresses.of("read"), overload.api_circuit_breakers(overload.max_requests))
        )
    for name, address, breakers in copies:
        copied = copy.deepcopy(api)
        copied["name"] = copied["load_assignment"]["cluster_name"] = name
        host, port = split_address(address)
        (endpoint,) = copied["load_assignment"]["endpoints"][0]["lb_endpoints"]
        endpoint["endpoint"]["address"]["socket_address"] = {"address": host, "port_value": port}
        if breakers is None:
            del copied["circuit_breakers"]
        else:
            copied["circuit_breakers"] = breakers
        clusters.append(copied)
    for surface in TRANSCODED_SURFACES:
        services = surface_services(surface)
        listener = _fill(
            "rest_listener.yaml.tmpl",
            name=surface,
            listen_host=listen_host,
            port=ports[surface],
            routes=[],
            problem_lua=str(lua["problem.lua"]),
            request_guard_lua=str(lua["request_guard.lua"]),
            cors_lua=str(lua["cors.lua"]),
            cors_policy=cors.policy(),
            unread_request_cors_headers=cors.unread_request_headers(),
            descriptor=str(descriptor),
            services=services,
            always_print_primitive_fields=surface not in COMPACT_SURFACES,
        )
        manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
        filters = manager["http_filters"]
        transcoder = next(f for f in filters if f["name"] == TRANSCODER_FILTER)["typed_config"]
        raw_bodies = surface == SUBSCRIBE
        manager["route_config"]["virtual_hosts"][0]["routes"] = _rest_routes(
            services,
            route_facts,
            transcoder,
            addresses.cluster_of(GROUP_OF_SURFACE[surface]),
            raw_bodies=raw_bodies,
        )
        if surface in API_KEY_SURFACES:
            # After request_guard.lua: the guard judges what the client sent.
            guard = next(n for n, f in enumerate(filters) if f["name"] == REQUEST_GUARD_FILTER)
            filters.insert(
                guard + 1, _lua_filter("envoy.filters.http.lua.api_key", lua["api_key.lua"])
            )
        if raw_bodies:
            # Before the transcoder, which rewrites :path to the gRPC method's; after the
            # guard, which judges what the client sent.
            guard = _filter_index(filters, REQUEST_GUARD_FILTER)
            filters.insert(guard + 1, _lua_filter(ORIGINAL_URI_FILTER, lua["original_uri.lua"]))
        else:
            # Before the buffer filter, so a shed request's body is never read; after the
            # guard and api_key.lua, so `?apiKey=` is limited as the header is.
            buffer = _filter_index(filters, BUFFER_FILTER)
            filters.insert(buffer, overload.rate_limit_filter(surface))
            # After the buffer filter, so the body is whole and at most 1 MiB.
            buffer = _filter_index(filters, BUFFER_FILTER)
            filters.insert(buffer + 1, _lua_filter(BODY_SHAPE_FILTER, lua["body_shape.lua"]))
        # After problem.lua (which has no request path), before everything that may answer.
        _keep_client_request_id(manager, lua["request_id.lua"], 1)
        listeners.append(listener)
    # Native gRPC calls go where their REST surface's do: the write services share the
    # write surface's cap, and each group reaches its own api.
    group_of = {
        service.full_name: group for group, services in ROUTE_GROUPS.items() for service in services
    }
    grpc_routes = [
        {"match": {"prefix": f"/{s}/"}, "route": _api_route(addresses.cluster_of(group_of[s]))}
        for s in public_services()
    ]
    grpc = _fill(
        "grpc_listener.yaml.tmpl",
        listen_host=listen_host,
        port=ports["grpc"],
        routes=grpc_routes,
        request_guard_lua=str(lua["request_guard.lua"]),
    )
    grpc_manager = grpc["filter_chains"][0]["filters"][0]["typed_config"]
    guard = _filter_index(grpc_manager["http_filters"], REQUEST_GUARD_FILTER)
    grpc_manager["http_filters"].insert(guard + 1, overload.rate_limit_filter("grpc", grpc=True))
    _keep_client_request_id(grpc_manager, lua["request_id.lua"], 0)
    listeners.append(grpc)
    traced = (tracing or TracingSettings()).fragments()
    if traced is not None:
        # The public listeners only: the proxy's calls go to providers, which have no
        # business in our traces, and the token-manager's callers send traceparent already.
        manager_tracing, collector, runtime = traced
        config["layered_runtime"] = {"layers": [runtime]}
        public = {*TRANSCODED_SURFACES, "grpc"}
        for listener in listeners:
            if listener["name"] in public:
                manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
                manager["tracing"] = copy.deepcopy(manager_tracing)
        clusters.append(collector)
    listeners.append(
        _fill(
            "token_manager_listener.yaml.tmpl",
            listen_host=listen_host,
            port=ports["token-manager"],
            **certs,
        )
    )
    if "health" in ports:
        listeners.append(_health_listener(ports["health"], listen_host))
        clusters.append(_admin_cluster(admin_host, ports["envoy-admin"]))
    if sds_dir is not None:
        # Envoy refuses a dynamic secret, even one from a file, without a node identity.
        config["node"] = {"id": "ampmesh-edge", "cluster": "ampmesh-edge"}
        _use_sds(config, certs, sds_dir, cert_dir)
    return dict(config)


def _health_listener(port: int, listen_host: str) -> Any:
    return _fill("health_listener.yaml.tmpl", listen_host=listen_host, port=port)


def _admin_cluster(admin_host: str, admin_port: int) -> dict[str, Any]:
    """The admin interface, for the health listener's /stats/prometheus route."""
    host = HOST if admin_host in ("0.0.0.0", "::") else admin_host  # noqa: S104 (compared, not bound)
    return {
        "name": ENVOY_ADMIN,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": ENVOY_ADMIN,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": host, "port_value": admin_port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }


# One DNS cache for the proxy's filter and clusters (Envoy requires them to be identical).
PROXY_DNS_CACHE = {"name": "providers", "dns_lookup_family": "V4_ONLY"}
# The dynamic forward proxy's clusters: their hosts come from calls, so none is known at
# start (envoy/proxy_clusters.yaml.tmpl).
FORWARD_CLUSTERS = frozenset({"proxy_https", "proxy_http"})
# The system's trust store, for providers' certificates.
SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"


def _proxy_listeners(
    ports: Mapping[str, int],
    lua: Mapping[str, Path],
    cors: CorsSettings,
    descriptor: Path,
    access_log: Path,
    overload: OverloadSettings,
    listen_host: str,
) -> list[dict[str, Any]]:
    """The proxy host, and the loopback listener its Lua asks for decisions through."""
    proxy = _fill(
        "proxy_listener.yaml.tmpl",
        listen_host=listen_host,
        port=ports[PROXY],
        cors_lua=str(lua["cors.lua"]),
        proxy_lua=str(lua["proxy.lua"]),
        cors_policy=cors.policy(),
        dns_cache=PROXY_DNS_CACHE,
        access_log_path=str(access_log),
    )
    manager = proxy["filter_chains"][0]["filters"][0]["typed_config"]
    filters = manager["http_filters"]
    # After CORS (preflights are never limited), before proxy.lua asks for a decision.
    filters.insert(_filter_index(filters, CORS_FILTER) + 1, overload.rate_limit_filter(PROXY))
    _keep_client_request_id(manager, lua["request_id.lua"], 0)
    return [
        proxy,
        _fill(
            "proxy_authz_listener.yaml.tmpl",
            port=ports["proxy-authz"],
            # Never shed by the public listeners' cap: each is a public call already let in.
            api_route=_api_route(API_INTERNAL),
            problem_lua=str(lua["problem.lua"]),
            descriptor=str(descriptor),
        ),
    ]


def _proxy_clusters(authz_port: int) -> list[dict[str, Any]]:
    clusters: list[dict[str, Any]] = _fill(
        "proxy_clusters.yaml.tmpl",
        authz_port=authz_port,
        dns_cache=PROXY_DNS_CACHE,
        system_cas=SYSTEM_CAS,
    )
    return clusters


def _lua_filter(name: str, source: Path) -> dict[str, Any]:
    return {
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"filename": str(source)},
        },
    }


def write_lua(directory: Path) -> dict[str, Path]:
    """Write each of LUA_SCRIPTS into directory, its libraries in front of it (Envoy loads
    one file per filter, and the scripts share their JSON code), and return the paths."""
    written = {}
    for script, libraries in LUA_SCRIPTS.items():
        parts = []
        for name in (*libraries, script):
            source = TEMPLATES / name
            if not source.exists():
                raise EdgeError(f"{source} is missing (restore envoy/)")
            parts.append(f"-- envoy/{name} " + "-" * max(0, 80 - len(name) - 10) + "\n")
            parts.append(source.read_text())
        target = directory / script
        target.write_text("\n".join(parts))
        written[script] = target
    return written


# The edge's certificate and the CA it verifies peers with, as SDS resources in files
# beside edge.yaml (write_sds), each naming the files of the certificate directory.
SDS_FILES = {"edge_certificate": "sds-edge-certificate.json", "mesh_ca": "sds-mesh-ca.json"}
_SDS_RESOURCE_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def write_sds(directory: Path, cert_dir: Path) -> Path:
    """Write the SDS files render_config(sds_dir=...) refers to; return directory.

    Certificates from SDS files are re-read when the certificate directory changes: the
    kubelet renames `..data` in a Secret volume when cert-manager renews, and the runtime's
    tls.py renames files into place locally (moves, the one event Envoy's watch takes).
    Neither this nor render_config reads the certificates: they may not exist yet.
    """
    cert_dir = cert_dir.absolute()
    watched = {"path": str(cert_dir)}
    resources = {
        "edge_certificate": {
            "tls_certificate": {
                "certificate_chain": {"filename": str(cert_dir / "envoy.pem")},
                "private_key": {"filename": str(cert_dir / "envoy.key")},
                # The pair is read together, and a pair whose halves differ (one file
                # renamed, the other not yet) is refused until both are in place.
                "watched_directory": watched,
            }
        },
        "mesh_ca": {
            "validation_context": {
                "trusted_ca": {"filename": str(cert_dir / "ca.pem")},
                "watched_directory": watched,
            }
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, resource in resources.items():
        document = {"resources": [{"@type": _SDS_RESOURCE_TYPE, "name": name, **resource}]}
        (directory / SDS_FILES[name]).write_text(json.dumps(document, indent=2) + "\n")
    return directory


def _use_sds(config: Any, certs: Mapping[str, str], sds_dir: Path, cert_dir: Path) -> None:
    """Every TLS context presenting the edge's certificate, or trusting the mesh CA from
    its file, gets them from the SDS files instead (the same files, watched)."""

    def source(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "sds_config": {
                "path_config_source": {
                    "path": str(sds_dir.absolute() / SDS_FILES[name]),
                    "watched_directory": {"path": str(cert_dir.absolute())},
                },
                "resource_api_version": "V3",
            },
        }

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        context = node.get("common_tls_context")
        if isinstance(context, dict):
            presented = context.get("tls_certificates") or []
            if any(
                c.get("certificate_chain", {}).get("filename") == certs["envoy_cert"]
                for c in presented
            ):
                del context["tls_certificates"]
                context["tls_certificate_sds_secret_configs"] = [source("edge_certificate")]
            validation = context.get("validation_context")
            if (
                isinstance(validation, dict)
                and validation.get("trusted_ca", {}).get("filename") == certs["ca_cert"]
            ):
                rest = {k: v for k, v in validation.items() if k != "trusted_ca"}
                del context["validation_context"]
                context["combined_validation_context"] = {
                    "default_validation_context": rest,
                    "validation_context_sds_secret_config": source("mesh_ca"),
                }
        for value in node.values():
            visit(value)

    visit(config)


def write_config(config: Mapping[str, Any], path: Path) -> Path:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # long type URLs stay on their line
    # Keep the templates' order (ruamel declares the attribute as None only).
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("# Rendered by services/launcher/edge.py from envoy/*.tmpl: edit those.\n")
        yaml.dump(dict(config), out)
    return path


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    """GET a URL of the admin interface (127.0.0.1 only)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http://127.0.0.1 we built)
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), b""
    except (OSError, ValueError):
        return 0, b""


def unhealthy_clusters(clusters: Mapping[str, Any]) -> list[str]:
    """Names of the clusters with no healthy host, from admin /clusters?format=json."""
    missing = []
    for cluster in clusters.get("cluster_statuses", []):
        if cluster.get("added_via_api") or cluster.get("name") in FORWARD_CLUSTERS:
            continue
        hosts = cluster.get("host_statuses", [])
        if not any(_host_healthy(host) for host in hosts):
            missing.append(str(cluster.get("name")))
    return missing


def _host_healthy(host: Mapping[str, Any]) -> bool:
    health = host.get("health_status", {})
    flags = {k for k, v in health.items() if v is True}
    return health.get("eds_health_status") == "HEALTHY" and not flags


class Edge:
    """The Envoy edge of one home: configuration, process, endpoints."""

    name = "envoy"

    def __init__(
        self,
        home: Path,
        ports: PortBook,
        cert_dir: Path,
        cors: CorsSettings | None = None,
        overload: OverloadSettings | None = None,
        tracing: TracingSettings | None = None,
    ) -> None:
        self.home = home
        # The deployment's setting ($AMPMESH_CORS_ALLOWED_ORIGINS) unless told otherwise.
        try:
            self.cors = CorsSettings.from_environment() if cors is None else cors
        except CorsSettingError as error:
            raise EdgeError(str(error)) from None
        # $AMPMESH_EDGE_* (OverloadSettings) unless told otherwise.
        self.overload = OverloadSettings.from_environment() if overload is None else overload
        # $AMPMESH_OTLP_ENDPOINT and $AMPMESH_TRACE_SAMPLE_RATIO, as the services read them.
        self.tracing = TracingSettings.from_environment() if tracing is None else tracing
        self.cert_dir = cert_dir
        self.directory = home / "envoy"
        self.config_path = self.directory / "edge.yaml"
        self.log_path = home / "logs" / "envoy.log"
        self.ports = {name: ports.get(booked) for name, booked in PORT_NAMES.items()}
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        if self._process is None or self._process.returncode is not None:
            return None
        return self._process.pid

    def endpoints(self) -> dict[str, str]:
        urls = {surface: f"http://{HOST}:{self.ports[surface]}" for surface in SURFACES}
        return {
            **urls,
            "grpc": f"{HOST}:{self.ports['grpc']}",
            "token-manager": f"{HOST}:{self.ports['token-manager']}",
            "envoy-admin": f"http://{HOST}:{self.ports['envoy-admin']}",
        }

    def render(self, api_address: str, token_manager_shards: Mapping[str, str]) -> Path:
        """Write <home>/envoy/edge.yaml (and what it loads beside it); return its path."""
        ensure_service_credentials(self.cert_dir, self.name)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Envoy opens its access log files at start.
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        descriptor = GEN_ENVOY / "ampmesh.binpb"
        if not descriptor.exists():
            raise EdgeError(f"{descriptor} is missing: run `make gen`")
        config = render_config(
            ports=self.ports,
            api_address=api_address,
            token_manager_shards=token_manager_shards,
            cert_dir=self.cert_dir,
            descriptor=Path(shutil.copyfile(descriptor, self.directory / descriptor.name)),
            lua=write_lua(self.directory),
            route_facts=load_route_facts(),
            cors=self.cors,
            overload=self.overload,
            proxy_access_log=self.home / "logs" / "proxy-access.log",
            tracing=self.tracing,
            sds_dir=write_sds(self.directory, self.cert_dir),
        )
        return write_config(config, self.config_path)

    async def start(self, within: float = 30.0) -> None:
        """Start Envoy; return once it is ready and every cluster has a healthy host."""
        if not self.config_path.exists():
            raise EdgeError(f"{self.config_path} does not exist: render() the edge first")
        if self.pid is not None:
            raise EdgeError(f"the edge is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = await self._spawn(log)
        admin = self.endpoints()["envoy-admin"]
        deadline = time.monotonic() + within
        waiting_for = "the admin interface to report ready"
        while True:
            if self._process.returncode is not None:
                raise EdgeError(
                    f"envoy exited with code {self._process.returncode} during start; "
                    f"its log ({self.log_path}) ends with:\n{_tail(self.log_path)}"
                )
            if await probe({"envoy-admin": admin}):
                missing = await self._unhealthy_clusters(admin)
                if not missing:
                    return
                waiting_for = f"a healthy host in cluster(s) {', '.join(missing)}"
            if time.monotonic() > deadline:
                await self.stop(grace=2.0)
                raise EdgeError(
                    f"envoy was not ready within {within:.0f}s (waiting for {waiting_for}); "
                    f"its log ({self.log_path}) ends with:\n{_tail(self.log_path)}"
                )
            await asyncio.sleep(0.1)

    async def _spawn(self, log: IO[bytes]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            str(ENVOY),
            "-c",
            str(self.config_path),
            # No hot restart (a restart is stop + start), so no shared memory: two Envoys
            # (a test session beside a dev mesh) cannot clash on a base id, and none is
            # left behind in /dev/shm, as one per --base-id is.
            "--disable-hot-restart",
            "--concurrency",
            "2",
            # The proxy's access log reaches its file within a second (default: 10 s).
            "--file-flush-interval-msec",
            "1000",
            "--log-level",
            "info",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    @staticmethod
    async def _unhealthy_clusters(admin: str) -> list[str]:
        status, body = await asyncio.to_thread(_get, f"{admin}/clusters?format=json", 2.0)
        if status != 200:
            return ["(admin /clusters did not answer)"]
        return unhealthy_clusters(json.loads(body))

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM Envoy, kill it after `grace` seconds; its exit code (None if killed)."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
            await process.wait()
            return None

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        """The Envoy process, running or exited: the supervisor waits on it."""
        return self._process


async def probe(endpoints: Mapping[str, str], timeout: float = 2.0) -> bool:  # noqa: ASYNC109 (per HTTP request)
    """Whether the edge's admin interface reports it ready (/ready answers LIVE)."""
    admin = endpoints.get("envoy-admin")
    if not admin:
        return False
    status, body = await asyncio.to_thread(_get, f"{admin}/ready", timeout)
    return status == 200 and body.strip() == b"LIVE"
