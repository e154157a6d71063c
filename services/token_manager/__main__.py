"""`python -m services.token_manager`: the token-manager service."""

from __future__ import annotations

from ampmesh.token.v1 import token_manager_pb2

from services.runtime.entrypoint import run_service
from services.runtime.unimplemented import unimplemented_service

SERVICE = token_manager_pb2.DESCRIPTOR.services_by_name["TokenManagerService"]
# The mesh identities allowed to call this service; any other certificate is refused.
CALLERS = ("api", "temporal")


def main() -> None:
    run_service(
        name="token-manager",
        services=[unimplemented_service(SERVICE, "credentials and refresh are built by issue #5")],
        allowed_callers=CALLERS,
    )


if __name__ == "__main__":
    main()
