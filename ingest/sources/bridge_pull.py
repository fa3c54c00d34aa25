"""The fast path of the bridge source: whole pulls of a store into the lake.

The store has no index on chat or time, so a pull first copies (chat, second,
rowid) of every message into a temporary, indexed table of its own (the
"spine", in SQLite's temp file: the store itself is never written). Each chat
is then read in chunks of whole seconds, newest first, straight through the
spine; every chunk is one short statement, so the bridge is never blocked for
long. Rows the bridge writes after the spine was taken (a higher rowid, which
is also where `INSERT OR REPLACE` moves a row) are read by rowid beside it, so
a pull never counts a row twice and misses none that existed when it started.

Cursors are the same `ChatCursor` ranges `ingest.pull.walk_chat` keeps, under
the source key "bridge", and every chunk carries the cursor as it will be once
the chunk is recorded: an interrupted pull resumes like the MCP one.

Late rows: the bridge can write a message whose time is older than what a chat's
cursor already covers (delivered late, or a history sync). Each chat's cursor keeps
the store's highest rowid as of its last pull (`mark`); the next pull re-reads the
covered seconds that gained rows above it and lands the rows the lake lacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import polars as pl

from ingest.cursor import ChatCursor, Range
from ingest.extract import (  # NOTE: the run record is shared with run_extract
    ExtractOptions,
    ExtractSummary,
    _finish_run,
    _is_interrupt,
    _quiet,
    _start_run,
)
from ingest.frames import with_keys
from ingest.lake.writer import CursorMove, LakeWriter, PendingBatch
from ingest.sources.bridge import TOP, BridgeStore
from ingest.sources.bridge_rows import ROW_JSON, SECOND_SQL, parse_store_rows, typed_rows
from ingest.sources.decode import Chat

HeldKeys = Callable[[str], set[str]]  # chat id -> message_keys the lake holds
SPINE_STEP = 100_000  # store rows copied into the spine per statement
CHUNK_ROWS = 20_000

SPINE_SQL = (
    f"INSERT INTO temp.spine SELECT m.chat_jid, {SECOND_SQL}, m.rowid "
    "FROM main.messages m WHERE m.rowid > ? AND m.rowid <= ?"
)
# The n-th row (0 = newest) of a chat between two seconds, by the spine.
NTH_SECOND_SQL = (
    "SELECT sec FROM temp.spine WHERE chat = ? AND sec >= ? AND sec < ? "
    "ORDER BY sec DESC LIMIT 1 OFFSET ?"
)
CHUNK_SQL = (
    f"SELECT CAST(group_concat(j, char(10)) AS BLOB) FROM ("
    f"SELECT {ROW_JSON} AS j FROM temp.spine s JOIN main.messages m ON m.rowid = s.r "
    f"WHERE s.chat = :chat AND s.sec >= :lo AND s.sec > :above AND s.sec < :hi "
    f"AND m.chat_jid = s.chat AND {SECOND_SQL} = s.sec "
    f"UNION ALL SELECT {ROW_JSON} FROM main.messages m "
    f"WHERE m.rowid > :snapshot AND m.chat_jid = :chat AND {SECOND_SQL} >= :lo "
    f"AND {SECOND_SQL} > :above AND {SECOND_SQL} < :hi)"
)


class Spine:
    """(chat, second, rowid) of the store's messages, indexed, in our temp file."""

    def __init__(self, store: BridgeStore) -> None:
        self.store = store
        self.snapshot = 0

    def build(self) -> None:
        store = self.store
        store.run("DROP TABLE IF EXISTS temp.spine")
        store.run("CREATE TEMP TABLE spine (chat TEXT, sec TEXT, r INTEGER)")
        self.snapshot = store.run("SELECT coalesce(max(rowid), 0) FROM messages")[0][0]
        for low in range(0, self.snapshot, SPINE_STEP):
            store.run(SPINE_SQL, (low, min(low + SPINE_STEP, self.snapshot)))
        store.run("CREATE INDEX temp.spine_by_chat ON spine (chat, sec, r)")

    def nth_second(self, chat: str, lo: str, hi: str, n: int) -> str | None:
        found = self.store.run(NTH_SECOND_SQL, (chat, lo, hi, n))
        return found[0][0] if found else None

    def late_seconds(self, chat: str, mark: int, ranges: list[Range],
                     below: str | None = None) -> list[str]:
        """Seconds holding rows above `mark` inside `ranges` (lo <= second < hi),
        or older than `below` (the start of a chat pulled complete)."""
        if not ranges:
            return []
        inside = " OR ".join("(sec >= ? AND sec < ?)" for _ in ranges)
        params = [chat, mark, *(b for r in ranges for b in (r.lo, r.hi))]
        if below is not None:
            inside += " OR sec < ?"
            params.append(below)
        found = self.store.run(
            f"SELECT DISTINCT sec FROM temp.spine WHERE chat = ? AND r > ? "
            f"AND ({inside}) ORDER BY sec DESC", tuple(params),
        )
        return [sec for (sec,) in found]

    def read(self, chat: str, lo: str, above: str, hi: str) -> bytes:
        """JSON lines of the chat's rows with lo <= second, above < second < hi."""
        params = {"chat": chat, "lo": lo, "above": above, "hi": hi,
                  "snapshot": self.snapshot}
        (blob,) = self.store.run(CHUNK_SQL, params)[0]
        return bytes(blob) if blob else b""


