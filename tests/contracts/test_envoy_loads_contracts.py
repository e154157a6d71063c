"""Envoy accepts our contracts: the edge's transcoders load gen/envoy/ampmesh.binpb.

`envoy --mode validate` builds every filter of the edge's configuration, one transcoder
per public host, so a contract Envoy's transcoder cannot register (an unsupported
binding, a service missing from the descriptor set) fails here rather than when the edge
starts. tests/edge checks the rest of the edge's configuration.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from services.domain.routes import ROUTE_GROUPS
from services.launcher.edge import ENVOY, Edge
from services.launcher.ports import PortBook
from tests.support.bindings import bindings


def test_envoy_transcoder_loads_every_public_service(tmp_path: Path) -> None:
    edge = Edge(tmp_path, PortBook(tmp_path), tmp_path / "certs")
    config = edge.render("127.0.0.1:50051", {"token-manager-0": "127.0.0.1:50061"})
    text = config.read_text()
    # The proxy host forwards on Envoy's data path (envoy/proxy.lua): nothing to transcode.
    forwarded = {service.full_name for service in ROUTE_GROUPS["proxy"]}
    for service in {b.rpc.containing_service.full_name for b in bindings()} - forwarded:
        assert f"- {service}\n" in text, f"{service} is transcoded on no host"
    result = subprocess.run(  # noqa: S603 (our own binary and config)
        [str(ENVOY), "--mode", "validate", "-c", str(config), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
