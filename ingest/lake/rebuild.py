"""Rebuild: re-derive the Parquet rows of every batch from its raw file.

After a decoder fix, `walake rebuild` turns each batch's raw records back into rows
with the current code. Each source registers how (REBUILDERS); a batch whose raw
file was cleaned up, redacted by `forget`, or whose source has no rebuilder keeps
its current rows and is reported with the reason. The rewrite keeps the file layout
(one new file per current file, so compacted files stay compacted) and commits with
one manifest save, like compaction: a crash leaves the old rows in place.

A message stays a single row per source: rebuilt rows whose key another batch of
the same source already holds (a kept batch, or an earlier rebuilt one) are dropped
unless the batch held that key itself (a walk re-reads the second it stops at, so
one message can be in two batches' raw records). Copies from other sources are never
dropped: the lake keeps each source's copy and the `messages` view picks between
them. Row counts are compared per batch, after that: a batch that would come back
with fewer rows than it holds keeps its rows and is reported.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import polars as pl
import zstandard

from ingest.errors import IngestError
from ingest.frames import page_rows
from ingest.lake.crash import crash_point
from ingest.lake.files import parquet_looks_whole
from ingest.lake.rewrite import (
    RAW_LAYER,
    delete_unreferenced,
    files_by_layer,
    fresh_name,
    read_parquet,
    read_raw_lines,
    write_frame,
)
from ingest.lake.writer import LakeWriter, frame_rows
from ingest.schema import SOURCE_SCHEMA, OrdinalCounter, local_second, row_second
from ingest.sources.decode import (
    Chat,
    decode_json_messages,
    decode_text_messages,
    is_group_jid,
)

log = logging.getLogger(__name__)
REBUILD_TAG = "r"


class NotRebuildable(IngestError):
    """A batch's raw records cannot be turned back into rows; the message says why."""


class NoRebuildRecord(NotRebuildable):
    """The lake does not record what a batch's rebuild needs (e.g. an export
    imported before imports recorded their parse); no decoder fix helps."""


@dataclass(frozen=True)
class RebuildContext:
    tz: ZoneInfo  # the zone of sources with none of their own in `zones`
    chat_names: dict[str, str]  # chat id -> name, from the manifest
    # Batch source ("mcp", "bridge") -> the zone its rows were read in (the zone
    # the manifest records for it; ingest/sources/factory.py lake_zone)
    zones: dict[str, ZoneInfo] = field(default_factory=dict)
    # File sha256 -> the manifest's import record (exports: how the file was parsed)
    imports: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_source(self, source: str) -> RebuildContext:
        return replace(self, tz=self.zones.get(source, self.tz))


# Source name -> function(raw lines, batch info, context) -> rows (dicts with keys)
# or a frame of SOURCE_COLUMNS. Another source plugs in with `register`.
Rebuilder = Callable[[list[bytes], dict[str, Any], RebuildContext], Any]
REBUILDERS: dict[str, Rebuilder] = {}
# Source name -> function(raw lines, batch info, context) -> for each line, the rows
# it holds as (message_key or None, sender_id, sender_name). A row the rebuilder
# would not land from that line (outside its window, cut off) has no key. `forget`
# uses it to find exactly the raw records that hold a forgotten row or sender.
RecordRows = list[list[tuple[str | None, str | None, str | None]]]
RecordDecoder = Callable[[list[bytes], dict[str, Any], RebuildContext], RecordRows]
RECORD_DECODERS: dict[str, RecordDecoder] = {}
# Sources known not to be rebuildable yet, with the reason shown to the user.
NOT_SUPPORTED: dict[str, str] = {}


def register(
    source: str, rebuilder: Rebuilder, records: RecordDecoder | None = None
) -> None:
    REBUILDERS[source] = rebuilder
    if records is not None:
        RECORD_DECODERS[source] = records
    NOT_SUPPORTED.pop(source, None)


@dataclass
class RebuildSummary:
    rebuilt: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # batch id -> reason
    rows_before: int = 0
    rows_after: int = 0
    files_written: int = 0
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def why_not(info: dict[str, Any]) -> str | None:
    """Why a batch cannot be rebuilt, or None when it can."""
    if not info.get("files", {}).get(RAW_LAYER):
        if info.get("raw_removed_at"):
            return f"raw file cleaned up on {info['raw_removed_at'][:10]}"
        return "no raw file recorded"
    if info.get("raw_redacted"):
        return "raw records were removed by `walake forget`"
    source = info.get("source", "?")
    if source in REBUILDERS:
        return None
    return NOT_SUPPORTED.get(source, f"no rebuilder for source {source!r}")


