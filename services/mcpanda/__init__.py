"""mcpanda: MCP tools for integration testing: drive every public RPC of ampmesh."""
