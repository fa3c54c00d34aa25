"""Forget: remove a chat's or a person's messages from every layer of the lake.

A privacy request is honoured completely: the rows go from every Parquet layer
(messages, and alerts when a batch records them), the raw records that hold them go
from the raw files, the chat's cursors and name go from the manifest, and log lines
that mention them go from the lake's logs. Every copy of a removed message goes too:
rows of any source or layer with the same message_key (the `messages` view would
show any one copy left). New files are written first, one manifest save commits the
change, then the old files are deleted and the manifest copy
(manifest.json.bak) is written again; rerunning finishes an interrupted forget. A dry
run counts the same figures and changes nothing.

Who is forgotten is settled first, reading only (ingest/lake/forget_match.py).

The blocklist keeps forgotten chats and senders out of later pulls and imports. It
stores only a hash of each identifier (every id form, and for a sender the display
names only their rows carried), so the lake no longer names them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec
import polars as pl

from ingest.errors import IngestError
from ingest.lake.blocklist import hashed, person_of, user_part
from ingest.lake.crash import crash_point
from ingest.lake.forget_match import (  # ForgetAmbiguous: raised from here
    ForgetAmbiguous,
    Kind,
    forgotten_keys,
    identities,
    named_rows_kept,
    names_to_block,
    row_mask,
)
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
LOG_TEXT_MIN = 8  # bytes: shorter removed texts ("ok") would match unrelated log lines
_BLOCKLIST = {"chat": "chats", "sender": "senders"}


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
    dry_run: bool = False
    # Rows kept that carry a forgotten sender's display name but no id (exports):
    # name -> rows. The name may be someone else's too, so they are only reported.
    named_rows_kept: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# The forget itself


@dataclass
class _Run:
    """One forget: what it matches, and what it has found to remove so far."""

    lake: Path
    manifest: Manifest
    kind: Kind
    value: str  # as given
    ids: set[str]
    keys: set[str]  # message_keys of every forgotten row: all copies go
    dry_run: bool
    swaps: list[tuple[str, str, str | None]] = field(default_factory=list)
    texts: set[str] = field(default_factory=set)
    names: dict[str, set[str]] = field(default_factory=dict)  # chat -> senders' names
    counts: dict[str, int] = field(default_factory=dict)  # batch -> rows it keeps
    redacted: set[str] = field(default_factory=set)

    def replace(self, layer: str, relative: str, suffix: str, write: Any) -> None:
        """Record that `relative` is rewritten; write its new file unless dry run."""
        target = None
        if not self.dry_run:
            target = _fresh(self.manifest, relative, suffix)
            write(self.lake, target)
        self.swaps.append((layer, relative, target))


def forget(
    writer: Any, kind: Kind, value: str, *, allow_again: bool = False,
    dry_run: bool = False,
) -> ForgetSummary:
    """Remove every trace of the chat or sender `value`; safe to rerun.

    `dry_run` counts what would be removed and changes nothing (files, manifest,
    blocklist and logs stay as they are)."""
    manifest: Manifest = writer.manifest
    lake: Path = writer.lake
    ids = identities(lake, manifest, kind, value)
    keys = forgotten_keys(lake, manifest, kind, ids)
    run = _Run(lake, manifest, kind, value, ids, keys, dry_run)
    summary = ForgetSummary(kind=kind, blocked=not allow_again, dry_run=dry_run)
    if kind == "sender" and user_part(value) is not None:
        summary.named_rows_kept = named_rows_kept(lake, manifest, keys, ids)

    # Step 1: new files without the forgotten rows and raw records
    _forget_rows(run, summary)
    _forget_raw(run, summary, allow_again)
    needles = _log_needles(ids, run.texts)
    summary.files_rewritten = len(run.swaps)
    summary.batches_touched = len(_touched(manifest, run.swaps))
    if dry_run:
        _count_state(manifest, kind, ids, summary)
        summary.log_lines = _scrub_logs(lake, needles, apply=False)
        return summary
    crash_point("forget_written")

    # Step 2: the commit point
    blocked = ids | (names_to_block(lake, manifest, run.keys, ids)
                     if kind == "sender" else set())
    _commit(run, summary, blocked, allow_again)
    crash_point("forget_recorded")

    # Step 3: old files, the previous manifest copy and log lines
    delete_unreferenced(lake, manifest, [old for _, old, _ in run.swaps])
    manifest.save()  # the .bak copy now holds the forgotten state too
    summary.log_lines = _scrub_logs(lake, needles)
    return summary


def _forget_rows(run: _Run, summary: ForgetSummary) -> None:
    """Parquet: rows of the chat or sender, and every copy of them (same key)."""
    for layer in data_layers(run.manifest):
        for relative in files_by_layer(run.manifest, layer):
            frame = read_parquet(run.lake, relative)
            mask = row_mask(frame, run.kind, run.ids)
            if "message_key" in frame.columns and run.keys:
                copies = frame["message_key"].is_in(list(run.keys)).fill_null(False)
                mask = copies if mask is None else mask | copies
            hits = int(mask.sum()) if mask is not None else 0
            if not hits:
                continue
            _note_removed(run, frame.filter(mask))
            kept = frame.filter(~mask)
            run.replace(layer, relative, ".parquet",
                        lambda lake, target, kept=kept: write_frame(lake, target, kept))
            summary.rows[layer] = summary.rows.get(layer, 0) + hits
            if layer == "messages":
                for batch_id, n in kept.group_by("batch_id").len().iter_rows():
                    run.counts[batch_id] = n
                for batch_id in frame.filter(mask)["batch_id"].unique():
                    run.counts.setdefault(batch_id, 0)


def _note_removed(run: _Run, gone: pl.DataFrame) -> None:
    """What the raw records and logs are matched by: texts, and senders' names."""
    if "text" in gone.columns:
        run.texts.update(t for t in gone["text"] if t)
    if run.kind != "sender" or "chat_id" not in gone.columns:
        return
    for column in ("sender_id", "sender_name"):
        if column in gone.columns:
            for chat_id, name in gone.select("chat_id", column).iter_rows():
                if chat_id and name:
                    run.names.setdefault(chat_id, set()).add(name)


