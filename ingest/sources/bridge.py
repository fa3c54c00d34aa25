"""The bridge source: lharries' whatsapp-bridge SQLite store (`messages.db`), read directly.

The store is opened read-only while the bridge may be writing to it. It uses a
rollback journal, so a reader holds a shared lock for as long as one statement
runs: every read here is one short statement, and a busy store (the bridge
committing) is waited for and retried, up to `busy_timeout_seconds`.

`BridgeSource` serves the generic paged interface (`walk_chat`/`run_extract`, and
the monitor, #4); `ingest.sources.bridge_pull` is the fast path that `walake
extract --source bridge` uses for whole pulls.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from ingest.cursor import ChatCursor
from ingest.errors import IngestError
from ingest.frames import PAGE_SCHEMA, empty_page, with_keys
from ingest.schema import local_second
from ingest.sources.bridge_rows import (
    ROW_JSON,
    SECOND_SQL,
    parse_store_rows,
    typed_rows,
)
from ingest.sources.decode import Chat, is_group_jid
from ingest.sources.mcp import STATUS_CHAT

log = logging.getLogger(__name__)
TOP = "~"  # sorts after every "YYYY-MM-DD HH:MM:SS" second


class StoreUnreadable(IngestError):
    """The path is not a bridge store (missing tables, not SQLite)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is not a whatsapp-bridge store ({reason}). Pass the bridge's "
            "messages.db (whatsapp-mcp/whatsapp-bridge/store/messages.db), or create "
            "a sample one with 'walake demo --store PATH' (PATH must not exist yet)."
        )


NOT_SQLITE = "not a SQLite database"
NO_TABLES = "no chats/messages tables"


