"""`walake rebuild` for export batches: a batch's raw lines back into its rows.

The parser decides some things from the whole file: the header dialect, the date
order, which 'authors' are really events, whether an author was seen before a
message (the reference's author cache), and the import adds the zone, the chat,
`--me` and the zip's media sizes. The import records them (the manifest's import
record, "rebuild"), and each raw record holds one message's lines plus its key's
ordinal among identical messages of the file. Each record is re-parsed with the
recorded header and date order, strictly: nothing is detected again.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import msgspec
import polars as pl

from ingest.schema import SOURCE_COLUMNS
from ingest.sources.export.classify import DELETED
from ingest.sources.export.dates import make_date, parse_time, split_date
from ingest.sources.export.dialect import Dialect
from ingest.sources.export.errors import ZoneUnknown
from ingest.sources.export.land import REBUILD_VERSION, name_hash, zone_key
from ingest.sources.export.parse import Message, _author, _message, as_system
from ingest.sources.export.rows import (
    ChatTarget,
    KeyAssigner,
    assign_keys,
    build_frame,
    fold_name,
    key_parts,
)
from ingest.sources.export.zones import resolve_zone


class RecordedParse(msgspec.Struct):
    """The import record's "rebuild" entry (see `land.rebuild_record`)."""

    version: int
    header: dict[str, Any]
    date_order: str
    zone: str | None
    chat_id: str
    chat_name: str
    is_group: bool
    me: str | None  # the hash (`land.name_hash`) of the folded `--me` name
    system_lines: list[int]
    first_lines: dict[str, int]  # author candidate's hash -> the line it entered at
    media_sizes: dict[str, int]


def rebuild_export(
    lines: list[bytes], info: dict[str, Any], context: Any
) -> pl.DataFrame:
    """The SOURCE_COLUMNS rows of an export batch, as its import built them."""
    from ingest.lake.rebuild import NotRebuildable

    recorded = recorded_parse(info, context)
    target = ChatTarget(recorded.chat_id, recorded.chat_name, None,
                        _zone(recorded, context))
    messages, ordinals = _messages(lines, recorded)
    system = set(recorded.system_lines)
    for message in messages:
        if message.line in system and message.author is not None:
            as_system(message)
    frame = build_frame(messages, target, recorded.is_group, recorded.media_sizes,
                        KeyAssigner(recorded.chat_id))
    if recorded.me is not None:
        frame = frame.with_columns(_from_me(frame["sender_name"], recorded.me))
    inputs = key_parts(frame).with_columns(pl.Series("_ordinal", ordinals, pl.Int64))
    frame = frame.with_columns(assign_keys(recorded.chat_id, inputs))
    if frame["message_key"].n_unique() != frame.height:
        raise NotRebuildable("two raw records give the same message_key")
    return frame.select(SOURCE_COLUMNS)


def _from_me(authors: pl.Series, me: str) -> pl.Series:
    """`is_from_me` as `rows.build_frame` sets it, from the hash of `--me`."""
    names = authors.drop_nulls().unique().to_list()
    mine = {a: name_hash(fold_name(a)) == me for a in names}
    return authors.replace_strict(mine, default=None, return_dtype=pl.Boolean) \
        .alias("is_from_me")


def recorded_parse(info: dict[str, Any], context: Any) -> RecordedParse:
    """The import's recorded parse of the batch's file, or why there is none."""
    from ingest.lake.rebuild import NoRebuildRecord

    landed = info.get("import") or {}
    sha = landed.get("sha256")
    entry = (getattr(context, "imports", {}) or {}).get(sha) or {}
    if not landed.get("raw_ordinals") or "rebuild" not in entry:
        raise NoRebuildRecord(
            f"imported before rebuilds of exports were possible, so the lake does not "
            f"record how {landed.get('file') or sha or 'its file'} was parsed; it "
            "keeps its rows (import the file into a new lake to re-derive them)"
        )
    try:
        recorded = msgspec.convert(entry["rebuild"], RecordedParse)
    except msgspec.ValidationError as exc:
        raise NoRebuildRecord(f"the import record of {sha} is unreadable: {exc}") \
            from exc
    if recorded.version != REBUILD_VERSION:
        raise NoRebuildRecord(
            f"the import record of {sha} has layout {recorded.version}, and this "
            f"walake reads layout {REBUILD_VERSION}; upgrade walake to rebuild it"
        )
    if recorded.chat_id not in (info.get("chats") or [recorded.chat_id]):
        raise NoRebuildRecord(
            f"the file {sha} was imported again into chat {recorded.chat_id!r}, so "
            "the lake no longer records how this batch's copy was parsed"
        )
    return recorded