@dataclass
class StoreChunk:
    """Typed rows ready to land, the store rows they came from, the next cursor."""

    chat: Chat
    frame: pl.DataFrame
    raw: bytes
    cursor: ChatCursor
    done: bool = False


@dataclass
class Piece:
    """One read of whole seconds: all rows keyed, and those not landed yet."""

    fresh: pl.DataFrame
    raw: bytes
    top: str | None
    top_keys: list[str]
    low: str | None
    exhausted: bool


@dataclass
class ChatReader:
    spine: Spine
    names: dict[str, str]
    tz: ZoneInfo
    chunk_rows: int = CHUNK_ROWS
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="walake-read")
    )
    # First windows read ahead for walks not started yet: (chat, lo, hi, want) ->
    # the window plans and the read under way
    ahead: dict[tuple, tuple[Iterator, Future]] = field(default_factory=dict)

    def prefetch(self, chat: Chat, cursor: ChatCursor, max_messages: int) -> None:
        """Start reading the first window `walk_store_chat` will ask for, so that
        the store is read while the chat before it is still being keyed."""
        window = first_window(cursor, max_messages)
        if window is None:
            return
        key = (chat.chat_id, *window)
        if key not in self.ahead:
            plans = self._plans(*key)
            self.ahead[key] = plans, self.pool.submit(self._read_next, chat, plans)

    def pieces(
        self, chat: Chat, lo: str | None, lo_keys: set[str], hi_excl: str | None,
        want: int | None,
    ) -> Iterator[Piece]:
        """Whole seconds in [lo, hi_excl) newest first; at least one piece.

        With `want`, stops after the second that holds the want-th row.
        """
        key = (chat.chat_id, lo or "", hi_excl or TOP, want)
        ahead = self.ahead.pop(key, None)
        for other in [k for k in self.ahead if k[0] == chat.chat_id]:
            del self.ahead[other]  # read ahead for a walk that went otherwise
        if ahead is None:
            plans = self._plans(*key)
            reading = self.pool.submit(self._read_next, chat, plans)
        else:
            plans, reading = ahead
        # The store is read one window ahead, on the reader thread, while this
        # thread turns the previous window into rows (SQLite and Polars both
        # release the GIL)
        while True:
            try:
                exhausted, raw = reading.result()
            except StopIteration:
                return
            reading = self.pool.submit(self._read_next, chat, plans)
            yield self._piece(chat, raw, lo, lo_keys, exhausted)

    def _read_next(self, chat: Chat, plans: Iterator) -> tuple[bool, bytes]:
        start, above, hi, exhausted = next(plans)
        return exhausted, self.spine.read(chat.chat_id, start, above, hi)

    def late_pieces(self, chat: Chat, seconds: list[str], held: HeldKeys
                    ) -> Iterator[tuple[str, Piece]]:
        """(second, rows) of each late second read whole (so ordinals hold), minus
        the keys held."""
        keys: set[str] | None = None
        for second in seconds:
            raw = self.spine.read(chat.chat_id, second, "", second + TOP)
            frame = with_keys(typed_rows(parse_store_rows(raw), chat, self.names,
                                         self.tz))
            if frame.is_empty():
                continue
            keys = held(chat.chat_id) if keys is None else keys
            fresh = frame.filter(~pl.col("message_key").is_in(list(keys)))
            yield second, Piece(fresh.drop("second"), raw, None, [], None, False)

    def _plans(self, jid: str, floor: str, hi: str, want: int | None):
        """(start, above, hi, exhausted) of each window, newest first; at least one."""
        limited = False
        if want is not None:
            cut = self.spine.nth_second(jid, floor, hi, want - 1)
            if cut is not None:
                floor, limited = max(floor, cut), True
        while True:
            boundary = self.spine.nth_second(jid, floor, hi, self.chunk_rows)
            if boundary is None:
                start, above, next_hi = floor, "", None
            elif boundary == self.spine.nth_second(jid, floor, hi, 0):
                # One second holds more than a chunk: take that second whole
                start, above, next_hi = boundary, "", boundary
            else:
                start, above, next_hi = floor, boundary, boundary + TOP
            last = next_hi is None
            exhausted = last and not (
                limited and self.spine.nth_second(jid, "", floor, 0) is not None
            )
            yield start, above, hi, exhausted
            if last:
                return
            hi = next_hi

    def _piece(
        self, chat: Chat, raw: bytes, lo: str | None, lo_keys: set[str], exhausted: bool
    ) -> Piece:
        frame = with_keys(typed_rows(parse_store_rows(raw), chat, self.names, self.tz))
        if frame.is_empty():
            return Piece(frame.drop("second"), raw, None, [], None, exhausted)
        top, low = frame["second"].max(), frame["second"].min()
        top_keys = sorted(frame.filter(pl.col("second") == top)["message_key"])
        fresh = frame
        if lo is not None and lo_keys:
            landed = (pl.col("second") == lo) & pl.col("message_key").is_in(list(lo_keys))
            fresh = frame.filter(~landed)
        return Piece(fresh.drop("second"), raw, top, top_keys, low, exhausted)


