"""docs/SETTINGS.md is what `ampmesh settings --markdown` makes from the code, every setting
has a description, and nothing a process reads is missing from it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from services.launcher.settings_table import (
    REQUIRED,
    SECRET,
    SETTINGS_DOC,
    settings_classes,
    settings_table,
    undescribed,
)
from services.runtime.config import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = ".venv/bin/python -m services.launcher settings --markdown > docs/SETTINGS.md"


def test_the_committed_table_is_what_the_code_generates() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "services.launcher", "settings", "--markdown"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    committed = SETTINGS_DOC.read_text() if SETTINGS_DOC.exists() else ""
    assert committed == generated, f"docs/SETTINGS.md is stale; regenerate it: {REGENERATE}"


def test_every_setting_has_a_description() -> None:
    assert undescribed() == [], "give these fields a Field(description=...)"
    assert [row.variable for row in settings_table() if not row.description] == []


def test_secrets_show_no_default_and_required_ones_say_so() -> None:
    rows = {row.variable: row for row in settings_table()}
    assert rows["AMPMESH_API_KEY"].default == SECRET
    assert rows["AMPMESH_ADMIN_API_KEY"].default == SECRET
    # Optional for the api (no proxy limits without it), required for the shards.
    assert rows["AMPMESH_REDIS_URL"].default == f"{SECRET} (api); {REQUIRED} (token-manager)"
    assert rows["AMPMESH_DATABASE_URL"].default == REQUIRED
    assert rows["AMPMESH_TEMPORAL_ADDRESS"].readers[:2] == ("api", "temporal")


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_services_settings_class_is_in_the_table() -> None:
    listed = [cls for _, cls in settings_classes()]
    missing = [
        f"{cls.__module__}.{cls.__name__}"
        for cls in _subclasses(ServiceSettings)
        if cls.__module__.startswith("services.")
        and not any(issubclass(reader, cls) for reader in listed)
    ]
    assert missing == [], "add them to settings_classes() in services/launcher/settings_table.py"


def test_every_variable_the_launcher_names_has_a_row() -> None:
    variables = {row.variable for row in settings_table()}
    named: set[str] = set()
    for path in (ROOT / "services" / "launcher").rglob("*.py"):
        named |= set(re.findall(r"\bAMPMESH_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert sorted(named - variables) == []
