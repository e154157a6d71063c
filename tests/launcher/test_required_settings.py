"""A service started without a setting it cannot run without exits at once with one line
naming the variable (exit 2 for a settings error, 1 for a StartupError), no traceback,
before it tries to reach anything: each service's process, as a pod starts it, with every
other required setting present (pointing at nothing that answers)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from services.launcher.settings_table import REQUIRED_AT_START, settings_classes
from services.runtime.config import env_var_name
from services.runtime.entrypoint import EXIT_BAD_CONFIG, EXIT_STARTUP_FAILED

# Syntactically valid, reaching nothing: port 9 (discard) is closed on loopback.
PRESENT = {
    "AMPMESH_DATABASE_URL": "postgresql://ampmesh:not-a-password@127.0.0.1:9/ampmesh",
    "AMPMESH_REDIS_URL": "redis://127.0.0.1:9/0",
    "AMPMESH_SECRET_KEYS": "k1:" + "A" * 43 + "=",
    "AMPMESH_PUBSUB_PROJECT": "ampmesh-required-settings",
    "AMPMESH_PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
    "AMPMESH_TEMPORAL_ADDRESS": "127.0.0.1:9",
    "AMPMESH_TOKEN_MANAGER_ADDRESS": "127.0.0.1:9",
}

# The services' processes (python -m services.<module>); the release Job and the edge's
# edge-config have tests of their own (tests/api/test_release.py, test_edge_config.py).
SERVICES = ("api", "temporal", "token-manager", "scribe", "messenger", "metrics")


def _required() -> list[tuple[str, str]]:
    """(workload, variable) for everything docs/SETTINGS.md calls required for them."""
    classes = dict(settings_classes())
    cases: list[tuple[str, str]] = []
    for service in SERVICES:
        cls = classes[service]
        fields = [env_var_name(cls, n) for n, i in cls.model_fields.items() if i.is_required()]
        cases += [(service, v) for v in dict.fromkeys([*fields, *REQUIRED_AT_START[service]])]
    return cases


CASES = _required()


def test_every_required_setting_is_tried() -> None:
    assert {v for _, v in CASES} <= set(PRESENT)
    assert {s for s, _ in CASES} == set(SERVICES)


@pytest.mark.parametrize(("service", "missing"), CASES, ids=[f"{s}-{v}" for s, v in CASES])
async def test_a_missing_required_setting_is_one_line_naming_it(
    service: str, missing: str, tmp_path: Path
) -> None:
    module = service.replace("-", "_")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AMPMESH_CERT_DIR": str(tmp_path / "certs"),
        "AMPMESH_LISTEN_PORT": "0",
        **{k: v for k, v in PRESENT.items() if k != missing},
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"services.{module}",
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        # A service that tries to reach something first would take its connect timeout
        # and then blame that: well before 60 s it has either said what is missing or not.
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"services.{module} without {missing} did not exit within 60 s")
    lines = output.decode().splitlines()
    assert process.returncode in (EXIT_BAD_CONFIG, EXIT_STARTUP_FAILED), lines
    assert len(lines) == 1, lines
    assert missing in lines[0]
    assert "Traceback" not in lines[0]
    assert "not-a-password" not in lines[0]
