"""`python -m services.messenger`: the messenger service."""

from __future__ import annotations

from ampmesh.messenger.v1 import messenger_pb2

from services.runtime.entrypoint import run_service
from services.runtime.unimplemented import unimplemented_service

SERVICE = messenger_pb2.DESCRIPTOR.services_by_name["MessengerService"]
# The mesh identities allowed to call this service; any other certificate is refused.
CALLERS = ("api", "mcpanda", "builder-mcp")


def main() -> None:
    run_service(
        name="messenger",
        services=[unimplemented_service(SERVICE, "webhook delivery is built by issue #6")],
        allowed_callers=CALLERS,
    )


if __name__ == "__main__":
    main()
