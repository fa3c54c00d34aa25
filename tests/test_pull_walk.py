"""The chat walker: any sequence of cut-off and resumed pulls lands each message once.

The walker is pure logic over a paged source, so these properties run it against an
in-memory source with the bridge's paging semantics (newest first, whole-second
bounds, a page limit) and check the landed keys against the history's keys.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from memory_source import MemorySource

from ingest.cursor import ChatCursor
from ingest.pull import walk_chat
from ingest.schema import with_keys

BASE = datetime(2025, 3, 30, 0, 59, 50)


def expected_keys(history: list[tuple[datetime, str]]) -> set[str]:
    rows = [
        {"chat_id": "c1@s.whatsapp.net", "sent_at_local": ts, "text": text}
        for ts, text in sorted(history, key=lambda item: item[0])
    ]
    return {r["message_key"] for r in with_keys(rows)}


def assert_landed_once(landed: list[dict], history: list, final: ChatCursor) -> None:
    """Every message of `history` landed exactly once, and the cursor knows it."""
    keys = [r["message_key"] for r in landed]
    assert len(keys) == len(set(keys)), "a message landed twice"
    assert set(keys) == expected_keys(history)
    assert final.complete
    assert final.count == len(history)


async def pull(source, cursor, cap, stop_after=None, held=None):  # noqa: ANN001, ANN201
    """Landed rows and the cursor, as if the process died after `stop_after` chunks;
    with `held` (the lake's keys), a recheck walk comes first."""
    landed, state, seen = [], cursor, 0
    async for chunk in walk_chat(source, source.chat, cursor, cap, held,
                                 recheck=held is not None):
        landed += chunk.rows.to_dicts()
        state = chunk.cursor
        seen += 1
        if stop_after is not None and seen >= stop_after:
            break
    return landed, state


histories = st.lists(
    st.tuples(st.sampled_from([0, 0, 0, 1, 2, 7]), st.sampled_from(["ok", "hi", "x", ""])),
    min_size=0,
    max_size=120,
).map(
    lambda steps: [
        (BASE + timedelta(seconds=sum(s for s, _ in steps[: i + 1])), text)
        for i, (_, text) in enumerate(steps)
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    history=histories,
    split=st.integers(0, 120),
    page=st.integers(1, 9),
    caps=st.lists(st.integers(1, 200), min_size=1, max_size=4),
    cuts=st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=1, max_size=4),
)
def test_interrupted_pulls_land_every_message_once(history, split, page, caps, cuts):
    source = MemorySource(history[:split], page_size=page)
    landed: list[dict] = []
    cursor = ChatCursor()

    async def scenario() -> ChatCursor:
        state = cursor
        for i, cap in enumerate(caps):
            if i == 1:
                source.history = history  # new messages arrive between runs
            rows, state = await pull(source, state, cap, cuts[i % len(cuts)])
            landed.extend(rows)
        source.history = history
        rows, state = await pull(source, state, 10**9)
        landed.extend(rows)
        return state

    final = asyncio.run(scenario())
    assert_landed_once(landed, history, final)


@settings(max_examples=150, deadline=None)
@given(
    history=histories,
    late=st.lists(st.integers(0, 10**6), max_size=6),
    page=st.integers(1, 9),
    cap=st.integers(1, 200),
    cut=st.one_of(st.none(), st.integers(1, 5)),
)
def test_a_recheck_lands_rows_the_source_got_late_once(history, late, page, cap, cut):
    """Rows that reach the source after a pull, at times the cursor already covers
    (or below a complete chat's start), land with a recheck; a recheck cut off and
    run again lands nothing twice."""
    picked = {i % len(history) for i in late} if history else set()
    source = MemorySource([row for i, row in enumerate(history) if i not in picked],
                          page_size=page)
    landed: list[dict] = []

    def held(_chat_id: str) -> set[str]:
        return {r["message_key"] for r in landed}

    async def scenario() -> ChatCursor:
        rows, state = await pull(source, ChatCursor(), cap)
        landed.extend(rows)
        source.history = history  # the late rows arrive
        for stop in (cut, None):
            rows, state = await pull(source, state, 10**9, stop, held)
            landed.extend(rows)
        return state

    final = asyncio.run(scenario())
    assert_landed_once(landed, history, final)
    assert len(final.ranges) <= 1


def test_capped_server_pages_through_a_second_larger_than_a_page():
    burst = [(BASE, "same")] * 9 + [(BASE - timedelta(seconds=1), "before")]
    source = MemorySource(burst, page_size=4, max_page_size=4)
    rows, state = asyncio.run(pull(source, ChatCursor(), 10**9))
    assert {r["message_key"] for r in rows} == expected_keys(burst)
    assert len(rows) == 10 and state.complete


def test_cap_stops_near_max_messages_without_splitting_a_second():
    history = [(BASE + timedelta(seconds=i // 3), f"m{i % 3}") for i in range(30)]
    source = MemorySource(history, page_size=50)
    rows, state = asyncio.run(pull(source, ChatCursor(), 7))
    seconds = {r["sent_at_local"] for r in rows}
    assert len(rows) == 9  # 7 asked; the third second is kept whole
    assert len(seconds) == 3 and not state.complete
