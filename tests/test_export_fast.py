"""The vectorized fast path gives exactly the reference parser's messages and rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_export_golden import OWN, SHARED, cases, read_case
from test_export_properties import DIALECTS, messages_strategy, mutate, render

from ingest.sources.export import ImportOptions, import_exports
from ingest.sources.export import importer as importer_module
from ingest.sources.export.errors import ExportError
from ingest.sources.export.fast import parse_fast
from ingest.sources.export.parse import parse_export
from ingest.sources.export.rows import (
    ChatTarget,
    KeyAssigner,
    assign_keys,
    build_frame,
    file_key_inputs,
    lake_columns,
)

ZONE = ZoneInfo("Europe/Berlin")


def reference_rows(parsed, target: ChatTarget, sizes: dict) -> pl.DataFrame:
    from ingest.sources.export.land import guess_is_group

    keys = KeyAssigner(target.chat_id)
    messages = parsed.messages
    half = len(messages) // 2  # two chunks, as landing does
    return pl.concat([
        build_frame(part, target, guess_is_group(parsed), sizes, keys)
        for part in (messages[:half], messages[half:]) if part
    ])


def fast_rows(parsed, target: ChatTarget, sizes: dict) -> pl.DataFrame:
    from ingest.schema import SOURCE_COLUMNS
    from ingest.sources.export.land import guess_is_group_fast

    frame = lake_columns(parsed.frame, target, guess_is_group_fast(parsed), sizes)
    keyed = file_key_inputs(frame)
    return frame.with_columns(assign_keys(target.chat_id, keyed)).select(SOURCE_COLUMNS)


def assert_same(name: str, data: bytes, members: set[str] | None = None,
                date_order: str | None = None, me: str | None = None) -> None:
    try:
        reference = parse_export(name, data, date_order=date_order, members=members)
    except ExportError as exc:
        # The fast path raises the same error, or leaves the file to the reference.
        try:
            left = parse_fast(name, data, date_order=date_order, members=members)
        except ExportError as fast_exc:
            assert (type(fast_exc), str(fast_exc)) == (type(exc), str(exc))
        else:
            assert left is None
        return
    fast = parse_fast(name, data, date_order=date_order, members=members)
    if fast is None:  # left to the reference: nothing to compare
        return
    assert fast.messages == reference.messages
    assert fast.unplaced == reference.unplaced
    assert fast.lines == reference.lines
    assert (fast.dialect, fast.order, fast.bom, fast.crlf) == (
        reference.dialect, reference.order, reference.bom, reference.crlf)
    assert fast.authors == reference.authors
    target = ChatTarget("export:chat", "Chat", me, ZONE)
    sizes = {m.attachment: 7 for m in reference.messages if m.attachment}
    want = reference_rows(reference, target, sizes)
    got = fast_rows(fast, target, sizes)
    assert got.schema == want.schema
    assert got.to_dicts() == want.to_dicts()


GOLDEN = cases(SHARED) + cases(OWN)


@pytest.mark.parametrize("expected", GOLDEN, ids=[p.name for p in GOLDEN])
def test_golden_samples_fast_equals_reference(expected: Path) -> None:
    _, data, members = read_case(expected)
    assert parse_fast(expected.name, data, members=members) is not None
    assert_same(expected.name, data, members)
    assert_same(expected.name, data, members, me="Dara Quill", date_order="mdy")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.sampled_from(list(DIALECTS)), messages_strategy,
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10 ** 6),
                          st.binary(max_size=30)), max_size=8),
       st.sampled_from([b"\n", b"\r\n"]))
def test_generated_exports_fast_equals_reference(dialect, items, edits, end) -> None:
    data, _ = render(dialect, items)
    data = mutate(data, edits).replace(b"\n", end)
    assert_same("random.txt", data)


EXTRA_LINES = [
    "15/03/2024, 09:00 - Dara Quill created group “Kiln: Supplies”",
    "15/03/2024, 09:01 - Dara Quill changed the subject to Kiln: orders",
    "15/03/2024, 09:02 - Dara Quill: IMG-20240315-WA0001.jpg (file attached)",
    "the kiln",
    "15/03/2024, 09:02 - ~\u202fSami K: <Media omitted>",
    "15/03/2024, 09:03 - Sam Reed: This message was deleted",
    "15/03/2024, 09:03 - Sam Reed: price is 40 <This message was edited>",
    "15/03/2024, 09:03 - Sam Reed: ok",
    "15/03/2024, 09:03 - Sam Reed: ok",
    "15/03/2024, 09:03 - Sam Reed:  ok\u00a0",
    "15/03/2024, 09:04 - Sam Reed: image omitted",
    "15/03/2024, 09:04 - Sam Reed: live location shared",
    "15/03/2024, 09:04 - Sam Reed: Cafe\u0301 \u200e\U0001F600",
    "31/02/2024, 09:05 - Sam Reed: impossible date line",
    "15/03/2024, 09:05 - +44 7700 900981: a\rb",
    "15/03/2024, 09:06 - Dara Quill: \u200eMessages and calls are end-to-end encrypted.",
]


@pytest.mark.parametrize("end", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_hand_written_cases_fast_equals_reference(end: str, bom: bytes) -> None:
    data = bom + ("junk\n" + end.join(EXTRA_LINES) + end).encode()
    assert parse_fast("x.txt", data) is not None
    assert_same("x.txt", data, me="sam reed")
    assert_same("x.txt", data + b"trailing cr\r")
    assert_same("x.txt", data + b"nul \x00 byte")


def test_bad_input_fast_path_errors() -> None:
    for data in (b"", b" \n\t", b"\xff\xfe\x00", "\u00e9".encode("latin-1") * 3,
                 b"just text\nno headers\n"):
        assert_same("bad.txt", data)


def test_landed_lake_equals_reference_landing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f"{(datetime(2024, 3, 1) + timedelta(minutes=i // 3)):%d/%m/%Y, %H:%M}"
             f" - {('Ana', 'Bo', 'Cy')[i % 3]}: note {i % 7}" for i in range(700)]
    lines[5:5] = EXTRA_LINES
    path = tmp_path / "WhatsApp Chat with Kiln.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr("ingest.sources.export.land.BATCH_ROWS", 300)
    options = ImportOptions(me="Ana", tz="Europe/Berlin")
    [fast] = import_exports(tmp_path / "fast", [path], options)
    monkeypatch.setattr(importer_module, "start_fast", lambda *a, **k: None)
    [ref] = import_exports(tmp_path / "ref", [path], options)
    assert fast.summary.new == ref.summary.new == 700 + len(EXTRA_LINES) - 2
    for attr in ("messages", "system", "media", "is_group", "warnings"):
        assert getattr(fast.summary, attr) == getattr(ref.summary, attr)
    assert len(fast.summary.batches) == len(ref.summary.batches) == 3

    def lake(name: str) -> pl.DataFrame:
        return pl.read_parquet(str(tmp_path / name / "messages" / "**" / "*.parquet")) \
            .drop("batch_id", "ingested_at").sort("message_key")

    assert lake("fast").to_dicts() == lake("ref").to_dicts()

    def raw(name: str) -> list[dict]:
        return sorted(pl.read_ndjson(str(tmp_path / name / "raw" / "**" / "*.jsonl.zst"))
                      .to_dicts(), key=lambda r: r["line"])

    assert raw("fast") == raw("ref")
    _ = UTC


def test_longer_export_lands_the_reference_raw_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later, longer export adds only its new messages: the fast path's raw
    records of those (multi-line, quoted, repeated: with ordinals) are the
    reference's, in file order, across batch boundaries."""
    stamp = datetime(2024, 3, 1, 9, 0)
    body = ["ok", 'say "hi" \\ \t tab', "two\nlines", "ok", "Grüße 🧑\u200d🍳",
            "three\nline\nmessage", "ok"]
    lines = [f"{stamp + timedelta(minutes=i // 4):%d/%m/%Y, %H:%M} - "
             f"{('Ana', 'Bo', 'Cy')[i % 3]}: {body[i % len(body)]}" for i in range(90)]
    short = tmp_path / "short" / "WhatsApp Chat with Kiln.txt"
    longer = tmp_path / "longer" / "WhatsApp Chat with Kiln.txt"
    for path, count in ((short, 40), (longer, 90)):
        path.parent.mkdir()
        path.write_text("\n".join(lines[:count]) + "\n", encoding="utf-8")
    monkeypatch.setattr("ingest.sources.export.land.BATCH_ROWS", 7)
    options = ImportOptions(tz="Europe/Berlin")

    def land(name: str) -> list[dict]:
        for path in (short, longer):
            [outcome] = import_exports(tmp_path / name, [path], options)
            assert outcome.error is None
        files = sorted((tmp_path / name / "raw").rglob("*.jsonl.zst"))
        return [record for file in files
                for record in pl.read_ndjson(str(file)).to_dicts()]

    fast = land("fast")
    monkeypatch.setattr(importer_module, "start_fast", lambda *a, **k: None)
    ref = land("ref")
    assert fast == ref
    assert any(r.get("ordinal") for r in fast)
    assert any(len(r["lines"]) == 3 for r in fast)


