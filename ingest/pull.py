"""Pulling one chat: walk its history newest first, in windows of whole seconds.

A window asks the source for messages below a bound. When the answer is a full page,
its oldest second may be cut, so that second is left for the next window, which is
bounded just above it. Pages therefore never split a second, every row is seen once
per walk, and identical rows of one second are numbered together, in one window.

A chat's pull is up to three walks: new messages above the cursor, gaps left by an
interrupted walk, and older history until `max_messages` is reached. Each emitted
chunk carries the cursor as it will be once the chunk is recorded.

Late rows, which a source gains later with a time older than what the cursor covers
(a late delivery, a history sync), are swept first when the source can find them
(`sweep_late`: the bridge store, by rowid). MCP answers carry no rowid to notice them
by, so over MCP they come with a recheck (`recheck=True`): a walk over all the cursor
covers, landing only the rows whose keys the lake lacks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import polars as pl

from ingest.cursor import ChatCursor, Range
from ingest.errors import ResponseUnreadable, ToolFailed
from ingest.frames import between, empty_page, keys_at, newest_first, with_keys
from ingest.schema import local_second
from ingest.sources.decode import Chat, parse_local

ONE_SECOND = timedelta(seconds=1)
END_CHECKS = 3  # tries of a window whose short page the end check does not confirm
log = logging.getLogger(__name__)


class PagedSource(Protocol):
    page_size: int
    max_page_size: int | None

    async def fetch_page(
        self, chat: Chat, lo: datetime | None, hi_excl: datetime | None, limit: int,
        page: int = 0,
    ) -> Any: ...


@dataclass
class Chunk:
    """Rows ready to land (a keyed page frame), with the raw answers they came from
    and the next cursor."""

    chat: Chat
    rows: pl.DataFrame
    raw: list[dict[str, Any]]
    cursor: ChatCursor
    done: bool = False


@dataclass
class Walk:
    """Progress of one walk: the lowest complete second reached and the top keys."""

    lo: str | None
    lo_keys: set[str]
    hi_excl: str | None
    want: int | None
    top: str | None = None
    top_keys: list[str] = field(default_factory=list)
    low: str | None = None
    exhausted: bool = False


HeldKeys = Callable[[str], set[str]]  # chat id -> message_keys the lake holds


async def walk_chat(
    source: PagedSource, chat: Chat, cursor: ChatCursor, max_messages: int,
    held: HeldKeys | None = None, recheck: bool = False,
) -> AsyncIterator[Chunk]:
    """All chunks needed to bring `chat` up to date; the last one has done=True.

    With `held`, a source that has `sweep_late` first lands the rows written late
    into seconds the cursor covers, and the cursor takes its new mark; with
    `recheck` too, a source without it reads all the cursor covers again.
    """
    state = cursor.copy()
    learn = getattr(source, "learn_offsets", None)
    if learn is not None and state.offsets:
        learn(state.offsets)
    sweep = getattr(source, "sweep_late", None)
    if sweep is not None and held is not None:
        rows, raw, state.mark = await sweep(chat, cursor, held)
        if not rows.is_empty():
            state.count += len(rows)
            if state.complete:  # history that came in below the chat's start
                state.ranges[-1].lo = min(state.ranges[-1].lo, rows["second"].min())
            yield Chunk(chat, rows, raw, state.copy())
    elif recheck and held is not None and state.ranges:
        async for chunk in _walk_recheck(source, chat, state, held(chat.chat_id)):
            yield _with_offsets(chunk, state)
    if state.ranges:
        async for chunk in _walk_head(source, chat, state):
            yield _with_offsets(chunk, state)
        async for chunk in _walk_gaps(source, chat, state):
            yield _with_offsets(chunk, state)
    else:
        state.complete = False  # an empty chat may have messages by now
    if not state.complete and state.count < max_messages:
        async for chunk in _walk_tail(source, chat, state, max_messages - state.count):
            yield _with_offsets(chunk, state)
    yield Chunk(chat, empty_page(), [], state.copy(), done=True)


def _with_offsets(chunk: Chunk, state: ChatCursor) -> Chunk:
    """Carry the boundary seconds' offsets in the chunk's cursor and the state."""
    chunk.cursor.offsets = state.offsets
    chunk.cursor.keep_offsets(chunk.rows)
    state.offsets = dict(chunk.cursor.offsets)
    return chunk


async def _walk_head(source: PagedSource, chat: Chat, state: ChatCursor):
    """New messages: from the newest down to the newest second already landed."""
    below = state.ranges[0]
    walk = Walk(lo=below.hi, lo_keys=set(below.hi_keys), hi_excl=None, want=None)
    fresh: Range | None = None
    async for rows, raw in _windows(source, chat, walk):
        state.count += len(rows)
        if walk.exhausted:
            if fresh is not None:
                state.ranges.remove(fresh)
            if walk.top is not None:
                _raise_top(below, walk)
        elif walk.top is not None:
            if fresh is None:
                fresh = Range(walk.top, walk.low or walk.top, list(walk.top_keys))
                state.ranges.insert(0, fresh)
            else:
                fresh.lo = walk.low or fresh.lo
        yield Chunk(chat, rows, raw, state.copy())


def _raise_top(below: Range, walk: Walk) -> None:
    assert walk.top is not None
    if walk.top == below.hi:
        below.hi_keys = sorted(set(below.hi_keys) | set(walk.top_keys))
    elif walk.top > below.hi:
        below.hi, below.hi_keys = walk.top, list(walk.top_keys)


async def _walk_gaps(source: PagedSource, chat: Chat, state: ChatCursor):
    """Stretches between ranges, left by a head walk that was cut off."""
    i = 0
    while i + 1 < len(state.ranges):
        upper, lower = state.ranges[i], state.ranges[i + 1]
        walk = Walk(lo=lower.hi, lo_keys=set(lower.hi_keys), hi_excl=upper.lo, want=None)
        async for rows, raw in _windows(source, chat, walk):
            state.count += len(rows)
            if walk.exhausted:
                # Reached the lower range: the two ranges and the gap are one now
                upper.lo = lower.lo
                state.ranges.remove(lower)
            elif walk.low is not None:
                upper.lo = walk.low
            yield Chunk(chat, rows, raw, state.copy())
        i += 1


async def _walk_recheck(
    source: PagedSource, chat: Chat, state: ChatCursor, held: set[str]
):
    """All the ranges cover, and below them if the chat was complete, read again.

    Rows whose keys the lake holds are dropped: what lands is what the server got
    late (or what a cut-off walk missed), and the ranges become one.
    """
    top = state.ranges[0]
    hi_excl = local_second(parse_local(top.hi) + ONE_SECOND)
    walk = Walk(lo=None if state.complete else state.oldest, lo_keys=set(),
                hi_excl=hi_excl, want=None)
    landed = list(held)
    async for rows, raw in _windows(source, chat, walk):
        fresh = rows.filter(~pl.col("message_key").is_in(landed))
        state.count += len(fresh)
        if walk.exhausted:
            low = state.oldest or top.lo
            if state.complete and walk.low:
                low = min(low, walk.low)  # history that came in below the start
            keys = walk.top_keys if walk.top == top.hi else top.hi_keys
            state.ranges = [Range(top.hi, low, list(keys))]
        yield Chunk(chat, fresh, raw, state.copy())


async def _walk_tail(source: PagedSource, chat: Chat, state: ChatCursor, want: int):
    """Older history below the oldest range, until `want` more rows or the start."""
    walk = Walk(lo=None, lo_keys=set(), hi_excl=state.oldest, want=want)
    async for rows, raw in _windows(source, chat, walk):
        state.count += len(rows)
        if not state.ranges and walk.top is not None:
            state.ranges.append(Range(walk.top, walk.low or walk.top, walk.top_keys))
        elif state.ranges and walk.low is not None and walk.low < state.ranges[-1].lo:
            state.ranges[-1].lo = walk.low
        state.complete = walk.exhausted
        yield Chunk(chat, rows, raw, state.copy())


async def _windows(source: PagedSource, chat: Chat, walk: Walk):
    """(keyed rows, raw answers) per window, newest first, until the walk is over.

    A window's rows are those of whole seconds below the previous window's lowest,
    so no second is in two windows and each window numbers its identical rows
    alone (see `frames.with_keys`).
    """
    lo = parse_local(walk.lo) if walk.lo else None
    hi_excl = parse_local(walk.hi_excl) if walk.hi_excl else None
    remaining = walk.want
    while True:
        limit = source.page_size
        if remaining is not None:
            limit = min(limit, remaining + 1)
        rows, raw, full = await _one_window(source, chat, lo, hi_excl, limit)
        rows = with_keys(rows)
        emitted = _without_landed(rows, walk)
        if not rows.is_empty():
            newest, lowest = rows["second"][0], rows["second"][-1]
            walk.top = walk.top or newest
            if newest == walk.top:
                walk.top_keys = sorted({*walk.top_keys, *keys_at(rows, walk.top)})
            walk.low = lowest
        walk.exhausted = not full
        yield emitted, raw
        if not full:
            return
        if remaining is not None:
            remaining -= len(emitted)
            if remaining <= 0:
                return
        hi_excl = _next_bound(chat, rows, hi_excl)


def _next_bound(chat: Chat, rows: pl.DataFrame, hi_excl: datetime | None) -> datetime:
    """The next window's bound; a server that ignores bounds would loop forever."""
    lowest = parse_local(rows["second"][-1]) if not rows.is_empty() else None
    if lowest is None or (hi_excl is not None and lowest >= hi_excl):
        raise ToolFailed(
            "list_messages",
            f"the server answered a full page with no messages before "
            f"{hi_excl or 'now'} in chat {chat.chat_id}, so it does not apply the time "
            "bounds the way this profile expects; check --profile and --timezone",
        )
    return lowest