# The walk: the same three walks and cursor moves as ingest.pull.walk_chat


@dataclass
class Walk:
    top: str | None = None
    top_keys: list[str] = field(default_factory=list)
    low: str | None = None
    exhausted: bool = False

    def note(self, piece: Piece) -> None:
        if piece.top is not None and self.top is None:
            self.top, self.top_keys = piece.top, piece.top_keys
        if piece.low is not None:
            self.low = piece.low
        self.exhausted = piece.exhausted


def first_window(
    cursor: ChatCursor, max_messages: int
) -> tuple[str, str, int | None] | None:
    """(lo, hi, want) of the first `ChatReader.pieces` call of a chat's walk."""
    if cursor.ranges:
        return cursor.ranges[0].hi, TOP, None  # the head walk
    if cursor.count < max_messages:
        return "", TOP, max_messages - cursor.count  # the tail walk, from the top
    return None


def walk_store_chat(
    reader: ChatReader,
    chat: Chat,
    cursor: ChatCursor,
    max_messages: int,
    held: HeldKeys | None = None,
) -> Iterator[StoreChunk]:
    """All chunks that bring `chat` up to date; the last one has done=True.

    With `held` (the keys the lake holds for a chat), the seconds the cursor already
    covers are swept for late rows first.
    """
    state = cursor.copy()
    if held is not None and state.mark is not None:
        yield from _sweep_late(reader, chat, state, held)
    if state.ranges:
        yield from _walk_head(reader, chat, state)
        yield from _walk_gaps(reader, chat, state)
    else:
        state.complete = False  # an empty chat may have messages by now
    if not state.complete and state.count < max_messages:
        yield from _walk_tail(reader, chat, state, max_messages - state.count)
    state.mark = reader.spine.snapshot
    yield StoreChunk(chat, pl.DataFrame(), b"", state.copy(), done=True)


