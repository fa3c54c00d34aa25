"""Landing a fast-path parse batch by batch, while later messages are classified.

The parse (`fast.FastStart.slices`) runs on a thread of its own. Each slice of
messages it finishes is cut into batches of `land.BATCH_ROWS`; two helper threads
build their rows, keys and raw records while the caller commits the batch before,
in file order, one at a time. Rows, keys, batches and the import record are those
of landing the whole parse at once: a key's ordinal needs only the batches before
it (`rows.FileOrdinals`), and a slice leaves the parse only once nothing later in
the file can change it. The chat's is_group can: batches are committed once it is
known, which for a group is soon (a third author, a group event) and for a direct
chat at the end of the parse. Every typed parse error comes before the first slice
(`fast.start_fast`), so a file that fails still leaves the lake as it was.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from queue import SimpleQueue

import msgspec
import polars as pl
import pyarrow as pa
import zstandard

from ingest.lake.writer import LakeWriter, PendingBatch
from ingest.schema import SOURCE_COLUMNS
from ingest.sources.export import land
from ingest.sources.export.archive import ExportFile
from ingest.sources.export.fast import FastParsed, FastStart
from ingest.sources.export.land import (
    GROUP_EVENTS,
    ImportSummary,
    _batch_fast,
    _commit,
    _finish_import,
    _fresh_rows,
    guess_is_group_fast,
    summarize_fast,
)
from ingest.sources.export.rows import (
    ChatTarget,
    FileOrdinals,
    assign_keys,
    key_hashes,
    key_parts,
    lake_columns,
    lake_text_expr,
)

# zstd level of the raw records, as `writer.encode_raw` packs them
RAW_LEVEL = 1
# Batches started besides the one the commit waits for (each holds its rows and
# raw block): with three, both helper threads stay busy while a batch is
# committed (two were ~3% slower on the bench, for ~20 MB less peak memory)
AHEAD = 3
# NOTE: the bench's 1M messages land in ~1.95 s on two free cores (~3.1x whatstk)
# for ~3.25 CPU-s, so with one core taken by other work the CPU bounds it (~1.9x):
# parse ~1.05, raw JSON + zstd ~0.5, Parquet writing ~0.5 (zstd level 1 in the
# shared writer), blake2b keys ~0.4 (a Python loop), key texts and columns ~0.4.
Built = tuple[pl.DataFrame, list[dict] | bytes] | None


def land_fast(
    writer: LakeWriter,
    parsed: FastParsed | FastStart,
    source: ExportFile,
    target: ChatTarget,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """`land_export` for a fast-path parse, finished or only started (the parse then
    ends here: `parsed.finish()` gives it)."""
    assert writer.manifest is not None
    stream = parsed if isinstance(parsed, FastStart) else _Finished(parsed)
    done = writer.manifest.data.get("imports", {}).get(source.sha256, {})
    if done.get("complete") and done.get("chat_id") == target.chat_id:
        whole = stream.finish()
        summary = summarize_fast(whole, source, target, guess_is_group_fast(whole))
        summary.already_imported = True
        return summary
    return _Landing(writer, stream, source, target).run(on_progress)


class _Finished:
    """A finished parse, as `FastStart` hands it out."""

    def __init__(self, parsed: FastParsed) -> None:
        self.parsed = parsed
        self.total = parsed.frame.height
        self.unplaced, self.bom, self.crlf = parsed.unplaced, parsed.bom, parsed.crlf
        self.line_frame = parsed.line_frame

    def slices(self) -> Iterator[pl.DataFrame]:
        yield self.parsed.frame

    def finish(self) -> FastParsed:
        return self.parsed


class _Landing:
    """One file's fast-path import: the state its batches share."""

    def __init__(
        self,
        writer: LakeWriter,
        stream: FastStart | _Finished,
        source: ExportFile,
        target: ChatTarget,
    ) -> None:
        self.writer, self.stream, self.source, self.target = (writer, stream, source,
                                                              target)
        held = writer.held_keys(target.chat_id).implode()
        self.held = held if held.list.len()[0] else None
        self.blocking = bool(writer.manifest.data.get("blocklist", {}).get("chats"))
        self.ordinals = FileOrdinals(_key_inputs)
        self.turns = _Turns()
        self.group = _GroupGuess()

    def run(self, on_progress: Callable[[int, int], None] | None) -> ImportSummary:
        source, target, total = self.source, self.target, self.stream.total
        summary = ImportSummary(source.name, source.sha256, target.chat_id,
                                target.chat_name, False)
        pending: PendingBatch | None = None
        with _Background(self.stream.slices()) as slices, \
                ThreadPoolExecutor(2, thread_name_prefix="walake-batch") as pool:
            for start, future, is_group in self._built(slices, pool):
                # Another batch comes, so the one before it is not the last (which
                # carries the import record): it is committed while this one is
                # still being built
                if pending is not None:
                    _commit(self.writer, pending, summary)
                    pending = None
                built = future.result()
                if built is not None:
                    frame, raw = built
                    frame = frame.with_columns(pl.lit(is_group).alias("is_group"))
                    pending = _batch_fast(self.stream, source, target, is_group,
                                          frame, raw, first=not summary.new)
                    summary.new += frame.height
                if on_progress:
                    on_progress(min(start + land.BATCH_ROWS, total), total)
        parsed = self.stream.finish()
        is_group = self.group.settle(parsed)
        whole = summarize_fast(parsed, source, target, is_group)
        whole.new, whole.batches = summary.new, summary.batches
        _finish_import(self.writer, parsed, source, target, whole, pending)
        return whole

    def _built(
        self, slices: _Background, pool: ThreadPoolExecutor
    ) -> Iterator[tuple[int, Future[Built], bool]]:
        """(start, the batch being built, is_group) in file order, with up to AHEAD
        more batches being built; a batch is handed out once is_group is known."""
        size = land.BATCH_ROWS
        cut = _Cut(size)
        ready: deque[tuple[int, pl.DataFrame]] = deque()
        ahead: deque[tuple[int, Future]] = deque()
        parsing = True

        def pull() -> None:
            nonlocal parsing
            frame = slices.next()
            if frame is None:
                parsing = False
                ready.extend(cut.rest())
                self.group.settle(self.stream.finish())
            else:
                ready.extend(cut.add(frame))
                self.group.add(frame)

        def fill(wait: bool = True) -> None:
            """Start batches; wait for the parse only when no batch is under way
            and `wait` is true."""
            while len(ahead) < AHEAD:
                if ready:
                    start, chunk = ready.popleft()
                    ahead.append((start, pool.submit(self._build, start // size,
                                                     chunk)))
                elif parsing and ((wait and not ahead) or slices.waiting()):
                    pull()
                else:
                    return

        try:
            while True:
                fill()
                if not ahead:
                    return
                # NOTE: a direct chat's batches are built a few ahead only and
                # committed after the parse, as only its end says it is no group
                while self.group.is_group is None:
                    pull()
                start, future = ahead.popleft()
                # Later batches start now, not once this one is committed
                fill(wait=False)
                yield start, future, self.group.is_group
        finally:
            for _, future in ahead:
                future.cancel()  # the pool then waits for those already running

    def _build(self, index: int, chunk: pl.DataFrame) -> Built:
        """The fresh rows of one batch and their raw records (None: all held).

        is_group is set when the batch is committed."""
        failed: BaseException | None = None
        try:
            frame = lake_columns(chunk, self.target, False, self.source.media_sizes)
            parts = key_parts(frame)
            hashes = key_hashes(parts)
        except BaseException as exc:  # noqa: BLE001 - raised in its turn, below
            failed = exc
        with self.turns.turn(index):  # ordinals need the batches before, counted
            if failed is not None:
                raise failed
            ordinals = self.ordinals.take(chunk, parts, hashes)
        keyed = parts.with_columns(ordinals.alias("_ordinal"))
        frame = frame.with_columns(assign_keys(self.target.chat_id, keyed)) \
            .select(SOURCE_COLUMNS)
        fresh = _fresh_rows(self.writer, frame, self.held)
        if fresh is not None:
            frame = frame.filter(fresh)
        if frame.is_empty():
            return None
        if self.blocking:  # dicts, for the blocklist to read
            return frame, _raw_fast(self.stream, self.source, self.target, chunk,
                                    ordinals, fresh)
        # Encoded here, not in the commit that waits for it
        return frame, _raw_block(self.stream, self.source, self.target, chunk,
                                 ordinals, fresh)


