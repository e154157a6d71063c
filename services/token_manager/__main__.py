"""`python -m services.token_manager`: the token-manager service (its contract, not built yet)."""

from __future__ import annotations

from ampmesh.token.v1 import token_manager_pb2

from services.runtime.unimplemented import run_unbuilt_service


def main() -> None:
    run_unbuilt_service(
        name="token-manager",
        service=token_manager_pb2.DESCRIPTOR.services_by_name["TokenManagerService"],
        reason="credentials and refresh are built by issue #5",
        # The mesh identities allowed to call it; any other certificate is refused.
        allowed_callers=("api", "temporal"),
    )


if __name__ == "__main__":
    main()
