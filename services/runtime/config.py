"""Service configuration from the environment (pydantic-settings, prefix AMPMESH_).

Every service reads a subclass of ServiceSettings; load_settings() turns any validation
failure into one ConfigError line that names the environment variable and says why, so a
bad deployment fails at start with something an operator can act on, not a traceback.
Values are never echoed in those messages: a setting may hold a secret.

    class TokenManagerSettings(ServiceSettings):
        redis_url: str = "redis://127.0.0.1:6379/0"        # AMPMESH_REDIS_URL
        encryption_key: SecretStr                          # AMPMESH_ENCRYPTION_KEY, required
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    Field,
    SecretBytes,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from services.runtime.tls import CertificateError, validate_identity

ENV_PREFIX = "AMPMESH_"

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class ConfigError(ValueError):
    """A setting is missing or invalid. str() is one line, safe to print."""


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclass to add a service's own."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        # Other AMPMESH_* variables belong to other services sharing one environment.
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    service_name: str = Field("", description="which service this process runs (set by the code)")
    identity: str = Field(
        "",
        description="mesh identity in our certificate's SAN; defaults to service_name",
    )
    listen_host: str = Field("127.0.0.1", description="gRPC listen address; 0.0.0.0 in containers")
    listen_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 = any free port")
    metrics_host: str = Field("127.0.0.1", description="Prometheus exposition address")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Prometheus port; unset = no exposition, 0 = any free"
    )
    health_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="plaintext gRPC port serving only grpc.health.v1 (Kubernetes' grpc "
        "probes); unset = none, 0 = any free",
    )
    cert_dir: Path = Field(Path(".ampmesh/certs"), description="CA and leaf certificates")
    create_certs: bool = Field(
        True, description="make the CA and our leaf when missing (local); false = provisioned"
    )
    cert_watch_interval: float = Field(
        30.0,
        gt=0,
        description="seconds between checks of provisioned certificates (AMPMESH_CREATE_CERTS="
        "false) for a renewed leaf",
    )
    cert_renewal_jitter: float = Field(
        3600.0,
        ge=0,
        description="a renewed leaf is taken up by a graceful restart after a random delay "
        "of up to this many seconds, so an identity's replicas do not all restart at once",
    )
    log_level: LogLevel = Field(
        "info", description="least severe log level written: debug, info, warning, error, critical"
    )
    log_format: Literal["json", "console"] = Field(
        "json", description="json (one object a line, what the launcher reads) or console"
    )
    grace_period: float = Field(
        10.0, ge=0, description="seconds in-flight RPCs get to finish on shutdown"
    )
    drain_delay: float = Field(
        0.0,
        ge=0,
        description="seconds between reporting NOT_SERVING and refusing new RPCs, so load "
        "balancers notice before connections are refused",
    )
    reflection: bool = Field(False, description="serve gRPC reflection (internal ports only)")
    max_concurrent_rpcs: int | None = Field(
        None, ge=1, description="excess RPCs get RESOURCE_EXHAUSTED"
    )
    otlp_endpoint: str = Field(
        "",
        description="OTLP/gRPC collector for traces (http://host:4317 plaintext, https:// "
        "TLS); empty = tracing off",
    )
    trace_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="share of new traces recorded (a parent's choice wins)"
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^/\s]+/?", value):
            raise ValueError("must be http://host:port or https://host:port (or empty)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _identity_defaults_to_service(self) -> ServiceSettings:
        identity = self.identity or self.service_name
        if identity:
            try:
                validate_identity(identity)
            except CertificateError as exc:
                raise ValueError(str(exc)) from None
        # frozen model: set through object.__setattr__ once, during validation.
        object.__setattr__(self, "identity", identity)
        return self

    def env_var(self, field_name: str) -> str:
        return env_var_name(type(self), field_name)


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment (overrides win), or raise a one-line ConfigError."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(cls, exc)) from None
    except SettingsError as exc:
        # Raised before validation when a complex value (list, dict) is not valid JSON.
        raise ConfigError(_describe_settings_error(cls, exc)) from None


def env_var_name(cls: type[BaseSettings], field_name: str) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    info = cls.model_fields.get(field_name)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias.upper()
    return f"{prefix}{field_name}".upper()


def _describe_validation_error(cls: type[BaseSettings], exc: ValidationError) -> str:
    problems: list[str] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err.get("loc") or ()
        if not loc:
            # A model-level check (like the identity one above) reports no field; name the
            # fields it reads from the message.
            problems.append(_model_level(cls, err["msg"]))
            continue
        field_name = str(loc[0])
        var = env_var_name(cls, field_name)
        if err["type"] == "missing":
            problems.append(f"{var} is required but not set")
        elif _is_secret(cls, field_name):
            # Messages can quote the value (a custom validator) or its length (min_length):
            # for a secret, name only the kind of problem.
            problems.append(f"{var} is invalid ({err['type'].replace('_', ' ')}; value hidden)")
        else:
            problems.append(f"{var} is invalid: {_strip_prefix(err['msg'])}")
    return "configuration error: " + "; ".join(problems)


def _describe_settings_error(cls: type[BaseSettings], exc: SettingsError) -> str:
    match = re.search(r'field "([^"]+)"', str(exc))
    if match:
        var = env_var_name(cls, match.group(1))
        return f"configuration error: {var} is invalid: not valid JSON"
    return "configuration error: a setting could not be parsed"


def _model_level(cls: type[BaseSettings], msg: str) -> str:
    msg = _strip_prefix(msg)
    if "identity" in msg:
        return f"{env_var_name(cls, 'identity')} (or the service name) is invalid: {msg}"
    return msg


def _strip_prefix(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _is_secret(cls: type[BaseSettings], field_name: str) -> bool:
    info = cls.model_fields.get(field_name)
    if info is None:
        return False
    annotation = info.annotation
    return annotation in (SecretStr, SecretBytes) or any(
        arg in (SecretStr, SecretBytes) for arg in getattr(annotation, "__args__", ())
    )
