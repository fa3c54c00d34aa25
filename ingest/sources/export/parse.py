"""The strict export parser: text of one export file -> messages and a report.

The dialect is sniffed once and compiled to one regex; every line it does not match in
full continues the message above it. Lines before the first header, and header-shaped
lines with an impossible date or time, are listed in the report with their numbers, so
every input line ends up in a message or in the report.
"""

from __future__ import annotations

import gc
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, time

import msgspec

from ingest.sources.export.classify import (
    DELETED,
    LRM,
    SYSTEM_PHRASES,
    classify_body,
    is_system_author,
    needs_classifying,
)
from ingest.sources.export.dates import (
    OrderDecision,
    decide_order,
    make_date,
    parse_time,
    split_date,
)
from ingest.sources.export.dialect import Dialect, sniff_dialect
from ingest.sources.export.errors import (
    ExportEmpty,
    ExportEncodingInvalid,
    ExportLineTooLong,
    ExportNotRecognised,
)

# WhatsApp caps a message at 65,536 characters; a longer line is not an export line.
MAX_LINE = 1_000_000
UNSAVED = ("~\u202f", "~\u00a0", "~ ")
PHONE_CHARS = frozenset("+0123456789 ()-\u00a0\u202f")
# Reasons a line is unplaced (the report's words; the raw layer keeps every line)
BEFORE = "before the first message"
IMPOSSIBLE = ("header with an impossible date or time; kept as text of the "
              "message above")
IMPOSSIBLE_FIRST = ("header with an impossible date or time before the first "
                    "message; not imported as a message (kept in the raw layer only)")


class Message(msgspec.Struct, gc=False):
    """One parsed message, in the vocabulary of the golden `.expected.json` files."""

    line: int
    line_count: int
    timestamp: datetime | None
    author: str | None
    text: str
    author_is_unsaved_contact: bool = False
    is_system: bool = False
    is_media: bool = False
    is_deleted: bool = False
    is_edited: bool = False
    attributed_to: str | None = None
    attachment: str | None = None
    media_kind: str | None = None
    caption: str | None = None
    title: str | None = None  # a document's title (B12, B14); not a caption
    is_location: bool = False
    attachment_present: bool | None = None


@dataclass(frozen=True)
class Unplaced:
    line: int
    text: str
    reason: str


@dataclass
class ParsedExport:
    """Messages in file order plus everything the summary reports."""

    name: str
    dialect: Dialect
    order: OrderDecision
    messages: list[Message]
    lines: list[str]
    unplaced: list[Unplaced] = field(default_factory=list)
    bom: bool = False
    crlf: bool = False
    # What a batch's lines alone cannot tell (recorded for `walake rebuild`): the
    # lines of messages whose 'author' was an event (B5), turned back into system
    # lines, and the line at which each author candidate entered the author cache.
    system_lines: list[int] = field(default_factory=list)
    first_lines: dict[str, int] = field(default_factory=dict)

    @property
    def authors(self) -> list[str]:
        seen = dict.fromkeys(m.author for m in self.messages if m.author is not None)
        return list(seen)


def decode_export(name: str, data: bytes) -> tuple[str, bool]:
    """UTF-8 text of an export (UTF-16 when it starts with that BOM), and BOM seen."""
    if not data.strip():
        raise ExportEmpty(name)
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _encoding_error(name, data, encoding, exc.start) from exc
    if encoding == "utf-16":
        return text, True
    if text.startswith("\ufeff"):
        return text[1:], True
    return text, False


def _encoding_error(
    name: str, data: bytes, encoding: str, offset: int
) -> ExportEncodingInvalid:
    """The typed error for a byte that does not decode, with its line, and whether
    the rest of the file reads as UTF-8 (a few damaged bytes, not another encoding).
    """
    if encoding == "utf-8":
        line = data.count(b"\n", 0, offset) + 1
        rest = data.decode("utf-8", errors="replace").replace("\ufffd", "")
        utf8_elsewhere = not rest.isascii()
    else:
        line = data[:offset].decode(encoding, errors="replace").count("\n") + 1
        utf8_elsewhere = False
    return ExportEncodingInvalid(name, offset, data[offset], line, utf8_elsewhere)


