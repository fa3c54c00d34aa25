"""Sources: where messages come from (an MCP server, the bridge store, exports)."""
