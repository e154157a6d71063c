"""The launcher's Prometheus settings and config, without a mesh: a missing binary or a bad
interval is one line naming what to do, and the config it renders passes promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from services.launcher import observability
from services.launcher.infra import PrerequisiteMissing


def test_a_missing_prometheus_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(observability.BINARY_VARIABLE, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PrerequisiteMissing) as missing:
        observability.check_installed()
    assert str(missing.value) == (
        "prometheus not found: install Debian's prometheus package (apt-get install "
        "prometheus) or set AMPMESH_PROMETHEUS"
    )
    monkeypatch.setenv(observability.BINARY_VARIABLE, "/nonexistent/prometheus")
    with pytest.raises(PrerequisiteMissing, match="AMPMESH_PROMETHEUS=/nonexistent/prometheus"):
        observability.check_installed()


def test_a_bad_scrape_interval_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(observability.INTERVAL_VARIABLE, "soon")
    with pytest.raises(PrerequisiteMissing, match=observability.INTERVAL_VARIABLE):
        observability.check_installed()


def test_the_rendered_config_is_valid_for_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run scripts/install_observability.sh"
    targets = [
        observability.Target("api", "api", "http://127.0.0.1:20001/metrics"),
        observability.Target("token-manager", "token-manager-0", "http://127.0.0.1:20002/metrics"),
        observability.Target("token-manager", "token-manager-1", "http://127.0.0.1:20003/metrics"),
        observability.Target("envoy", "envoy", "http://127.0.0.1:20004/stats/prometheus"),
    ]
    (tmp_path / "prometheus.yml").write_text(
        observability.render_config(targets, 1.0, "127.0.0.1:20005")
    )
    shutil.copyfile(observability.RULES_FILE, tmp_path / "rules.yml")
    checked = subprocess.run(  # noqa: S603 (promtool from PATH)
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