def test_forgotten_chat_stays_out_of_the_raw_layer(tmp_path: Path) -> None:
    from ingest.lake.blocklist import hashed
    from ingest.lake.writer import LakeWriter

    path = tmp_path / "WhatsApp Chat with Kiln.txt"
    path.write_text("\n".join(EXTRA_LINES) + "\n", encoding="utf-8")
    other = tmp_path / "WhatsApp Chat with Other.txt"
    other.write_text("\n".join(EXTRA_LINES[2:]) + "\n", encoding="utf-8")
    lake = tmp_path / "lake"
    with LakeWriter(lake) as writer:
        writer.manifest.data.setdefault("blocklist", {})["chats"] = {
            hashed("export:kiln"): "test"}
        writer.manifest.save()
    outcomes = import_exports(lake, [path, other], ImportOptions(tz="UTC"))
    assert all(o.error is None for o in outcomes)
    raw = pl.read_ndjson(str(lake / "raw" / "**" / "*.jsonl.zst"))
    assert set(raw["chat_id"].to_list()) == {"export:other"}
    rows = pl.read_parquet(str(lake / "messages" / "**" / "*.parquet"))
    assert set(rows["chat_id"].to_list()) == {"export:other"}


CUE_TEXT = st.lists(st.one_of(
    st.text(max_size=6),
    st.sampled_from(["<", ">", ")", "\n", "maps.google", "location shared", "Standort",
                     "omitted", "omitid", "weggelassen", "This message was deleted",
                     " <This message was edited>", "<Media omitted>", "\r"]),
), max_size=5).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(CUE_TEXT, min_size=1, max_size=20))
def test_needs_classifying_column_equals_function(bodies: list[str]) -> None:
    from ingest.sources.export.classify import needs_classifying
    from ingest.sources.export.fast import needs_classifying_expr

    got = pl.select(needs_classifying_expr(pl.lit(pl.Series(bodies, dtype=pl.String))))
    assert got.to_series().to_list() == [needs_classifying(b) for b in bodies]


