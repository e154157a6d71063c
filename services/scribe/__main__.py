"""`python -m services.scribe`: the scribe service."""

from __future__ import annotations

from ampmesh.scribe.v1 import scribe_pb2

from services.runtime.entrypoint import run_service
from services.runtime.unimplemented import unimplemented_service

SERVICE = scribe_pb2.DESCRIPTOR.services_by_name["ScribeService"]
# The mesh identities allowed to call this service; any other certificate is refused.
CALLERS = ("api", "mcpanda")


def main() -> None:
    run_service(
        name="scribe",
        services=[unimplemented_service(SERVICE, "event persistence is built by issue #6")],
        allowed_callers=CALLERS,
    )


if __name__ == "__main__":
    main()
