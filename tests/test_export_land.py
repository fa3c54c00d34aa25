"""Landing exports: identity, re-import, longer export, resume, CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import ingest.cli
from ingest.lake.writer import LakeWriter
from ingest.schema import message_key
from ingest.sources.export import ImportOptions, import_exports
from ingest.sources.export import land as land_module

HEAD = [
    "15/03/2024, 09:00 - Dara Quill created group “Kiln Supplies”",
    "15/03/2024, 09:02 - Dara Quill: First order: 40 bags",
    "15/03/2024, 09:02 - Sam Reed: ok",
    "15/03/2024, 09:02 - Sam Reed: ok",
    "15/03/2024, 09:03 - Dara Quill: IMG-20240315-WA0001.jpg (file attached)",
    "the kiln",
    "15/03/2024, 09:04 - Sam Reed: <Media omitted>",
]
TAIL = [
    "16/03/2024, 10:00 - Ilse Brandt: I'm in",
    "16/03/2024, 10:01 - Sam Reed: ok",
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rows(lake: Path) -> pl.DataFrame:
    return pl.read_parquet(str(lake / "messages" / "**" / "*.parquet"))


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if "import" not in ingest.cli.cli.commands:
        ingest.cli._register()


def test_rows_follow_the_lake_contract(tmp_path: Path) -> None:
    path = write(tmp_path / "WhatsApp Chat with Kiln Supplies.txt", HEAD)
    (tmp_path / "IMG-20240315-WA0001.jpg").write_bytes(b"12345")
    options = ImportOptions(me="sam reed", tz="Europe/Berlin")
    [outcome] = import_exports(tmp_path / "lake", [path], options)
    frame = rows(tmp_path / "lake").sort("sent_at_local", maintain_order=True)

    assert outcome.summary.chat_id == "export:kiln supplies"
    assert outcome.summary.is_group
    assert frame["source"].unique().to_list() == ["export"]
    assert frame["is_from_me"].to_list() == [None, False, True, True, False, True]
    photo = frame.row(4, named=True)
    assert (photo["text"], photo["media_type"], photo["media_filename"],
            photo["media_size"]) == ("the kiln", "image", "IMG-20240315-WA0001.jpg", 5)
    omitted = frame.row(5, named=True)
    assert (omitted["text"], omitted["media_type"]) == ("", "unknown")
    first = frame.row(1, named=True)
    assert first["sent_at"] == datetime(2024, 3, 15, 8, 2, tzinfo=UTC)
    assert first["utc_offset_minutes"] == 60
    assert first["message_key"] == message_key(
        "export:kiln supplies", datetime(2024, 3, 15, 9, 2), "First order: 40 bags", 0)
    twins = frame.filter(pl.col("text") == "ok")["message_key"].to_list()
    assert len(set(twins)) == 2


def test_chat_id_option_and_phone_sender(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", ["16/03/2024, 18:30 - +44 7700 900981: hello"])
    options = ImportOptions(chat_id="447700900981@s.whatsapp.net", tz="UTC")
    import_exports(tmp_path / "lake", [path], options)
    row = rows(tmp_path / "lake").row(0, named=True)
    assert row["chat_id"] == "447700900981@s.whatsapp.net"
    assert row["sender_id"] == "447700900981" and row["is_from_me"] is None


def test_reimport_adds_nothing_and_longer_export_adds_only_new(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    short = write(tmp_path / "chat.txt", HEAD)
    [first] = import_exports(lake, [short], ImportOptions(tz="UTC"))
    [again] = import_exports(lake, [short], ImportOptions(tz="UTC"))
    assert first.summary.new == 6 and again.summary.already_imported
    assert again.summary.new == 0 and rows(lake).height == 6

    longer = write(tmp_path / "chat-later.txt", HEAD + TAIL)
    [later] = import_exports(lake, [longer], ImportOptions(chat="chat", tz="UTC"))
    assert later.summary.new == 2
    frame = rows(lake)
    assert frame.height == 8 and frame["message_key"].n_unique() == 8


def test_export_whose_last_batches_are_all_held_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export that adds older messages before ones the lake holds: its new rows
    land in the first batches, the held last ones add nothing, and the import is
    still recorded (a rerun adds nothing)."""
    lake = tmp_path / "lake"
    lines = [f"{datetime(2024, 3, 15, 9) + timedelta(minutes=i):%d/%m/%Y, %H:%M}"
             f" - {('Dara Quill', 'Sam Reed')[i % 2]}: note {i}" for i in range(50)]
    monkeypatch.setattr(land_module, "BATCH_ROWS", 10)
    recent = write(tmp_path / "chat-recent.txt", lines[20:])
    whole = write(tmp_path / "chat-whole.txt", lines)
    [first] = import_exports(lake, [recent], ImportOptions(chat="chat", tz="UTC"))
    [older] = import_exports(lake, [whole], ImportOptions(chat="chat", tz="UTC"))
    assert first.summary.new == 30 and older.summary.new == 20
    assert len(older.summary.batches) == 2
    manifest = json.loads((lake / "manifest.json").read_text())
    assert manifest["imports"][older.summary.sha256]["complete"]
    [again] = import_exports(lake, [whole], ImportOptions(chat="chat", tz="UTC"))
    assert again.summary.already_imported and again.summary.new == 0
    assert rows(lake)["message_key"].n_unique() == rows(lake).height == 50