def _key_inputs(messages: pl.DataFrame) -> pl.DataFrame:
    """The columns of lake rows `key_parts` reads, from message rows."""
    return messages.select(pl.col("timestamp").alias("sent_at_local"),
                           lake_text_expr().alias("text"))


class _GroupGuess:
    """`guess_is_group_fast`, known early when a third author or a group event
    comes (both stay true for the whole file)."""

    def __init__(self) -> None:
        self.authors: set[str] = set()
        self.is_group: bool | None = None

    def add(self, frame: pl.DataFrame) -> None:
        if self.is_group is not None:
            return
        self.authors.update(frame["author"].drop_nulls().unique().to_list())
        events = frame.filter(pl.col("is_system")).select(
            pl.any_horizontal(*(pl.col("text").str.contains(e, literal=True)
                                for e in GROUP_EVENTS))).to_series()
        if len(self.authors) > 2 or events.any():
            self.is_group = True

    def settle(self, parsed: FastParsed) -> bool:
        if self.is_group is None:
            self.is_group = guess_is_group_fast(parsed)
        return self.is_group


class _Cut:
    """Consecutive frames cut into batches of `size` rows: (first row, rows)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.start = 0
        self.parts: list[pl.DataFrame] = []
        self.rows = 0

    def add(self, frame: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
        cut = []
        while frame.height:
            take = min(self.size - self.rows, frame.height)
            self.parts.append(frame.slice(0, take))
            self.rows += take
            frame = frame.slice(take)
            if self.rows == self.size:
                cut.append(self._batch())
        return cut

    def rest(self) -> list[tuple[int, pl.DataFrame]]:
        return [self._batch()] if self.rows else []

    def _batch(self) -> tuple[int, pl.DataFrame]:
        parts = self.parts
        batch = pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]
        start = self.start
        self.start += self.rows
        self.parts, self.rows = [], 0
        return start, batch


class _Turns:
    """One step of numbered tasks at a time, in number order (tasks must start in
    that order, as a thread pool's queue starts them)."""

    def __init__(self) -> None:
        self.next = 0
        self.failed = False
        self.changed = threading.Condition()

    @contextmanager
    def turn(self, index: int) -> Iterator[None]:
        with self.changed:
            self.changed.wait_for(lambda: self.next == index or self.failed)
            if self.failed:
                raise RuntimeError("an earlier batch of the file failed")
        try:
            yield
        except BaseException:
            self.failed = True
            raise
        finally:
            with self.changed:
                self.next += 1
                self.changed.notify_all()


class _Background:
    """An iterator run ahead on a thread of its own; `next` gives None at its end."""

    _END = object()

    def __init__(self, items: Iterator) -> None:
        self.items = items
        self.queue: SimpleQueue = SimpleQueue()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="walake-parse-feed",
                                       daemon=True)

    def __enter__(self) -> _Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def waiting(self) -> bool:
        """Whether `next` would return at once."""
        return not self.queue.empty()

    def next(self) -> pl.DataFrame | None:
        item = self.queue.get()
        if item is self._END:
            self.queue.put(item)  # so that every later call sees the end too
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def _run(self) -> None:
        try:
            for item in self.items:
                if self.stop.is_set():
                    break
                self.queue.put(item)
            self.queue.put(self._END)
        except BaseException as exc:  # noqa: BLE001 - re-raised by `next`
            self.queue.put(exc)
        finally:
            close = getattr(self.items, "close", None)
            if close is not None:
                close()