def _sweep_late(reader: ChatReader, chat: Chat, state: ChatCursor, held: HeldKeys):
    """Rows written since the last pull into seconds the cursor already covers, and
    below the start of a chat pulled complete (a history sync brings older ones).

    Covered seconds stay covered, now completely; a complete chat's oldest range
    reaches down to the oldest such second.
    """
    assert state.mark is not None
    start = state.ranges[-1].lo if state.complete and state.ranges else None
    seconds = reader.spine.late_seconds(chat.chat_id, state.mark, state.ranges, start)
    for second, piece in reader.late_pieces(chat, seconds, held):
        if start is not None and second < state.ranges[-1].lo:
            state.ranges[-1].lo = second
        state.count += piece.fresh.height
        yield StoreChunk(chat, piece.fresh, piece.raw, state.copy())


def _walk_head(reader: ChatReader, chat: Chat, state: ChatCursor):
    below = state.ranges[0]
    walk = Walk()
    fresh: Range | None = None
    for piece in reader.pieces(chat, below.hi, set(below.hi_keys), None, None):
        walk.note(piece)
        state.count += piece.fresh.height
        if walk.exhausted:
            if fresh is not None:
                state.ranges.remove(fresh)
            if walk.top is not None and walk.top == below.hi:
                below.hi_keys = sorted(set(below.hi_keys) | set(walk.top_keys))
            elif walk.top is not None and walk.top > below.hi:
                below.hi, below.hi_keys = walk.top, list(walk.top_keys)
        elif walk.top is not None:
            if fresh is None:
                fresh = Range(walk.top, walk.low or walk.top, list(walk.top_keys))
                state.ranges.insert(0, fresh)
            else:
                fresh.lo = walk.low or fresh.lo
        yield StoreChunk(chat, piece.fresh, piece.raw, state.copy())


def _walk_gaps(reader: ChatReader, chat: Chat, state: ChatCursor):
    i = 0
    while i + 1 < len(state.ranges):
        upper, lower = state.ranges[i], state.ranges[i + 1]
        walk = Walk()
        for piece in reader.pieces(chat, lower.hi, set(lower.hi_keys), upper.lo, None):
            walk.note(piece)
            state.count += piece.fresh.height
            if walk.exhausted:
                upper.lo = lower.lo
                state.ranges.remove(lower)
            elif walk.low is not None:
                upper.lo = walk.low
            yield StoreChunk(chat, piece.fresh, piece.raw, state.copy())
        if not walk.exhausted:
            i += 1


def _walk_tail(reader: ChatReader, chat: Chat, state: ChatCursor, want: int):
    walk = Walk()
    for piece in reader.pieces(chat, None, set(), state.oldest, want):
        walk.note(piece)
        state.count += piece.fresh.height
        if not state.ranges and walk.top is not None:
            state.ranges.append(Range(walk.top, walk.low or walk.top, walk.top_keys))
        elif state.ranges and walk.low is not None and walk.low < state.ranges[-1].lo:
            state.ranges[-1].lo = walk.low
        state.complete = walk.exhausted
        yield StoreChunk(chat, piece.fresh, piece.raw, state.copy())


# The driver: the committer lands batches on a second thread while the next is read

ProgressFn = Callable[[str, dict], None]


def pull_store(
    writer: LakeWriter,
    store: BridgeStore,
    tz: ZoneInfo,
    options: ExtractOptions,
    on_progress: ProgressFn = _quiet,
) -> ExtractSummary:
    """Bring the selected chats of the store up to date in the lake.

    Safe to interrupt anywhere, like run_extract: the lake keeps whole recorded
    batches and the cursors that match them, and the next run continues there.
    """
    assert writer.manifest is not None
    summary = ExtractSummary(source="bridge", leftovers_removed=len(writer.leftovers))
    started = time.monotonic()
    run = _start_run(writer, "bridge", options)
    try:
        store.open()
        _pull(writer, store, tz, options, summary, on_progress)
        summary.status = "ok"
    except BaseException as exc:
        summary.status = "interrupted" if _is_interrupt(exc) else "failed"
        raise
    finally:
        summary.retries = store.busy_waits
        store.close()
        summary.seconds = time.monotonic() - started
        _finish_run(writer, run, summary)
    return summary


