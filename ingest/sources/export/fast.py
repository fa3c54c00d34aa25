"""The vectorized fast path: export bytes -> one typed message frame, in Polars.

Same results as the strict reference parser (`parse.parse_export`), which stays the
definition: the file's lines become a Polars Series, the per-file dialect regex (the
very pattern `dialect.compile_header` builds) marks header lines in Rust, dates and
times are resolved once per distinct value with the reference's own helpers, and the
plain-text majority of messages is built column-wise. Every message the columns cannot
decide for sure (events, placeholders, the first line of the file, ...) goes through the
reference's per-message code, with the same author cache state it would have seen.
`parse_fast` returns None when the file is better left to the reference (UTF-16, a
pattern the Rust engine refuses, a file that is not an export: error texts come from
the reference). `start_fast` stops before classifying, so that an import can land
the first messages while later ones are classified (`FastStart.slices`).
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from ingest.sources.export.classify import (
    DELETED,
    EDITED_TRAILERS,
    LRM,
    MEDIA_OMITTED,
    SYSTEM_VERBS,
    is_system_author,
)
from ingest.sources.export.dates import (
    OrderDecision,
    decide_order,
    make_date,
    parse_time,
    split_date,
)
from ingest.sources.export.dialect import SNIFF_LINES, Dialect, sniff_dialect
from ingest.sources.export.errors import (
    ExportEmpty,
    ExportLineTooLong,
)
from ingest.sources.export.parse import (
    IMPOSSIBLE,
    MAX_LINE,
    Message,
    Unplaced,
    _author,
    _is_event,
    _message,
    decode_export,
    unplaced_before,
)


MESSAGE_COLUMNS = {
    "line": pl.Int64(), "line_count": pl.Int64(), "timestamp": pl.Datetime("us"),
    "author": pl.String(), "text": pl.String(),
    "author_is_unsaved_contact": pl.Boolean(), "is_system": pl.Boolean(),
    "is_media": pl.Boolean(), "is_deleted": pl.Boolean(), "is_edited": pl.Boolean(),
    "attributed_to": pl.String(), "attachment": pl.String(),
    "media_kind": pl.String(), "caption": pl.String(), "title": pl.String(),
    "is_location": pl.Boolean(), "attachment_present": pl.Boolean(),
}
CLASSIFIED = [c for c in MESSAGE_COLUMNS if c not in ("line", "line_count",
                                                      "timestamp",
                                                      "attachment_present")]


@dataclass
class FastParsed:
    """What `ParsedExport` reports, with the messages as one frame (file order).

    `frame` has the `Message` fields as columns (MESSAGE_COLUMNS); `line_frame` has
    every file line with `mid`, the 1-based message it belongs to (0: unplaced).
    """

    name: str
    dialect: Dialect
    order: OrderDecision
    frame: pl.DataFrame
    line_frame: pl.DataFrame
    unplaced: list[Unplaced] = field(default_factory=list)
    bom: bool = False
    crlf: bool = False
    # As `ParsedExport.system_lines` and `ParsedExport.first_lines`
    system_lines: list[int] = field(default_factory=list)
    first_lines: dict[str, int] = field(default_factory=dict)

    @property
    def authors(self) -> list[str]:
        return self.frame["author"].drop_nulls().unique(maintain_order=True).to_list()

    @property
    def lines(self) -> list[str]:
        return self.line_frame["line"].to_list()

    @property
    def messages(self) -> list[Message]:
        """The frame as reference `Message`s (tests, small files)."""
        return [Message(**row) for row in self.frame.iter_rows(named=True)]


def read_lines(name: str, data: bytes) -> tuple[pl.Series, bool, bool] | None:
    """The file's lines as a String Series (CRLF -> LF, BOM dropped), bom, crlf."""
    if not data or data.isspace():
        raise ExportEmpty(name)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    bom = data.startswith(b"\xef\xbb\xbf")
    # A one-byte search first: it is memchr, ten times the two-byte one on an
    # export with no CR at all (most are LF)
    crlf = b"\r" in data and b"\r\n" in data
    try:
        if b"\x00" in data or data.endswith(b"\r"):
            lines = _split_lines(data[3:] if bom else data, crlf)
        else:
            lines = _read_lines(data, bom)
    except pl.exceptions.PolarsError:
        decode_export(name, data)  # raises the reference's typed error
        return None
    return lines, bom, crlf


