"""Per-chat cursors: which stretches of a chat's history are already in the lake.

A cursor holds ranges of local seconds, newest first. Every second inside a range
is landed completely, except that the newest second of a range may have grown since
(a burst still arriving), so the keys already landed at that second are kept and a
re-read of it adds only what is new. `complete` means the oldest range reaches the
start of the chat's history.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ingest.frames import offsets_by_second


@dataclass
class Range:
    hi: str
    lo: str
    hi_keys: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"hi": self.hi, "lo": self.lo, "hi_keys": self.hi_keys}


@dataclass
class ChatCursor:
    ranges: list[Range] = field(default_factory=list)
    complete: bool = False
    count: int = 0
    # UTC offset (minutes) of range boundary seconds, as the source reported them:
    # servers that compare instants need them to bound the next walk exactly
    offsets: dict[str, int] = field(default_factory=dict)
    # Bridge source only: the store's highest rowid when this chat was last swept
    # for late rows (older timestamps written later); None before the first pull.
    mark: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ChatCursor:
        if not data:
            return cls()
        ranges = [
            Range(r["hi"], r["lo"], list(r.get("hi_keys", []))) for r in data["ranges"]
        ]
        return cls(
            ranges,
            bool(data.get("complete")),
            int(data.get("count", 0)),
            dict(data.get("offsets", {})),
            data.get("mark"),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ranges": [r.to_json() for r in self.ranges],
            "complete": self.complete,
            "count": self.count,
        }
        if self.offsets:
            data["offsets"] = self.offsets
        if self.mark is not None:
            data["mark"] = self.mark
        return data

    def keep_offsets(self, rows: pl.DataFrame) -> None:
        """Learn offsets from a page frame, keeping only those of range boundaries."""
        bounds = {second for r in self.ranges for second in (r.hi, r.lo)}
        known = {**self.offsets, **offsets_by_second(rows, bounds)}
        self.offsets = {s: known[s] for s in bounds if s in known}

    def copy(self) -> ChatCursor:
        return deepcopy(self)

    @property
    def newest(self) -> str | None:
        return self.ranges[0].hi if self.ranges else None

    @property
    def oldest(self) -> str | None:
        return self.ranges[-1].lo if self.ranges else None
