"""Landing a parsed export in the lake: dedupe against the lake, batches, the record.

Rerunning is safe. A file whose sha256 the manifest lists as imported into the same
chat adds nothing; any other file adds only the rows whose message_key the lake does
not hold for that chat, so a later, longer export of a chat adds its new messages,
and an import interrupted between batches picks up where it stopped. A file that
fails to parse never reaches the lake.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, tzinfo

import polars as pl

from ingest.lake.blocklist import unblocked_rows
from ingest.lake.writer import CursorMove, LakeWriter, PendingBatch
from ingest.sources.export.archive import ExportFile
from ingest.sources.export.fast import FastParsed, FastStart
from ingest.sources.export.parse import Message, ParsedExport
from ingest.sources.export.rows import (
    SOURCE,
    ChatTarget,
    KeyAssigner,
    build_frame,
    fold_name,
)

BATCH_ROWS = 50_000
# The layout of the import record's "rebuild" entry; a batch whose import has none
# (imported before it existed) cannot be rebuilt.
REBUILD_VERSION = 1
GROUP_EVENTS = ("created group", "added", "joined using this group",
                "changed the subject", "changed this group", "changed the group",
                "removed", " left")

__all__ = ["ChatTarget", "ImportSummary", "chat_id_for", "land_export"]


@dataclass
class ImportSummary:
    file: str
    sha256: str
    chat_id: str
    chat_name: str
    is_group: bool
    messages: int = 0
    system: int = 0
    media: int = 0
    new: int = 0
    batches: list[str] = field(default_factory=list)
    already_imported: bool = False
    warnings: list[str] = field(default_factory=list)


def chat_id_for(chat_name: str, chat_id: str | None = None) -> str:
    """`--chat-id` when given (a JID merges with MCP rows), else export:<name>."""
    if chat_id:
        return chat_id
    return "export:" + unicodedata.normalize("NFC", chat_name).casefold()


def guess_is_group(parsed: ParsedExport) -> bool:
    """More than two authors, an event only groups have, or an iOS event labelled
    with a name that never writes (the group's; a direct chat labels the person)."""
    authors = parsed.authors
    if len(authors) > 2:
        return True
    return any(
        m.is_system and (any(e in m.text for e in GROUP_EVENTS)
                         or (m.attributed_to and m.attributed_to not in authors))
        for m in parsed.messages
    )


def summarize(
    parsed: ParsedExport, source: ExportFile, target: ChatTarget, is_group: bool
) -> ImportSummary:
    summary = ImportSummary(source.name, source.sha256, target.chat_id,
                            target.chat_name, is_group)
    summary.messages = len(parsed.messages)
    summary.system = sum(m.is_system for m in parsed.messages)
    summary.media = sum(m.is_media for m in parsed.messages)
    authors = {fold_name(a) for a in parsed.authors}
    if target.me and fold_name(target.me) not in authors:
        summary.warnings.append(
            f"--me {target.me!r} matches no author in this file (authors: "
            f"{', '.join(parsed.authors[:5])}); is_from_me is false for every row."
        )
    return summary


def land_export(
    writer: LakeWriter,
    parsed: ParsedExport | FastParsed | FastStart,
    source: ExportFile,
    target: ChatTarget,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Write the file's new rows in batches of BATCH_ROWS and record the import."""
    assert writer.manifest is not None
    if isinstance(parsed, (FastParsed, FastStart)):
        from ingest.sources.export.pipeline import land_fast  # it imports this module

        return land_fast(writer, parsed, source, target, on_progress)
    is_group = guess_is_group(parsed)
    summary = summarize(parsed, source, target, is_group)
    imports = writer.manifest.data.setdefault("imports", {})
    done = imports.get(source.sha256, {})
    if done.get("complete") and done.get("chat_id") == target.chat_id:
        summary.already_imported = True
        return summary

    held = writer.held_keys(target.chat_id).implode()
    keys = KeyAssigner(target.chat_id)
    messages = parsed.messages
    pending: PendingBatch | None = None
    for start in range(0, len(messages), BATCH_ROWS):
        chunk = messages[start : start + BATCH_ROWS]
        frame = build_frame(chunk, target, is_group, source.media_sizes, keys)
        ordinals = keys.ordinals
        fresh_mask = _fresh_rows(writer, frame, held if held.list.len()[0] else None)
        if fresh_mask is not None:
            frame = frame.filter(fresh_mask)
            chunk = [m for m, fresh in zip(chunk, fresh_mask) if fresh]
            ordinals = [o for o, fresh in zip(ordinals, fresh_mask) if fresh]
        if frame.is_empty():
            continue
        if pending is not None:
            _commit(writer, pending, summary)
        pending = _batch(parsed, source, target, is_group, frame, chunk, ordinals,
                         first=not summary.new)
        summary.new += frame.height
        if on_progress:
            on_progress(min(start + BATCH_ROWS, len(messages)), len(messages))

    _finish_import(writer, parsed, source, target, summary, pending)
    return summary


def _finish_import(
    writer: LakeWriter,
    parsed: ParsedExport | FastParsed,
    source: ExportFile,
    target: ChatTarget,
    summary: ImportSummary,
    pending: PendingBatch | None,
) -> None:
    """Record the import with the last batch, so an interrupted import is not done
    (alone, when no batch is left: the fast path commits a batch before it knows
    whether the later ones hold new rows)."""
    imports = writer.manifest.data.setdefault("imports", {})
    imports[source.sha256] = _import_record(parsed, source, target, summary)
    try:
        if pending is None:
            writer.manifest.save()
        else:
            _commit(writer, pending, summary)
    except BaseException:
        imports.pop(source.sha256, None)
        raise


def _fresh_rows(
    writer: LakeWriter, frame: pl.DataFrame, held: pl.Series | None
) -> pl.Series | None:
    """Rows to land: not in the lake yet (`held`: its keys) and not forgotten.

    Forgotten senders are dropped here, before their lines become raw records; None
    when every row lands."""
    fresh = None if held is None else ~frame["message_key"].is_in(held)
    unblocked = unblocked_rows(writer.manifest, frame)
    if unblocked is None:
        return fresh
    return unblocked if fresh is None else fresh & unblocked


def _commit(writer: LakeWriter, batch: PendingBatch, summary: ImportSummary) -> None:
    info = writer.commit(batch)
    if info is not None:  # None: every row belonged to a forgotten chat or sender
        summary.batches.append(info.batch_id)


def _batch(
    parsed: ParsedExport,
    source: ExportFile,
    target: ChatTarget,
    is_group: bool,
    frame: pl.DataFrame,
    messages: list[Message],
    ordinals: list[int],
    first: bool,
) -> PendingBatch:
    """One batch: the typed rows plus, as raw, the file lines of each message (and
    its key's ordinal when not 0: it counts identical messages across the file)."""
    lines, sha, chat = parsed.lines, source.sha256, target.chat_id
    raw = [
        {"chat_id": chat, "sha256": sha, "line": m.line,
         "lines": lines[m.line - 1 : m.line - 1 + m.line_count],
         **({"ordinal": ordinal} if ordinal else {})}
        for m, ordinal in zip(messages, ordinals, strict=True)
    ]
    return _batch_fast(parsed, source, target, is_group, frame, raw, first)


def _import_record(
    parsed: ParsedExport | FastParsed,
    source: ExportFile,
    target: ChatTarget,
    summary: ImportSummary,
) -> dict:
    return {
        "file": source.name,
        "chat_id": target.chat_id,
        "messages": summary.messages,
        "new": summary.new,
        "dialect": parsed.dialect.describe(parsed.order.order),
        "date_order": parsed.order.order,
        "order_decided": parsed.order.decided,  # read from the file, not a default
        "imported_at": datetime.now(UTC).isoformat(),
        "complete": True,
        "rebuild": rebuild_record(parsed, source, target, summary.is_group),
    }


def rebuild_record(
    parsed: ParsedExport | FastParsed,
    source: ExportFile,
    target: ChatTarget,
    is_group: bool,
) -> dict:
    """What the parse decided from the whole file, which `walake rebuild` needs to
    re-parse a batch's lines alone (ingest/sources/export/rebuild.py)."""
    if isinstance(parsed, FastParsed):
        attachments = parsed.frame["attachment"].drop_nulls().to_list()
    else:
        attachments = [m.attachment for m in parsed.messages if m.attachment]
    sizes = source.media_sizes
    # Names only as hashes: `walake forget` promises no forgotten name stays behind
    return {
        "version": REBUILD_VERSION,
        "header": asdict(parsed.dialect),
        "date_order": parsed.order.order,
        "zone": zone_key(target.zone),
        "chat_id": target.chat_id,
        "chat_name": target.chat_name,
        "is_group": is_group,
        "me": name_hash(fold_name(target.me)) if target.me else None,
        "system_lines": list(parsed.system_lines),
        "first_lines": {name_hash(c): line for c, line in parsed.first_lines.items()},
        "media_sizes": {f: sizes[f] for f in sorted(set(attachments)) if f in sizes},
    }


def name_hash(name: str) -> str:
    """A name as the import record keeps it (`rebuild_record`)."""
    return hashlib.blake2b(name.encode(), digest_size=12).hexdigest()


def zone_key(zone: tzinfo) -> str | None:
    """The zone's name, to find it again; None for an unnamed one (a zone file)."""
    if zone is UTC:
        return "UTC"
    key = getattr(zone, "key", None)
    return None if key in (None, "localtime") else key


def guess_is_group_fast(parsed: FastParsed) -> bool:
    """`guess_is_group` over the message frame."""
    authors = parsed.authors
    if len(authors) > 2:
        return True
    system = parsed.frame.filter(pl.col("is_system"))
    return system.select(
        pl.any_horizontal(*(pl.col("text").str.contains(e, literal=True)
                            for e in GROUP_EVENTS))
        | (pl.col("attributed_to").is_not_null()
           & ~pl.col("attributed_to").is_in(authors))
    ).to_series().any()


def summarize_fast(
    parsed: FastParsed, source: ExportFile, target: ChatTarget, is_group: bool
) -> ImportSummary:
    summary = ImportSummary(source.name, source.sha256, target.chat_id,
                            target.chat_name, is_group)
    frame = parsed.frame
    summary.messages = frame.height
    summary.system = int(frame["is_system"].sum())
    summary.media = int(frame["is_media"].sum())
    names = parsed.authors
    authors = {fold_name(a) for a in names}
    if target.me and fold_name(target.me) not in authors:
        summary.warnings.append(
            f"--me {target.me!r} matches no author in this file (authors: "
            f"{', '.join(names[:5])}); is_from_me is false for every row."
        )
    return summary


def _batch_fast(
    parsed: FastParsed | FastStart | ParsedExport,
    source: ExportFile,
    target: ChatTarget,
    is_group: bool,
    frame: pl.DataFrame,
    raw: list[bytes | dict] | bytes,
    first: bool,
) -> PendingBatch:
    """One batch: the typed rows and their raw records (bytes: one block of them,
    encoded already); the file's unplaced lines ride with its first batch, so the
    raw layer keeps every line of the file."""
    sha, chat = source.sha256, target.chat_id
    encoded = raw if isinstance(raw, bytes) else b""
    records: list = [] if encoded else list(raw)
    if first:
        records += [{"chat_id": chat, "sha256": sha, "line": u.line, "lines": [u.text],
                     "unplaced": u.reason} for u in parsed.unplaced]
    newest = frame["sent_at_local"].max()
    cursor = {"file_sha256": sha, "newest_local": newest.isoformat()}
    return PendingBatch(
        source=SOURCE,
        frames=[frame],
        raw=records,
        raw_encoded=encoded,
        raw_encoded_records=1 if encoded else 0,
        keys_new=True,  # keys the lake lacked (_fresh_rows), apart by file ordinal
        moves=[CursorMove(SOURCE, chat, cursor)],
        chats={chat: (target.chat_name, is_group)},
        extra={"import": {"file": source.name, "sha256": sha,
                          "line_end": "CRLF" if parsed.crlf else "LF",
                          "bom": parsed.bom, "raw_ordinals": True}},
    )
