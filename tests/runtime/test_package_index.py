"""The runtime's and the domain library's docstrings index every module they hold, so a
newcomer finds where a thing lives from the package's first page."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest


@pytest.mark.parametrize("package", ["services.runtime", "services.domain"])
def test_the_package_docstring_lists_every_module(package: str) -> None:
    module = importlib.import_module(package)
    folder = Path(module.__file__ or "").parent
    held = {
        p.stem if p.suffix == ".py" else p.name + "/"
        for p in folder.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__")
        # packages, and migrations/ (alembic's folder has env.py, no __init__.py)
        or (p.is_dir() and any((p / f).exists() for f in ("__init__.py", "env.py")))
    }
    listed = set(re.findall(r"^\s*([a-z_]+/?)\s{2,}", module.__doc__ or "", re.MULTILINE))
    assert held - listed == set(), f"{package}'s docstring does not list them"
    assert listed - held == set(), f"{package}'s docstring lists modules it does not hold"