def split_lines(name: str, text: str) -> tuple[list[str], bool]:
    """Lines without their CRLF/LF ends; fails on a line no export can hold."""
    crlf = "\r\n" in text
    if crlf:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    longest = max(map(len, lines), default=0)
    if longest > MAX_LINE:
        index = next(i for i, line in enumerate(lines) if len(line) == longest)
        raise ExportLineTooLong(name, index + 1, longest, MAX_LINE)
    return lines, crlf


def parse_export(
    name: str,
    data: bytes,
    *,
    date_order: str | None = None,
    members: set[str] | None = None,
) -> ParsedExport:
    """Parse one export file's bytes; raises a typed error if it is not an export."""
    text, bom = decode_export(name, data)
    lines, crlf = split_lines(name, text)
    parsed = parse_lines(name, lines, date_order=date_order, members=members)
    parsed.bom, parsed.crlf = bom, crlf
    return parsed


def parse_lines(
    name: str,
    lines: list[str],
    *,
    date_order: str | None = None,
    members: set[str] | None = None,
) -> ParsedExport:
    """Parse the lines of one export; see the module docstring for the guarantees."""
    dialect = sniff_dialect(lines)
    if dialect is None:
        first = next((line for line in lines if line.strip()), "")
        raise ExportNotRecognised(name, first)
    match = dialect.pattern().match
    with gc_paused():
        hits = [(i, found) for i, found in enumerate(map(match, lines)) if found]
        order, dates, times = _resolve_clock(hits, date_order)
        unplaced = _drop_impossible(hits, dates, times, lines)
        if not hits:
            raise ExportNotRecognised(name, lines[0] if lines else "")
        first_lines: dict[str, int] = {}
        messages = _build_messages(hits, lines, dates, times, first_lines)
    system_lines = _reclassify_authors(messages)
    if members is not None:
        for message in messages:
            if message.attachment is not None:
                message.attachment_present = message.attachment in members
    unplaced = unplaced_before(unplaced, lines[: hits[0][0]])
    return ParsedExport(name, dialect, order, messages, lines, unplaced,
                        system_lines=system_lines, first_lines=first_lines)


def unplaced_before(impossible: list[Unplaced], head: list[str]) -> list[Unplaced]:
    """The report in line order: impossible headers, and every line of `head` (the
    lines before the first message), which no message holds, so an impossible
    header there is said to be kept in the raw layer only, not in a message."""
    unplaced = [replace(u, reason=IMPOSSIBLE_FIRST) if u.line <= len(head) else u
                for u in impossible]
    reported = {u.line for u in unplaced}
    unplaced += [Unplaced(i + 1, line, BEFORE) for i, line in enumerate(head)
                 if i + 1 not in reported]
    unplaced.sort(key=lambda u: u.line)
    return unplaced


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: a million surviving small objects make it run quadratic."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _resolve_clock(hits, date_order):  # noqa: ANN001, ANN202 - hot internal helper
    """Date order from all distinct dates, and raw string -> value caches."""
    raw_dates = list(dict.fromkeys([found.group("d") for _, found in hits]))
    order = decide_order(raw_dates, date_order)
    dates = {raw: make_date(split_date(raw), order.order) for raw in raw_dates}
    times = {}
    for raw in dict.fromkeys([found.group("t") for _, found in hits]):
        clock = parse_time(raw)
        times[raw] = time(*clock) if clock else None
    return order, dates, times


def _drop_impossible(hits, dates, times, lines) -> list[Unplaced]:  # noqa: ANN001
    """Remove headers whose date or time cannot exist; they stay as message text
    (those before the first message stay unplaced: `unplaced_before`)."""
    if None not in dates.values() and None not in times.values():
        return []
    unplaced, kept = [], []
    for i, found in hits:
        if dates[found.group("d")] is None or times[found.group("t")] is None:
            unplaced.append(Unplaced(i + 1, lines[i], IMPOSSIBLE))
        else:
            kept.append((i, found))
    hits[:] = kept
    return unplaced