def test_interrupted_import_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    lines = [f"15/03/2024, 09:{i % 60:02d} - Dara Quill: note {i}" for i in range(250)]
    path = write(tmp_path / "chat.txt", lines)
    monkeypatch.setattr(land_module, "BATCH_ROWS", 100)
    real_commit = LakeWriter.commit
    calls = {"n": 0}

    def failing_commit(self, batch):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_commit(self, batch)

    monkeypatch.setattr(LakeWriter, "commit", failing_commit)
    with pytest.raises(KeyboardInterrupt):
        import_exports(lake, [path], ImportOptions(tz="UTC"))
    assert rows(lake).height == 100
    manifest = json.loads((lake / "manifest.json").read_text())
    assert manifest["imports"] == {}

    monkeypatch.setattr(LakeWriter, "commit", real_commit)
    [outcome] = import_exports(lake, [path], ImportOptions(tz="UTC"))
    assert outcome.summary.new == 150
    assert rows(lake)["message_key"].n_unique() == 250


def test_cli_summary_and_json(tmp_path: Path) -> None:
    path = write(tmp_path / "WhatsApp Chat with Kiln.txt", ["junk first", *HEAD])
    runner = CliRunner()
    lake = str(tmp_path / "lake")
    result = runner.invoke(ingest.cli.cli, ["import", str(path), "--lake", lake,
                                            "--tz", "UTC"])
    assert result.exit_code == 0, result.output
    headline = "6 messages (1 system, 2 media), 6 new -> 'Kiln' [export:kiln]"
    assert headline in result.output
    assert "date order dmy (a value over 12 in the first field)" in result.output
    assert "line 1: before the first message: 'junk first'" in result.output

    result = runner.invoke(ingest.cli.cli, ["import", str(path), "--lake", lake,
                                            "--json"])
    data = json.loads(result.output)
    assert data["already_imported"] and data["new"] == 0
    assert data["unplaced"] == [{"line": 1, "text": "junk first",
                                 "reason": "before the first message"}]


def test_cli_failure_exit_code_and_text(tmp_path: Path) -> None:
    bad = tmp_path / "empty.txt"
    bad.write_bytes(b"")
    result = CliRunner().invoke(ingest.cli.cli, ["import", str(bad), "--lake",
                                                 str(tmp_path / "lake")])
    assert result.exit_code == 1
    assert "FAILED empty.txt: the file is empty." in result.output
    assert "Error: 1 of 1 file(s) could not be imported" in result.output


def test_cli_unknown_zone(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", HEAD)
    result = CliRunner().invoke(ingest.cli.cli, ["import", str(path), "--tz",
                                                 "Mars/Olympus", "--lake",
                                                 str(tmp_path / "lake")])
    assert result.exit_code == 1
    assert "--tz 'Mars/Olympus' is not a time zone" in result.output


def test_ambiguous_dst_time_takes_the_first(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", ["27/10/2024, 02:30 - Ana: which one?"])
    import_exports(tmp_path / "lake", [path], ImportOptions(tz="Europe/Berlin"))
    row = rows(tmp_path / "lake").row(0, named=True)
    assert row["sent_at"] == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    assert row["utc_offset_minutes"] == 120


def test_fast_keys_equal_the_schema_counter() -> None:
    from ingest.schema import with_keys
    from ingest.sources.export.rows import KeyAssigner

    base = datetime(2024, 3, 15, 9, 2)
    texts = ["ok", "ok ", "", "Grüße", "ok", "", "a\r\nb", "a\nb", " x\u00a0"] * 3
    stamps = [base + timedelta(seconds=i % 3) for i in range(len(texts))]
    rows = [{"chat_id": "c1", "sent_at_local": t, "text": x}
            for t, x in zip(stamps, texts)]
    keys = KeyAssigner("c1")
    found = keys.keys(stamps[:7], texts[:7]) + keys.keys(stamps[7:], texts[7:])
    assert found == [r["message_key"] for r in with_keys(rows)]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York",
                                  "Australia/Lord_Howe", "Asia/Kolkata"])
