"""The tests' own layout: nothing imports from a `test_*` module or a conftest.

What tests share lives in tests/support/ (or a helper module beside the tests that use it):
a test module's helpers are private to it, and a conftest holds fixtures, which pytest
hands out by itself. Importing either runs test code where it was not meant to run (an
imported fixture or test is registered twice) and ties one test's refactor to another's."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "bench")


def imported_modules(source: str, where: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of every module the source imports, as if it were the
    file at `where` (relative imports resolved)."""
    package = where.relative_to(REPO).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(source, filename=str(where))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, *(node.module or "").split("."))).strip(".")
            yield node.lineno, module
            # `from tests.e2e import test_reads` names the module as an imported name.
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def forbidden(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "tests" and any(
        part == "conftest" or part.startswith("test_") for part in parts[1:]
    )


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for root in SCANNED
        for path in sorted((REPO / root).rglob("*.py"))
        for line, module in imported_modules(path.read_text(encoding="utf-8"), path)
        if forbidden(module)
    ]
    assert not found, "move what they share to tests/support/:\n" + "\n".join(found)


def test_the_check_sees_absolute_relative_and_module_name_imports() -> None:
    source = (
        "from . import conftest\n"
        "from .test_reads import x\n"
        "import tests.conftest\n"
        "from tests.e2e import test_reads\n"
        "import tests.support.stack\n"
        "from tests.e2e.reads_world import seed\n"
    )
    found = [m for _, m in imported_modules(source, REPO / "tests/e2e/x.py") if forbidden(m)]
    assert found == [
        "tests.e2e.conftest",
        "tests.e2e.test_reads",
        "tests.e2e.test_reads.x",
        "tests.conftest",
        "tests.e2e.test_reads",
    ]