def _build_messages(
    hits, lines, dates, times, first_lines  # noqa: ANN001 - hot internal inputs
) -> list[Message]:
    """The hot loop: plain ASCII text messages take the short path inline.

    `first_lines` gets the 1-based line at which each candidate entered the cache.
    """
    messages: list[Message] = []
    append = messages.append
    ends = [i for i, _ in hits[1:]]
    ends.append(len(lines))
    authors: dict[str, tuple[str, bool]] = {}
    combine = datetime.combine
    for (i, found), end in zip(hits, ends):
        raw_date, raw_time, first = found.groups()
        stamp = combine(dates[raw_date], times[raw_time])
        colon = first.find(": ")
        if end - i > 1:
            rest = first + "\n" + "\n".join(lines[i + 1 : end])
        else:
            rest = first
        known = authors.get(first[:colon]) if colon > 0 else None
        if known is not None and i:
            body = rest[colon + 2 :]
            if body and body.isascii() and body[-1] not in ">)" and "\n" not in body \
                    and "location" not in body and body not in DELETED:
                append(Message(i + 1, end - i, stamp, known[0], body, known[1]))
                continue
        known_count = len(authors)
        append(_message(i, end - i, stamp, rest, authors))
        if len(authors) > known_count:
            first_lines[next(reversed(authors))] = i + 1
    return messages


def _message(
    i: int, count: int, stamp: datetime, rest: str, authors: dict[str, tuple[str, bool]]
) -> Message:
    """One message from the text after the header: the general, slower path."""
    first_end = rest.find("\n")
    colon = rest.find(": ", 0, first_end if first_end >= 0 else len(rest))
    if colon < 0:
        return _system(i, count, stamp, rest, None)
    candidate = rest[:colon]
    body = rest[colon + 2 :]
    if body.startswith(LRM) and _is_event(body):
        return _system(i, count, stamp, body, candidate)
    known = authors.get(candidate)
    if known is None:
        known = authors[candidate] = _author(candidate)
    author, unsaved = known
    if LRM in body:
        body = body.replace(LRM, "")
    if not body.isascii():
        body = unicodedata.normalize("NFC", body)
    if not needs_classifying(body):
        if author == candidate and SYSTEM_PHRASES.match(body) and i == 0:
            return _system(i, count, stamp, body, candidate)
        return Message(i + 1, count, stamp, author, body,
                       author_is_unsaved_contact=unsaved)
    info = classify_body(body)
    return Message(
        i + 1, count, stamp, author, info.text,
        is_media=info.is_media, is_deleted=info.is_deleted, is_edited=info.is_edited,
        author_is_unsaved_contact=unsaved, attachment=info.attachment,
        media_kind=info.media_kind, caption=info.caption, is_location=info.is_location,
        title=info.title,
    )


def _is_event(body: str) -> bool:
    """An iOS body starting with LRM is an event unless it is a placeholder (B7)."""
    info = classify_body(body.replace(LRM, ""))
    return not (info.is_media or info.is_deleted or info.is_location)


def _system(
    i: int, count: int, stamp: datetime, text: str, label: str | None
) -> Message:
    if LRM in text:
        text = text.replace(LRM, "")
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if label is not None and not label.isascii():
        label = unicodedata.normalize("NFC", label)
    return Message(i + 1, count, stamp, None, text, is_system=True, attributed_to=label)


def _author(candidate: str) -> tuple[str, bool]:
    """The author's name without the unsaved-contact marker (H23), and the flag."""
    name, unsaved = candidate, False
    for marker in UNSAVED:
        if name.startswith(marker):
            name, unsaved = name[len(marker) :], True
            break
    name = name.replace(LRM, "").replace("\u200f", "")
    if not name.isascii():
        name = unicodedata.normalize("NFC", name)
    return name, unsaved


def _reclassify_authors(messages: list[Message]) -> list[int]:
    """Turn 'authors' that are really event lines (B5) back into system lines;
    returns the lines of the messages turned back."""
    authors = {m.author for m in messages if m.author is not None}
    suspects = {a for a in authors if is_system_author(a, authors - {a})}
    if not suspects:
        return []
    turned = [m for m in messages if m.author in suspects]
    for message in turned:
        as_system(message)
    return [m.line for m in turned]


def as_system(message: Message) -> None:
    """Make a message whose 'author' is an event a system line, the name in its text."""
    message.text = f"{message.author}: {message.text}"
    message.author = None
    message.is_system = True
    message.is_media = message.is_deleted = message.is_edited = False
    message.attachment = message.media_kind = message.caption = message.title = None
    message.is_location = False


def is_phone_number(author: str) -> bool:
    """True for an author shown as a number (H20): a contact not in the address book."""
    return author.startswith("+") and PHONE_CHARS.issuperset(author)