def _read_lines(data: bytes, bom: bool) -> pl.Series:
    """Lines by the CSV reader (one column, no quoting): no copy of the whole text.

    It ends lines at LF and CRLF, as the reference does after CRLF -> LF; a CR at
    the very end of the file, and NUL bytes, take `_split_lines` instead.
    """
    frame = pl.read_csv(
        io.BytesIO(data), has_header=False, separator="\x00", quote_char=None,
        new_columns=["line"], schema={"line": pl.String()}, raise_if_empty=False,
    )
    lines = frame.to_series().fill_null("")
    if bom and lines.len() and lines[0].startswith("\ufeff"):
        lines = lines.scatter(0, lines[0][1:])
    return lines


def _split_lines(data: bytes, crlf: bool) -> pl.Series:
    """`parse.split_lines` in Polars (the general case; copies the text twice)."""
    text = pl.Series("line", [data], pl.Binary).cast(pl.String)
    if crlf:
        text = text.str.replace_all("\r\n", "\n", literal=True)
    lines = text.str.split("\n").explode().alias("line")
    if lines.len() and lines[-1] == "":
        lines = lines.head(lines.len() - 1)
    return lines


def parse_fast(
    name: str,
    data: bytes,
    *,
    date_order: str | None = None,
    members: set[str] | None = None,
) -> FastParsed | None:
    """The fast path; None means 'use the reference parser' (same input)."""
    started = start_fast(name, data, date_order=date_order, members=members)
    return None if started is None else started.finish()


def start_fast(
    name: str,
    data: bytes,
    *,
    date_order: str | None = None,
    members: set[str] | None = None,
) -> FastStart | None:
    """`parse_fast` up to the classification of messages, which `FastStart.slices`
    then does slice by slice. Every typed error, and None, comes from here."""
    found = read_lines(name, data)
    if found is None:
        return None
    lines, bom, crlf = found
    # A line has at most as many characters as bytes: count them only if needed
    if (lines.str.len_bytes().max() or 0) > MAX_LINE:
        lengths = lines.str.len_chars()
        longest = lengths.max() or 0
        if longest > MAX_LINE:
            raise ExportLineTooLong(name, int(lengths.arg_max()) + 1, longest,
                                    MAX_LINE)
    dialect = sniff_dialect(lines.head(SNIFF_LINES).to_list())
    if dialect is None:
        return None
    header = dialect.pattern().pattern
    rest = "(?P<r>.*)"
    assert header.endswith(rest), "compile_header ends with the rest of the line"
    # The header alone, as group h: its length is where the rest starts (the same
    # match, as ".*" always matches), and without the long capture of the rest the
    # Rust regex runs 2.5x faster
    pattern = "(?s)(?P<h>" + header[: -len(rest)] + ")"

    def heads_of(start: int) -> pl.DataFrame:
        part = lines.slice(start, EXTRACT_ROWS)
        groups = part.str.extract_groups(pattern).struct.unnest()
        return groups.select("d", "t", pl.col("h").str.len_chars().alias("skip"))

    try:
        # In slices, two at a time (the regex runs in Rust, without the GIL),
        # keeping only the date, the time and where the rest starts: the rest
        # itself is cut from the line again when its message is classified.
        with ThreadPoolExecutor(2, thread_name_prefix="walake-parse") as pool:
            parts = list(pool.map(heads_of, range(0, lines.len(), EXTRACT_ROWS)))
    except pl.exceptions.PolarsError:
        return None
    frame = pl.concat(parts, rechunk=True)
    del parts
    started = _parse_frame(name, frame, lines, dialect, date_order, members)
    if started is not None:
        started.bom, started.crlf = bom, crlf
    return started


