"""`walake forget` end to end: every id form and every copy, names that are ambiguous,
dry runs.

The lake holds the same messages twice: from MCP (the built-in server over the demo
store) and from the bridge's store. The store gains a few invented people:
Inès Farrow (447700900045), stored both bare and as a JID, whose MCP copies carry
only her name; two different people both named Nuno Rossetti; three group chats all
named "Book club 📚".
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lakecheck import walake
from test_operate_lake import ALL, ZONE, holding, snapshot

from ingest.demo.store import generate_store
from ingest.views import connect

INES = "447700900045"
NUNOS = ["447700900046", "447700900047"]
BOOK_CLUBS = [f"12036300000000010{i}@g.us" for i in (1, 2, 3)]
BOOK_CLUB = "Book club 📚"
LONDON = ZoneInfo("Europe/London")
START = datetime(2025, 3, 10, 9, 0)  # inside the demo store's span, winter time


def add_messages(store: Path, rows: list[tuple[str, str, str]],
                 start: datetime) -> None:
    """Insert (chat, sender, text) rows one minute apart from `start` (local time)."""
    con = sqlite3.connect(store)
    for i, (chat, sender, text) in enumerate(rows):
        stamp = (start + timedelta(minutes=i)).replace(tzinfo=LONDON)
        con.execute(
            "insert into messages (id, chat_jid, sender, content, timestamp, "
            "is_from_me, media_type) values (?, ?, ?, ?, ?, 0, '')",
            (f"T{start:%m%d%H%M}{i:04d}", chat, sender, text,
             stamp.isoformat(sep=" ")),
        )
        con.execute("update chats set last_message_time = ? where jid = ?",
                    (stamp.isoformat(sep=" "), chat))
    con.commit()
    con.close()


def ines_rows(prefix: str) -> list[tuple[str, str, str]]:
    """Her messages in both stored forms: bare (live) and JID (history sync)."""
    jid = f"{INES}@s.whatsapp.net"
    return [
        (BOOK_CLUBS[0], INES, f"{prefix} inesmark plum-orchard note"),
        (BOOK_CLUBS[0], jid, f"{prefix} inesmark walnut-harbour note"),
        (jid, INES, f"{prefix} inesmark private cedar-lantern note"),
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "messages.db"
    generate_store(path, chats=6, messages_per_chat=60, seed=5)
    con = sqlite3.connect(path)
    people = [(f"{INES}@s.whatsapp.net", "Inès Farrow")]
    people += [(f"{n}@s.whatsapp.net", "Nuno Rossetti") for n in NUNOS]
    con.executemany("insert into chats values (?, ?, null)",
                    people + [(c, BOOK_CLUB) for c in BOOK_CLUBS])
    con.commit()
    con.close()
    rows = ines_rows("old")
    rows += [(BOOK_CLUBS[1], n, f"nuno {n} reads chapter {k}")
             for n in NUNOS for k in range(1 + NUNOS.index(n))]
    rows += [(c, "447700900099", f"club {c[:18]} meets on day {d}")
             for c in BOOK_CLUBS for d in range(BOOK_CLUBS.index(c) + 2)]
    add_messages(path, rows, START)
    return path


def extract(store: Path, lake: Path, *extra: str) -> None:
    walake("extract", "--store", str(store), "--lake", str(lake), *ZONE, *ALL, "-q",
           *extra)


@pytest.fixture()
def lake(store, tmp_path) -> Path:
    """The same messages from MCP and from the bridge."""
    lake = tmp_path / "lake"
    extract(store, lake)
    extract(store, lake, "--source", "bridge")
    return lake


def lake_rows(lake: Path, where: str = "true") -> list[tuple]:
    """Every stored copy (all sources, not deduplicated) and the `messages` view."""
    con = connect(lake)
    rows = con.sql(
        "select source, message_key, sender_id, sender_name, text from lake_messages "
        f"where {where} order by all").fetchall()
    shown = con.sql(
        f"select message_key from messages where {where} order by all").fetchall()
    return rows + [("view", k, None, None, None) for (k,) in shown]


def forget(lake: Path, *args: str, check: bool = True) -> dict:
    done = walake("forget", *args, "--lake", str(lake), "--json", check=check)
    return json.loads(done.stdout) if done.returncode == 0 else {"done": done}


def test_forget_a_number_removes_every_form_and_every_copy(lake):
    theirs = lake_rows(lake, "text like '%inesmark%'")
    forms = {r[2] for r in theirs if r[0] == "bridge"}
    assert forms == {INES, f"{INES}@s.whatsapp.net"}  # the store keeps both forms
    # MCP shows a name only; in her direct chat the chat's own id is hers
    assert {r[2:4] for r in theirs if r[0] == "mcp"} == {
        (None, "Inès Farrow"), (INES, "Inès Farrow")}
    others = lake_rows(lake, "text not like '%inesmark%'")

    done = forget(lake, "--sender", INES)

    assert done["rows"] == {"messages": 6}  # 3 messages, from MCP and from the bridge
    assert lake_rows(lake, "text like '%inesmark%'") == []  # no copy, none in the view
    for _, _, _, _, text in theirs[:3]:
        assert holding(lake, text) == [], text  # raw records neither
    assert lake_rows(lake, "text not like '%inesmark%'") == others


def test_a_forgotten_number_stays_out_of_later_pulls(store, lake, tmp_path):
    forget(lake, "--sender", f"{INES}@s.whatsapp.net")  # the JID form: both go too
    later = tmp_path / "later.db"
    shutil.copy(store, later)
    add_messages(later, [*ines_rows("new"),
                         (BOOK_CLUBS[0], "447700900099", "club keeps going")],
                 START + timedelta(days=60))

    extract(later, lake)
    extract(later, lake, "--source", "bridge")

    assert lake_rows(lake, "text like '%inesmark%'") == []
    assert holding(lake, "walnut-harbour") == []
    assert holding(lake, "cedar-lantern") == []
    assert {r[0] for r in lake_rows(lake, "text = 'club keeps going'")} == {
        "mcp", "bridge", "view"}


def test_a_chat_name_shared_by_three_chats_is_refused(lake):
    before = snapshot(lake)

    done = forget(lake, "--chat", BOOK_CLUB, check=False)["done"]

    assert done.returncode == 1
    assert (f'Error: "{BOOK_CLUB}" matches 3 chats: {BOOK_CLUBS[0]} (4 messages), '
            f"{BOOK_CLUBS[1]} (6 messages), {BOOK_CLUBS[2]} (4 messages). Nothing "
            "was changed. Pass the chat id instead, e.g. walake forget --chat "
            f"{BOOK_CLUBS[0]}\n") in done.stderr
    assert snapshot(lake) == before
    assert forget(lake, "--chat", BOOK_CLUBS[2])["rows"] == {"messages": 8}


def test_a_sender_name_shared_by_two_people_is_refused(lake):
    before = snapshot(lake)

    done = forget(lake, "--sender", "Nuno Rossetti", check=False)["done"]

    assert done.returncode == 1
    assert ('Error: "Nuno Rossetti" matches 2 senders: 447700900046 (1 message), '
            "447700900047 (2 messages). Nothing was changed. Pass the sender id "
            "instead, e.g. walake forget --sender 447700900046\n") in done.stderr
    assert snapshot(lake) == before
    forget(lake, "--sender", NUNOS[1])
    assert {r[4] for r in lake_rows(lake, "text like 'nuno%'")} == {
        "nuno 447700900046 reads chapter 0", None}


def test_a_name_only_one_person_has_forgets_and_blocks_their_id(store, lake, tmp_path):
    done = forget(lake, "--sender", "Inès Farrow")

    assert done["rows"] == {"messages": 6}
    assert lake_rows(lake, "text like '%inesmark%'") == []
    # Renamed in the phone's contacts: the bridge's later rows carry her id alone
    later = tmp_path / "later.db"
    shutil.copy(store, later)
    with sqlite3.connect(later) as con:
        con.execute("update chats set name = 'Inès F.' where jid = ?",
                    (f"{INES}@s.whatsapp.net",))
    add_messages(later, ines_rows("new"), START + timedelta(days=60))
    extract(later, lake, "--source", "bridge")
    assert lake_rows(lake, "text like '%inesmark%'") == []


@pytest.mark.parametrize("args", [["--sender", INES], ["--chat", BOOK_CLUBS[0]]])
def test_dry_run_reports_the_same_figures_and_changes_nothing(lake, tmp_path, args):
    copy = tmp_path / "copy"
    shutil.copytree(lake, copy)
    before = snapshot(lake)

    planned = forget(lake, *args, "--dry-run")
    text = walake("forget", *args, "--dry-run", "--lake", str(lake)).stdout

    assert snapshot(lake) == before  # no file, manifest or blocklist change
    assert text.startswith(f"would forget the {args[0][2:]}: would remove ")
    assert "Dry run: nothing was changed." in text
    done = forget(copy, *args)
    assert planned["rows"]["messages"] > 0 and planned["dry_run"] is True
    assert {**planned, "lake": "", "dry_run": False} == {**done, "lake": ""}


def test_forgetting_a_number_reports_rows_kept_under_the_name(lake, tmp_path):
    export = tmp_path / "WhatsApp Chat with Inès Farrow.txt"
    export.write_text("10/03/2025, 09:00 - Inès Farrow: the exported pear-quay note\n"
                      "10/03/2025, 09:01 - Sam Reed: ok\n", encoding="utf-8")
    walake("import", str(export), "--lake", str(lake), "--tz", "Europe/London")

    done = walake("forget", "--sender", INES, "--lake", str(lake))

    assert "Kept 1 message under the name 'Inès Farrow' with no id" in done.stdout
    assert "walake forget --sender 'Inès Farrow'" in done.stdout
    assert holding(lake, "pear-quay") != []  # kept: a name alone is not her id
    walake("forget", "--sender", "Inès Farrow", "--lake", str(lake))
    assert holding(lake, "pear-quay") == []