CUE_LINE = st.one_of(CUE_TEXT.filter(lambda t: "\n" not in t and "\r" not in t),
                     st.sampled_from([
                         "IMG-20240201-WA0003.jpg (file attached)", "\u200eimage omitted",
                         "\u200e<attached: 00000009-AUDIO-2024-04-11-08-52-37.opus>",
                         "<Media omitted> <This message was edited>",
                         "\u200eIlse Brandt added you",
                         "Location: https://maps.google.com/?q=1,2",
                         "live location shared", "You deleted this message",
                         "Messages and calls are end-to-end encrypted."]))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.sampled_from(list(DIALECTS)),
       st.lists(st.tuples(st.integers(0, 4000), st.sampled_from(
           ["Dara Quill", "~\u202fSami K", "Oak Street Sellers", "Dara Quill added Bo"]),
           st.lists(CUE_LINE, min_size=1, max_size=3), st.booleans()),
           min_size=1, max_size=25))
def test_cue_heavy_exports_fast_equals_reference(dialect, items) -> None:
    stamp = datetime(2016, 1, 13)
    lines = []
    for gap, author, body, with_author in items:
        stamp += timedelta(seconds=gap)
        head = dialect(stamp)
        lines.append(head + (f"{author}: " if with_author else "") + "\n".join(body))
    assert_same("cues.txt", ("\n".join(lines) + "\n").encode())