def is_message_batch(info: dict[str, Any]) -> bool:
    """A batch of message rows (not e.g. the monitor's alerts)."""
    return "messages" in info.get("files", {})


def rebuild_lake(
    writer: LakeWriter,
    context: RebuildContext,
    *,
    dry_run: bool = False,
    whole_sources: frozenset[str] | set[str] = frozenset(),
) -> RebuildSummary:
    """Rewrite the messages layer from the raw batches still present.

    A batch is rebuilt only when its raw records give back at least as many rows as
    it holds, counted per batch once its rows are settled against the source's other
    batches (`_settle`); one that would lose rows is reported with the reason and
    keeps its rows. Every batch of a source in `whole_sources` must be rebuilt (its
    zone changes), else nothing is changed.
    """
    manifest = writer.manifest
    assert manifest is not None, "use LakeWriter as a context manager"
    lake = writer.lake
    if not context.imports:
        context = replace(context, imports=manifest.data.get("imports") or {})
    summary = RebuildSummary(dry_run=dry_run)
    candidates = _candidates(manifest, summary)
    owners = files_by_layer(manifest, "messages")
    file_of = {b: relative for relative, batches in owners.items() for b in batches}

    # Step 0: decode every candidate and settle its rows; a batch left with fewer
    # rows than it holds is left alone
    held, held_counts = _held_keys(lake, manifest, owners)
    decoded: dict[str, pl.DataFrame] = {}
    for batch_id in candidates:
        if batch_id not in file_of:
            continue
        try:
            decoded[batch_id] = _rebuilt_rows(writer, batch_id, context)
        except NotRebuildable as exc:
            summary.skipped[batch_id] = str(exc)
    source_of = {b: str(manifest.batches[b].get("source")) for b in file_of}
    decoded, shrunk = _settle(decoded, held, held_counts, source_of)
    summary.skipped.update(shrunk)
    summary.rebuilt = [b for b in candidates if b in decoded]
    summary.skipped = dict(sorted(summary.skipped.items()))
    _refuse_partial_move(summary, manifest, whole_sources)
    if dry_run or not summary.rebuilt:
        return summary
    rebuilt = set(summary.rebuilt)
    for relative, batches in owners.items():
        kept = [b for b in batches if b not in rebuilt]
        if kept:
            _readable(lake, relative, kept)

    # Step 1: one new file per current file, holding kept and rebuilt rows
    swaps: list[tuple[str, str, dict[str, int]]] = []
    for relative, batches in owners.items():
        if not rebuilt.intersection(batches):
            continue  # nothing rebuilt in it: the file stays as it is
        if parquet_looks_whole(lake / relative):
            old = read_parquet(lake, relative)
        else:  # missing or damaged, but every batch in it comes back from its raw
            state = "damaged" if (lake / relative).exists() else "missing"
            log.warning("%s is %s; its rows are rebuilt from the raw batches",
                        relative, state)
            old = frame_rows([], "", datetime.now(UTC)).clear()
        summary.rows_before += old.height
        parts, counts = [], {}
        for batch_id in batches:
            if batch_id in rebuilt:
                part = decoded[batch_id]
            else:
                part = old.filter(pl.col("batch_id") == batch_id)
            counts[batch_id] = part.height
            parts.append(part)
        frame = pl.concat(parts, how="diagonal_relaxed") if parts else old.clear()
        folder = str(PurePosixPath(relative).parent)
        target = fresh_name(manifest, folder, REBUILD_TAG, ".parquet")
        write_frame(lake, target, frame)
        summary.rows_after += frame.height
        swaps.append((relative, target, counts))
    crash_point("rebuild_written")

    # Step 2: the commit point
    now = datetime.now(UTC).isoformat()
    for relative, target, counts in swaps:
        for batch_id, rows in counts.items():
            info = manifest.batches[batch_id]
            info["files"]["messages"] = target
            info["rows"] = rows
            if info.get("compacted_into"):
                info["compacted_into"] = target
            if batch_id in rebuilt:
                info["rebuilt_at"] = now
                # Its rows may hold keys of other batches now (ingest/views.py)
                info.pop("new_keys", None)
    summary.files_written = len(swaps)
    manifest.record_run({
        "command": "rebuild", "finished_at": now,
        "status": "ok" if not summary.skipped else "partial",
        "rebuilt": len(summary.rebuilt), "skipped": len(summary.skipped),
        "rows_before": summary.rows_before, "rows_after": summary.rows_after,
    })
    manifest.save()
    crash_point("rebuild_recorded")

    # Step 3
    delete_unreferenced(lake, manifest, [old for old, _, _ in swaps])
    return summary


