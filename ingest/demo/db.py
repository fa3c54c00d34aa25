"""Read-only access to a bridge store, with a short retry while a writer commits.

Every tool call opens one connection (`file:...?mode=ro`), runs its queries and
closes it, so a store that the bridge (or `append_messages`) is writing to is read
at a consistent point per call and never modified by the server.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

T = TypeVar("T")

LOCK_ATTEMPTS = 5
LOCK_PAUSE_S = 0.05


class ToolFailure(Exception):
    """A tool answer with `isError: true`; the message is the exact client text."""


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Open `path` read-only; it is never created, even when missing."""
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=1.0, check_same_thread=False)


def is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "database is locked" in text or "database is busy" in text


def with_store(path: Path, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` on a fresh read-only connection, retrying briefly if locked."""
    for attempt in range(LOCK_ATTEMPTS):
        conn = connect_read_only(path)
        try:
            return work(conn)
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or attempt == LOCK_ATTEMPTS - 1:
                raise
        finally:
            conn.close()
        time.sleep(LOCK_PAUSE_S * (attempt + 1))
    raise AssertionError("unreachable")


class SenderNames:
    """The lharries sender-name lookup, cached for the life of one connection.

    Exact `chats.jid` match first, then the first chat whose JID contains the
    number (which can be a legacy group created by that number), else the raw
    sender. A matched chat with an empty name also yields the raw sender.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._cache: dict[str, str] = {}

    def name(self, sender: str) -> str:
        if sender not in self._cache:
            self._cache[sender] = self._lookup(sender)
        return self._cache[sender]

    def chat_name(self, jid: str) -> str | None:
        """Exact-match name only, for the JSON profile's `sender_name`."""
        row = self.conn.execute(
            "SELECT name FROM chats WHERE jid = ? LIMIT 1", (jid,)
        ).fetchone()
        return row[0] if row and row[0] else None

    def _lookup(self, sender: str) -> str:
        row = self.conn.execute(
            "SELECT name FROM chats WHERE jid = ? LIMIT 1", (sender,)
        ).fetchone()
        if not row:
            number = sender.split("@")[0]
            row = self.conn.execute(
                "SELECT name FROM chats WHERE jid LIKE ? LIMIT 1", (f"%{number}%",)
            ).fetchone()
        return row[0] if row and row[0] else sender
