"""`python -m services.builder_mcp`: MCP tools for builders, over streamable HTTP."""

from __future__ import annotations

from services.builder_mcp.tools import BuilderMcpSettings, build_server
from services.runtime.entrypoint import run_service
from services.runtime.mcp_service import mcp_services


def main() -> None:
    run_service(
        name="builder-mcp", services=mcp_services(build_server), settings_cls=BuilderMcpSettings
    )


if __name__ == "__main__":
    main()
