"""Embedded demo: a synthetic WhatsApp bridge store and an MCP server over it.

`store` writes a SQLite file with the exact schema of the lharries/whatsapp-mcp
bridge, filled with invented chats and messages. `server` serves any such file over
MCP stdio, either like lharries/whatsapp-mcp (text lines) or like the JSON fork.
Nothing here touches the network or real personal data.
"""
