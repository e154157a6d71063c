"""Deployment settings the launcher reads are checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.launcher.mesh import MeshError, running_mesh


async def test_a_bad_cors_setting_stops_the_mesh_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMPMESH_CORS_ALLOWED_ORIGINS", "https://app.example.com/path")
    steps: list[tuple[str, str]] = []
    with pytest.raises(MeshError, match=r"AMPMESH_CORS_ALLOWED_ORIGINS.*is not an origin"):
        async with running_mesh(
            tmp_path, progress=lambda step, state, _: steps.append((step, state))
        ):
            pass
    # Refused at the prerequisites: no certificate made, no component started.
    assert ("certificates", "starting") not in steps
    assert not (tmp_path / "certs").exists()