def test_file_ordinals_equal_the_schema_counter() -> None:
    from ingest.schema import with_keys
    from ingest.sources.export.rows import file_ordinals

    base = datetime(2024, 3, 15, 9, 2)
    texts = ["ok", "ok ", "", "Grüße", "ok", "", "a\r\nb", "a\nb", " x\u00a0",
             "Gru\u0308ße", "\x1cok"] * 5
    stamps = [base + timedelta(seconds=i % 4) for i in range(len(texts))]
    frame = pl.DataFrame({"sent_at_local": stamps, "text": texts})
    rows = [{"chat_id": "c1", "sent_at_local": t, "text": x}
            for t, x in zip(stamps, texts)]
    want = [r["message_key"] for r in with_keys(rows)]
    for slice_rows in (3, 7, 1000):
        keyed = file_key_inputs(frame).with_columns(file_ordinals(frame, slice_rows))
        assert assign_keys("c1", keyed).to_list() == want
        assert assign_keys("c1", file_key_inputs(frame, slice_rows)).to_list() == want


def test_batch_ordinals_equal_the_schema_counter() -> None:
    """`FileOrdinals` batch by batch gives the keys of one counter over the file,
    also when identical rows are far apart and out of time order."""
    from ingest.schema import with_keys
    from ingest.sources.export.rows import FileOrdinals, key_hashes, key_parts

    base = datetime(2024, 3, 15, 9, 2)
    texts = ["ok", "ok ", "", "Grüße", "ok", "", "a\r\nb", "a\nb", " x\u00a0",
             "Gru\u0308ße", "\x1cok"] * 9
    stamps = [base + timedelta(seconds=(i * 7) % 5 - (i % 3) * 60)
              for i in range(len(texts))]
    frame = pl.DataFrame({"sent_at_local": stamps, "text": texts})
    rows = [{"chat_id": "c1", "sent_at_local": t, "text": x}
            for t, x in zip(stamps, texts)]
    want = [r["message_key"] for r in with_keys(rows)]
    for batch_rows in (1, 4, 13, 1000):
        ordinals = FileOrdinals(lambda messages: messages)
        keys = []
        for start in range(0, frame.height, batch_rows):
            batch = frame.slice(start, batch_rows)
            parts = key_parts(batch)
            keyed = parts.with_columns(
                ordinals.take(batch, parts, key_hashes(parts)).alias("_ordinal"))
            keys += assign_keys("c1", keyed).to_list()
        assert keys == want


STREAMED = {
    # A name that a later author turns into an event line ("Bo" + " left"): the
    # slices after it wait for the end of the parse.
    "later author decides": ["Bo left: see you", "Cy: hi", "Bo: back", "Cy: ok",
                             "Bo: ok", "Cy: ok", "Dee: ok"],
    # The author is known first: the event line is decided as it comes.
    "known author decides": ["Bo: hi", "Cy: ok", "Bo left: see you", "Cy: ok",
                             "Bo: back", "Dee: ok"],
    # Two authors and no group event: is_group is known at the end only.
    "direct chat": ["Ana: hi", "Bo: ok", "Ana: ok", "Bo: ok", "Ana: <Media omitted>",
                    "Bo: ok", "Ana: a", "Bo: b", "Ana: c", "Bo: d"],
    "group": ["Ana created group “Kiln”", "Ana: hi", "Bo: ok", "Cy: ok", "Bo: ok",
              "Ana: x", "Cy: y", "Ana: ok", "Bo: ok", "Cy: ok"],
}