def test_hourly_offsets_equal_per_time_conversion(zone: str) -> None:
    from zoneinfo import ZoneInfo

    from ingest.sources.export.zones import HourlyOffsets, to_utc

    tz = ZoneInfo(zone)
    offsets = HourlyOffsets(tz)
    for day in (datetime(2024, 3, 10), datetime(2024, 3, 31), datetime(2024, 4, 7),
                datetime(2024, 10, 6), datetime(2024, 10, 27), datetime(2024, 11, 3)):
        for minute in range(0, 24 * 60, 7):
            local = day + timedelta(minutes=minute, seconds=minute % 60)
            assert offsets.utc(local) == to_utc(local, tz), local


def test_ios_direct_chat_is_not_a_group(tmp_path: Path) -> None:
    lines = ["[02.09.24, 19:41:05] Ilse Brandt: \u200eMessages and calls are "
             "end-to-end encrypted.", "[02.09.24, 19:42:00] Ilse Brandt: hi",
             "[13.09.24, 08:10:00] Sam Reed: hello"]
    [outcome] = import_exports(tmp_path / "lake", [write(tmp_path / "a.txt", lines)],
                               ImportOptions(tz="UTC"))
    assert not outcome.summary.is_group and outcome.summary.system == 1


def test_same_file_into_another_chat_id_is_imported(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", HEAD)
    import_exports(tmp_path / "lake", [path], ImportOptions(tz="UTC"))
    [outcome] = import_exports(tmp_path / "lake", [path],
                               ImportOptions(tz="UTC", chat_id="1203634@g.us"))
    assert outcome.summary.new == 6


def _texts(lake: Path) -> list[tuple[str, str]]:
    from ingest.views import connect

    with connect(lake) as con:
        return con.sql("select text, strftime(sent_at_local, '%Y-%m-%d') from messages "
                       "order by 2, 1").fetchall()


def test_a_default_day_month_order_the_next_export_contradicts_is_refused(tmp_path):
    """3/5/25 alone could be either; 3/13/25 later shows month first. Landing the
    second file would add the first file's messages again under other dates."""
    head = ["3/5/25, 9:00 AM - Ana: one", "3/6/25, 9:10 AM - Bo: two"]
    first, longer = tmp_path / "a" / "Ana.txt", tmp_path / "b" / "Ana.txt"
    third = "3/13/25, 9:00 AM - Ana: three"
    for path, lines in ((first, head), (longer, [*head, third])):
        path.parent.mkdir()
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lake = tmp_path / "lake"
    options = ImportOptions(tz="UTC")
    [done] = import_exports(lake, [first], options)
    assert done.summary.new == 2 and _texts(lake)[0] == ("one", "2025-05-03")

    [refused] = import_exports(lake, [longer], options)
    assert "--date-order mdy" in str(refused.error)
    assert "a default then" in str(refused.error)
    assert len(_texts(lake)) == 2  # unchanged
    [hinted] = import_exports(lake, [longer], ImportOptions(tz="UTC", date_order="dmy"))
    assert hinted.error is not None  # a hint is no reading of the file either

    result = CliRunner().invoke(ingest.cli.cli, ["forget", "--chat", "export:ana",
                                                 "--allow-again", "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    again = import_exports(lake, [first, longer],
                           ImportOptions(tz="UTC", date_order="mdy"))
    assert [o.error for o in again] == [None, None]
    assert _texts(lake) == [("one", "2025-03-05"), ("two", "2025-03-06"),
                            ("three", "2025-03-13")]


def test_exports_that_each_show_their_day_month_order_may_differ(tmp_path):
    """Two members' phones set to different locales: both read right, one message."""
    uk, us = tmp_path / "uk" / "Ana.txt", tmp_path / "us" / "Ana.txt"
    for path, line in ((uk, "13/03/2025, 09:00 - Ana: one"),
                       (us, "3/13/25, 9:00 AM - Ana: one")):
        path.parent.mkdir()
        path.write_text(line + "\n", encoding="utf-8")
    lake = tmp_path / "lake"
    outcomes = import_exports(lake, [uk, us], ImportOptions(tz="UTC"))
    assert [o.error for o in outcomes] == [None, None]
    assert [o.summary.new for o in outcomes] == [1, 0]
