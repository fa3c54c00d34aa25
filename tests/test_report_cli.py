"""`walake report`, `export-chat` and `sql`: output checked field by field."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from rich.console import Console

from conftest_views import make_lake, msg
from ingest.cli import _register, cli
from ingest.report import print_report

_register()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return make_lake(tmp_path, [
        msg("Urgent: looking\nfor a partner", key="o1", chat_id="c1",
            chat_name="Founders", at=0, sender_id="bob", sender_name="Bob"),
        msg("nice", key="n1", chat_id="c1", chat_name="Founders", at=5),
        msg("deal?", key="n2", chat_id="c2", chat_name="Family", at=6),
        msg("we hire, asap", key="o2", chat_id="c2", chat_name="Family", at=7),
        msg("yes", key="r2", chat_id="c2", chat_name="Family", at=8,
            is_from_me=True, sender_id="me", sender_name="Me"),
        msg("Founders 2 chat", key="x", chat_id="c3", chat_name="Founders club",
            at=9),
    ])


def run(*args: str) -> object:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_report_json_fields(lake: Path) -> None:
    result = run("report", "--lake", str(lake), "--format", "json", "--top", "5")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == ["summary", "top_chats", "top_senders", "category_mix",
                          "top_opportunities", "unanswered_opportunities"]
    summary = data["summary"]
    assert summary["messages"] == 6
    assert summary["opportunities"] == 2
    assert summary["opportunity_score"] == 11.0  # 3 + 2 + 1 and 2 + 3
    assert summary["unanswered_opportunities"] == 1
    assert summary["first_message_at"] == "2024-03-04T09:00:00+00:00"
    assert data["top_chats"] == [
        {"chat_id": "c1", "chat_name": "Founders", "messages": 2, "senders": 2,
         "opportunities": 1, "unanswered_opportunities": 1, "opportunity_score": 6.0,
         "last_opportunity_at": "2024-03-04T09:00:00+00:00"},
        {"chat_id": "c2", "chat_name": "Family", "messages": 3, "senders": 1,
         "opportunities": 1, "unanswered_opportunities": 0, "opportunity_score": 5.0,
         "last_opportunity_at": "2024-03-04T09:07:00+00:00"},
    ]
    assert [s["sender_key"] for s in data["top_senders"]] == ["bob", "alice"]
    top = data["top_opportunities"][0]
    assert top == {
        "sent_at": "2024-03-04T09:00:00+00:00", "chat_name": "Founders",
        "sender_name": "Bob", "score": 6.0,
        "categories": ["networking", "services", "urgent"],
        "keywords": ["looking for", "partner", "urgent"],
        "text": "Urgent: looking\nfor a partner", "chat_id": "c1", "message_key": "o1",
    }
    assert [u["message_key"] for u in data["unanswered_opportunities"]] == ["o1"]
    assert data["category_mix"][0]["category"] == "urgent"


def test_report_csv_and_parquet_write_one_file_per_section(lake: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "csv"
    assert run("report", "--lake", str(lake), "--format", "csv", "--out",
               str(out)).exit_code == 0
    with open(out / "top_opportunities.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["keywords"] == "looking for; partner; urgent"
    assert rows[0]["score"] == "6.0"
    assert rows[0]["text"] == "Urgent: looking\nfor a partner"
    assert rows[1]["message_key"] == "o2"

    out = tmp_path / "pq"
    assert run("report", "--lake", str(lake), "--format", "parquet", "--out",
               str(out)).exit_code == 0
    summary = pl.read_parquet(out / "summary.parquet")
    assert summary["opportunities"].to_list() == [2]
    chats = pl.read_parquet(out / "top_chats.parquet")
    assert chats["chat_id"].to_list() == ["c1", "c2"]
    assert chats.schema["last_opportunity_at"] == pl.Datetime("us", "UTC")


def test_report_csv_needs_out(lake: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--lake", str(lake), "--format", "csv"])
    assert result.exit_code == 1
    assert "add --out PATH" in result.output


def test_report_table_and_print_report(lake: Path) -> None:
    result = run("report", "--lake", str(lake))
    assert result.exit_code == 0
    assert "Monetization summary" in result.output
    assert "Top opportunities" in result.output
    console = Console(file=io.StringIO(), width=200)
    report = print_report(console, lake, top=1)
    text = console.file.getvalue()
    assert "Unanswered opportunities" in text and "Founders" in text
    assert report["top_opportunities"].height == 1


def test_empty_lake_report(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    result = run("report", "--lake", str(lake), "--format", "json")
    data = json.loads(result.output)
    assert data["summary"]["messages"] == 0
    assert data["top_opportunities"] == []
    assert run("report", "--lake", str(lake)).exit_code == 0


def test_export_chat_json_by_name(lake: Path) -> None:
    result = run("export-chat", "family", "--lake", str(lake))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["message_key"] for r in rows] == ["n2", "o2", "r2"]
    assert rows[1] == {
        "message_key": "o2", "chat_id": "c2", "chat_name": "Family",
        "sent_at": "2024-03-04T09:07:00+00:00",
        "sent_at_local": "2024-03-04T10:07:00", "sender_id": "alice",
        "sender_name": "Alice", "is_from_me": False, "text": "we hire, asap",
        "media_type": None, "media_filename": None, "source": "export",
        "score": 5.0, "categories": ["services", "urgent"],
        "keywords": ["asap", "hire"], "is_opportunity": True,
    }
    assert rows[2]["is_from_me"] is True and rows[2]["is_opportunity"] is False


def test_export_chat_csv_and_parquet(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "c1.csv"
    assert run("export-chat", "c1", "--lake", str(lake), "--format", "csv", "--out",
               str(out)).exit_code == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["message_key"] for r in rows] == ["o1", "n1"]
    assert rows[0]["categories"] == "networking; services; urgent"
    assert rows[0]["is_opportunity"] == "true"
    assert rows[1]["categories"] == "" and rows[1]["score"] == "0.0"
    assert rows[0]["sent_at"] == "2024-03-04T09:00:00+00:00"

    out = tmp_path / "c1.parquet"
    assert run("export-chat", "c1", "--lake", str(lake), "--format", "parquet",
               "--out", str(out)).exit_code == 0
    frame = pl.read_parquet(out)
    assert frame["message_key"].to_list() == ["o1", "n1"]
    assert frame["keywords"].to_list() == [["looking for", "partner", "urgent"], []]
    assert frame["score"].to_list() == [6.0, 0.0]


@pytest.mark.parametrize(("chat", "message"), [
    ("founders", None),  # exact name wins over "Founders club"
    ("found", "matches 2 chats"),
    ("nobody", 'No chat matches "nobody"'),
    (" ", "The chat to export is empty"),
])
def test_export_chat_lookup(lake: Path, chat: str, message: str | None) -> None:
    result = CliRunner().invoke(cli, ["export-chat", chat, "--lake", str(lake)])
    if message is None:
        assert result.exit_code == 0
        assert [r["chat_id"] for r in json.loads(result.output)] == ["c1", "c1"]
    else:
        assert result.exit_code == 1
        assert message in result.output


def test_sql_command(lake: Path, tmp_path: Path) -> None:
    query = "select chat_id, opportunities from chat_summary order by chat_id"
    result = run("sql", query, "--lake", str(lake), "--format", "json")
    assert json.loads(result.output) == [
        {"chat_id": "c1", "opportunities": 1},
        {"chat_id": "c2", "opportunities": 1},
        {"chat_id": "c3", "opportunities": 0},
    ]
    result = run("sql", query, "--lake", str(lake), "--format", "csv")
    assert result.output == "chat_id,opportunities\nc1,1\nc2,1\nc3,0\n"
    table = run("sql", query, "--lake", str(lake), "--limit", "1")
    assert "c1" in table.output and "2 more row(s)" in table.output
    bad = CliRunner().invoke(cli, ["sql", "select nope from messages",
                                   "--lake", str(lake)])
    assert bad.exit_code == 1 and "walake sql \"show tables\"" in bad.output


@pytest.mark.parametrize("query", [
    "copy (select 1 as x) to '{lake}/manifest.json' (format csv)",
    "attach '{lake}/evil.db'",
    "select 1; create table t as select 2",
])
def test_sql_only_reads_so_nothing_writes_into_the_lake(lake: Path, query: str) -> None:
    before = sorted(p.name for p in lake.rglob("*"))
    manifest = (lake / "manifest.json").read_bytes()
    result = CliRunner().invoke(cli, ["sql", query.format(lake=lake), "--lake", str(lake)])

    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "walake sql runs queries that read" in result.output
    assert sorted(p.name for p in lake.rglob("*")) == before
    assert (lake / "manifest.json").read_bytes() == manifest


def test_sql_reads_describe_explain_and_pragma(lake: Path) -> None:
    for query in ("describe messages", "explain select 1", "pragma version",
                  "show tables"):
        assert CliRunner().invoke(cli, ["sql", query, "--lake", str(lake)]).exit_code == 0


def test_sql_setup_script_for_duckdb_cli(lake: Path) -> None:
    import duckdb

    result = run("sql", "--setup-script", "--lake", str(lake))
    con = duckdb.connect()
    con.execute(result.output)
    assert con.sql("select count(*) from opportunities").fetchall() == [(2,)]


def test_missing_lake_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--lake", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "No lake folder at" in result.output


def test_output_files_are_private(lake: Path, tmp_path: Path) -> None:
    """Reports and exports hold message text: every file written is 0600."""
    import os
    import stat

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    old_umask = os.umask(0o022)
    try:
        existing = tmp_path / "old.csv"
        existing.write_text("stale\n")
        existing.chmod(0o644)
        runs = [
            ("report", "--format", "json", "--out", str(tmp_path / "r.json")),
            ("report", "--format", "csv", "--out", str(tmp_path / "rcsv")),
            ("report", "--format", "parquet", "--out", str(tmp_path / "rpq")),
            ("export-chat", "c1", "--format", "json", "--out", str(tmp_path / "c.json")),
            ("export-chat", "c1", "--format", "csv", "--out", str(existing)),
            ("export-chat", "c1", "--format", "parquet", "--out",
             str(tmp_path / "c.parquet")),
            ("sql", "select text from messages", "--format", "csv", "--out",
             str(tmp_path / "q.csv")),
        ]
        for args in runs:
            assert run(*args, "--lake", str(lake)).exit_code == 0, args
    finally:
        os.umask(old_umask)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and "lake" not in p.parts]
    written = [p for p in files if p.suffix in (".json", ".csv", ".parquet")]
    assert len(written) >= 7
    assert {p.name: mode(p) for p in written} == {p.name: 0o600 for p in written}
    assert "message_key" in existing.read_text()  # rewritten, not appended
    assert mode(tmp_path / "rcsv") & 0o077 == 0  # the folder the report made


def test_sql_runs_one_statement_at_a_time(lake: Path) -> None:
    """Only the last result would print: several statements are refused."""
    result = CliRunner().invoke(cli, ["sql", "select 1; select 2", "--lake", str(lake)])
    assert result.exit_code == 1
    assert "one query at a time; this holds 2 statements" in result.output
    assert run("sql", "select 1 as a;", "--lake", str(lake)).exit_code == 0