@pytest.mark.parametrize("lines", list(STREAMED.values()), ids=list(STREAMED))
def test_streamed_landing_equals_reference_landing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> None:
    """Batches that land while later slices are classified give the lake of the
    reference parse landed at once."""
    stamp = datetime(2024, 3, 1, 9, 0)
    text = "\n".join(f"{stamp + timedelta(seconds=30 * (i // 2)):%d/%m/%Y, %H:%M}"
                     f" - {line}" for i, line in enumerate(lines * 3))
    path = tmp_path / "WhatsApp Chat with Kiln.txt"
    path.write_text(text + "\n", encoding="utf-8")
    monkeypatch.setattr("ingest.sources.export.fast.CLASSIFY_ROWS", 2)
    monkeypatch.setattr("ingest.sources.export.land.BATCH_ROWS", 3)
    options = ImportOptions(me="Ana", tz="Europe/Berlin")
    [fast] = import_exports(tmp_path / "fast", [path], options)
    monkeypatch.setattr(importer_module, "start_fast", lambda *a, **k: None)
    [ref] = import_exports(tmp_path / "ref", [path], options)
    for attr in ("messages", "new", "system", "media", "is_group", "warnings"):
        assert getattr(fast.summary, attr) == getattr(ref.summary, attr)
    assert len(fast.summary.batches) == len(ref.summary.batches)
    assert fast.parsed.messages == ref.parsed.messages
    assert fast.parsed.system_lines == ref.parsed.system_lines

    def lake(name: str) -> pl.DataFrame:
        return pl.read_parquet(str(tmp_path / name / "messages" / "**" / "*.parquet")) \
            .drop("ingested_at").sort("batch_id", maintain_order=True)

    assert lake("fast").to_dicts() == lake("ref").to_dicts()
    raw = {name: pl.read_ndjson(str(tmp_path / name / "raw" / "**" / "*.jsonl.zst"))
           .to_dicts() for name in ("fast", "ref")}
    assert raw["fast"] == raw["ref"]


def test_failing_batch_stops_the_import_and_a_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while a batch is built ends the import (no thread left waiting);
    the batches committed before it stay, and a rerun adds exactly the rest."""
    from ingest.sources.export import pipeline

    lines = [f"{(datetime(2024, 3, 1) + timedelta(minutes=i)):%d/%m/%Y, %H:%M}"
             f" - {('Ana', 'Bo', 'Cy')[i % 3]}: note {i % 5}" for i in range(60)]
    path = tmp_path / "WhatsApp Chat with Kiln.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr("ingest.sources.export.fast.CLASSIFY_ROWS", 7)
    monkeypatch.setattr("ingest.sources.export.land.BATCH_ROWS", 10)
    real = pipeline.lake_columns
    built = {"n": 0}

    def failing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        built["n"] += 1
        if built["n"] == 4:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "lake_columns", failing)
    lake = tmp_path / "lake"
    with pytest.raises(RuntimeError, match="boom"):
        import_exports(lake, [path], ImportOptions(tz="UTC"))
    landed = pl.read_parquet(str(lake / "messages" / "**" / "*.parquet")).height
    assert landed in (0, 10, 20, 30)

    monkeypatch.setattr(pipeline, "lake_columns", real)
    [outcome] = import_exports(lake, [path], ImportOptions(tz="UTC"))
    assert outcome.summary.new == 60 - landed
    keys = pl.read_parquet(str(lake / "messages" / "**" / "*.parquet"))["message_key"]
    assert keys.len() == keys.n_unique() == 60


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Australia/Lord_Howe",
                                  "Africa/Casablanca", "America/St_Johns", "UTC"])
def test_hour_offsets_are_those_of_to_utc(zone: str) -> None:
    """Lake offsets per local hour equal `to_utc`'s time by time, through DST
    changes (gaps, repeated hours, half-hour shifts) and Ramadan suspensions."""
    from ingest.sources.export.rows import _hour_offsets
    from ingest.sources.export.zones import resolve_zone, to_utc

    tz, _ = resolve_zone(zone)
    stamps = [datetime(2019, 1, 1) + timedelta(minutes=23 * i) for i in range(40_000)]
    got = _hour_offsets(pl.Series(stamps), tz).to_list()
    assert got == [to_utc(t, tz)[1] for t in stamps]
