"""The views over real lakes: dedup, empty and moved lakes, uncommitted files, marts."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from conftest_views import T0, make_lake, msg, write_batch
from ingest.views import LakeFileMissing, connect, setup_script, view_names


def count(con: duckdb.DuckDBPyConnection, view: str) -> int:
    return con.execute(f"select count(*) from {view}").fetchall()[0][0]


def test_every_sql_file_is_applied(tmp_path: Path) -> None:
    sql_dir = Path(__file__).resolve().parent.parent / "sql"
    files = {p.stem for p in sql_dir.glob("*/*.sql")}
    assert files == set(view_names())
    with connect(make_lake(tmp_path)) as con:
        tables = {r[0] for r in con.sql("show tables").fetchall()}
    assert set(view_names()) <= tables


def test_empty_lake_gives_typed_empty_views(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()  # no manifest, no batch
    with connect(lake) as con:
        for view in view_names():
            con.sql(f"select * from {view}").fetchall()  # none fails
        assert count(con, "messages") == 0
        assert count(con, "message_scores") == 0
        assert count(con, "activity_hour_of_week") == 168
        types = dict(con.sql("select column_name, column_type from "
                             "(describe message_scores)").fetchall())
        summary = con.sql("select messages, opportunities, opportunity_score, "
                          "first_message_at from monetization_summary").fetchall()
    assert types["sent_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["score"] == "DOUBLE"
    assert types["keywords"] == "VARCHAR[]"
    assert summary == [(0, 0, 0.0, None)]


def test_duplicates_across_batches_keep_the_fullest_row(tmp_path: Path) -> None:
    plain = msg("urgent deal", key="m1", sender_id=None)
    lake = make_lake(
        tmp_path,
        [plain, msg("hello", key="m2", at=1)],
        [plain | {"source_message_id": "wa-1", "sender_id": "alice", "source": "mcp"},
         msg("hello", key="m2", at=1, source="mcp")],
        [plain],
    )
    with connect(lake) as con:
        rows = con.sql("select message_key, source, source_message_id, sender_id, "
                       "batch_id from messages order by message_key").fetchall()
        scores = con.sql("select message_key, score from message_scores "
                         "order by message_key").fetchall()
        chats = con.sql("select messages from chats").fetchall()
    assert rows == [
        ("m1", "mcp", "wa-1", "alice", "b00000002"),  # the one with ids wins
        ("m2", "export", None, "alice", "b00000001"),  # a tie: the earliest batch
    ]
    assert scores == [("m1", 4.0), ("m2", 0.0)]
    assert chats == [(2,)]


def test_file_not_in_manifest_is_ignored(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [msg("a", key="a")])
    stray = write_batch(lake, [msg("urgent", key="b")], record=False)
    assert stray.exists()
    with connect(lake) as con:
        assert con.sql("select message_key from messages").fetchall() == [("a",)]


def test_missing_committed_file_is_a_clear_error(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [msg("a")])
    next((lake / "messages").rglob("*.parquet")).unlink()
    with pytest.raises(LakeFileMissing, match="Copy the whole lake folder"):
        connect(lake)


def test_relocated_lake_reads_the_same(tmp_path: Path) -> None:
    lake = make_lake(tmp_path / "a", [msg("urgent deal", key="x")],
                     [msg("hi", key="y", at=1)])
    moved = tmp_path / "elsewhere" / "lake"
    shutil.copytree(lake, moved)
    shutil.rmtree(tmp_path / "a")
    with connect(moved) as con:
        rows = con.sql("select message_key, score from message_scores "
                       "order by 1").fetchall()
    assert rows == [("x", 4.0), ("y", 0.0)]
    assert str(tmp_path / "a") not in (moved / "manifest.json").read_text()


def test_setup_script_runs_in_a_plain_duckdb(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [msg("urgent deal", key="x")])
    script = setup_script(lake, threshold=5)
    con = duckdb.connect()  # what `duckdb -cmd "$(walake sql --setup-script)"` gets
    con.execute(script)
    assert con.sql("select message_key, score from message_scores").fetchall() == [
        ("x", 4.0)]
    assert con.sql("select count(*) from opportunities").fetchall() == [(0,)]


def test_new_batches_show_after_reconnect(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [msg("a", key="a")])
    with connect(lake) as con:
        assert count(con, "messages") == 1
    write_batch(lake, [msg("b", key="b", at=1)])
    with connect(lake, threads=1) as con:
        assert count(con, "messages") == 2


def test_unanswered_opportunity_timing(tmp_path: Path) -> None:
    day = 24 * 60
    lake = make_lake(tmp_path, [
        # c1: my reply exactly at the deadline: answered
        msg("urgent deal", key="o1", chat_id="c1", at=0),
        msg("on it", key="r1", chat_id="c1", at=day, is_from_me=True),
        # c2: my reply one minute late: unanswered, with the late reply time
        msg("urgent deal", key="o2", chat_id="c2", at=0),
        msg("sorry", key="r2", chat_id="c2", at=day + 1, is_from_me=True),
        # c3: I only wrote before it, and in another chat after: unanswered
        msg("earlier", key="r3", chat_id="c3", at=-5, is_from_me=True),
        msg("urgent deal", key="o3", chat_id="c3", at=0),
        # c4: someone else answered; not me: unanswered
        msg("urgent deal", key="o4", chat_id="c4", at=0),
        msg("I can", key="x4", chat_id="c4", at=10, sender_id="bob"),
    ])
    with connect(lake) as con:
        rows = con.sql("select message_key, first_reply_at, reply_due_at, is_overdue "
                       "from unanswered_opportunities order by message_key").fetchall()
    due = T0 + timedelta(days=1)
    assert [(k, r, d, o) for k, r, d, o in rows] == [
        ("o2", T0 + timedelta(minutes=day + 1), due, True),
        ("o3", None, due, True),
        ("o4", None, due, True),
    ]
    with connect(lake, reply_hours=24 + 1 / 60) as con:  # 1 minute longer
        keys = [r[0] for r in con.sql("select message_key from "
                                      "unanswered_opportunities order by 1").fetchall()]
    assert keys == ["o3", "o4"]


def test_open_window_is_not_overdue(tmp_path: Path) -> None:
    recent = datetime.now(UTC) - timedelta(hours=1)
    lake = make_lake(tmp_path, [msg("urgent deal", key="new", sent_at=recent)])
    with connect(lake) as con:
        assert con.sql("select is_overdue from unanswered_opportunities").fetchall() \
            == [(False,)]


@pytest.fixture
def marts_lake(tmp_path: Path) -> Path:
    return make_lake(tmp_path, [
        msg("urgent deal", key="a1", chat_id="c1", chat_name="Deals", at=0),
        msg("need help asap", key="a2", chat_id="c1", chat_name="Deals", at=60,
            sender_id="bob", sender_name="Bob"),
        msg("ok", key="a3", chat_id="c1", chat_name="Deals", at=61, is_from_me=True,
            sender_id="me", sender_name="Me"),
        msg("lunch?", key="b1", chat_id="c2", chat_name="Family", at=7 * 24 * 60,
            is_group=True),
        msg("startup funding", key="b2", chat_id="c2", chat_name="Family",
            at=7 * 24 * 60 + 1, is_group=True),
    ])


def test_chat_summary(marts_lake: Path) -> None:
    with connect(marts_lake) as con:
        rows = con.sql("select chat_id, chat_name, is_group, messages, senders, "
                       "opportunities, unanswered_opportunities, score_sum, "
                       "opportunity_score, last_opportunity_at from chat_summary"
                       ).fetchall()
    assert rows == [
        ("c1", "Deals", False, 3, 2, 2, 0, 9.0, 9.0, T0 + timedelta(minutes=60)),
        ("c2", "Family", True, 2, 1, 1, 1, 4.0, 4.0,
         T0 + timedelta(days=7, minutes=1)),
    ]


def test_sender_summary(marts_lake: Path) -> None:
    with connect(marts_lake) as con:
        rows = con.sql("select sender_key, sender_name, is_me, messages, chats, "
                       "opportunities, opportunity_score from sender_summary"
                       ).fetchall()
    assert rows == [
        ("alice", "Alice", False, 3, 2, 2, 8.0),
        ("bob", "Bob", False, 1, 1, 1, 5.0),
        ("me", "Me", True, 1, 1, 0, 0.0),
    ]


def test_activity_and_category_trends(marts_lake: Path) -> None:
    with connect(marts_lake) as con:
        daily = con.sql("select day_local::varchar, messages, messages_sent, "
                        "messages_received, active_chats, opportunities "
                        "from activity_daily").fetchall()
        hours = con.sql("select weekday, hour, messages, opportunities from "
                        "activity_hour_of_week where messages > 0").fetchall()
        weekly = con.sql("select week_start_local::varchar, category, messages, "
                         "opportunities from category_weekly").fetchall()
        mix = con.sql("select category, weight, opportunities, keywords_hit, points, "
                      "share_of_opportunities from category_mix").fetchall()
    assert daily == [("2024-03-04", 3, 1, 2, 1, 2), ("2024-03-11", 2, 0, 2, 1, 1)]
    # local time is UTC+1: 10:00 and 11:00 on Mondays (ISO weekday 1)
    assert hours == [(1, 10, 3, 2), (1, 11, 2, 1)]
    assert weekly == [
        ("2024-03-04", "products", 1, 1),
        ("2024-03-04", "services", 1, 1),
        ("2024-03-04", "urgent", 2, 2),
        ("2024-03-11", "business", 1, 1),
    ]
    assert mix == [
        ("urgent", 3.0, 2, 2, 6.0, 2 / 3),
        ("business", 2.0, 1, 2, 4.0, 1 / 3),
        ("services", 2.0, 1, 1, 2.0, 1 / 3),
        ("products", 1.0, 1, 1, 1.0, 1 / 3),
        ("networking", 1.0, 0, 0, 0.0, 0.0),
    ]


def test_monetization_summary(marts_lake: Path) -> None:
    with connect(marts_lake) as con:
        row = con.sql("select * from monetization_summary").pl().row(0, named=True)
    assert {k: row[k] for k in (
        "messages", "messages_sent", "chats", "senders", "scored_messages",
        "opportunities", "opportunity_score", "chats_with_opportunities",
        "unanswered_opportunities", "overdue_opportunities", "threshold",
        "reply_window_hours")} == {
        "messages": 5, "messages_sent": 1, "chats": 2, "senders": 3,
        "scored_messages": 3, "opportunities": 3, "opportunity_score": 13.0,
        "chats_with_opportunities": 2, "unanswered_opportunities": 1,
        "overdue_opportunities": 1, "threshold": 2.0, "reply_window_hours": 24.0,
    }
    assert row["opportunity_rate"] == pytest.approx(0.6)


def test_a_person_stored_bare_and_as_a_jid_is_one_sender(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [
        msg("hi", key="k1", chat_id="g1@g.us", is_group=True, at=0,
            sender_id="447700900045", sender_name="Ines"),
        msg("need help asap", key="k2", chat_id="g1@g.us", is_group=True, at=1,
            sender_id="447700900045@s.whatsapp.net", sender_name="Ines"),
        msg("me too", key="k3", chat_id="g1@g.us", is_group=True, at=2,
            sender_id="447700900099@s.whatsapp.net", sender_name="Olu"),
        msg("lid", key="k4", chat_id="g1@g.us", is_group=True, at=3,
            sender_id="216372651676122@lid", sender_name="Kai"),
        msg("lid bare", key="k5", chat_id="g1@g.us", is_group=True, at=4,
            sender_id="216372651676122", sender_name="Kai"),
    ])
    with connect(lake) as con:
        senders = con.sql("select sender_key, messages from sender_summary "
                          "order by sender_key").fetchall()
        in_chat = con.sql("select senders from chats").fetchall()
    assert senders == [("216372651676122", 2), ("447700900045", 2),
                       ("447700900099", 1)]
    assert in_chat == [(3,)]


def test_monetization_senders_count_people_without_ids_and_both_id_forms_once(
    tmp_path: Path,
) -> None:
    """Exports carry names only; the bridge stores a person bare or as a JID."""
    lake = make_lake(tmp_path, [
        msg("hi", key="e1", sender_id=None, sender_name="Ana Lima", source="export"),
        msg("yo", key="e2", sender_id=None, sender_name="Bo Chen", source="export",
            at=1),
        msg("a", key="b1", sender_id="447700900045", source="bridge", at=2),
        msg("b", key="b2", sender_id="447700900045@s.whatsapp.net", source="bridge",
            at=3),
    ])
    with connect(lake) as con:
        [(senders,)] = con.sql("select senders from monetization_summary").fetchall()
        [(people,)] = con.sql("select count(*) from sender_summary").fetchall()
    assert senders == people == 3
