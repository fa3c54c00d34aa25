"""The MCP source: chats and pages of messages from one WhatsApp MCP server process.

Every call is retried with exponential backoff on faults a retry can help (timeout,
a crashed or garbled server, which is restarted first). Errors a retry cannot help
(an mcp release too new for the server, a missing tool) are raised at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, Any
from zoneinfo import ZoneInfo

import polars as pl

from ingest.errors import ResponseUnreadable, RetryableError, ToolFailed
from ingest.frames import offsets_by_second
from ingest.schema import local_second
from ingest.sources.decode import (
    Chat,
    decode_chats,
    decode_json_messages,
    decode_text_messages,
)
from ingest.sources.mcp_client import McpConnection, ServerCommand, ToolResult
from ingest.sources.profiles import Profile

log = logging.getLogger(__name__)
STATUS_CHAT = "status@broadcast"
AFTER_MARGIN = timedelta(hours=26)  # wider than any two zones' offsets apart
MAX_REMEMBERED_OFFSETS = 200_000


@dataclass
class Page:
    """One answer of the server: its page frame (no keys yet) and the raw record."""

    rows: pl.DataFrame
    raw: dict[str, Any]


@dataclass(frozen=True)
class CallPolicy:
    timeout_seconds: float = 30.0
    retry_attempts: int = 3
    call_delay_seconds: float = 0.0
    backoff_seconds: float = 0.5


class McpSource:
    """A source backed by one server process (use several for concurrency)."""

    name = "mcp"

    def __init__(
        self,
        command: ServerCommand,
        profile: Profile,
        tz: ZoneInfo,
        policy: CallPolicy,
        errlog: IO[str] | None = None,
    ) -> None:
        self.command = command
        self.profile = profile
        self.tz = tz
        self.policy = policy
        self.connection = McpConnection(command, policy.timeout_seconds, errlog)
        self._offsets: dict[str, int] = {}
        self.calls = 0
        self.retries = 0
        self._last_call = 0.0

    @property
    def page_size(self) -> int:
        return self.profile.page_size

    @property
    def max_page_size(self) -> int | None:
        return self.profile.max_page_size

    @property
    def confirm_short_pages(self) -> bool:
        return self.profile.confirm_short_pages

    @property
    def key(self) -> str:
        """Cursor namespace: one per server kind, so profiles don't share cursors."""
        return f"mcp:{self.profile.name}"

    async def start(self) -> None:
        await self.connection.start()

    async def close(self) -> None:
        await self.connection.close()

    async def fetch_chats(self, include_status: bool = False) -> list[Chat]:
        """Every chat, most recently active first, de-duplicated by jid."""
        p = self.profile
        texts: list[str] = []
        structured: list[dict] = []
        page = 0
        while True:
            args = dict(p.list_chats_args)
            if p.chat_page_size:
                args.update({p.limit_arg: p.chat_page_size, p.page_arg: page})
            result = await self.call(p.list_chats_tool, args)
            chunk = decode_chats(result.texts, result.structured)
            texts.extend(result.texts)
            if isinstance(result.structured, dict):
                structured.extend(result.structured.get("result") or [])
            if not p.chat_page_size or len(chunk) < p.chat_page_size:
                break
            page += 1
        chats = decode_chats(texts, {"result": structured} if structured else None)
        if not include_status:
            chats = [c for c in chats if c.chat_id != STATUS_CHAT]
        return chats

    async def fetch_page(
        self,
        chat: Chat,
        lo: datetime | None,
        hi_excl: datetime | None,
        limit: int,
        page: int = 0,
    ) -> Page:
        """Messages of `chat` with lo <= local second < hi_excl, newest first."""
        p = self.profile
        args: dict[str, Any] = dict(p.message_fixed_args)
        args[p.chat_arg] = chat.chat_id
        args[p.limit_arg] = limit
        args[p.page_arg] = page
        if lo is not None:
            args[p.after_arg] = self.bound(lo, after=True)
        if hi_excl is not None:
            args[p.before_arg] = self.bound(hi_excl, after=False)
        attempts = self.policy.retry_attempts + 1
        for attempt in range(1, attempts + 1):
            result = await self.call(p.list_messages_tool, args)
            try:
                if p.decoder == "text":
                    rows = decode_text_messages(result.texts, chat, self.tz)
                else:
                    rows = decode_json_messages(result.texts, result.structured, chat,
                                                self.tz)
                self._learn_offsets(rows)
                break
            except ResponseUnreadable as exc:
                # A garbled answer may be a one-off (a dying server): ask again
                if attempt == attempts:
                    raise
                self.retries += 1
                delay = self.policy.backoff_seconds * 2 ** (attempt - 1)
                log.warning("%s (attempt %d of %d); asking again in %.1f s",
                            exc, attempt, attempts, delay)
                await asyncio.sleep(delay)
        raw = {
            "tool": p.list_messages_tool,
            "arguments": args,
            "chat_id": chat.chat_id,
            "chat_name": chat.name,
            "received_at": datetime.now().astimezone().isoformat(),
            "texts": result.texts,
            "structured": result.structured,
        }
        return Page(rows, raw)

    def bound(self, second: datetime, after: bool) -> str:
        """A time bound as the server compares it (`after` includes `second`).

        lharries compares the bound as text against stored `YYYY-MM-DD HH:MM:SS+HH:MM`
        strings: the naive second sorts before its own stored values, so as `after`
        it includes that second and as `before` it excludes it.

        Servers that compare instants get an aware bound. A `before` bound is always
        a second seen in an answer, so its own offset is used; an `after` bound may
        come from an earlier run, so it reaches back a day further than needed (the
        walker drops what lies below it) rather than trust the configured zone.
        """
        if self.profile.bounds == "naive":
            return second.strftime("%Y-%m-%dT%H:%M:%S")
        if after:
            return (second - AFTER_MARGIN).replace(tzinfo=self.tz).isoformat()
        # The bound is a second seen in an answer, or the one just after it
        minutes = self._offsets.get(local_second(second))
        if minutes is None:
            minutes = self._offsets.get(local_second(second - timedelta(seconds=1)))
        if minutes is None:
            return second.replace(tzinfo=self.tz).isoformat()
        return second.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()

    def learn_offsets(self, offsets: dict[str, int]) -> None:
        """Offsets of seconds a cursor recorded in an earlier run."""
        self._offsets.update(offsets)

    def _learn_offsets(self, rows: pl.DataFrame) -> None:
        """Remember each second's UTC offset as the server reported it (for bounds
        that name an instant; naive bounds need none)."""
        if self.profile.bounds == "naive":
            return
        if len(self._offsets) > MAX_REMEMBERED_OFFSETS:
            self._offsets.clear()
        self._offsets.update(offsets_by_second(rows))

    async def call(self, tool: str, args: dict[str, Any]) -> ToolResult:
        """One tool call with pacing and retries; restarts a server that died."""
        attempts = self.policy.retry_attempts + 1
        for attempt in range(1, attempts + 1):
            await self._pace()
            generation = self.connection.generation
            try:
                self.calls += 1
                return await self.connection.call(tool, args)
            except RetryableError as exc:
                if attempt == attempts:
                    raise
                self.retries += 1
                delay = self.policy.backoff_seconds * 2 ** (attempt - 1)
                log.warning("%s (attempt %d of %d); retrying in %.1f s",
                            exc, attempt, attempts, delay)
                await asyncio.sleep(delay)
                await self._restart(generation)
            except ToolFailed as exc:
                if "Unknown tool" in exc.detail:
                    from ingest.errors import ToolMissing

                    tools = await self.connection.list_tools()
                    raise ToolMissing(tool, [t.name for t in tools]) from exc
                raise
        raise AssertionError("unreachable")

    async def _pace(self) -> None:
        delay = self.policy.call_delay_seconds
        if delay <= 0:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_call + delay - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_call = loop.time()

    async def _restart(self, generation: int) -> None:
        """Restart a server that failed; a failed restart is one more failed try."""
        try:
            await self.connection.restart(generation)
        except RetryableError as exc:
            log.warning("restarting the server failed: %s", exc)
