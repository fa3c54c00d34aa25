"""LakeWriter: the single writer of a lake. Takes the lock, lands batches, records them.

A batch is landed in three steps, each safe to interrupt:
1. the raw payload (.jsonl.zst) and the typed rows (.parquet) are written under
   temporary names, fsynced and renamed into their partitions;
2. the manifest gains the batch and the cursors it moves, and is saved atomically;
3. only now does the batch count. Files from step 1 whose manifest save never
   happened are removed when the next writer opens the lake.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import zstandard

from ingest.errors import LakeLocked
from ingest.frames import source_frame
from ingest.lake.crash import crash_point
from ingest.lake.files import (
    TEMP_PREFIX,
    ensure_private_dir,
    fsync_dir,
    publish,
    temp_path_for,
)
from ingest.lake.manifest import DATA_LAYERS, Manifest
from ingest.lake.new_keys import KeyHashes
from ingest.schema import MESSAGE_SCHEMA, SOURCE_COLUMNS, SOURCE_SCHEMA

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
LAYERS = DATA_LAYERS  # folders whose files the manifest lists
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class BatchInfo:
    batch_id: str
    source: str
    rows: int
    raw_bytes: int
    parquet_bytes: int
    chats: tuple[str, ...]
    new_rows: int = 0  # rows whose keys the lake held for no source before


@dataclass
class CursorMove:
    """A cursor that moves when its batch is recorded."""

    source_key: str
    chat_id: str
    cursor: dict[str, Any]


@dataclass
class PendingBatch:
    source: str
    rows: list[dict] = field(default_factory=list)
    raw: list[dict] = field(default_factory=list)
    moves: list[CursorMove] = field(default_factory=list)
    chats: dict[str, tuple[str | None, bool]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # Rows already in columns (SOURCE_COLUMNS, typed as MESSAGE_SCHEMA): a fast path
    # for sources that build frames themselves; they land together with `rows`.
    frames: list[pl.DataFrame] = field(default_factory=list)
    # Raw records a source encoded itself (`encode_raw`'s bytes) and how many records
    # the manifest counts for them: they come first in the raw file, then `raw`. The
    # blocklist does not read them: the source has left forgotten rows out.
    raw_encoded: bytes = b""
    raw_encoded_records: int = 0
    # The source checked that every key is new to the lake and unique in the batch
    # (an import keeps only the rows whose keys the lake lacked when it started,
    # numbered apart within the file): the writer need not look them up again.
    keys_new: bool = False

    @property
    def row_count(self) -> int:
        return len(self.rows) + sum(f.height for f in self.frames)


def make_new_lake_private(lake: Path) -> None:
    """A folder becoming a lake now (no manifest yet, ours) is made 0700 first.

    A clone's `lake/` comes with the mode git gave it; an existing lake's mode is
    the user's choice and is only warned about.
    """
    if (lake / "manifest.json").exists() or lake.stat().st_uid != os.getuid():
        return
    os.chmod(lake, 0o700)


def acquire_lock(lake: Path) -> int:
    """Take the lake's writer lock or fail at once; released when the process ends."""
    path = lake / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
        os.close(fd)
        raise LakeLocked(lake, holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
    return fd


def warn_if_not_private(lake: Path) -> str | None:
    """Warn (and return the warning) when others own or can read the lake folder."""
    info = os.stat(lake)
    problems = []
    if info.st_mode & 0o077:
        problems.append(f"its mode is {info.st_mode & 0o777:o}, so other users can "
                        "reach it")
    if info.st_uid != os.getuid():
        problems.append(f"it is owned by user id {info.st_uid}, not you")
    if not problems:
        return None
    text = (f"The lake folder {lake} is not private: {' and '.join(problems)}. It holds "
            f"private conversations: run 'chmod 700 {lake}' (and check its owner).")
    log.warning("%s", text)
    return text


def remove_leftovers(lake: Path, manifest: Manifest) -> list[str]:
    """Delete batch files no recorded batch owns (a crash between write and record)."""
    recorded = manifest.recorded_paths()
    removed = []
    for temp in lake.glob(f"{TEMP_PREFIX}*"):
        temp.unlink()
        removed.append(temp.name)
    for layer in LAYERS:
        root = lake / layer
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            relative = path.relative_to(lake).as_posix()
            if path.name.startswith(TEMP_PREFIX) or relative not in recorded:
                path.unlink()
                removed.append(relative)
    if removed:
        log.warning("removed %d unrecorded batch file(s) left by an interrupted run",
                    len(removed))
    return removed


def frame_rows(
    rows: list[dict],
    batch_id: str,
    ingested_at: datetime,
    frames: Iterable[pl.DataFrame] = (),
) -> pl.DataFrame:
    """The typed rows of a batch: dict rows first, then ready frames, in order."""
    parts = []
    if rows:
        parts.append(source_frame(rows))
    parts.extend(f.select(SOURCE_COLUMNS).cast(SOURCE_SCHEMA) for f in frames)
    if not parts:
        parts.append(pl.DataFrame(schema=SOURCE_SCHEMA))
    frame = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
    return frame.with_columns(
        pl.lit(batch_id, pl.String()).alias("batch_id"),
        pl.lit(ingested_at, MESSAGE_SCHEMA["ingested_at"]).alias("ingested_at"),
    ).select(list(MESSAGE_SCHEMA))


def encode_raw(raw: Iterable[dict | bytes]) -> bytes:
    """zstd JSON lines: one line per dict record; a bytes record is lines already.

    Level 1: on message JSON it packs as tightly as level 3 (7.5x MCP pages, 8.3x
    bridge rows) in two thirds of the time; compaction packs harder later.
    """
    buffer = io.BytesIO()
    with zstandard.ZstdCompressor(level=1).stream_writer(buffer, closefd=False) as out:
        for record in raw:
            if isinstance(record, bytes):
                out.write(record if record.endswith(b"\n") else record + b"\n")
                continue
            out.write(_encoder.encode(record))
            out.write(b"\n")
    return buffer.getvalue()


class LakeWriter:
    """Opens a lake for writing. Use as a context manager; one per lake at a time."""

    def __init__(self, lake: Path) -> None:
        self.lake = lake
        self._lock_fd: int | None = None
        self.manifest: Manifest | None = None
        self.leftovers: list[str] = []
        self.key_hashes: KeyHashes | None = None  # opened with the manifest

    @classmethod
    def open(cls, lake: Path) -> LakeWriter:
        writer = cls(Path(lake))
        writer.__enter__()
        return writer

    def __enter__(self) -> LakeWriter:
        if self.lake.is_dir() and not (self.lake / "manifest.json").exists():
            Manifest.load(self.lake)  # a folder it refuses is left as it was found
        ensure_private_dir(self.lake)
        make_new_lake_private(self.lake)
        warn_if_not_private(self.lake)
        self._lock_fd = acquire_lock(self.lake)
        self.manifest = Manifest.load(self.lake)
        if not self.manifest.path.exists():
            # Saved before any batch file exists, so that batch files without a
            # manifest can only mean a lost manifest (Manifest.load refuses those).
            self.manifest.save()
        self.leftovers = remove_leftovers(self.lake, self.manifest)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def held_keys(self, chat_id: str, source: str | None = None) -> pl.Series:
        """message_keys the lake holds for one chat (from `source` only, if given)."""
        assert self.manifest is not None, "use LakeWriter as a context manager"
        files = [str(p) for p in self.manifest.parquet_files("messages") if p.exists()]
        if not files:
            return pl.Series("message_key", [], pl.String())
        wanted = pl.col("chat_id") == chat_id
        if source is not None:
            wanted &= pl.col("source") == source
        return (
            pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore")
            .filter(wanted)
            .select("message_key")
            .collect()
            .to_series()
        )

    def partition(self, layer: str, source: str, now: datetime) -> Path:
        folder = self.lake / layer / f"src={source}" / f"day={now:%Y-%m-%d}"
        return ensure_private_dir(folder)

    def commit(self, batch: PendingBatch) -> BatchInfo | None:
        """Land one batch and record it; the cursors it carries move with it.

        A batch without rows only moves its cursors (nothing to write); None then.
        """
        assert self.manifest is not None, "use LakeWriter as a context manager"
        manifest = self.manifest
        if manifest.data.get("blocklist", {}).get("chats") or \
                manifest.data.get("blocklist", {}).get("senders"):
            from ingest.lake.blocklist import without_blocked  # forgotten on request

            batch = without_blocked(manifest, batch)
        rows = batch.row_count
        if not rows:
            self._move_cursors(batch)
            manifest.save()
            return None
        now = datetime.now(UTC)
        batch_id = manifest.take_batch_id()

        raw_path = self.partition("raw", batch.source, now) / f"{batch_id}.jsonl.zst"
        raw = batch.raw_encoded + (encode_raw(batch.raw) if batch.raw or
                                   not batch.raw_encoded else b"")
        raw_bytes = self._write_file(raw_path, raw)
        crash_point("raw_written")
        parquet_path = self.partition("messages", batch.source, now) / f"{batch_id}.parquet"
        frame = frame_rows(batch.rows, batch_id, now, batch.frames)
        if self.key_hashes is None or self.key_hashes.manifest is not manifest:
            self.key_hashes = KeyHashes(manifest)
        if batch.keys_new:
            held, new_keys = 0, True
        else:
            held = self.key_hashes.held_count(frame)
            new_keys = self.key_hashes.all_new(frame, held)
        parquet_bytes = self._write_parquet(parquet_path, frame)
        crash_point("parquet_written")

        chats = tuple(sorted(batch.chats))
        manifest.record_batch(batch_id, {
            "source": batch.source,
            "rows": rows,
            "raw_records": len(batch.raw) + batch.raw_encoded_records,
            "created_at": now.isoformat(),
            "chats": list(chats),
            "files": {
                "raw": raw_path.relative_to(self.lake).as_posix(),
                "messages": parquet_path.relative_to(self.lake).as_posix(),
            },
            "bytes": {"raw": raw_bytes, "messages": parquet_bytes},
            # Only when true: the `messages` view then looks for copies of this
            # batch's keys no more (ingest/views.py key_check_sql)
            **({"new_keys": True} if new_keys else {}),
            **batch.extra,
        })
        self._move_cursors(batch)
        manifest.save()
        self.key_hashes.note(frame)
        crash_point("batch_recorded")
        return BatchInfo(batch_id, batch.source, rows, raw_bytes,
                         parquet_bytes, chats, rows - (held or 0))

    def _move_cursors(self, batch: PendingBatch) -> None:
        assert self.manifest is not None
        for chat_id, (name, is_group) in batch.chats.items():
            self.manifest.note_chat(chat_id, name, is_group)
        for move in batch.moves:
            self.manifest.set_cursor(move.source_key, move.chat_id, move.cursor)

    def _write_file(self, path: Path, data: bytes) -> int:
        temp = temp_path_for(path)
        with open(temp, "wb", opener=_private_opener) as handle:
            handle.write(data)
        publish(temp, path)
        return len(data)

    def _write_parquet(self, path: Path, frame: pl.DataFrame) -> int:
        temp = temp_path_for(path)
        # Level 1: a fourth less CPU than 3 for ~10% more bytes (messages); as for
        # the raw layer, compaction packs harder later (lake/rewrite.py, level 6)
        frame.write_parquet(temp, compression="zstd", compression_level=1)
        publish(temp, path)
        return path.stat().st_size

    def commit_table(
        self,
        layer: str,
        source: str,
        frame: pl.DataFrame,
        marks: dict[str, dict[str, Any]] | None = None,
    ) -> BatchInfo | None:
        """Land rows of another lake table (e.g. the monitor's alerts) as one file.

        The file is recorded like a message batch (under files[layer], so views read
        it through `Manifest.parquet_files(layer)`), and `marks` update top-level
        manifest sections in the same save: both count, or neither. No rows: only
        the marks are saved, and None is returned.
        """
        assert self.manifest is not None, "use LakeWriter as a context manager"
        manifest = self.manifest
        for section, values in (marks or {}).items():
            manifest.data.setdefault(section, {}).update(values)
        if frame.is_empty():
            manifest.save()
            return None
        now = datetime.now(UTC)
        batch_id = manifest.take_batch_id()
        path = self.partition(layer, source, now) / f"{batch_id}.parquet"
        size = self._write_parquet(path, frame)
        manifest.record_batch(batch_id, {
            "kind": layer,
            "source": source,
            "rows": frame.height,
            "created_at": now.isoformat(),
            "files": {layer: path.relative_to(self.lake).as_posix()},
            "bytes": {layer: size},
        })
        manifest.save()
        return BatchInfo(batch_id, source, frame.height, 0, size, ())

    def record_run(self, run: dict[str, Any]) -> None:
        assert self.manifest is not None
        self.manifest.record_run(run)
        self.manifest.save()


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)



__all__ = ["BatchInfo", "CursorMove", "LakeWriter", "PendingBatch", "fsync_dir"]