def _candidates(manifest: Any, summary: RebuildSummary) -> list[str]:
    """The message batches that can be rebuilt; the others go to `summary.skipped`."""
    candidates = []
    for batch_id in sorted(manifest.batches):
        info = manifest.batches[batch_id]
        if not is_message_batch(info):
            continue
        reason = why_not(info)
        if reason is None:
            candidates.append(batch_id)
        else:
            summary.skipped[batch_id] = reason
    return candidates


def _held_keys(
    lake: Path, manifest: Any, owners: dict[str, list[str]]
) -> tuple[pl.DataFrame, dict[str, int]]:
    """(batch_id, message_key) of every batch's current rows, and its distinct keys.

    A damaged file gives no keys; its batches count what the manifest records.
    """
    frames: list[pl.DataFrame] = []
    counts: dict[str, int] = {}
    for relative, batches in owners.items():
        if not parquet_looks_whole(lake / relative):
            counts.update({b: int(manifest.batches[b].get("rows") or 0)
                           for b in batches})
            continue
        keys = pl.read_parquet(lake / relative, columns=["batch_id", "message_key"])
        keys = keys.cast(pl.String).filter(pl.col("batch_id").is_in(batches)).unique()
        frames.append(keys)
        counts.update({b: 0 for b in batches})
        counts.update(dict(keys.group_by("batch_id").len().iter_rows()))
    held = pl.concat(frames) if frames else pl.DataFrame(
        schema={"batch_id": pl.String, "message_key": pl.String})
    return held, counts


def _settle(
    decoded: dict[str, pl.DataFrame],
    held: pl.DataFrame,
    held_counts: dict[str, int],
    source_of: dict[str, str],
) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """The rows each decoded batch is rebuilt with, and why the others keep theirs.

    Decoded batches are settled in order, each against its own source's batches
    only (the lake keeps one copy per source; the views pick between them): a row
    whose key a kept batch or an earlier rebuilt batch of the source holds is dropped,
    unless the batch holds that key itself. A batch then left with fewer rows than
    it holds keeps its rows, and the rest are settled again with it kept (a kept
    batch only ever takes keys, so this ends).
    """
    shrunk: dict[str, str] = {}
    while True:
        settled = _deduplicated(decoded, held, source_of)
        short = {b: _shrink_reason(decoded[b].height, frame.height, held_counts[b])
                 for b, frame in settled.items()
                 if frame.height < held_counts.get(b, 0)}
        if not short:
            return settled, shrunk
        shrunk.update(short)
        decoded = {b: f for b, f in decoded.items() if b not in short}


def _shrink_reason(decoded: int, settled: int, holds: int) -> str:
    given = f"{decoded:,} rows"
    if settled != decoded:
        given += f" ({settled:,} not already held by other batches of its source)"
    return (f"its raw records give {given} but it holds {holds:,}; rebuilding "
            "would lose rows, so it keeps them")


def _deduplicated(
    decoded: dict[str, pl.DataFrame], held: pl.DataFrame, source_of: dict[str, str]
) -> dict[str, pl.DataFrame]:
    """Each decoded batch without the rows its source's other batches claim first.

    A walk re-reads the second it stops at, so one message can be in two batches'
    raw records while only the first batch landed it.
    """
    order = list(decoded)
    ranks = pl.DataFrame(
        {"batch_id": list(source_of), "_source": list(source_of.values())},
        schema={"batch_id": pl.String, "_source": pl.String},
    ).join(pl.DataFrame({"batch_id": order, "_rank": range(len(order))},
                        schema={"batch_id": pl.String, "_rank": pl.Int64}),
           on="batch_id", how="left").with_columns(pl.col("_rank").fill_null(-1))
    kept = held.filter(~pl.col("batch_id").is_in(order))
    new = [frame.select("batch_id", "message_key") for frame in decoded.values()]
    claims = pl.concat([kept, *new]).join(ranks, on="batch_id")
    first = claims.group_by("_source", "message_key").agg(pl.col("_rank").min())
    later = (claims.join(first, on=["_source", "message_key"], suffix="_first")
             .filter(pl.col("_rank_first") < pl.col("_rank"))
             .join(held, on=["batch_id", "message_key"], how="anti"))
    dropped = dict(later.group_by("batch_id").agg("message_key").iter_rows())
    return {b: frame.filter(~pl.col("message_key").is_in(dropped[b]))
            if b in dropped else frame for b, frame in decoded.items()}


