"""A stand-in WhatsApp MCP server (stdio) over any store with the bridge's schema.

    python -m ingest.demo.server --store PATH [--profile lharries|json]

`lharries` (default) answers like lharries/whatsapp-mcp on mcp 1.6.0: text-only
results, one compact JSON block per chat, the formatted message lines, the same SQL
quirks (see `ingest.demo.lharries`), server name `whatsapp`. It is faster than
upstream: sender names are cached per call and each call uses one read-only
connection that retries briefly while the store is locked. `json` answers like the
verygoodplugins fork (see `ingest.demo.jsonapi`), with `structuredContent`.

Faults for tests are set with `WALAKE_DEMO_FAULTS` (see `ingest.demo.faults`).
The store is only read; a missing store, a file that is not a bridge store
(SQLite with chats and messages tables) or a bad fault spec exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult

from ingest.demo import jsonapi
from ingest.demo import lharries as lh
from ingest.demo.db import ToolFailure, with_store
from ingest.demo.faults import (
    ENV_VAR, GARBAGE, FaultSpecError, Faults, cut_at_record, error_result,
    text_result, truncated, validation_failure,
)
from ingest.sources.bridge import StoreUnreadable, check_bridge_store

PROFILES = ("lharries", "json")
Work = Callable[[sqlite3.Connection, dict], list]


def _stdout_line(text: str) -> None:
    # NOTE: deliberate. Upstream prints database errors on stdout, the JSON-RPC
    # channel; clients must survive the stray line.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Runner:
    """Runs one tool call: faults first, then the profile's query and encoding."""

    def __init__(self, store: Path, profile: str, faults: Faults) -> None:
        self.store = store
        self.profile = profile
        self.faults = faults

    async def call(self, name: str, work: Work, args: dict) -> CallToolResult:
        faults, n = self.faults, self.faults.next_call()
        if faults.exit_after_calls and n > faults.exit_after_calls:
            os._exit(3)
        if faults.slow_ms:
            await anyio.sleep(faults.slow_ms / 1000)
        if n == faults.hang_on_call:
            await anyio.sleep_forever()
        if n == faults.error_on_call:
            return error_result(
                f"Error executing tool {name}: injected fault (error_on_call={n})"
            )

        result = self._answer(name, work, args)
        if n == faults.noise_on_call:
            _stdout_line("Database error: injected stray line (noise_on_call)")
        if faults.validation_error and name != "get_last_interaction":
            result = validation_failure(name, result)
        if n == faults.garbage_on_call:
            result = text_result([GARBAGE])
        if n == faults.truncate_on_call:
            result = truncated(result)
        if n == faults.cut_at_record_on_call:
            result = cut_at_record(result)
        return result

    def _answer(self, name: str, work: Work, args: dict) -> CallToolResult:
        prefix = f"Error executing tool {name}: "
        try:
            found = with_store(self.store, lambda conn: work(conn, args))
        except ToolFailure as exc:
            return error_result(prefix + str(exc))
        except sqlite3.Error as exc:
            if self.profile == "json" or name == "get_message_context":
                return error_result(prefix + str(exc))
            _stdout_line(f"Database error: {exc}")
            return text_result([])
        if self.profile == "lharries":
            return text_result(found)
        blocks = [json.dumps(item, indent=2, ensure_ascii=False) for item in found]
        return text_result(blocks, {"result": found})


def _register_lharries(app: MCPServer, run: Runner) -> None:
    tool = app.tool(structured_output=False)

    @tool
    async def list_chats(
        query: str | None = None, limit: int = 20, page: int = 0,
        include_last_message: bool = True, sort_by: str = "last_active",
    ) -> CallToolResult:
        """Get WhatsApp chats matching the criteria, one JSON object per chat."""
        return await run.call("list_chats", lh.list_chats, locals())

    @tool
    async def list_messages(
        after: str | None = None, before: str | None = None,
        sender_phone_number: str | None = None, chat_jid: str | None = None,
        query: str | None = None, limit: int = 20, page: int = 0,
        include_context: bool = True, context_before: int = 1, context_after: int = 1,
    ) -> CallToolResult:
        """Get WhatsApp messages, newest first, as formatted text lines."""
        return await run.call("list_messages", lh.list_messages, locals())

    @tool
    async def get_chat(
        chat_jid: str, include_last_message: bool = True
    ) -> CallToolResult:
        """Get WhatsApp chat metadata by JID."""
        return await run.call("get_chat", lh.get_chat, locals())

    @tool
    async def get_direct_chat_by_contact(sender_phone_number: str) -> CallToolResult:
        """Get the direct chat whose JID contains this phone number."""
        return await run.call("get_direct_chat_by_contact",
                              lh.get_direct_chat_by_contact, locals())

    @tool
    async def get_contact_chats(
        jid: str, limit: int = 20, page: int = 0
    ) -> CallToolResult:
        """Get chats involving the contact (one row per distinct message)."""
        return await run.call("get_contact_chats", lh.get_contact_chats, locals())

    @tool
    async def get_last_interaction(jid: str) -> CallToolResult:
        """Get the most recent message involving the contact, as one text line."""
        return await run.call("get_last_interaction", lh.get_last_interaction, locals())

    @tool
    async def get_message_context(
        message_id: str, before: int = 5, after: int = 5
    ) -> CallToolResult:
        """Get a message with the messages before and after it in its chat."""
        return await run.call("get_message_context", lh.get_message_context, locals())

    @tool
    async def search_contacts(query: str) -> CallToolResult:
        """Search contacts (non-group chats) by name or JID; at most 50."""
        return await run.call("search_contacts", lh.search_contacts, locals())


def _register_json(app: MCPServer, run: Runner) -> None:
    tool = app.tool(structured_output=False)

    @tool
    async def list_chats(
        query: str | None = None, limit: int = 50, page: int = 0,
        include_last_message: bool = True, sort_by: str = "last_active",
    ) -> CallToolResult:
        """Get WhatsApp chats as JSON objects (limit capped at 200)."""
        return await run.call("list_chats", jsonapi.list_chats, locals())

    @tool
    async def list_messages(
        after: str | None = None, before: str | None = None,
        sender_phone_number: str | None = None, chat_jid: str | None = None,
        query: str | None = None, limit: int = 50, page: int = 0,
        include_context: bool = True, context_before: int = 1, context_after: int = 1,
        sort_by: str = "newest",
    ) -> CallToolResult:
        """Get WhatsApp messages as JSON objects (limit capped at 500)."""
        return await run.call("list_messages", jsonapi.list_messages, locals())


def build_server(store: Path, profile: str = "lharries", faults: Faults | None = None):
    """An `MCPServer` over `store`; usable in-process with `mcp.Client(app)`."""
    version = "1.6.0" if profile == "lharries" else "1.28.1"
    app = MCPServer("whatsapp", version=version)
    runner = Runner(Path(store), profile, faults or Faults())
    (_register_lharries if profile == "lharries" else _register_json)(app, runner)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="bridge SQLite file")
    parser.add_argument("--profile", choices=PROFILES, default="lharries")
    args = parser.parse_args(argv)
    if not args.store.is_file():
        parser.exit(2, f"error: store {args.store} does not exist; create one with "
                       "python -m ingest.demo.store PATH\n")
    try:
        check_bridge_store(args.store)
    except StoreUnreadable as exc:
        parser.exit(2, f"error: {exc}\n")
    try:
        faults = Faults.parse(os.environ.get(ENV_VAR))
    except FaultSpecError as exc:
        parser.exit(2, f"error: {exc}\n")
    build_server(args.store, args.profile, faults).run()


if __name__ == "__main__":
    main()
