"""`python -m services.scribe`: the scribe service (its contract, not built yet)."""

from __future__ import annotations

from ampmesh.scribe.v1 import scribe_pb2

from services.runtime.unimplemented import run_unbuilt_service


def main() -> None:
    run_unbuilt_service(
        name="scribe",
        service=scribe_pb2.DESCRIPTOR.services_by_name["ScribeService"],
        reason="event persistence is built by issue #6",
        # The mesh identities allowed to call it; any other certificate is refused.
        allowed_callers=("api", "mcpanda"),
    )


if __name__ == "__main__":
    main()