def _refuse_partial_move(
    summary: RebuildSummary, manifest: Any, whole_sources: frozenset[str] | set[str]
) -> None:
    """A source whose zone changes needs every batch rebuilt; else change nothing."""
    blocked = sorted(b for b in summary.skipped
                     if manifest.batches[b].get("source") in whole_sources)
    if blocked:
        shown = "; ".join(f"{b}: {summary.skipped[b]}" for b in blocked[:5])
        raise NotRebuildable(
            f"{len(blocked)} batch(es) of a source whose zone would change cannot be "
            f"rebuilt ({shown}), so their rows would keep the old zone next to rebuilt "
            "rows in the new one. Nothing was changed; rebuild in the zone the lake "
            "records (no --timezone), or pull into a new lake with the new zone."
        )


def _readable(lake: Path, relative: str, kept: list[str]) -> None:
    """A damaged file whose batches cannot all be rebuilt: say so, change nothing."""
    if not parquet_looks_whole(lake / relative):
        raise NotRebuildable(
            f"{relative} is {'damaged' if (lake / relative).exists() else 'missing'} "
            f"and batch(es) {', '.join(kept)} in it have no raw "
            "file to rebuild from. Nothing was changed; restore the file from a "
            "backup, or pull those chats again into a new lake."
        )


def _rebuilt_rows(
    writer: LakeWriter, batch_id: str, context: RebuildContext
) -> pl.DataFrame:
    """The batch's rows as its raw records give them (one row per key)."""
    info = writer.manifest.batches[batch_id]
    try:
        lines = read_raw_lines(writer.lake, info["files"][RAW_LAYER])
    except (OSError, zstandard.ZstdError) as exc:
        raise NotRebuildable(f"its raw file cannot be read: {exc}") from exc
    try:
        made = REBUILDERS[info["source"]](lines, info, context.for_source(info["source"]))
    except NoRebuildRecord:
        raise
    except NotRebuildable as exc:
        raise NotRebuildable(
            f"{exc}; it keeps its current rows (fix the decoder, then rebuild again)"
        ) from exc
    ingested_at = datetime.fromisoformat(info["created_at"])
    if isinstance(made, pl.DataFrame):
        frame = frame_rows([], batch_id, ingested_at, [made])
    else:
        frame = frame_rows(made, batch_id, ingested_at)
    return frame.unique("message_key", keep="first", maintain_order=True)


# MCP: one raw record per tool call (see ingest/sources/mcp.py and ingest/pull.py)


def rebuild_mcp(
    lines: list[bytes], info: dict[str, Any], context: RebuildContext
) -> list[dict]:
    """Rows of MCP tool answers, keyed the way the walk keyed them.

    A record holds whole seconds once the rows at or below `kept_above` (the cut
    oldest second of a full page) are dropped, so identical rows are numbered per
    record; sub-pages of one second (page > 0) continue the previous record's count.
    """
    rows_out: list[dict] = []
    for _, _, kept in _mcp_records(lines, context):
        rows_out.extend(kept)
    return rows_out


def _mcp_records(lines: list[bytes], context: RebuildContext):  # noqa: ANN202
    """(line number, every row the record holds, the keyed rows it lands) per line."""
    counter = OrdinalCounter()
    for number, line in enumerate(lines, start=1):
        try:
            record = msgspec.json.decode(line)
            rows, window, page = _mcp_rows(record, context)
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            raise NotRebuildable(f"raw record {number} cannot be decoded: {exc}") from exc
        every = list(rows)
        if not page:
            counter = OrdinalCounter()
        lo, hi_excl = window
        if page and lo is not None:
            rows = [r for r in rows if row_second(r) == local_second(lo)]
        rows = [r for r in rows if _inside(r, lo, hi_excl)]
        kept_above = record.get("kept_above")
        if kept_above:
            rows = [r for r in rows if row_second(r) > kept_above]
        rows.sort(key=row_second, reverse=True)  # stable: server order within a second
        for row in rows:
            counter.assign(row)
        yield number, every, rows


def mcp_record_rows(
    lines: list[bytes], info: dict[str, Any], context: RebuildContext
) -> RecordRows:
    out: RecordRows = []
    for _, every, _ in _mcp_records(lines, context):
        out.append([(r.get("message_key"), r.get("sender_id"), r.get("sender_name"))
                    for r in every])
    return out


def _mcp_rows(record: dict, context: RebuildContext):
    chat_id = record["chat_id"]
    chat = Chat(chat_id, record.get("chat_name") or "", is_group_jid(chat_id))
    texts = record.get("texts") or []
    structured = record.get("structured")
    args = record.get("arguments") or {}
    head = "".join(texts).lstrip()[:2]
    if structured is not None or head.startswith("{") or head == "[{":
        frame = decode_json_messages(texts, structured, chat, context.tz)
    else:
        frame = decode_text_messages(texts, chat, context.tz)
    rows = page_rows(frame)
    window = (_bound(args.get("after"), after=True), _bound(args.get("before"), False))
    return rows, window, args.get("page") or 0