def _raw_fast(
    parsed: FastParsed | FastStart | _Finished,
    source: ExportFile,
    target: ChatTarget,
    chunk: pl.DataFrame,
    ordinals: pl.Series,
    fresh: pl.Series | None,
) -> list[dict]:
    """The raw records of a chunk's fresh messages (the file lines of each one, and
    its key's ordinal when not 0, as `land._batch` writes them), as dicts: the
    blocklist's filter reads those (`_raw_block` is the same records, encoded)."""
    # A chunk's messages hold consecutive lines of the file (mid: their message)
    span = parsed.line_frame.slice(chunk["line"][0] - 1,
                                   int(chunk["line_count"].sum()))
    lines = span.group_by("mid", maintain_order=True).agg("line")["line"]
    records = pl.DataFrame({"line": chunk["line"], "lines": lines,
                            "ordinal": ordinals})
    if fresh is not None:
        records = records.filter(fresh)
    dicts = records.select(pl.lit(target.chat_id).alias("chat_id"),
                           pl.lit(source.sha256).alias("sha256"),
                           "line", "lines", "ordinal").to_dicts()
    for record in dicts:
        if not record["ordinal"]:
            del record["ordinal"]
    return dicts


def _raw_block(
    parsed: FastParsed | FastStart | _Finished,
    source: ExportFile,
    target: ChatTarget,
    chunk: pl.DataFrame,
    ordinals: pl.Series,
    fresh: pl.Series | None,
) -> bytes:
    """`_raw_fast`'s records as `encode_raw` writes them: zstd JSON lines.

    Built in Polars line by line of the file, with no grouping into messages: a
    message's record is its first line's piece (the record's start, through
    `"lines":[`), then one piece per line (its JSON string, after a comma from
    the second on), the last ending the record. b"" when no message is fresh.
    """
    span = parsed.line_frame.slice(chunk["line"][0] - 1,
                                   int(chunk["line_count"].sum()))
    at = (span["mid"] - span["mid"][0]).cast(pl.Int64)  # the chunk row of a line
    lines = pl.DataFrame({"text": span["line"], "at": at})
    if fresh is not None:
        lines = lines.filter(fresh.gather(at))
    if lines.is_empty():
        return b""
    head = ('{"chat_id":' + msgspec.json.encode(target.chat_id).decode()
            + ',"sha256":' + msgspec.json.encode(source.sha256).decode()
            + ',"line":')
    ordinal = pl.col("ordinal")
    ends = pl.DataFrame({"line": chunk["line"], "ordinal": ordinals}).select(
        (head + pl.col("line").cast(pl.String) + ',"lines":[').alias("opens"),
        pl.when(ordinal > 0)
        .then('],"ordinal":' + ordinal.cast(pl.String) + "}\n")
        .otherwise(pl.lit("]}\n")).alias("closes"),
    )
    row = pl.col("at")
    pieces = lines.select(pl.concat_str(
        pl.when(row.is_first_distinct()).then(pl.lit(ends["opens"]).gather(row))
        .otherwise(pl.lit(",")),
        # {"text":"..."} less its first 8 and last characters
        pl.struct("text").struct.json_encode().str.slice(8).str.head(-1),
        pl.when(row.is_last_distinct()).then(pl.lit(ends["closes"]).gather(row))
        .otherwise(pl.lit("")),
    )).to_series()
    return _zstd_joined(pieces)


def _zstd_joined(pieces: pl.Series) -> bytes:
    """zstd (one frame, `encode_raw`'s level) of the strings of `pieces` joined,
    read from the one buffer an Arrow string array keeps them in (no join)."""
    assert not pieces.null_count(), "a null piece would drop its record silently"
    array = pieces.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    offsets = memoryview(array.buffers()[1]).cast("q")
    start, end = offsets[array.offset], offsets[array.offset + len(array)]
    values = memoryview(array.buffers()[2])[start:end]
    return zstandard.ZstdCompressor(level=RAW_LEVEL).compress(values)
