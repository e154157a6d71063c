"""`ampmesh` (or `python -m services.launcher`): run the mesh on this machine.

    ampmesh up     start every service, wait until each is healthy, print where they
                   listen, and run until Ctrl-C (or SIGTERM), then stop them all.

State (certificates, logs, mesh.json) lives in $AMPMESH_HOME, default ./.ampmesh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from services.launcher.mesh import MeshError, running_mesh


async def _up(home: Path, as_json: bool) -> int:
    try:
        async with running_mesh(home) as mesh:
            described = mesh.describe()
            if as_json:
                print(json.dumps(described), flush=True)
            else:
                print(f"ampmesh is up in {mesh.started_in:.1f}s (home {mesh.home})")
                for process in described["processes"]:
                    address = described["endpoints"][process["name"]]
                    state = "healthy" if process["healthy"] else "UNHEALTHY"
                    print(f"  {process['name']:<16} pid {process['pid']:<8} {address:<22} {state}")
                for name, url in described["endpoints"].items():
                    if name.endswith("-http"):
                        print(f"  {name:<16} {url}")
                print("Ctrl-C stops the mesh.", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            print("stopping…", flush=True)
    except MeshError as error:
        print(f"ampmesh up failed: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ampmesh", description="Run ampmesh locally.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the whole mesh and run until Ctrl-C")
    up.add_argument("--json", action="store_true", help="print the endpoints as one JSON object")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("AMPMESH_HOME", ".ampmesh"))
    sys.exit(asyncio.run(_up(home, args.json)))


if __name__ == "__main__":
    main()