def _parse_frame(
    name: str,
    frame: pl.DataFrame,
    lines: pl.Series,
    dialect: Dialect,
    date_order: str | None,
    members: set[str] | None,
) -> FastStart | None:
    """`start_fast` from the header columns of every line (d, t, skip)."""
    raw_dates = frame["d"].drop_nulls().unique(maintain_order=True).to_list()
    if not raw_dates:
        return None  # no header at all: the reference words the error
    order = decide_order(raw_dates, date_order)
    dates = {raw: make_date(split_date(raw), order.order) for raw in raw_dates}
    times = {}
    for raw in frame["t"].drop_nulls().unique(maintain_order=True).to_list():
        clock = parse_time(raw)
        times[raw] = (clock[0] * 3600 + clock[1] * 60 + clock[2]) if clock else None
    frame = frame.with_columns(
        pl.col("d").replace_strict(dates, default=None, return_dtype=pl.Date)
        .alias("date"),
        pl.col("t").replace_strict(times, default=None, return_dtype=pl.Int64)
        .alias("secs"),
    ).with_columns(
        (pl.col("date").is_not_null() & pl.col("secs").is_not_null()).alias("head"),
    ).with_columns(
        pl.col("head").cast(pl.UInt32).cum_sum().alias("mid"),
    ).with_row_index("i")
    total = frame.height
    heads = frame.select("i", "mid", "skip", "date", "secs", "head") \
        .filter(pl.col("head"))
    if heads.is_empty():
        return None
    impossible = frame.filter(pl.col("d").is_not_null() & ~pl.col("head"))["i"]
    unplaced = [Unplaced(i + 1, line, IMPOSSIBLE) for i, line in
                zip(impossible.to_list(), lines.gather(impossible).to_list())]
    unplaced = unplaced_before(unplaced, lines.head(heads["i"][0]).to_list())

    line_frame = pl.DataFrame([lines, frame["mid"]])
    follows = (~frame["head"] & (frame["mid"] > 0)).arg_true()
    conts = (
        line_frame[follows]
        .group_by("mid", maintain_order=True)
        .agg(pl.col("line").str.join("\n").alias("cont"))
    )
    del frame, follows
    heads = heads.select(
        "i", "mid", "skip",
        (pl.col("date").cast(pl.Datetime("us"))
         + pl.duration(seconds=pl.col("secs"))).alias("timestamp"),
        (pl.col("i").shift(-1, fill_value=total) - pl.col("i")).cast(pl.Int64)
        .alias("line_count"),
    ).join(conts, on="mid", how="left", maintain_order="left")
    del conts
    return FastStart(name, dialect, order, heads, line_frame, unplaced, members)


def _clean(body: pl.Series) -> pl.Series:
    """The reference's body cleaning: LRM removed, NFC (Python's unicodedata), only
    on the non-ASCII rows; ASCII rows are kept as they are."""
    mask = (body.str.len_bytes() != body.str.len_chars()).fill_null(False)
    if not mask.any():
        return body
    normalize = unicodedata.normalize
    fixed = [normalize("NFC", s.replace(LRM, "")) if LRM in s else normalize("NFC", s)
             for s in body.filter(mask).to_list()]
    return body.scatter(mask.arg_true(), pl.Series(fixed, dtype=pl.String))


NEEDS_CUES = (r"^<|[>)]\z|^[^\n]*[>)]\n|maps\.google|location shared|Standort|"
              r"omitted|omitid|weggelassen")


def needs_classifying_expr(body: pl.Expr) -> pl.Expr:
    """`classify.needs_classifying`, column-wise (one regex scan and one lookup)."""
    return body.str.contains(NEEDS_CUES) | body.is_in(list(DELETED))


CLASSIFY_ROWS = 100_000
EXTRACT_ROWS = 200_000


def _classified(
    heads: pl.DataFrame,
    lines: pl.Series,
    registered: dict[str, int],
) -> Iterator[pl.DataFrame]:
    """Message columns of each slice of CLASSIFY_ROWS messages, in order, before
    `parse._reclassify_authors`: the plain majority column-wise, the rest by the
    reference.

    Slices keep the intermediate columns small; the reference's author cache state
    ('known') is carried from slice to slice in `registered` (candidate -> the line
    it entered the cache at).
    """
    names: dict[str, tuple[str, bool]] = {}
    # The first slice is half as long, so that the first batches start sooner
    first = CLASSIFY_ROWS // 2 or 1
    starts = [0, *range(first, heads.height, CLASSIFY_ROWS)]
    with ThreadPoolExecutor(1, thread_name_prefix="walake-classify") as pool:

        def prepare(index: int) -> Future:
            start = starts[index]
            end = starts[index + 1] if index + 1 < len(starts) else heads.height
            return pool.submit(_prepare_slice, heads.slice(start, end - start), lines)

        coming = prepare(0)
        for index in range(len(starts)):
            current = coming
            coming = prepare(index + 1) if index + 1 < len(starts) else None
            yield _finish_slice(current.result(), registered, names)


