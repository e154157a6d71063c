"""`python -m services.mcpanda`: MCP tools for integration testing, over streamable HTTP."""

from __future__ import annotations

from services.mcpanda.settings import McpandaSettings
from services.mcpanda.tools import build_server
from services.runtime.entrypoint import run_service
from services.runtime.mcp_service import mcp_services


def main() -> None:
    run_service(name="mcpanda", services=mcp_services(build_server), settings_cls=McpandaSettings)


if __name__ == "__main__":
    main()
