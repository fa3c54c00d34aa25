"""Property tests: random exports round-trip; mutated ones lose no line."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ingest.sources.export.errors import ExportError
from ingest.sources.export.fast import parse_fast
from ingest.sources.export.parse import ParsedExport, parse_export

AUTHORS = ["Dara Quill", "Jean-Luc - Supplier", "+44 7700 900981", "Zoë Faure",
           "Kiosk:North", "علي", "🤝"]
BODY_ALPHABET = st.characters(
    blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
    blacklist_characters="\u200e\u200f\ufeff\u2028\u2029\x85",
)
BODY_LINE = st.one_of(
    st.text(BODY_ALPHABET, min_size=1, max_size=40),
    st.sampled_from(["12.03.24 18:00 hall A", "[2,4,0,4] seats left",
                     "meet at 18:45: gate 3", "- 4 chairs", "", "1/5/19, 9:41 PM",
                     "[14/03/2024, 09:15:22]", "14/03/2024, 09:15 -"]),
)


def android_dmy(t: datetime) -> str:
    return f"{t:%d/%m/%Y}, {t:%H:%M} - "


def android_mdy_12h(t: datetime) -> str:
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t:%y}, {hour}:{t:%M}\u202f{t:%p} - "


def ios_dots(t: datetime) -> str:
    return f"\u200e[{t:%d.%m.%y}, {t:%H:%M:%S}] "


def iso_android(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M} - "


def finnish(t: datetime) -> str:
    return f"{t.day}.{t.month}.{t.year} klo {t.hour}.{t:%M} - "


DIALECTS = {android_dmy: False, android_mdy_12h: False, ios_dots: True,
            iso_android: False, finnish: False}

messages_strategy = st.lists(
    st.tuples(
        st.integers(min_value=60, max_value=10 ** 7),
        st.sampled_from(AUTHORS),
        st.lists(BODY_LINE, min_size=1, max_size=4),
    ),
    min_size=1, max_size=30,
)


Expected = list[tuple[datetime, str, str]]


def render(dialect, items) -> tuple[bytes, Expected]:  # noqa: ANN001
    stamp = datetime(2016, 1, 1)
    lines, expected = [], []
    for gap, author, body in items:
        stamp += timedelta(seconds=gap)
        shown = stamp if DIALECTS[dialect] else stamp.replace(second=0)
        lines.append(dialect(stamp) + f"{author}: " + "\n".join(body))
        text = unicodedata.normalize("NFC", "\n".join(body))
        expected.append((shown, author, text))
    return ("\n".join(lines) + "\n").encode(), expected


def assert_every_line_placed(parsed: ParsedExport) -> None:
    """Every line is in one message or in the report, and the report is truthful:
    a line said to be kept in the message above is in one; no other is."""
    covered: set[int] = set()
    for message in parsed.messages:
        span = set(range(message.line - 1, message.line - 1 + message.line_count))
        assert not covered & span
        covered |= span
    for unplaced in parsed.unplaced:
        claims_kept = "kept as text of the message above" in unplaced.reason
        assert claims_kept == (unplaced.line - 1 in covered), unplaced
    covered |= {u.line - 1 for u in parsed.unplaced}
    assert covered == set(range(len(parsed.lines)))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.sampled_from(list(DIALECTS)), messages_strategy)
def test_random_exports_round_trip(dialect, items) -> None:  # noqa: ANN001
    data, expected = render(dialect, items)
    assume(any(stamp.day > 12 for stamp, _, _ in expected))
    # A body line that is itself a header of this dialect is, rightly, a message.
    pattern = parse_export("probe", data).dialect.pattern()
    for _, _, body in items:
        assume(not any(pattern.match(line) for line in body[1:]))
        assume(body[0].strip() not in ("", "<Media omitted>"))
    parsed = parse_export("random.txt", data)
    got = [(m.timestamp, m.author, m.text) for m in parsed.messages]
    assert got == expected
    assert parsed.unplaced == []
    assert_every_line_placed(parsed)


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    lines = data.split(b"\n")
    for kind, where, blob in edits:
        i = where % (len(lines) or 1)
        if kind == 0 and lines:
            del lines[i]
        elif kind == 1:
            lines.insert(i, blob)
        elif kind == 2 and lines:
            lines[i] = lines[i][: len(blob)] + blob
        elif kind == 3 and lines:
            lines.insert(i, lines[(i * 7) % len(lines)])
    return b"\n".join(lines)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(DIALECTS)),
    messages_strategy,
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10 ** 6),
                       st.binary(max_size=30)), max_size=8),
)
def test_mutated_exports_lose_no_line(dialect, items, edits) -> None:  # noqa: ANN001
    data, _ = render(dialect, items)
    try:
        parsed = parse_export("mutated.txt", mutate(data, edits))
    except ExportError:
        return
    assert_every_line_placed(parsed)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_an_export_or_a_typed_error(text: str) -> None:
    try:
        parsed = parse_export("any.txt", text.encode("utf-8", "surrogatepass"))
    except ExportError:
        return
    assert_every_line_placed(parsed)


IMPOSSIBLE_HEADS = ["31/02/2025, 12:00 - Hana: impossible date first",
                    "[30.02.19, 25:61:00] Hana: impossible", "2019-13-45 10:00 - x"]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(list(DIALECTS)),
    messages_strategy,
    st.lists(st.sampled_from([*IMPOSSIBLE_HEADS, "junk", ""]), min_size=1,
             max_size=3),
)
def test_bad_first_lines_lose_no_line(dialect, items, head) -> None:  # noqa: ANN001
    """Lines before the first message, impossible headers among them, are reported
    (none said to be kept in a message above); both parsers report the same."""
    data, _ = render(dialect, items)
    data = ("\n".join(head) + "\n").encode() + data
    try:
        parsed = parse_export("bad-first.txt", data)
    except ExportError:
        return
    assert_every_line_placed(parsed)
    assert {u.line for u in parsed.unplaced} >= set(range(1, len(head) + 1))
    fast = parse_fast("bad-first.txt", data)
    if fast is not None:
        assert fast.unplaced == parsed.unplaced