def _without_landed(rows: pl.DataFrame, walk: Walk) -> pl.DataFrame:
    """The rows minus those at the walk's floor second that already landed."""
    if not walk.lo_keys:
        return rows
    landed = (pl.col("second") == walk.lo) & pl.col("message_key").is_in(
        list(walk.lo_keys))
    return rows.filter(~landed)


async def _one_window(
    source: PagedSource,
    chat: Chat,
    lo: datetime | None,
    hi_excl: datetime | None,
    limit: int,
) -> tuple[pl.DataFrame, list[dict], bool]:
    """Complete seconds below hi_excl: (rows newest first, raw answers, more_below).

    A short page ends the walk. A page cut off between two records is short too,
    and shows nothing of it (a cut inside a record is refused by the decoder).
    Sources with `confirm_short_pages` (a profile setting) therefore check a short
    page with one more call before the walk ends (see `_end_holds`); a page that
    fails the check is asked for again.
    """
    lo_s = local_second(lo) if lo is not None else None
    hi_s = local_second(hi_excl) if hi_excl is not None else None
    for attempt in range(1, END_CHECKS + 1):
        page = await source.fetch_page(chat, lo, hi_excl, limit)
        # Only rows inside the window count: a server that compares instants
        # is asked from a day before `lo` (see McpSource.bound)
        rows = between(page.rows, lo_s, hi_s)
        if len(page.rows) >= limit or rows.is_empty():
            break
        if not getattr(source, "confirm_short_pages", False) or await _end_holds(
            source, chat, lo, lo_s, rows
        ):
            break
        _warn_cut(chat, len(page.rows), attempt)
    else:
        raise _kept_cut(chat)
    raws = [page.raw]
    if len(page.rows) < limit:
        return newest_first(rows), raws, False
    floor = page.rows["second"].min()
    if lo is not None and floor < local_second(lo):
        return newest_first(rows), raws, False
    kept = rows.filter(pl.col("second") > floor)
    if not kept.is_empty():
        page.raw["kept_above"] = floor
        return newest_first(kept), raws, True

    # The page holds one second only: take that second whole, then go on below
    size = source.max_page_size or source.page_size
    whole, more = await _whole_second(source, chat, parse_local(floor), size)
    return whole, raws + more, True


