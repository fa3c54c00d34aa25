"""`walake import` without the terminal: every PATH, file by file, into one lake.

Each file is read and checked before anything is written (every error a parse can
raise comes before its messages are classified), so a file that fails leaves the lake
as it was; the other files still go in. The outcome of every file, good or bad, is
returned for the CLI to show: one per chat file, so a zip holding several chat files
gives one outcome for each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.lake.manifest import Manifest
from ingest.lake.writer import LakeWriter
from ingest.sources.export.archive import (
    ArchiveLimits,
    ExportFile,
    ExportSource,
    find_exports,
    open_exports,
)
from ingest.sources.export.errors import (
    ArchiveAmbiguous,
    DateOrderConflict,
    ExportError,
)
from ingest.sources.export.fast import FastParsed, FastStart, start_fast
from ingest.sources.export.land import (
    ChatTarget,
    ImportSummary,
    chat_id_for,
    land_export,
)
from ingest.sources.export.parse import ParsedExport, gc_paused, parse_export
from ingest.sources.export.zones import resolve_zone

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
DAY_MONTH = ("dmy", "mdy")  # the orders a header like 3/5/25 leaves open


@dataclass(frozen=True)
class ImportOptions:
    chat: str | None = None
    chat_id: str | None = None
    me: str | None = None
    date_order: str | None = None
    tz: str | None = None
    limits: ArchiveLimits = ArchiveLimits()


@dataclass
class FileOutcome:
    """What happened to one chat file: a summary and its parse, or the error.

    `name` is the chat file's ('x.zip/_chat.txt' in a zip); None when PATH failed
    before its chat files were known."""

    path: Path
    zone: str
    summary: ImportSummary | None = None
    parsed: ParsedExport | FastParsed | None = None
    error: ExportError | None = None
    name: str | None = None


def import_exports(
    lake: Path,
    paths: Iterable[Path],
    options: ImportOptions,
    on_progress: Progress | None = None,
) -> list[FileOutcome]:
    """Import every export PATH names; files that fail are reported, not raised.

    A PATH that names no export at all (an empty folder, a pipe) raises before
    anything is opened or written, the lake included."""
    zone, zone_name = resolve_zone(options.tz)
    files = [found for path in paths for found in find_exports(path)]
    outcomes = []
    with LakeWriter(lake) as writer:
        for path in files:
            outcomes += _import_path(writer, path, options, zone, zone_name,
                                     on_progress)
    return outcomes


def _import_path(
    writer: LakeWriter,
    path: Path,
    options: ImportOptions,
    zone: object,
    zone_name: str,
    on_progress: Progress | None,
) -> list[FileOutcome]:
    """Every chat file of one PATH, each on its own: one failing keeps the others."""
    try:
        sources = open_exports(path, options.limits)
        _check_one_chat_asked(path, sources, options)
    except ExportError as exc:
        return [FileOutcome(path, zone_name, error=exc)]
    outcomes = []
    for source in sources:
        outcome = FileOutcome(path, zone_name, name=source.name)
        try:
            # The GC would rescan the file's million live rows again and again.
            with gc_paused():
                _import_one(writer, source, options, zone, outcome, on_progress)
        except ExportError as exc:
            outcome.error = exc
        outcomes.append(outcome)
    _warn_loose_texts(path, sources, outcomes)
    return outcomes


def _check_one_chat_asked(
    path: Path, sources: list[ExportSource], options: ImportOptions
) -> None:
    """--chat/--chat-id name one chat: refused for a zip of several chats' files."""
    option = "--chat-id" if options.chat_id else "--chat" if options.chat else None
    if option is None or len({chat_id_for(s.chat_name) for s in sources}) < 2:
        return
    raise ArchiveAmbiguous(path.name, [s.member or s.name for s in sources], option)


def _warn_loose_texts(
    path: Path, sources: list[ExportSource], outcomes: list[FileOutcome]
) -> None:
    """Say which other .txt of a zip went unimported: neither named as a chat file
    nor attached in one of its chats (it may be a renamed export)."""
    done = [o for o in outcomes if o.summary is not None and o.parsed is not None]
    if not done or not sources[0].loose_texts:
        return
    attached = set().union(*(_attachments(o.parsed) for o in done))
    for member in sources[0].loose_texts:
        if member.rpartition("/")[2] not in attached:
            done[0].summary.warnings.append(
                f"{member!r} in {path.name} was not imported: it is not named like "
                "a WhatsApp chat file and no chat in the zip attaches it. If it is a "
                "chat export, rename it 'WhatsApp Chat with NAME.txt' in the zip, or "
                "unzip the zip and import it by path."
            )


def date_order_conflict(
    manifest: Manifest, parsed: ParsedExport | FastStart, source: ExportFile,
    chat_id: str,
) -> DateOrderConflict | None:
    """The conflict with an earlier import of the chat read in the other day-month
    order, where either order was not read from its file (a default or a hint).

    Two files that each show their order can differ (phones set to different
    locales) and both be right; a default can be wrong, and its rows would then
    land again under other dates.
    """
    order = parsed.order
    if order.order not in DAY_MONTH:
        return None
    for sha, record in manifest.data.get("imports", {}).items():
        earlier = record.get("date_order")
        if sha == source.sha256 or record.get("chat_id") != chat_id:
            continue
        if earlier not in DAY_MONTH or earlier == order.order:
            continue
        decided = bool(record.get("order_decided", True))  # older records: unknown
        if not (order.decided and decided):
            return DateOrderConflict(source.name, order.order, order.reason, chat_id,
                                     record.get("file", "?"), earlier, decided)
    return None


def _attachments(parsed: ParsedExport | FastParsed) -> set[str]:
    if isinstance(parsed, FastParsed):
        return set(parsed.frame["attachment"].drop_nulls().to_list())
    return {m.attachment for m in parsed.messages if m.attachment}


def _import_one(
    writer: LakeWriter,
    chat_file: ExportSource,
    options: ImportOptions,
    zone: object,
    outcome: FileOutcome,
    on_progress: Progress | None,
) -> None:
    source = chat_file.read()
    parsed: ParsedExport | FastStart | None = start_fast(
        source.name, source.data, date_order=options.date_order, members=source.members)
    if parsed is None:  # UTF-16, or not an export: the reference decides and words it
        parsed = parse_export(source.name, source.data, date_order=options.date_order,
                              members=source.members)
        outcome.parsed = parsed
    source.data = b""  # read; landing needs only its name, hash and media
    count = parsed.total if isinstance(parsed, FastStart) else len(parsed.messages)
    log.info("%s: %d messages, dialect %r, date order %s (%s)", source.name,
             count, parsed.dialect.describe(parsed.order.order),
             parsed.order.order, parsed.order.reason)
    name = options.chat or source.chat_name
    target = ChatTarget(chat_id_for(name, options.chat_id), name, options.me, zone)
    conflict = date_order_conflict(writer.manifest, parsed, source, target.chat_id)
    if conflict is not None:
        if isinstance(parsed, FastStart):
            parsed.finish()  # its parse thread ends before the file is refused
        raise conflict

    def progress(done: int, total: int) -> None:
        if on_progress:
            on_progress(source.name, done, total)

    # A fast parse classifies its messages while the first batches land
    outcome.summary = land_export(writer, parsed, source, target, progress)
    if isinstance(parsed, FastStart):
        outcome.parsed = parsed.finish()
