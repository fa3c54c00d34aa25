"""Forget: remove a chat's or a person's messages from every layer of the lake.

A privacy request is honoured completely: the rows go from every Parquet layer
(messages, and alerts when a batch records them), the raw records that hold them go
from the raw files, the chat's cursors and name go from the manifest, and log lines
that mention them go from the lake's logs. New files are written first, one manifest
save commits the change, then the old files are deleted and the previous manifest
copy (manifest.json.bak) is overwritten; rerunning finishes an interrupted forget.

The blocklist keeps forgotten chats and senders out of later pulls and imports. It
stores only a hash of each identifier, so the lake no longer names them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import msgspec
import polars as pl

from ingest.errors import IngestError
from ingest.lake.crash import crash_point
from ingest.lake.manifest import Manifest
from ingest.lake.rewrite import (
    RAW_LAYER,
    data_layers,
    delete_unreferenced,
    files_by_layer,
    fresh_name,
    read_parquet,
    read_raw_lines,
    write_frame,
    write_raw_lines,
)

log = logging.getLogger(__name__)
FORGET_TAG = "f"
LOGS_DIR = "logs"
Kind = Literal["chat", "sender"]
LOG_TEXT_MIN = 8  # bytes: shorter removed texts ("ok") would match unrelated log lines


class NothingToForget(IngestError):
    def __init__(self, kind: str, value: str) -> None:
        listing = (
            'walake sql "select chat_id, chat_name from chats"' if kind == "chat" else
            'walake sql "select distinct sender_id, sender_name from messages"'
        )
        super().__init__(
            f"No {kind} {value!r} in this lake. No message, raw record or cursor "
            f"holds it, so nothing was changed. Give the {kind}'s id (as in the "
            f"`{kind}_id` column) or its exact name; list them with `{listing}`."
        )


@dataclass
class ForgetSummary:
    kind: str
    rows: dict[str, int] = field(default_factory=dict)  # layer -> rows removed
    raw_records: int = 0
    files_rewritten: int = 0
    batches_touched: int = 0
    cursors: int = 0
    chats: int = 0
    imports: int = 0
    log_lines: int = 0
    blocked: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def hashed(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8"), digest_size=16).hexdigest()


# The forget itself


def forget(
    writer: Any, kind: Kind, value: str, *, allow_again: bool = False
) -> ForgetSummary:
    """Remove every trace of the chat or sender `value`; safe to rerun."""
    manifest: Manifest = writer.manifest
    lake: Path = writer.lake
    ids = _identities(manifest, kind, value)
    summary = ForgetSummary(kind=kind, blocked=not allow_again)

    # Step 1: new files without the forgotten rows and raw records
    swaps: list[tuple[str, str, str]] = []  # layer, old, new
    removed_texts: set[str] = set()
    removed_keys: set[str] = set()
    removed_names: dict[str, set[str]] = {}  # chat id -> forgotten senders' names
    counts: dict[str, int] = {}
    for layer in data_layers(manifest):
        for relative in files_by_layer(manifest, layer):
            frame = read_parquet(lake, relative)
            mask = _row_mask(frame, kind, ids)
            hits = int(mask.sum()) if mask is not None else 0
            if not hits:
                continue
            gone = frame.filter(mask)
            if "text" in frame.columns:
                removed_texts.update(t for t in gone["text"] if t)
            if "message_key" in frame.columns:
                removed_keys.update(k for k in gone["message_key"] if k)
            if kind == "sender" and "chat_id" in frame.columns:
                for column in ("sender_id", "sender_name"):
                    if column in frame.columns:
                        for chat_id, name in gone.select("chat_id", column).iter_rows():
                            if chat_id and name:
                                removed_names.setdefault(chat_id, set()).add(name)
            kept = frame.filter(~mask)
            target = _fresh(manifest, relative, ".parquet")
            write_frame(lake, target, kept)
            swaps.append((layer, relative, target))
            summary.rows[layer] = summary.rows.get(layer, 0) + hits
            if layer == "messages":
                for batch_id, n in kept.group_by("batch_id").len().iter_rows():
                    counts[batch_id] = n
                for batch_id in gone["batch_id"].unique():
                    counts.setdefault(batch_id, 0)

    # Raw records: decided one by one, by the chat they belong to or the rows they hold
    id_needles = [_escaped(i) for i in ids]
    text_needles = _text_needles(removed_texts)
    match = RawMatch(kind, ids, removed_keys, removed_names, _decode_context(manifest))
    known = bool(swaps) or _mentioned(manifest, ids)
    raw_plan: list[tuple[str, list[str], list[bytes], int, bool]] = []
    redacted: set[str] = set()

    def write_raw(relative, batches, kept_lines, dropped, precise) -> None:  # noqa: ANN001
        target = _fresh(manifest, relative, ".jsonl.zst")
        write_raw_lines(lake, target, kept_lines)
        swaps.append((RAW_LAYER, relative, target))
        summary.raw_records += dropped
        # A chat's records go whole: the rest still give back the other chats' rows.
        # A sender's records hold other people's messages too: no rebuild from them.
        if kind == "sender" or not precise:
            redacted.update(batches)

    for relative, batches in files_by_layer(manifest, RAW_LAYER).items():
        info = manifest.batches[batches[0]]
        lines = read_raw_lines(lake, relative)
        hits, precise = match.hits(lines, info)
        dropped = sum(hits)
        if dropped:
            kept_lines = [line for line, hit in zip(lines, hits, strict=True) if not hit]
            if known:  # written at once: the raw layer is never all in memory
                write_raw(relative, batches, kept_lines, dropped, precise)
            else:
                raw_plan.append((relative, batches, kept_lines, dropped, precise))
    if not known and not raw_plan:
        # A rerun after an interrupted forget still scrubs the .bak copy and logs
        listed = manifest.data["blocklist"]["chats" if kind == "chat" else "senders"]
        if hashed(value) not in listed and not allow_again:
            raise NothingToForget(kind, value)  # before anything was written
    for planned in raw_plan:
        write_raw(*planned)
    crash_point("forget_written")

    # Step 2: the commit point
    touched: set[str] = set()
    for layer, old, new in swaps:
        for batch_id, info in manifest.batches.items():
            if info.get("files", {}).get(layer) == old:
                info["files"][layer] = new
                touched.add(batch_id)
                if layer == "messages" and info.get("compacted_into"):
                    info["compacted_into"] = new
    for batch_id, n in counts.items():
        manifest.batches[batch_id]["rows"] = n
    for batch_id in redacted:
        manifest.batches[batch_id]["raw_redacted"] = True
    if kind == "chat":
        _drop_chat_state(manifest, ids, summary)
    _drop_imports(manifest, id_needles, summary)
    _update_blocklist(manifest, kind, ids, allow_again)
    summary.files_rewritten = len(swaps)
    summary.batches_touched = len(touched)
    now = datetime.now(UTC).isoformat()
    manifest.record_run({"command": "forget", "finished_at": now, "status": "ok",
                         **{k: v for k, v in summary.to_json().items()}})
    manifest.save()
    crash_point("forget_recorded")

    # Step 3: old files, the previous manifest copy and log lines
    delete_unreferenced(lake, manifest, [old for _, old, _ in swaps])
    manifest.save()  # the .bak copy now holds the forgotten state too
    # Log lines: the ids, and texts long enough not to match unrelated lines
    long_texts = [n for n in text_needles if len(n) >= LOG_TEXT_MIN]
    summary.log_lines = _scrub_logs(lake, id_needles + long_texts)
    return summary


def _decode_context(manifest: Manifest) -> Any:
    """How `walake rebuild` would decode the raw records: names and recorded zones."""
    from ingest.lake.rebuild import RebuildContext
    from ingest.sources.factory import resolve_zone

    names = {c: i.get("name") or "" for c, i in manifest.data["chats"].items()}
    zones = {}
    for source in {info.get("source") for info in manifest.batches.values()}:
        recorded = set(manifest.zones_of(source or "").values())
        if len(recorded) == 1:
            zones[source] = resolve_zone(recorded.pop())
    return RebuildContext(resolve_zone(None), names, zones)


@dataclass
class RawMatch:
    """Which raw records of a file hold what is forgotten.

    A chat's records are those whose `chat_id` (MCP, export) or `chat_jid` (bridge
    store rows) is the chat. A sender's records are found by decoding them with the
    source's decoder from `walake rebuild` (RECORD_DECODERS): a record goes when it
    holds a row of the sender or a row whose key was removed. Export records (no
    decoder) go when their header line names a forgotten sender of their chat.
    """

    kind: Kind
    ids: set[str]
    removed_keys: set[str]
    removed_names: dict[str, set[str]]
    context: Any

    def hits(self, lines: list[bytes], info: dict[str, Any]) -> tuple[list[bool], bool]:
        """Per line, whether it goes; and whether every decision was exact."""
        if self.kind == "chat":
            return self._chat_hits(lines)
        from ingest.lake.rebuild import RECORD_DECODERS, NotRebuildable

        source = info.get("source") or ""
        decoder = RECORD_DECODERS.get(source)
        if decoder is not None:
            try:
                per_line = decoder(lines, info, self.context.for_source(source))
            except (NotRebuildable, KeyError, TypeError, ValueError) as exc:
                log.warning("raw records of a %s batch cannot be decoded (%s); "
                            "matching the sender by name", source, exc)
            else:
                return [any(key in self.removed_keys or sid in self.ids
                            or name in self.ids for key, sid, name in rows)
                        for rows in per_line], True
        return [self._line_names_sender(line) for line in lines], False

    def _chat_hits(self, lines: list[bytes]) -> tuple[list[bool], bool]:
        hits, precise = [], True
        fallback = _pattern([_escaped(i) for i in self.ids])
        for line in lines:
            record = _decoded(line)
            owner = None
            if isinstance(record, dict):
                owner = record.get("chat_id") or record.get("chat_jid")
            if isinstance(owner, str):
                hits.append(owner in self.ids)
            else:  # a record of unknown shape: by the chat id anywhere in it
                precise = False
                hits.append(bool(fallback is not None and fallback.search(line)))
        return hits, precise

    def _line_names_sender(self, line: bytes) -> bool:
        record = _decoded(line)
        if not isinstance(record, dict):
            pattern = _pattern([_escaped(i) for i in self.ids])
            return bool(pattern is not None and pattern.search(line))
        if record.get("chat_jid") is not None:  # a store row
            return record.get("sender") in self.ids
        names = set(self.ids) | self.removed_names.get(record.get("chat_id") or "", set())
        first = (record.get("lines") or [""])[0]
        if not isinstance(first, str):
            return False
        # "[date, time] Name: text" (iOS) or "date, time - Name: text" (Android)
        return any(f" {n}:" in first or first.startswith(f"{n}:") for n in names)


def _decoded(line: bytes) -> Any:
    try:
        return msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None


def _identities(manifest: Manifest, kind: Kind, value: str) -> set[str]:
    """The identifiers to match: the value, and for a chat the ids named `value`."""
    ids = {value}
    if kind == "chat":
        ids.update(c for c, info in manifest.data["chats"].items()
                   if info.get("name") == value)
    return ids


def _row_mask(frame: pl.DataFrame, kind: Kind, ids: set[str]) -> pl.Series | None:
    wanted = list(ids)
    if kind == "chat":
        if "chat_id" not in frame.columns:
            return None
        return frame["chat_id"].is_in(wanted).fill_null(False)
    columns = [c for c in ("sender_id", "sender_name") if c in frame.columns]
    if not columns:
        return None
    expr = pl.any_horizontal([pl.col(c).is_in(wanted).fill_null(False) for c in columns])
    return frame.select(expr.alias("hit"))["hit"]


def _fresh(manifest: Manifest, relative: str, suffix: str) -> str:
    folder = str(PurePosixPath(relative).parent)
    return fresh_name(manifest, folder, FORGET_TAG, suffix)


def _escaped(text: str) -> bytes:
    """`text` as it appears inside a JSON string."""
    return msgspec.json.encode(text)[1:-1]


def _text_needles(texts: set[str]) -> list[bytes]:
    needles: set[bytes] = set()
    for text in texts:
        needles.add(_escaped(text))
        needles.update(_escaped(part) for part in text.splitlines() if part.strip())
    return sorted(n for n in needles if n)


def _pattern(needles: list[bytes]) -> re.Pattern[bytes] | None:
    if not needles:
        return None
    ordered = sorted(needles, key=len, reverse=True)
    return re.compile(b"|".join(re.escape(n) for n in ordered))


def _mentioned(manifest: Manifest, ids: set[str]) -> bool:
    if any(i in manifest.data["chats"] for i in ids):
        return True
    return any(i in c for c in manifest.data["cursors"].values() for i in ids)


def _drop_chat_state(manifest: Manifest, ids: set[str], summary: ForgetSummary) -> None:
    for chat_id in ids:
        if manifest.data["chats"].pop(chat_id, None) is not None:
            summary.chats += 1
        for cursors in manifest.data["cursors"].values():
            if cursors.pop(chat_id, None) is not None:
                summary.cursors += 1
    for info in manifest.batches.values():
        if "chats" in info:
            info["chats"] = [c for c in info["chats"] if c not in ids]


def _drop_imports(manifest: Manifest, needles: list[bytes], summary: ForgetSummary) -> None:
    pattern = _pattern(needles)
    if pattern is None:
        return
    imports = manifest.data["imports"]
    for key in list(imports):
        if pattern.search(msgspec.json.encode(imports[key])):
            del imports[key]
            summary.imports += 1


def _update_blocklist(manifest: Manifest, kind: Kind, ids: set[str], allow: bool) -> None:
    listed = manifest.data["blocklist"]["chats" if kind == "chat" else "senders"]
    for value in ids:
        if allow:
            listed.pop(hashed(value), None)
        else:
            listed[hashed(value)] = {"at": datetime.now(UTC).isoformat()}


def _scrub_logs(lake: Path, needles: list[bytes]) -> int:
    """Drop the log lines that mention a forgotten id or text; lines dropped."""
    pattern = _pattern(needles)
    folder = lake / LOGS_DIR
    if pattern is None or not folder.exists():
        return 0
    from ingest.lake.files import write_bytes_atomic

    dropped = 0
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        lines = path.read_bytes().splitlines(keepends=True)
        kept = [line for line in lines if not pattern.search(line)]
        if len(kept) != len(lines):
            dropped += len(lines) - len(kept)
            write_bytes_atomic(path, b"".join(kept))
    return dropped


# Keeping them out of later pulls and imports (called by LakeWriter.commit)


def without_blocked(manifest: Manifest, batch: Any) -> Any:
    """The batch minus rows, raw records, cursors and chats of blocked ids."""
    blocked = manifest.data.get("blocklist") or {}
    chats, senders = blocked.get("chats") or {}, blocked.get("senders") or {}
    if not chats and not senders:
        return batch

    def row_blocked(row: dict) -> bool:
        return (hashed(row.get("chat_id") or "") in chats
                or hashed(row.get("sender_id") or "") in senders
                or hashed(row.get("sender_name") or "") in senders)

    batch.rows = [r for r in batch.rows if not row_blocked(r)]
    batch.frames = [_frame_without(f, chats, senders) for f in batch.frames]
    batch.raw = [r for r in (_raw_without(rec, chats, senders) for rec in batch.raw)
                 if r is not None]
    batch.moves = [m for m in batch.moves if hashed(m.chat_id) not in chats]
    batch.chats = {c: v for c, v in batch.chats.items() if hashed(c) not in chats}
    return batch


def _frame_without(frame: pl.DataFrame, chats: dict, senders: dict) -> pl.DataFrame:
    if frame.is_empty():
        return frame
    return frame.filter(_not_blocked(frame, chats, senders))


def unblocked_rows(manifest: Manifest, frame: pl.DataFrame) -> pl.Series | None:
    """Per row of `frame`, False where its chat or sender was forgotten; None when the
    lake has forgotten nothing. Lets a source drop those rows before it builds their
    raw records, which (as file lines) cannot be judged afterwards."""
    blocked = manifest.data.get("blocklist") or {}
    chats, senders = blocked.get("chats") or {}, blocked.get("senders") or {}
    if not chats and not senders:
        return None
    return frame.select(_not_blocked(frame, chats, senders)).to_series()


def _not_blocked(frame: pl.DataFrame, chats: dict, senders: dict) -> pl.Expr:
    def hit(column: str, listed: dict) -> pl.Expr:
        return pl.col(column).fill_null("").map_elements(
            lambda v: hashed(v) in listed, return_dtype=pl.Boolean
        )

    return ~(hit("chat_id", chats) | hit("sender_id", senders)
             | hit("sender_name", senders))


def _raw_without(record: Any, chats: dict, senders: dict) -> Any:
    """The record, or None when it belongs to a blocked chat or holds a blocked sender.

    Bridge records are JSON lines of store rows; MCP records carry `chat_id` and are
    decoded to find their senders.
    """
    if isinstance(record, bytes):
        kept = []
        for line in record.splitlines():
            row = msgspec.json.decode(line) if line.strip() else {}
            if (hashed(row.get("chat_jid") or "") in chats
                    or hashed(row.get("sender") or "") in senders):
                continue
            kept.append(line)
        return b"\n".join(kept) + b"\n" if kept else None
    if not isinstance(record, dict):
        return record
    if hashed(record.get("chat_id") or "") in chats:
        return None
    if senders and "texts" in record:
        from zoneinfo import ZoneInfo

        from ingest.lake.rebuild import RebuildContext, _mcp_rows

        rows, _, _ = _mcp_rows(record, RebuildContext(ZoneInfo("UTC"), {}))
        if any(hashed(r.get("sender_id") or "") in senders
               or hashed(r.get("sender_name") or "") in senders for r in rows):
            return None
    # Export records (lines of the file) never reach here with a forgotten sender:
    # the importer drops those messages before it builds their records.
    return record
