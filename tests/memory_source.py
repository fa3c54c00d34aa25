"""An in-memory paged source with the lharries paging semantics, for walker properties.

It serves a list of (local second, text) rows per chat, newest first with ties in a
fixed order, honours lo/hi bounds on whole seconds and a page limit, and can be
told to insert new rows between calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

from ingest.frames import page_frame
from ingest.sources.decode import Chat, localize


@dataclass
class FakePage:
    rows: pl.DataFrame
    raw: dict


@dataclass
class MemorySource:
    history: list[tuple[datetime, str]]
    page_size: int = 7
    max_page_size: int | None = None
    calls: int = 0
    chat: Chat = field(default_factory=lambda: Chat("c1@s.whatsapp.net", "C", False))

    async def fetch_page(self, chat, lo, hi_excl, limit, page=0):  # noqa: ANN001
        self.calls += 1
        chosen = [
            (ts, text) for ts, text in self.history
            if (lo is None or ts >= lo) and (hi_excl is None or ts < hi_excl)
        ]
        chosen.sort(key=lambda item: item[0], reverse=True)
        start = page * limit
        rows = [self.row(ts, text) for ts, text in chosen[start : start + limit]]
        return FakePage(page_frame(rows), {"n": len(rows)})

    def row(self, ts: datetime, text: str) -> dict:
        sent_at, offset = localize(ts, ZoneInfo("UTC"))
        return {
            "source": "mcp", "chat_id": self.chat.chat_id, "chat_name": "C",
            "sent_at_local": ts, "sent_at": sent_at, "utc_offset_minutes": offset,
            "text": text,
        }