def _zone(recorded: RecordedParse, context: Any) -> tzinfo:
    """The zone the file was imported in; another zone asked for is refused."""
    from ingest.lake.rebuild import NoRebuildRecord

    if recorded.zone is None:
        raise NoRebuildRecord(
            "it was imported in this machine's unnamed zone (a zone file), which "
            "cannot be found again by name; it keeps its rows"
        )
    try:
        zone, _ = resolve_zone(recorded.zone)
    except ZoneUnknown as exc:
        raise NoRebuildRecord(f"its zone {recorded.zone!r} is unknown here") from exc
    asked = (getattr(context, "zones", {}) or {}).get("export")
    if asked is not None and zone_key(asked) != recorded.zone:
        raise NoRebuildRecord(
            f"it was imported in {recorded.zone} (import --tz), and export batches "
            f"are rebuilt in the zone they were imported in, not {zone_key(asked)}; "
            "rebuild without --timezone (or with the import's zone), or import the "
            "file with --tz into a new lake"
        )
    return zone


def _messages(
    lines: list[bytes], recorded: RecordedParse
) -> tuple[list[Message], list[int]]:
    """The batch's messages in file order, and each one's key ordinal."""
    from ingest.lake.rebuild import NotRebuildable

    dialect = Dialect(**recorded.header)
    match = dialect.pattern().match
    messages, ordinals = [], []
    for number, line in enumerate(lines, start=1):
        try:
            record = msgspec.json.decode(line)
            if record.get("unplaced"):
                continue  # a line no message holds (kept in the raw layer only)
            text = record["lines"]
            found = match(text[0])
            message = _parse_one(record["line"], text, found, recorded) \
                if found else None
        except (msgspec.DecodeError, KeyError, IndexError, TypeError,
                ValueError) as exc:
            raise NotRebuildable(f"raw record {number} cannot be decoded: {exc}") \
                from exc
        if message is None:
            shape = dialect.describe(recorded.date_order)
            raise NotRebuildable(
                f"raw record {number} (line {record['line']}) does not start with a "
                f"header of the recorded dialect {shape!r}"
            )
        messages.append(message)
        ordinals.append(int(record.get("ordinal") or 0))
    return messages, ordinals


def _parse_one(
    line: int, text: list[str], found: Any, recorded: RecordedParse
) -> Message | None:
    """One message as `parse._build_messages` builds it at that line of the file."""
    raw_date, raw_time, first = found.groups()
    day = make_date(split_date(raw_date), recorded.date_order)
    clock = parse_time(raw_time)
    if day is None or clock is None:
        return None
    stamp = datetime(day.year, day.month, day.day, *clock)
    rest = first + "\n" + "\n".join(text[1:]) if len(text) > 1 else first
    i = line - 1
    colon = first.find(": ")
    # The reference's short path, taken when the author is already in its cache
    candidate = first[:colon] if colon > 0 else None
    entered = (recorded.first_lines.get(name_hash(candidate))
               if candidate is not None else None)
    if entered is not None and entered < line and i:
        body = rest[colon + 2 :]
        if body and body.isascii() and body[-1] not in ">)" and "\n" not in body \
                and "location" not in body and body not in DELETED:
            author, unsaved = _author(candidate)
            return Message(line, len(text), stamp, author, body, unsaved)
    return _message(i, len(text), stamp, rest, {})