def _pull(writer, store, tz, options, summary, on_progress) -> None:  # noqa: ANN001, PLR0913
    chats = store.read_chats(options.include_status)
    summary.chats_listed = len(chats)
    chosen = chats[: options.max_chats]
    summary.chats_selected = len(chosen)
    on_progress("chats", {"total": len(chosen)})
    cursors = dict(writer.manifest.cursors("bridge"))

    spine = Spine(store)
    spine.build()
    reader = ChatReader(spine, store.read_names(), tz,
                        min(CHUNK_ROWS, options.max_rows_per_batch))
    committer = Committer(writer, summary, on_progress)
    try:
        pending = PendingBatch(source="bridge")
        chats_in_batch = 0
        walks = [(c, ChatCursor.from_json(cursors.get(c.chat_id))) for c in chosen]
        for index, (chat, cursor) in enumerate(walks):
            for upcoming, its_cursor in walks[index : index + 2]:
                reader.prefetch(upcoming, its_cursor, options.max_messages)
            walk = walk_store_chat(reader, chat, cursor, options.max_messages,
                                   committer.held_keys)
            for chunk in walk:
                _add(pending, chunk)
                summary.calls += 1
                on_progress("rows", {"chat": chat.name, "rows": chunk.frame.height})
                if chunk.done:
                    chats_in_batch += 1
                    summary.chats_done += 1
                    on_progress("chat_done", {"chat": chat.name})
                full = pending.row_count >= options.max_rows_per_batch
                if chats_in_batch >= options.batch_size or full:
                    committer.submit(pending)
                    pending, chats_in_batch = PendingBatch(source="bridge"), 0
        if pending.row_count or pending.moves:
            committer.submit(pending)
    finally:
        reader.pool.shutdown(wait=True)
        committer.finish()


def _add(pending: PendingBatch, chunk: StoreChunk) -> None:
    if chunk.frame.height:
        pending.frames.append(chunk.frame)
        pending.raw.append(chunk.raw)
    chat = chunk.chat
    pending.chats[chat.chat_id] = (chat.name or None, chat.is_group)
    moves = [m for m in pending.moves if m.chat_id != chat.chat_id]
    moves.append(CursorMove("bridge", chat.chat_id, chunk.cursor.to_json()))
    pending.moves = moves


class Committer:
    """Lands batches in order on one thread; at most one batch waits to land."""

    def __init__(self, writer: LakeWriter, summary: ExtractSummary,
                 on_progress: ProgressFn) -> None:
        self.writer = writer
        self.summary = summary
        self.on_progress = on_progress
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="walake-commit")
        self.landing: Future | None = None

    def submit(self, batch: PendingBatch) -> None:
        self._wait()
        self.landing = self.pool.submit(self._land, batch)

    def held_keys(self, chat_id: str) -> set[str]:
        """The keys of `chat_id` the lake holds from the bridge, once the batch in
        flight has landed (the manifest is not read while it changes)."""
        self._wait()
        return set(self.writer.held_keys(chat_id, "bridge"))

    def finish(self) -> None:
        try:
            self._wait()
        finally:
            self.pool.shutdown(wait=True)

    def _wait(self) -> None:
        if self.landing is not None:
            landing, self.landing = self.landing, None
            landing.result()  # a failed commit stops the pull here

    def _land(self, batch: PendingBatch) -> None:
        info = self.writer.commit(batch)
        if info is None:
            return
        s = self.summary
        s.messages += info.rows
        s.new_messages += info.new_rows
        s.batches += 1
        s.raw_bytes += info.raw_bytes
        s.parquet_bytes += info.parquet_bytes
        self.on_progress("batch", {"batch_id": info.batch_id, "rows": info.rows})
