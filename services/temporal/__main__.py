"""`python -m services.temporal`: the Temporal workers' process.

Its contract is `proto/ampmesh/workflows/v1`: the inputs and outputs of the workflows it
runs. The workers (one per task queue) are built by issue #6; until then the process
serves gRPC health only, so the launcher and the edge can supervise it like the others.
"""

from __future__ import annotations

from services.runtime.entrypoint import run_service


def main() -> None:
    run_service(name="temporal", services=[])


if __name__ == "__main__":
    main()
