"""builder-mcp: MCP tools for builders (catalog, manifests, installations, operations)."""
