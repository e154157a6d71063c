"""The recording and alerting rules an operator's Prometheus loads: valid, and each alert
firing when it should and quiet when it should not (promtool's own rule unit tests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parents[2] / "observability" / "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: run scripts/install_observability.sh (make test does)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (promtool from PATH, our own files)
        [promtool(), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60, check=False
    )


def test_rules_are_valid() -> None:
    checked = run("check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_rules_unit_tests_pass() -> None:
    tested = run("test", "rules", "rules_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_named_alert_is_defined_and_unit_tested() -> None:
    rules = (RULES_DIR / "rules.yml").read_text()
    tests = (RULES_DIR / "rules_test.yml").read_text()
    for alert in (
        "AmpmeshUndeliveredBacklog",
        "AmpmeshTokenRefreshFailures",
        "AmpmeshDeadLetters",
        "AmpmeshServiceDown",
        "AmpmeshMetricsStale",
    ):
        assert f"alert: {alert}\n" in rules, alert
        assert f"alertname: {alert}\n" in tests, alert
