"""The monitor's parts without a server: alerts once, catch-up, ticks, notify, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from lakecheck import lake_counts, store_counts
from test_monitor_lake import HOT_TEXT, WARM_TEXT, make_monitored_lake, pending

from conftest_views import msg
from ingest.cli.monitor import summary_line
from ingest.demo.store import append_messages, generate_store
from ingest.extract import ExtractOptions, started_sources
from ingest.lake.writer import LakeWriter
from ingest.monitor import MonitorOptions, MonitorSession, MonitorStats
from ingest.monitor_alerts import Alert, notify, record_alerts, unscored_batches
from ingest.sources.bridge import BridgeSource
from ingest.views import connect
from zoneinfo import ZoneInfo


def alerts_in(lake: Path) -> list[tuple]:
    con = connect(lake)
    return con.sql(
        "select excerpt, chat_name, score, categories from alerts order by excerpt"
    ).fetchall()


def test_only_new_hot_messages_from_others_are_alerted(tmp_path):
    lake = make_monitored_lake(tmp_path / "lake")

    # Not the history, not the cold one, not my own hot message
    assert alerts_in(lake) == [
        ("Can you recommend someone? We need help with the business plan",
         "Chat Two", 6.0, ["business", "services"]),
        ("Urgent: looking for investment in our startup, call me asap",
         "Chat One", 12.0, ["business", "services", "urgent"]),
    ]


def test_scoring_again_or_after_a_restart_alerts_nothing_twice(tmp_path):
    lake = make_monitored_lake(tmp_path / "lake")
    with LakeWriter(lake) as writer:
        assert unscored_batches(writer) == {}
        assert record_alerts(writer, "session2", 2.0).alerts == []

        # The same message landing again in a later monitored batch: still one alert
        again = msg(HOT_TEXT, at=60)
        writer.commit(pending([again], {"c1": "2000-01-01 00:00:00"}))
        assert record_alerts(writer, "session2", 2.0).alerts == []
    assert len(alerts_in(lake)) == 2


def test_batches_landed_but_not_scored_are_caught_up(tmp_path):
    lake = make_monitored_lake(tmp_path / "lake", score=False)  # as if killed here
    assert alerts_in(lake) == []

    with LakeWriter(lake) as writer:
        scored = record_alerts(writer, "next-session", 2.0)
    assert sorted(a.excerpt for a in scored.alerts) == sorted([HOT_TEXT, WARM_TEXT])
    assert scored.new_messages == 4
    assert len(alerts_in(lake)) == 2


def test_a_higher_threshold_alerts_fewer(tmp_path):
    lake = make_monitored_lake(tmp_path / "lake", score=False)
    with LakeWriter(lake) as writer:
        scored = record_alerts(writer, "s", 6.5)
    assert [a.excerpt for a in scored.alerts] == [HOT_TEXT]
    assert connect(lake).sql("select threshold from alerts").fetchall() == [(6.5,)]


def sample_alert() -> Alert:
    now = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    return Alert("k1", now, "c1", "Chat One", "alice", "Alice", now,
                 now.replace(tzinfo=None), 7.0, ("urgent",), "urgent: call", 1.5)


def test_notify_command_gets_the_alert_as_json(tmp_path):
    out = tmp_path / "got.json"
    assert asyncio.run(notify(f"cat > {out}", sample_alert())) is None
    got = json.loads(out.read_text())
    assert got["message_key"] == "k1" and got["categories"] == ["urgent"]
    assert got["chat_name"] == "Chat One" and got["score"] == 7.0

    problem = asyncio.run(notify("echo nope >&2; exit 3", sample_alert()))
    assert problem == "--notify-command exited with 3: nope"


def test_a_hanging_notify_command_is_killed_with_its_children(tmp_path):
    # The shell's child keeps stderr open: the limit must still hold, and the
    # whole group go.
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    problem = asyncio.run(notify(f"echo $$ > {pid_file}; sleep 30; true",
                                 sample_alert(), timeout=1))
    assert time.monotonic() - started < 5
    assert problem == "--notify-command took over 1 s and was stopped"
    group = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and group_alive(group):
        time.sleep(0.05)
    assert not group_alive(group)


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_ticks_pull_only_chats_whose_activity_moved(tmp_path):
    store, lake = tmp_path / "messages.db", tmp_path / "lake"
    generate_store(store, chats=5, messages_per_chat=40, seed=2)
    source = BridgeSource(store, ZoneInfo("Europe/London"))
    options = MonitorOptions(extract=ExtractOptions(max_messages=1000))

    async def ticks(writer: LakeWriter) -> list[tuple[int, int, int]]:
        session = MonitorSession(writer, [source], options)
        found = []
        async with started_sources([source]):
            for step in range(6):
                if step == 3:
                    chat = (await source.fetch_chats())[-1].chat_id
                    await asyncio.to_thread(append_messages, store, chat, 3)
                report = await session.tick()
                found.append((report.chats_pulled, report.messages, report.alerts))
        assert session.stats.ticks == 6
        return found

    with LakeWriter(lake) as writer:
        found = asyncio.run(ticks(writer))
    # All chats, all again to settle, none; then the one chat, settling, none
    assert found == [(4, 160, 0), (4, 0, 0), (0, 0, 0), (1, 3, 0), (1, 0, 0),
                     (0, 0, 0)]


def test_summary_line_names_every_statistic():
    stats = MonitorStats("s1", "mcp:lharries", "2024-03-04T10:00:00+00:00",
                         status="stopped", ticks=10, ticks_failed=1, messages=1234,
                         alerts=3, errors=2, tick_seconds_total=5.0,
                         tick_seconds_max=1.25, lag_seconds_max=2.5)
    assert summary_line(stats, Path("lake")) == (
        "Monitor stopped: 10 ticks (1 failed), 1,234 new messages, 3 alerts, "
        "2 errors; tick 0.50 s mean, 1.25 s max, lag 2.5 s max -> lake"
    )


def test_monitor_and_notebook_commands_have_help(walake_cli):
    runner = CliRunner()
    help_text = runner.invoke(walake_cli, ["monitor", "--help"]).output
    for option in ("--duration MIN", "--interval SEC", "--threshold N",
                   "--notify-command CMD"):
        assert option in help_text
    done = runner.invoke(walake_cli, ["notebook", "nowhere"])
    assert done.exit_code == 2
    assert "'nowhere' is not one of 'monitor', 'explore'" in done.output


def test_rows_that_leave_the_chat_list_unchanged_are_pulled_next_tick(tmp_path):
    """The bridge lists a chat's activity from its newest message only; a late row
    (older time) or another row in the newest second leaves it as it was. The
    store's rowids show them, and the next tick lands each once."""
    store, lake = tmp_path / "messages.db", tmp_path / "lake"
    generate_store(store, chats=4, messages_per_chat=40, seed=5)
    source = BridgeSource(store, ZoneInfo("Europe/London"))
    options = MonitorOptions(extract=ExtractOptions(max_messages=1000))

    def insert(chat: str, newest_but: int, text: str, mid: str) -> None:
        with sqlite3.connect(store) as con:
            stamps = [t for (t,) in con.execute(
                "select timestamp from messages where chat_jid = ? "
                "order by timestamp desc", (chat,))]
            con.execute(
                "insert into messages (id, chat_jid, sender, content, timestamp, "
                "is_from_me, media_type) values (?, ?, '447700900111', ?, ?, 0, '')",
                (mid, chat, text, stamps[newest_but]))

    async def ticks(writer: LakeWriter) -> list[int]:
        session = MonitorSession(writer, [source], options)
        landed = []
        async with started_sources([source]):
            chats = [c.chat_id for c in await source.fetch_chats()]
            for step in range(5):
                if step == 2:
                    insert(chats[0], 20, "a late delivery, need help asap", "LATE1")
                if step == 3:
                    insert(chats[1], 0, "same second as the newest", "SAME1")
                landed.append((await session.tick()).messages)
        return landed

    with LakeWriter(lake) as writer:
        landed = asyncio.run(ticks(writer))

    assert landed == [160, 0, 1, 1, 0]
    assert lake_counts(lake) == store_counts(store)
