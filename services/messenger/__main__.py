"""`python -m services.messenger`: the messenger service (its contract, not built yet)."""

from __future__ import annotations

from ampmesh.messenger.v1 import messenger_pb2

from services.runtime.unimplemented import run_unbuilt_service


def main() -> None:
    run_unbuilt_service(
        name="messenger",
        service=messenger_pb2.DESCRIPTOR.services_by_name["MessengerService"],
        reason="webhook delivery is built by issue #6",
        # The mesh identities allowed to call it; any other certificate is refused.
        allowed_callers=("api", "mcpanda", "builder-mcp"),
    )


if __name__ == "__main__":
    main()
