"""Tiny lakes for the view and report tests: literal rows, real Parquet, a manifest.

Not a conftest (the lead owns tests/conftest.py): import it as a helper module.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from ingest.lake.manifest import Manifest
from ingest.schema import MESSAGE_SCHEMA

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC


def msg(text: str | None = "hello", **fields: Any) -> dict[str, Any]:
    """One message row with sensible defaults; `at` is minutes after T0."""
    minutes = fields.pop("at", 0)
    sent_at = T0 + timedelta(minutes=minutes)
    key = fields.pop("key", None) or hashlib.md5(
        f"{fields.get('chat_id', 'c1')}|{minutes}|{text}".encode()
    ).hexdigest()
    row: dict[str, Any] = {
        "message_key": key,
        "source": "export",
        "source_message_id": None,
        "chat_id": "c1",
        "chat_name": "Chat One",
        "is_group": False,
        "sender_id": "alice",
        "sender_name": "Alice",
        "is_from_me": False,
        "sent_at": sent_at,
        "sent_at_local": sent_at.replace(tzinfo=None) + timedelta(hours=1),
        "utc_offset_minutes": 60,
        "text": text,
        "media_type": None,
        "media_filename": None,
        "media_size": None,
        "is_system": False,
        "is_deleted": False,
        "is_edited": False,
    }
    row.update(fields)
    return row


def write_batch(
    lake: Path,
    rows: list[dict[str, Any]],
    *,
    source: str = "export",
    record: bool = True,
    day: str = "2024-03-04",
) -> Path:
    """Write rows as one Parquet batch; record it in the manifest unless told not to."""
    manifest = Manifest.load(lake)
    batch_id = manifest.take_batch_id()
    relative = f"messages/src={source}/day={day}/{batch_id}.parquet"
    path = lake / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime(2024, 3, 10, tzinfo=UTC)
    columns = {name: [r.get(name) for r in rows] for name in MESSAGE_SCHEMA}
    columns["batch_id"] = [batch_id] * len(rows)
    columns["ingested_at"] = [now] * len(rows)
    pl.DataFrame(columns, schema=MESSAGE_SCHEMA, strict=False).write_parquet(path)
    if record:
        manifest.record_batch(batch_id, {"source": source, "rows": len(rows),
                                         "files": {"messages": relative}})
    manifest.save()  # the sequence moves even for an unrecorded (crashed) batch
    return path


def make_lake(tmp_path: Path, *batches: list[dict[str, Any]]) -> Path:
    lake = tmp_path / "lake"
    lake.mkdir(parents=True, exist_ok=True)
    for rows in batches:
        write_batch(lake, rows)
    return lake
