"""The providers catalog data file, parsed into ProviderInfo messages once, at start.

providers.json beside this module is written by scripts/build_catalog.py and committed; it
has the reference's catalog shape, {"catalog": {name: ProviderInfo JSON}, "timestamp": …},
where the timestamp is that of the reference catalog it was built from. Nothing here reads
the reference itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ampmesh.platform.v1 import providers_pb2
from google.protobuf import json_format

from services.domain.catalog.checks import entry_problems
from services.runtime.entrypoint import StartupError

DATA_FILE = Path(__file__).with_name("providers.json")
_REBUILD = "rebuild it with `python scripts/build_catalog.py`"


class CatalogError(StartupError):
    """The catalog cannot be served: a field our contract lacks, or an unusable entry.
    (A StartupError: the api exits at start with this one line, not a traceback.)"""


def parse_catalog(
    document: Mapping[str, Any], source: str
) -> dict[str, providers_pb2.ProviderInfo]:
    """Every entry of a catalog document as a message, or CatalogError naming each problem.

    Unknown fields are errors rather than dropped: a field the reference has and our
    contract lacks would otherwise vanish from the REST answer without anyone noticing.
    """
    entries = document.get("catalog")
    if not isinstance(entries, Mapping) or not entries:
        raise CatalogError(f"{source}: no 'catalog' object of providers")
    catalog: dict[str, providers_pb2.ProviderInfo] = {}
    problems: list[str] = []
    for key, entry in entries.items():
        info = providers_pb2.ProviderInfo()
        try:
            json_format.ParseDict(entry, info)
        except json_format.ParseError as error:
            # The parser's message goes on to list every field the message has.
            problems.append(f"provider {key!r}: {str(error).splitlines()[0]}")
            continue
        problems += [f"provider {key!r}: {problem}" for problem in entry_problems(key, info)]
        catalog[key] = info
    if problems:
        raise CatalogError(f"{source}: {'; '.join(problems)}")
    return catalog


def load_catalog(path: Path = DATA_FILE) -> dict[str, providers_pb2.ProviderInfo]:
    """The catalog in path (the committed data file by default), keyed by provider name."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CatalogError(f"cannot read the providers catalog {path}: {error}") from None
    if not isinstance(document, Mapping):
        raise CatalogError(f"{path}: not a JSON object; {_REBUILD}")
    try:
        return parse_catalog(document, str(path))
    except CatalogError as error:
        raise CatalogError(f"{error}; {_REBUILD}") from None
