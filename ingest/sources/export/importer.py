"""`walake import` without the terminal: every PATH, file by file, into one lake.

Each file is read and parsed in full before anything is written, so a file that fails
leaves the lake as it was; the other files still go in. The outcome of every file,
good or bad, is returned for the CLI to show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.lake.writer import LakeWriter
from ingest.sources.export.archive import ArchiveLimits, find_exports, read_export_file
from ingest.sources.export.errors import ExportError
from ingest.sources.export.fast import FastParsed, parse_fast
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
    """What happened to one file: a summary and its parse, or the error."""

    path: Path
    zone: str
    summary: ImportSummary | None = None
    parsed: ParsedExport | FastParsed | None = None
    error: ExportError | None = None


def import_exports(
    lake: Path,
    paths: Iterable[Path],
    options: ImportOptions,
    on_progress: Progress | None = None,
) -> list[FileOutcome]:
    """Import every export PATH names; files that fail are reported, not raised."""
    zone, zone_name = resolve_zone(options.tz)
    files = [found for path in paths for found in find_exports(path)]
    outcomes = []
    with LakeWriter(lake) as writer:
        for path in files:
            outcome = FileOutcome(path, zone_name)
            try:
                # The GC would rescan the file's million live rows again and again.
                with gc_paused():
                    _import_one(writer, path, options, zone, outcome, on_progress)
            except ExportError as exc:
                outcome.error = exc
            outcomes.append(outcome)
    return outcomes


def _import_one(
    writer: LakeWriter,
    path: Path,
    options: ImportOptions,
    zone: object,
    outcome: FileOutcome,
    on_progress: Progress | None,
) -> None:
    source = read_export_file(path, options.limits)
    parsed = parse_fast(source.name, source.data, date_order=options.date_order,
                        members=source.members)
    if parsed is None:  # UTF-16, or not an export: the reference decides and words it
        parsed = parse_export(source.name, source.data, date_order=options.date_order,
                              members=source.members)
    source.data = b""  # parsed; landing needs only its name, hash and media
    outcome.parsed = parsed
    count = (parsed.frame.height if isinstance(parsed, FastParsed)
             else len(parsed.messages))
    log.info("%s: %d messages, dialect %r, date order %s (%s)", source.name,
             count, parsed.dialect.describe(parsed.order.order),
             parsed.order.order, parsed.order.reason)
    name = options.chat or source.chat_name
    target = ChatTarget(chat_id_for(name, options.chat_id), name, options.me, zone)

    def progress(done: int, total: int) -> None:
        if on_progress:
            on_progress(source.name, done, total)

    outcome.summary = land_export(writer, parsed, source, target, progress)