def _finished(
    frame: pl.DataFrame, suspects: set[str], members: set[str] | None
) -> tuple[pl.DataFrame, list[int]]:
    """Classified rows as `FastParsed.frame` has them, `suspects` (authors that are
    event lines, `_suspects`) turned back; and the lines turned back."""
    frame, system_lines = _turn_system(frame, suspects)
    present = (pl.col("attachment").is_in(sorted(members)) if members is not None
               else pl.lit(None, pl.Boolean))
    return frame.select(
        pl.col("line"), pl.col("line_count"), pl.col("timestamp"),
        *CLASSIFIED,
        pl.when(pl.col("attachment").is_not_null()).then(present)
        .otherwise(None).alias("attachment_present"),
    ).cast(MESSAGE_COLUMNS), system_lines


class _Settled:
    """Which authors `parse._reclassify_authors` turns back, decided as slices come.

    Whether an author is an event line depends on the file's other authors, but
    only through "a known author, a space, an event verb": once such an author has
    been seen, the decision is final (more authors only add events). A slice whose
    new author could still become an event through an author not seen yet (rare)
    is not settled, and nor is any slice after it.
    """

    def __init__(self) -> None:
        self.authors: set[str] = set()
        self.suspects: set[str] = set()

    def add(self, authors: list[str]) -> bool:
        """Take a slice's authors; whether its rows are final."""
        new = [a for a in authors if a not in self.authors]
        self.authors.update(new)
        settled = True
        for author in new:
            if is_system_author(author, self.authors - {author}):
                self.suspects.add(author)
            elif _may_become_event(author):
                settled = False
        return settled


def _may_become_event(candidate: str) -> bool:
    """Whether some author not seen yet would make `is_system_author` true."""
    if candidate.startswith("You "):
        return False  # decided by the candidate alone
    return any(SYSTEM_VERBS.match(candidate, at.end())
               for at in re.finditer(" ", candidate))


@dataclass
class FastStart:
    """A fast-path parse up to classification (`start_fast`): the messages come from
    `slices`, and `finish` gives the `FastParsed`."""

    name: str
    dialect: Dialect
    order: OrderDecision
    heads: pl.DataFrame
    line_frame: pl.DataFrame
    unplaced: list[Unplaced]
    members: set[str] | None = None
    bom: bool = False
    crlf: bool = False
    parsed: FastParsed | None = None  # once `slices` has run to its end

    @property
    def total(self) -> int:
        """How many messages the file holds."""
        return self.heads.height

    def slices(self) -> Iterator[pl.DataFrame]:
        """`FastParsed.frame` in consecutive slices, each as soon as no later line of
        the file can change it (`_Settled`); then `parsed` is set."""
        registered: dict[str, int] = {}
        settled = _Settled()
        done: list[pl.DataFrame] = []
        waiting: list[pl.DataFrame] = []
        system_lines: list[int] = []
        for part in _classified(self.heads, self.line_frame["line"], registered):
            authors = part["author"].drop_nulls().unique().to_list()
            if not settled.add(authors) or waiting:
                waiting.append(part)
                continue
            final, turned = _finished(part, settled.suspects, self.members)
            done.append(final)
            system_lines += turned
            yield final
        if waiting:
            rest = pl.concat(waiting, how="vertical", rechunk=False)
            del waiting
            final, turned = _finished(rest, _suspects(settled.authors), self.members)
            done.append(final)
            system_lines += turned
            yield final
        frame = pl.concat(done, how="vertical", rechunk=False) if len(done) > 1 \
            else done[0]
        self.parsed = FastParsed(
            self.name, self.dialect, self.order, frame, self.line_frame,
            self.unplaced, self.bom, self.crlf, system_lines=system_lines,
            first_lines=registered)

    def finish(self) -> FastParsed:
        """The whole parse (classifying what `slices` has not)."""
        if self.parsed is None:
            for _ in self.slices():
                pass
        assert self.parsed is not None
        return self.parsed


@dataclass
class _Prepared:
    """What a slice's columns decide without the author cache (`_prepare_slice`)."""

    work: pl.DataFrame
    registers: pl.Series
    text: pl.Series
    plain: pl.Series
    event: pl.Series
    edited: pl.Series
    omitted: pl.Series
    caption: pl.Series