def _bound(value: str | None, after: bool) -> datetime | None:
    """The local second a tool-call bound stands for (see McpSource.bound)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed
    # Aware bounds: `after` was written one second early
    local = parsed.replace(tzinfo=None)
    return local + timedelta(seconds=1) if after else local


def _inside(row: dict, lo: datetime | None, hi_excl: datetime | None) -> bool:
    second = row["sent_at_local"].replace(microsecond=0)
    return (lo is None or second >= lo) and (hi_excl is None or second < hi_excl)


# Bridge: raw lines are the store's rows, one JSON object per row


def rebuild_bridge(
    lines: list[bytes], info: dict[str, Any], context: RebuildContext
) -> pl.DataFrame:
    """Rows of the store's rows, keyed per chat like the store walk.

    Sender names come from the chat names the manifest knows (the walk used the
    store's full list), so a sender whose own chat was never pulled shows the JID.
    """
    from ingest.frames import with_keys
    from ingest.sources.bridge_rows import parse_store_rows, typed_rows

    # A walk re-reads the second it stops at; the same store row twice is one row
    unique = list(dict.fromkeys(row for _, row in store_lines(lines)))
    store = parse_store_rows(b"\n".join(unique) + b"\n")
    parts = []
    for (chat_id,), rows in store.group_by(["chat_jid"], maintain_order=True):
        name = context.chat_names.get(chat_id) or ""
        chat = Chat(chat_id, name, is_group_jid(chat_id))
        typed = typed_rows(rows, chat, context.chat_names, context.tz)
        parts.append(with_keys(typed).drop("second"))
    if not parts:
        return pl.DataFrame(schema=SOURCE_SCHEMA)
    return pl.concat(parts, how="vertical")


def bridge_record_rows(
    lines: list[bytes], info: dict[str, Any], context: RebuildContext
) -> RecordRows:
    """Per line (one store row each), its row keyed as `rebuild_bridge` keys it."""
    from ingest.frames import with_keys
    from ingest.sources.bridge_rows import parse_store_rows, typed_rows

    expanded = store_lines(lines)
    unique = list(dict.fromkeys(row for _, row in expanded))
    position = {line: i for i, line in enumerate(unique)}
    store = parse_store_rows(b"\n".join(unique) + b"\n") if unique else None
    found: dict[int, tuple[str | None, str | None, str | None]] = {}
    if store is not None and store.height == len(unique):
        store = store.with_row_index("_line")
        for (chat_id,), rows in store.group_by(["chat_jid"], maintain_order=True):
            name = context.chat_names.get(chat_id) or ""
            chat = Chat(chat_id, name, is_group_jid(chat_id))
            typed = with_keys(typed_rows(rows.drop("_line"), chat, context.chat_names,
                                         context.tz))
            if typed.height != rows.height:
                raise NotRebuildable("store rows and decoded rows do not line up")
            for index, key, sid, sname in zip(
                rows["_line"], typed["message_key"], typed["sender_id"],
                typed["sender_name"], strict=True,
            ):
                found[index] = (key, sid, sname)
    elif unique:
        raise NotRebuildable("store rows and raw lines do not line up")
    per_line: RecordRows = [[] for _ in lines]
    for origin, row in expanded:
        if position[row] in found:
            per_line[origin].append(found[position[row]])
    return per_line


def store_lines(lines: list[bytes]) -> list[tuple[int, bytes]]:
    """(index of the raw line, one store row) for every store row the lines hold.

    `walake extract --source bridge` writes one store row per line; the monitor's
    paged reader writes one record per page, {"store", "chat_id", "window", "rows"},
    whose rows are store rows as text.
    """
    found: list[tuple[int, bytes]] = []
    for index, line in enumerate(lines):
        if line.startswith(b'{"store"'):
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get("rows"), list):
                found.extend((index, row.encode()) for row in record["rows"])
                continue
        found.append((index, line))
    return found


# Exports: one raw record per message, its file lines (ingest/sources/export/rebuild.py)


def rebuild_export(
    lines: list[bytes], info: dict[str, Any], context: RebuildContext
) -> pl.DataFrame:
    from ingest.sources.export.rebuild import rebuild_export as rebuild

    return rebuild(lines, info, context)


register("mcp", rebuild_mcp, mcp_record_rows)
register("export", rebuild_export)
register("bridge", rebuild_bridge, bridge_record_rows)
