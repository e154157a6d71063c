"""Deployment settings the launcher reads are checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.launcher.mesh import MeshError, running_mesh


@pytest.mark.parametrize(
    ("variable", "value", "refusal"),
    [
        ("AMPMESH_CORS_ALLOWED_ORIGINS", "https://app.example.com/path", "is not an origin"),
        ("AMPMESH_EDGE_MAX_REQUESTS", "lots", "is not a whole number"),
        ("AMPMESH_OTLP_ENDPOINT", "collector:4317", "not http://host:port"),
        ("AMPMESH_TRACE_SAMPLE_RATIO", "2", "is not between 0 and 1"),
    ],
)
async def test_a_bad_edge_setting_stops_the_mesh_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, refusal: str
) -> None:
    monkeypatch.setenv(variable, value)
    steps: list[tuple[str, str]] = []
    with pytest.raises(MeshError, match=rf"{variable}.*{refusal}"):
        async with running_mesh(
            tmp_path, progress=lambda step, state, _: steps.append((step, state))
        ):
            pass
    # Refused at the prerequisites: no certificate made, no component started.
    assert ("certificates", "starting") not in steps
    assert not (tmp_path / "certs").exists()