def _forget_raw(run: _Run, summary: ForgetSummary, allow_again: bool) -> None:
    """Raw records: decided one by one, by their chat or the rows they hold."""
    manifest = run.manifest
    match = RawMatch(run.kind, run.ids, run.keys, run.names, _decode_context(manifest))
    known = bool(run.swaps) or (run.kind == "chat" and _mentioned(manifest, run.ids))
    plan: list[tuple[str, list[str], list[bytes], int, bool]] = []

    def write_raw(relative, batches, kept_lines, dropped, precise) -> None:  # noqa: ANN001
        run.replace(RAW_LAYER, relative, ".jsonl.zst",
                    lambda lake, target: write_raw_lines(lake, target, kept_lines))
        summary.raw_records += dropped
        # A chat's records go whole: the rest still give back the other chats' rows.
        # A sender's records hold other people's messages too: no rebuild from them.
        if run.kind == "sender" or not precise:
            run.redacted.update(batches)

    for relative, batches in files_by_layer(manifest, RAW_LAYER).items():
        lines = read_raw_lines(run.lake, relative)
        hits, precise = match.hits(lines, manifest.batches[batches[0]])
        dropped = sum(hits)
        if dropped:
            kept_lines = [ln for ln, hit in zip(lines, hits, strict=True) if not hit]
            if known:  # written at once: the raw layer is never all in memory
                write_raw(relative, batches, kept_lines, dropped, precise)
            else:
                plan.append((relative, batches, kept_lines, dropped, precise))
    if not known and not plan:
        # A rerun after an interrupted forget still scrubs the .bak copy and logs
        listed = manifest.data["blocklist"][_BLOCKLIST[run.kind]]
        if not any(hashed(i) in listed for i in run.ids) and not allow_again:
            raise NothingToForget(run.kind, run.value)  # nothing written yet
    for planned in plan:
        write_raw(*planned)