def _prepare_slice(heads: pl.DataFrame, lines: pl.Series) -> _Prepared:
    """The slice's work that needs no state from earlier slices (a helper thread
    does it for the next slice while `_finish_slice` runs on this one)."""
    heads = heads.with_columns(
        lines.gather(heads["i"]).str.slice(heads["skip"]).alias("r"))
    split = pl.col("r").str.splitn(": ", 2)
    work = heads.select(
        "i", "timestamp", "line_count", "cont",
        split.struct.field("field_0").alias("cand"),
        split.struct.field("field_1").alias("first_body"),
    ).select(
        "i", "timestamp", "line_count", "cont", "cand",
        pl.when(pl.col("cont").is_null()).then(pl.col("first_body"))
        .otherwise(pl.col("first_body") + "\n" + pl.col("cont")).alias("body"),
    )
    body = work["body"]
    lrm_start = body.str.starts_with(LRM).fill_null(False)
    has_colon = body.is_not_null()
    # A row registers its candidate unless it has no ': ' or is an LRM event (B7).
    events = [k for k, b in zip(lrm_start.arg_true().to_list(),
                                body.filter(lrm_start).to_list()) if _is_event(b)]
    registers = has_colon.cast(pl.Int32)
    if events:
        registers = registers.scatter(events, 0)

    # Android events have no ': ' on the first line: their text is the whole rest.
    source = work.select(
        pl.when(pl.col("body").is_not_null()).then(pl.col("body"))
        .when(pl.col("cont").is_null()).then(pl.col("cand"))
        .otherwise(pl.col("cand") + "\n" + pl.col("cont"))
    ).to_series()
    text = _clean(source)
    del source
    needs = pl.select(needs_classifying_expr(pl.lit(text)).fill_null(True)) \
        .to_series()
    plain = has_colon & ~lrm_start & (work["i"] > 0) & ~needs
    event = ~has_colon
    edited = pl.repeat(False, heads.height, dtype=pl.Boolean, eager=True)
    omitted = edited.clone()
    caption = pl.repeat(None, heads.height, dtype=pl.String, eager=True)
    # Edit trailers and Android "<Media omitted>", column-wise on the few bodies
    # with a cue; `classify.classify_body` decides the same for these shapes.
    cues = (has_colon & ~lrm_start & needs).arg_true()
    if cues.len():
        sub = pl.DataFrame({"text": text.gather(cues)}).with_columns(
            _trailer_cut(pl.col("text")).alias("cut"),
        ).select(
            "text", "cut",
            (pl.col("cut").is_not_null()
             & ~needs_classifying_expr(pl.col("cut")).fill_null(True)).alias("edited"),
            (pl.col("cut").is_null()
             & pl.col("text").str.split_exact("\n", 1).struct.field("field_0")
             .is_in(list(MEDIA_OMITTED))
             & ~pl.col("text").is_in(list(DELETED))).alias("omitted"),
            pl.col("text").str.splitn("\n", 2).struct.field("field_1").alias("rest"),
        )
        edited.scatter(cues, sub["edited"])
        omitted.scatter(cues, sub["omitted"])
        text.scatter(cues, sub.select(pl.when("edited").then("cut")
                                      .otherwise("text")).to_series())
        caption.scatter(cues, sub.select(
            pl.when(pl.col("omitted") & (pl.col("rest") != "")).then("rest")
        ).to_series())
    return _Prepared(work, registers, text, plain, event, edited, omitted, caption)