async def _end_holds(
    source: PagedSource, chat: Chat, lo: datetime | None, lo_s: str | None,
    rows: pl.DataFrame,
) -> bool:
    """Whether a short page really ends at its oldest second F.

    One call for the rows from `lo` up to and including F, one more than the page
    has at F: a page that was complete gets back exactly its own rows of F, and a cut
    one gets more rows (the rest of F, or older ones) or a different last row (a
    record cut in the middle of its text). The answer only checks; the page's own
    raw record is the one kept, so `walake rebuild` sees each row once. Cost: one
    small call per walk that ends on a page with rows.
    """
    floor = rows["second"].min()
    at_floor = rows.filter(pl.col("second") == floor)
    check = await source.fetch_page(chat, lo, parse_local(floor) + ONE_SECOND,
                                     len(at_floor) + 1)
    again = between(check.rows, lo_s, None)
    return len(again) == len(at_floor) and _same_rows(again, at_floor)


def _warn_cut(chat: Chat, rows: int, attempt: int) -> None:
    log.warning("chat %s: a page of %d row(s) ended short of what the server holds "
                "(cut off?); asking again (%d of %d)", chat.chat_id, rows, attempt,
                END_CHECKS)


def _kept_cut(chat: Chat) -> ResponseUnreadable:
    return ResponseUnreadable(
        f"The server's pages of chat {chat.chat_id} kept ending short of what it "
        f"holds ({END_CHECKS} tries): its answers are being cut off. The lake is "
        "unchanged for this chat; run the command again, and check the server's "
        "log if it keeps happening."
    )


def _same_rows(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Whether two page frames hold the same rows, in any order (keys aside)."""
    columns = [c for c in a.columns if c != "message_key"]

    def shape(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(columns).sort(columns, nulls_last=True)

    return shape(a).equals(shape(b))


async def _whole_second(
    source: PagedSource, chat: Chat, second: datetime, limit: int
) -> tuple[pl.DataFrame, list[dict]]:
    """Every row of one second from a server whose pages are capped."""
    parts = []
    raws = []
    page_no = 0
    while True:
        page = await _sub_page(source, chat, second, limit, page_no)
        raws.append(page.raw)
        parts.append(page.rows.filter(pl.col("second") == local_second(second)))
        if len(page.rows) < limit:
            return pl.concat(parts), raws
        page_no += 1


async def _sub_page(
    source: PagedSource, chat: Chat, second: datetime, limit: int, page_no: int
) -> Any:
    """One page of a second's rows. Where the source confirms short pages, a short
    one is checked by a one-row probe just past its end, which a complete page has
    nothing at."""
    for attempt in range(1, END_CHECKS + 1):
        page = await source.fetch_page(chat, second, second + ONE_SECOND, limit, page_no)
        if len(page.rows) >= limit or not getattr(source, "confirm_short_pages", False):
            return page
        past = page_no * limit + len(page.rows)
        probe = await source.fetch_page(chat, second, second + ONE_SECOND, 1, past)
        if probe.rows.is_empty():
            return page
        _warn_cut(chat, len(page.rows), attempt)
    raise _kept_cut(chat)
