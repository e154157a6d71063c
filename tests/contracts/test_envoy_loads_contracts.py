"""Envoy accepts our contracts: the transcoder loads gen/envoy/ampmesh.binpb for each host.

`envoy --mode validate` builds every filter from the rendered configuration, so a
contract Envoy's transcoder cannot register (an unsupported binding, a service missing
from the descriptor set) fails here rather than when the edge starts.
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path

import pytest

from services.runtime.tls import ensure_service_credentials
from tests.contracts.bindings import REPO, bindings

ENVOY = Path(sys.executable).parent / "envoy"
DESCRIPTOR = REPO / "gen" / "envoy" / "ampmesh.binpb"
TEMPLATE = REPO / "envoy" / "transcoder.yaml.tmpl"


def _services_of(host: str) -> list[str]:
    return sorted({b.rpc.containing_service.full_name for b in bindings() if b.host == host})


@pytest.mark.parametrize("host", ["api", "read", "write", "search", "proxy"])
def test_envoy_transcoder_loads_every_public_service(host: str, tmp_path: Path) -> None:
    ensure_service_credentials(tmp_path, "envoy")
    services = _services_of(host)
    assert services, f"no public service is bound on the {host} host"
    config = string.Template(TEMPLATE.read_text()).substitute(
        host=host,
        admin_port=0,
        listen_port=0,
        api_port=50051,
        descriptor=DESCRIPTOR,
        services=json.dumps(services),
        certs=tmp_path,
    )
    path = tmp_path / "envoy.yaml"
    path.write_text(config)
    result = subprocess.run(  # noqa: S603 (our own binary and config)
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_bare_array_response_is_listed_for_the_edge_to_unwrap() -> None:
    unwrap = json.loads((REPO / "gen" / "envoy" / "response_body.json").read_text())
    declared = {
        f"/{b.rpc.containing_service.full_name}/{b.rpc.name}": b.response_body
        for b in bindings()
        if b.response_body
    }
    assert set(unwrap) == set(declared)
    assert unwrap["/ampmesh.platform.v1.ProjectService/ListProjects"] == "projects"
    assert unwrap["/ampmesh.platform.v1.ProviderService/ListProviders"] == "providers"