def _finish_slice(
    prepared: _Prepared,
    registered: dict[str, int],
    names: dict[str, tuple[str, bool]],
) -> pl.DataFrame:
    """The slice's message columns, with the reference's author cache as it stands
    after the slices before (`registered`, `names`), which this one then updates."""
    work, registers, text = prepared.work, prepared.registers, prepared.text
    event, edited, omitted = prepared.event, prepared.edited, prepared.omitted
    has_colon = ~event
    entered = work.filter(registers == 1).group_by("cand", maintain_order=True) \
        .agg(pl.col("i").min())
    for cand, i in entered.iter_rows():
        registered.setdefault(cand, i + 1)
    for cand in work["cand"].filter(has_colon).unique().to_list():
        if cand not in names:
            names[cand] = _author(cand)
    cand = work["cand"]
    author = cand.replace_strict({c: n for c, (n, _) in names.items()},
                                 default=None, return_dtype=pl.String)
    author = pl.select(pl.when(pl.lit(event)).then(None).otherwise(pl.lit(author))) \
        .to_series()
    unsaved = cand.replace_strict({c: u for c, (_, u) in names.items()},
                                  default=False, return_dtype=pl.Boolean) & ~event

    def false() -> pl.Series:
        return pl.repeat(False, work.height, dtype=pl.Boolean, eager=True)

    def none() -> pl.Series:
        return pl.repeat(None, work.height, dtype=pl.String, eager=True)

    # Fresh series each: `scatter` below writes in place.
    columns = {
        "author": author, "text": text, "author_is_unsaved_contact": unsaved,
        "is_system": event.clone(), "is_media": omitted.clone(),
        "is_deleted": false(), "is_edited": edited.clone(), "attributed_to": none(),
        "attachment": none(), "media_kind": none(), "caption": prepared.caption,
        "is_location": false(), "title": none(),
    }
    slow_at = (~(prepared.plain | event | edited | omitted)).arg_true()
    if slow_at.len():
        slow = _reference_rows(work, slow_at, registered, names)
        for name in CLASSIFIED:
            columns[name] = columns[name].scatter(slow_at, slow[name])
    return pl.DataFrame({
        "line": (work["i"] + 1).cast(pl.Int64), "line_count": work["line_count"],
        "timestamp": work["timestamp"], **{n: columns[n].alias(n) for n in CLASSIFIED},
    })


def _trailer_cut(text: pl.Expr) -> pl.Expr:
    """The text without its edit trailer (`classify.EDITED_TRAILERS`), else null."""
    cut = pl.lit(None, pl.String)
    for trailer in reversed(EDITED_TRAILERS):
        cut = pl.when(text.str.ends_with(trailer)).then(
            text.str.head(-len(trailer))).otherwise(cut)
    return cut


def _reference_rows(
    work: pl.DataFrame, at: pl.Series, registered: dict[str, int], names: dict
) -> dict[str, pl.Series]:
    """`parse._build_messages` for the rows the columns did not decide.

    The reference's author cache holds a row's candidate when it entered the cache
    (`registered`, with this slice's rows) at a line before the row's."""
    authors = dict(names)
    rows = work[at].select("i", "line_count", "timestamp", "cand", "body", "cont")
    messages = []
    for i, count, stamp, cand, body, cont in rows.iter_rows():
        entered = registered.get(cand)
        is_known = entered is not None and entered < i + 1
        if is_known and i and cand and body and body.isascii() \
                and body[-1] not in ">)" and "\n" not in body \
                and "location" not in body and body not in DELETED:
            author, unsaved = authors[cand]
            messages.append(Message(i + 1, count, stamp, author, body, unsaved))
            continue
        if body is None:
            rest = cand if cont is None else cand + "\n" + cont
        else:
            rest = cand + ": " + body
        messages.append(_message(i, count, stamp, rest, authors))
    return {name: pl.Series(name, [getattr(m, name) for m in messages],
                            MESSAGE_COLUMNS[name]) for name in CLASSIFIED}


def _suspects(authors: set[str]) -> set[str]:
    """Of the file's authors (as classified), those `parse._reclassify_authors`
    turns back into event lines."""
    return {a for a in authors if is_system_author(a, authors - {a})}


def _turn_system(
    frame: pl.DataFrame, suspects: set[str]
) -> tuple[pl.DataFrame, list[int]]:
    """`parse.as_system` for the rows whose author is one of `suspects`."""
    if not suspects:
        return frame, []
    hit = pl.col("author").is_in(sorted(suspects)).fill_null(False)
    lines = frame.filter(hit)["line"].to_list()
    return frame.with_columns(
        pl.when(hit).then(pl.col("author") + ": " + pl.col("text"))
        .otherwise(pl.col("text")).alias("text"),
        pl.when(hit).then(None).otherwise(pl.col("author")).alias("author"),
        *(pl.when(hit).then(value).otherwise(pl.col(c)).alias(c)
          for c, value in (("is_system", True), ("is_media", False),
                           ("is_deleted", False), ("is_edited", False),
                           ("is_location", False))),
        *(pl.when(hit).then(None).otherwise(pl.col(c)).alias(c)
          for c in ("attachment", "media_kind", "caption", "title")),
    ), lines