def _touched(manifest: Manifest, swaps: list[tuple[str, str, str | None]]) -> set[str]:
    olds = {(layer, old) for layer, old, _ in swaps}
    return {batch_id for batch_id, info in manifest.batches.items()
            if any((layer, f) in olds for layer, f in info.get("files", {}).items())}


def _commit(run: _Run, summary: ForgetSummary, blocked: set[str], allow: bool) -> None:
    """One manifest save: the new files, the chat's state gone, the blocklist."""
    manifest = run.manifest
    for layer, old, new in run.swaps:
        for info in manifest.batches.values():
            if info.get("files", {}).get(layer) == old:
                info["files"][layer] = new
                if layer == "messages" and info.get("compacted_into"):
                    info["compacted_into"] = new
    for batch_id, n in run.counts.items():
        manifest.batches[batch_id]["rows"] = n
    for batch_id in run.redacted:
        manifest.batches[batch_id]["raw_redacted"] = True
    if run.kind == "chat":
        _drop_chat_state(manifest, run.ids, summary)
    _drop_imports(manifest, [_escaped(i) for i in run.ids], summary)
    _update_blocklist(manifest, run.kind, blocked, allow)
    now = datetime.now(UTC).isoformat()
    manifest.record_run({"command": "forget", "finished_at": now, "status": "ok",
                         **summary.to_json()})
    manifest.save()


def _count_state(
    manifest: Manifest, kind: Kind, ids: set[str], summary: ForgetSummary
) -> None:
    """The dry run's figures for the manifest: counted on a copy, which is dropped."""
    data = msgspec.json.decode(msgspec.json.encode(manifest.data))
    copy = Manifest(manifest.lake, data)
    if kind == "chat":
        _drop_chat_state(copy, ids, summary)
    _drop_imports(copy, [_escaped(i) for i in ids], summary)


def _log_needles(ids: set[str], texts: set[str]) -> list[bytes]:
    """Log lines go by the ids, and by texts long enough not to match other lines."""
    long_texts = [n for n in _text_needles(texts) if len(n) >= LOG_TEXT_MIN]
    return [_escaped(i) for i in ids] + long_texts


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
                return [any(key in self.removed_keys or self._is_sender(sid)
                            or name in self.ids for key, sid, name in rows)
                        for rows in per_line], True
        return [self._line_names_sender(line) for line in lines], False

    def _is_sender(self, sender_id: str | None) -> bool:
        return bool(sender_id) and (sender_id in self.ids
                                    or person_of(sender_id) in self.ids)

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
            return self._is_sender(record.get("sender"))
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
    dropped = set()
    for key in list(imports):
        if pattern.search(msgspec.json.encode(imports[key])):
            del imports[key]
            dropped.add(key)
            summary.imports += 1
    # The file's name ("WhatsApp Chat with NAME.txt") is in its batches' records too
    for info in manifest.batches.values():
        record = info.get("import")
        if isinstance(record, dict) and record.get("sha256") in dropped:
            record.pop("file", None)


def _update_blocklist(manifest: Manifest, kind: Kind, ids: set[str], allow: bool) -> None:
    listed = manifest.data["blocklist"]["chats" if kind == "chat" else "senders"]
    for value in ids:
        if allow:
            listed.pop(hashed(value), None)
        else:
            listed[hashed(value)] = {"at": datetime.now(UTC).isoformat()}


def _scrub_logs(lake: Path, needles: list[bytes], apply: bool = True) -> int:
    """Drop the log lines that mention a forgotten id or text; lines dropped (or that
    would be, unless `apply`)."""
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
            if apply:
                write_bytes_atomic(path, b"".join(kept))
    return dropped


__all__ = ["ForgetAmbiguous", "ForgetSummary", "NothingToForget", "forget"]
