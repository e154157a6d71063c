"""How a service reaches Temporal (the api, the workers, mcpanda): the settings of the
connection and one `connect_temporal` every one of them calls, so a Temporal cluster behind
TLS, with client certificates (mTLS) or Temporal Cloud with an API key is configured the same
way everywhere.

    AMPMESH_TEMPORAL_ADDRESS           host:port of the frontend
    AMPMESH_TEMPORAL_NAMESPACE         our namespace (default ampmesh)
    AMPMESH_TEMPORAL_TLS               true/false; unset: on when any setting below is set
    AMPMESH_TEMPORAL_TLS_CA_FILE       PEM roots to verify the server (unset: the system's)
    AMPMESH_TEMPORAL_TLS_CERT_FILE     client certificate (mTLS), with ..._KEY_FILE
    AMPMESH_TEMPORAL_TLS_KEY_FILE      its private key
    AMPMESH_TEMPORAL_TLS_SERVER_NAME   the name the server's certificate must carry (and SNI)
    AMPMESH_TEMPORAL_API_KEY           Temporal Cloud API key (Bearer), a secret

An API key never travels in plaintext: setting one turns TLS on, and AMPMESH_TEMPORAL_TLS=false
beside it is refused at start (exit 2, naming both). Files are read when connecting: a rotated
client certificate takes effect at the next start. Errors name the setting, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from temporalio.client import Client, Interceptor
from temporalio.service import TLSConfig

from services.runtime.config import ServiceSettings, env_var_name
from services.runtime.entrypoint import StartupError

# Temporal Cloud routes a call made with an API key by this header (needed on its regional
# endpoints; the namespace endpoints ignore it).
NAMESPACE_HEADER = "temporal-namespace"


class TemporalSettingError(StartupError):
    """A Temporal connection setting cannot be used (a service exits 1 with it). str() is
    one line naming the variable, never its value."""


class TemporalClientSettings(ServiceSettings):
    """Settings of a service that connects to Temporal: subclass it."""

    temporal_address: str = Field(
        "", description="the Temporal frontend, host:port; empty: no Temporal"
    )
    temporal_namespace: str = Field("ampmesh", min_length=1, description="our namespace")
    temporal_tls: bool | None = Field(
        None,
        description="connect to Temporal over TLS; unset: on when a CA, client certificate, "
        "server name or API key is set",
    )
    temporal_tls_ca_file: Path | None = Field(
        None, description="PEM CA bundle that signs Temporal's certificate; unset: system roots"
    )
    temporal_tls_cert_file: Path | None = Field(
        None, description="client certificate (PEM) for mTLS to Temporal, with the key file"
    )
    temporal_tls_key_file: Path | None = Field(
        None, description="the client certificate's private key (PEM)"
    )
    temporal_tls_server_name: str = Field(
        "", description="name Temporal's certificate must carry (and the SNI) if not the host"
    )
    temporal_api_key: SecretStr = Field(
        SecretStr(""), description="Temporal Cloud API key (turns TLS on)"
    )

    @field_validator("temporal_tls_ca_file", "temporal_tls_cert_file", "temporal_tls_key_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        # Empty in the environment means unset (a ConfigMap that blanks it out).
        if value is None or str(value) in ("", "."):
            return None
        if not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _coherent_tls(self) -> TemporalClientSettings:
        cls = type(self)
        cert, key = self.temporal_tls_cert_file, self.temporal_tls_key_file
        if (cert is None) != (key is None):
            given, missing = (
                ("temporal_tls_cert_file", "temporal_tls_key_file")
                if key is None
                else ("temporal_tls_key_file", "temporal_tls_cert_file")
            )
            raise ValueError(
                f"{env_var_name(cls, given)} is set but {env_var_name(cls, missing)} is not: "
                "a client certificate needs its key"
            )
        if self.temporal_tls is False:
            needs_tls = [
                name
                for name, is_set in (
                    ("temporal_api_key", bool(self.temporal_api_key.get_secret_value())),
                    ("temporal_tls_ca_file", self.temporal_tls_ca_file is not None),
                    ("temporal_tls_cert_file", cert is not None),
                    ("temporal_tls_server_name", bool(self.temporal_tls_server_name)),
                )
                if is_set
            ]
            if needs_tls:
                raise ValueError(
                    f"{env_var_name(cls, needs_tls[0])} needs TLS but "
                    f"{env_var_name(cls, 'temporal_tls')} is false (an API key or "
                    "certificate is never sent over plaintext)"
                )
        return self

    @property
    def temporal_uses_tls(self) -> bool:
        if self.temporal_tls is not None:
            return self.temporal_tls
        return bool(
            self.temporal_api_key.get_secret_value()
            or self.temporal_tls_ca_file
            or self.temporal_tls_cert_file
            or self.temporal_tls_server_name
        )


@dataclass(frozen=True)
class TemporalConnectOptions:
    """What Client.connect gets besides the address, namespace and interceptors."""

    tls: TLSConfig | bool = False
    api_key: str | None = field(default=None, repr=False)
    rpc_metadata: Mapping[str, str] = field(default_factory=dict)

    def as_kwargs(self) -> dict[str, Any]:
        return {"tls": self.tls, "api_key": self.api_key, "rpc_metadata": dict(self.rpc_metadata)}


def connect_options(settings: TemporalClientSettings) -> TemporalConnectOptions:
    """The TLS configuration (files read now), API key and metadata for settings."""
    api_key = settings.temporal_api_key.get_secret_value() or None
    metadata = {NAMESPACE_HEADER: settings.temporal_namespace} if api_key else {}
    if not settings.temporal_uses_tls:
        return TemporalConnectOptions(tls=False, api_key=None, rpc_metadata=metadata)
    ca = _read(settings, "temporal_tls_ca_file")
    cert = _read(settings, "temporal_tls_cert_file")
    key = _read(settings, "temporal_tls_key_file")
    server_name = settings.temporal_tls_server_name or None
    if ca is None and cert is None and server_name is None:
        # Plain TLS against the system's roots (Temporal Cloud with an API key).
        return TemporalConnectOptions(tls=True, api_key=api_key, rpc_metadata=metadata)
    return TemporalConnectOptions(
        tls=TLSConfig(
            server_root_ca_cert=ca,
            domain=server_name,
            client_cert=cert,
            client_private_key=key,
        ),
        api_key=api_key,
        rpc_metadata=metadata,
    )


async def connect_temporal(
    settings: TemporalClientSettings,
    *,
    interceptors: Sequence[Interceptor] = (),
    lazy: bool = False,
) -> Client:
    """A client of settings.temporal_namespace at settings.temporal_address. With lazy, the
    connection is made on first use (the caller starts while Temporal is down)."""
    if not settings.temporal_address:
        raise TemporalSettingError(
            f"{env_var_name(type(settings), 'temporal_address')} is required but not set"
        )
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        interceptors=list(interceptors),
        lazy=lazy,
        **connect_options(settings).as_kwargs(),
    )


def describe_connect_error(settings: TemporalClientSettings, error: BaseException) -> str:
    """One line for a failed connection: the SDK's reason, shortened, with the API key cut
    out should a message ever quote it."""
    text = (str(error).splitlines() or [""])[0][:200] or type(error).__name__
    key = settings.temporal_api_key.get_secret_value()
    if key:
        text = text.replace(key, "[api key]")
    return text


def _read(settings: TemporalClientSettings, field_name: str) -> bytes | None:
    path = getattr(settings, field_name)
    if path is None:
        return None
    try:
        data: bytes = path.read_bytes()
    except OSError as error:
        raise TemporalSettingError(
            f"{env_var_name(type(settings), field_name)} cannot be read: "
            f"{error.strerror or type(error).__name__} ({path})"
        ) from None
    return data