def check_bridge_store(path: Path) -> None:
    """Fail with `StoreUnreadable` unless `path` is SQLite with chats and messages.

    A store that is locked right now passes: the reads wait for it later.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreUnreadable(path, "no such file" if not path.exists() else "not a file")
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=0)
        try:
            tables = {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return
        reason = NOT_SQLITE if "not a database" in text else f"{NOT_SQLITE}: {text}"
        raise StoreUnreadable(path, reason) from None
    if not {"chats", "messages"} <= tables:
        raise StoreUnreadable(path, NO_TABLES)


class StoreBusy(IngestError):
    """The store stayed locked by a writer for longer than the busy timeout."""

    def __init__(self, path: Path, waited: float) -> None:
        self.path = path
        self.waited = waited
        super().__init__(
            f"The bridge store {path} stayed locked by another process for "
            f"{waited:.0f} s. If the bridge is importing history, wait for it and run "
            "the command again; otherwise find the process holding the lock "
            f"('fuser {path}') and stop it, or raise source.busy_timeout_seconds."
        )


@dataclass
class Page:
    rows: pl.DataFrame  # a page frame (see ingest.frames)
    raw: dict[str, Any]


class BridgeStore:
    """One read-only connection to a store, with waiting and retrying on busy."""

    def __init__(self, path: Path, busy_timeout_seconds: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout_seconds
        self.con: sqlite3.Connection | None = None
        self.busy_waits = 0

    def open(self) -> None:
        if not self.path.is_file():
            raise StoreUnreadable(self.path, "no such file")
        # check_same_thread=False: the pull reads from a worker thread
        self.con = sqlite3.connect(
            f"file:{self.path.resolve()}?mode=ro", uri=True, isolation_level=None,
            timeout=min(1.0, self.busy_timeout), check_same_thread=False,
        )
        self.con.execute("PRAGMA temp_store = FILE")
        try:
            tables = {r[0] for r in self.run(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except StoreUnreadable:
            self.close()
            raise
        if not {"chats", "messages"} <= tables:
            self.close()
            raise StoreUnreadable(self.path, NO_TABLES)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None

    def run(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        """All rows of one statement; the shared lock ends with the statement."""
        return self.retrying(lambda: self._connection().execute(sql, params).fetchall())

    def retrying(self, read: Any) -> Any:
        """`read()`, waiting out a locked store up to the busy timeout."""
        started = time.monotonic()
        delay = 0.05
        while True:
            try:
                return read()
            except sqlite3.DatabaseError as exc:  # OperationalError is one too
                text = str(exc)
                if "locked" not in text and "busy" not in text:
                    if "not a database" in text:
                        raise StoreUnreadable(self.path, NOT_SQLITE) from exc
                    if "no such table" in text or "malformed" in text:
                        raise StoreUnreadable(self.path, text) from exc
                    raise
                waited = time.monotonic() - started
                if waited >= self.busy_timeout:
                    raise StoreBusy(self.path, waited) from exc
                self.busy_waits += 1
                log.warning("bridge store %s is busy (%s); retrying", self.path, text)
                time.sleep(min(delay, max(0.0, self.busy_timeout - waited)))
                delay = min(delay * 2, 1.0)

    def _connection(self) -> sqlite3.Connection:
        if self.con is None:
            self.open()
        assert self.con is not None
        return self.con

    def read_chats(self, include_status: bool = False) -> list[Chat]:
        """Chats with at least one message, most recently active first."""
        rows = self.run(
            "SELECT c.jid, c.name, c.last_message_time FROM chats c "
            "WHERE EXISTS (SELECT 1 FROM messages m WHERE m.chat_jid = c.jid) "
            "ORDER BY c.last_message_time DESC, c.jid"
        )
        chats = [Chat(j, n or "", is_group_jid(j), t) for j, n, t in rows]
        if not include_status:
            chats = [c for c in chats if c.chat_id != STATUS_CHAT]
        return chats

    def read_names(self) -> dict[str, str]:
        return {j: n for j, n in self.run("SELECT jid, name FROM chats") if n}


class BridgeSource:
    """The store behind the paged source interface; one SQL query per window.

    The store has no index on chat or time, so each window scans the messages
    table: right for small pulls (a monitor tick); whole pulls take the fast path.
    """

    name = "bridge"
    key = "bridge"  # its own cursor namespace
    max_page_size = None

    def __init__(
        self, path: Path, tz: ZoneInfo, page_size: int = 5000,
        busy_timeout_seconds: float = 30.0,
    ) -> None:
        self.store = BridgeStore(path, busy_timeout_seconds)
        self.tz = tz
        self.page_size = page_size
        self.calls = 0
        self.retries = 0
        self._names: dict[str, str] | None = None

    async def start(self) -> None:
        self.store.open()

    async def close(self) -> None:
        self.retries = self.store.busy_waits
        self.store.close()

    async def fetch_chats(self, include_status: bool = False) -> list[Chat]:
        return self.store.read_chats(include_status)

    async def fetch_page(
        self,
        chat: Chat,
        lo: datetime | None,
        hi_excl: datetime | None,
        limit: int,
        page: int = 0,
    ) -> Page:
        """Messages of `chat` with lo <= local second < hi_excl, newest first."""
        self.calls += 1
        bounds = (
            chat.chat_id,
            local_second(lo) if lo else "",
            local_second(hi_excl) if hi_excl else TOP,
        )
        sql = (
            f"SELECT {ROW_JSON} FROM messages m WHERE m.chat_jid = ? "
            f"AND {SECOND_SQL} >= ? AND {SECOND_SQL} < ? "
            f"ORDER BY {SECOND_SQL} DESC, m.rowid LIMIT ? OFFSET ?"
        )
        lines = [r[0] for r in self.store.run(sql, (*bounds, limit, limit * page))]
        return Page(self._rows(chat, lines), {
            "store": self.store.path.name,
            "chat_id": chat.chat_id,
            "window": list(bounds[1:]),
            "rows": lines,
        })

    async def changed_chats(self, marks: dict[str, int]) -> set[str]:
        """Chats of `marks` that gained rows above their mark (the store's highest
        rowid when each was last pulled): one read of the rowids above the lowest."""
        if not marks:
            return set()
        found = self.store.run(
            "SELECT chat_jid, max(rowid) FROM messages WHERE rowid > ? "
            "GROUP BY chat_jid", (min(marks.values()),))
        return {jid for jid, top in found if jid in marks and top > marks[jid]}

    async def sweep_late(
        self, chat: Chat, cursor: ChatCursor, held: Callable[[str], set[str]]
    ) -> tuple[pl.DataFrame, list[dict], int]:
        """Rows written since the cursor's `mark` into seconds it already covers, or
        below the start of a chat pulled complete.

        The late rows the monitor would otherwise never see (a delayed delivery, a
        history sync): each such second is read whole, so its ordinals hold, and
        only rows whose keys the lake lacks (`held`) come back, keyed, with their
        raw records and the store's highest rowid now (the chat's next mark).
        """
        (mark,) = self.store.run("SELECT coalesce(max(rowid), 0) FROM messages")[0]
        if cursor.mark is None or not cursor.ranges or mark <= cursor.mark:
            return empty_page(), [], mark
        found = self.store.run(
            f"SELECT DISTINCT {SECOND_SQL} FROM messages m WHERE m.rowid > ? "
            "AND m.rowid <= ? AND m.chat_jid = ?", (cursor.mark, mark, chat.chat_id))
        start = cursor.ranges[-1].lo if cursor.complete else None
        seconds = sorted({sec for (sec,) in found
                          if any(r.lo <= sec < r.hi for r in cursor.ranges)
                          or (start is not None and sec < start)})
        parts: list[pl.DataFrame] = [empty_page()]
        raws: list[dict] = []
        keys: set[str] | None = None
        for second in seconds:
            self.calls += 1
            lines = [r[0] for r in self.store.run(
                f"SELECT {ROW_JSON} FROM messages m WHERE m.chat_jid = ? "
                f"AND {SECOND_SQL} = ? AND m.rowid <= ? ORDER BY m.rowid",
                (chat.chat_id, second, mark))]
            keyed = with_keys(self._rows(chat, lines))
            keys = held(chat.chat_id) if keys is None else keys
            fresh = keyed.filter(~pl.col("message_key").is_in(list(keys)))
            if not fresh.is_empty():
                parts.append(fresh)
                raws.append({"store": self.store.path.name, "chat_id": chat.chat_id,
                             "window": [second, second + TOP], "rows": lines})
        return pl.concat(parts), raws, mark

    def _rows(self, chat: Chat, lines: list[str]) -> pl.DataFrame:
        """The page frame of store rows (JSON lines)."""
        if self._names is None:
            self._names = self.store.read_names()
        blob = "\n".join(lines).encode()
        frame = typed_rows(parse_store_rows(blob), chat, self._names, self.tz)
        return frame.select(list(PAGE_SCHEMA)).cast(PAGE_SCHEMA)
