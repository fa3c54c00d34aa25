"""The bridge source: `walake extract --source bridge` reading the store directly."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lakecheck import (
    insert_late, lake_counts, lake_rows, lock_store, store_counts, walake,
)

from ingest.demo.store import append_messages, generate_store
from ingest.extract import ExtractOptions, run_extract
from ingest.lake.writer import LakeWriter
from ingest.sources.bridge import BridgeSource

ZONE = ["--timezone", "Europe/London"]
ALL = ["--max-chats", "1000", "--max-messages", "1000000"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "messages.db"
    generate_store(path, chats=8, messages_per_chat=300, seed=3)
    return path


def fresh_store(tmp_path: Path, store: Path) -> Path:
    copy = tmp_path / "messages.db"
    copy.write_bytes(store.read_bytes())
    return copy


def bridge(store: Path, lake: Path, *extra: str, **kw) -> dict:  # noqa: ANN003
    done = walake("extract", "--source", "bridge", "--store", str(store),
                  "--lake", str(lake), *ZONE, "--json", *extra, **kw)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def keys(lake: Path) -> set[str]:
    return {k for _, k in lake_rows(lake)}


def test_bridge_pull_lands_exactly_the_store(store, tmp_path):
    lake = tmp_path / "lake"
    summary = bridge(store, lake, *ALL)

    assert lake_counts(lake) == store_counts(store)
    assert summary["messages"] == summary["new_messages"] == sum(
        store_counts(store).values())
    assert summary["source"] == "bridge" and summary["status"] == "ok"
    assert {p.parent.parent.name for p in (lake / "messages").rglob("*.parquet")} == {
        "src=bridge"
    }


def test_rows_keep_ids_senders_and_utc_offsets_across_dst(store, tmp_path):
    lake = tmp_path / "lake"
    bridge(store, lake, *ALL)
    rows = lake_rows(lake, "source_message_id, sender_id, is_from_me, sent_at, "
                           "sent_at_local, utc_offset_minutes, media_type, "
                           "media_filename, media_size, text")
    assert all(r[0] for r in rows) and all(r[1] for r in rows)
    assert {r[5] for r in rows} == {0, 60}  # winter +00:00 and summer +01:00
    for _, _, _, sent_at, local, offset, *_ in rows:
        assert sent_at.replace(tzinfo=None) + timedelta(minutes=offset) == local
    media = [r for r in rows if r[6]]
    assert media and all(r[7] and r[8] and r[9] == "" for r in media)

    with sqlite3.connect(store) as con:
        stored = {r[0]: r[1:] for r in con.execute(
            "select id, sender, is_from_me, timestamp from messages")}
    for mid, sender, from_me, _, local, offset, *_ in rows[:300]:
        assert stored[mid][:2] == (sender, int(from_me))
        sign = "+" if offset >= 0 else "-"
        text = f"{local:%Y-%m-%d %H:%M:%S}{sign}{offset // 60:02d}:{offset % 60:02d}"
        assert stored[mid][2] == text


def test_mcp_then_bridge_give_the_same_messages(store, tmp_path):
    lake = tmp_path / "lake"
    walake("extract", "--store", str(store), "--lake", str(lake), *ZONE, *ALL, "-q")
    mcp_keys = keys(lake)
    summary = bridge(store, lake, *ALL)
    # Landed as received from this source too, but none is new to the lake
    total = sum(store_counts(store).values())
    assert (summary["messages"], summary["new_messages"]) == (total, 0)

    rows = lake_rows(lake, "source, message_key")
    by_source: dict[str, set[str]] = {}
    for source, key in rows:
        by_source.setdefault(source, set()).add(key)
    assert by_source["bridge"] == by_source["mcp"] == mcp_keys

    from ingest.views import connect

    con = connect(lake)
    count, with_ids = con.execute(
        "select count(*), count(source_message_id) from messages").fetchone()
    assert count == with_ids == sum(store_counts(store).values())


def test_rerun_adds_nothing_and_appended_rows_land_once(store, tmp_path):
    store = fresh_store(tmp_path, store)
    lake = tmp_path / "lake"
    bridge(store, lake, *ALL)
    assert bridge(store, lake, *ALL)["messages"] == 0

    chat = next(iter(store_counts(store)))
    append_messages(store, chat, 12, same_second=4)
    third = bridge(store, lake, *ALL)

    assert third["messages"] == 12
    assert lake_counts(lake) == store_counts(store)


def test_limits_take_newest_first_and_resume_widens(store, tmp_path):
    lake = tmp_path / "lake"
    first = bridge(store, lake, "--max-chats", "3", "--max-messages", "40")
    counts = lake_counts(lake)
    assert len(counts) == 3 and first["chats_selected"] == 3
    assert all(40 <= n <= 45 for n in counts.values())  # whole seconds only

    bridge(store, lake, "--resume", *ALL)
    assert lake_counts(lake) == store_counts(store)


def test_the_paged_interface_agrees_with_the_fast_path(store, tmp_path):
    fast, paged = tmp_path / "fast", tmp_path / "paged"
    bridge(store, fast, *ALL)
    source = BridgeSource(store, ZoneInfo("Europe/London"), page_size=97)
    with LakeWriter(paged) as writer:
        options = ExtractOptions(max_chats=1000, max_messages=1_000_000)
        asyncio.run(run_extract(writer, [source], options))
    assert keys(paged) == keys(fast)

    # and the cursors one path leaves are resumed by the other
    append_messages(fresh := fresh_store(tmp_path, store), next(iter(
        store_counts(store))), 7, same_second=3)
    assert bridge(fresh, paged, *ALL)["messages"] == 7


WRITER = """
import sys
from ingest.demo.store import append_messages
for chat in sys.argv[2:]:
    append_messages(sys.argv[1], chat, 40, interval_s=0.01, same_second=2)
"""


def test_writer_inserting_during_a_pull_then_second_pull_equals_store(store, tmp_path):
    store = fresh_store(tmp_path, store)
    lake = tmp_path / "lake"
    chats = list(store_counts(store))[:3]
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store), *chats])
    try:
        first = bridge(store, lake, *ALL, "--batch-size", "1")
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0 and first["status"] == "ok"
    lake_counts(lake)  # no message twice, whatever the writer did meanwhile

    bridge(store, lake, *ALL)
    assert lake_counts(lake) == store_counts(store)


def test_locked_store_is_waited_for(store, tmp_path):
    store = fresh_store(tmp_path, store)
    lake = tmp_path / "lake"
    holder = lock_store(store, 3)
    started = time.monotonic()
    summary = bridge(store, lake, *ALL)
    holder.wait(timeout=30)

    assert time.monotonic() - started >= 2
    assert summary["status"] == "ok" and summary["retries"] >= 1
    assert lake_counts(lake) == store_counts(store)


def test_store_locked_past_the_timeout_is_a_clear_error(store, tmp_path):
    store = fresh_store(tmp_path, store)
    config = tmp_path / "walake.toml"
    config.write_text("[source]\nbusy_timeout_seconds = 1\n")
    holder = lock_store(store, 6)
    try:
        done = walake("extract", "--source", "bridge", "--store", str(store),
                      "--lake", str(tmp_path / "lake"), *ZONE, check=False,
                      env={"WALAKE_CONFIG": str(config)})
    finally:
        holder.wait(timeout=30)
    assert done.returncode == 1
    assert f"Error: The bridge store {store} stayed locked by another process" in (
        done.stderr
    )
    assert "raise source.busy_timeout_seconds" in done.stderr


@pytest.mark.parametrize("point", ["parquet_written", "batch_recorded"])
def test_sigkill_then_rerun_gives_exactly_the_store(store, tmp_path, point):
    lake = tmp_path / "lake"
    killed = walake("extract", "--source", "bridge", "--store", str(store),
                    "--lake", str(lake), *ZONE, *ALL, "--batch-size", "2", "-q",
                    check=False, env={"WALAKE_CRASH_AT": f"{point}:2"})
    assert killed.returncode == -9

    bridge(store, lake, *ALL)
    assert lake_counts(lake) == store_counts(store)
    assert [p for p in lake.rglob("*") if p.name.startswith(".tmp-")] == []


def test_store_in_the_config_and_missing_store_message(store, tmp_path):
    config = tmp_path / "walake.toml"
    config.write_text(f'[source]\nkind = "bridge"\nstore = "{store}"\n')
    lake = tmp_path / "lake"
    walake("extract", "--lake", str(lake), *ZONE, *ALL, "-q",
           env={"WALAKE_CONFIG": str(config)})
    assert lake_counts(lake) == store_counts(store)

    config.write_text('[source]\nkind = "bridge"\n')
    done = walake("extract", "--lake", str(lake), check=False,
                  env={"WALAKE_CONFIG": str(config)})
    assert done.returncode == 1
    assert "source.store is not set" in done.stderr


def test_late_rows_inside_the_covered_history_are_pulled_once(store, tmp_path):
    store = fresh_store(tmp_path, store)
    lake = tmp_path / "lake"
    bridge(store, lake, *ALL)
    chats = sorted(store_counts(store))
    insert_late(store, chats[0], 1, "urgent: a late delivery", "LATE1")
    insert_late(store, chats[1], 250, "history sync brought this one", "LATE2")

    summary = bridge(store, lake, *ALL)

    assert summary["messages"] == 2
    assert lake_counts(lake) == store_counts(store)
    assert bridge(store, lake, *ALL)["messages"] == 0  # swept once, not again
    texts = [r[0] for r in lake_rows(lake, "text")]
    assert texts.count("urgent: a late delivery") == 1


def test_the_paged_path_the_monitor_uses_sweeps_late_rows_too(store, tmp_path):
    store = fresh_store(tmp_path, store)
    lake = tmp_path / "lake"
    options = ExtractOptions(max_chats=1000, max_messages=1_000_000)

    def pull() -> int:
        source = BridgeSource(store, ZoneInfo("Europe/London"), page_size=97)
        with LakeWriter(lake) as writer:
            return asyncio.run(run_extract(writer, [source], options)).messages

    assert pull() == sum(store_counts(store).values())
    chats = sorted(store_counts(store))
    insert_late(store, chats[0], 1, "urgent: a late delivery", "LATE1")
    insert_late(store, chats[1], 250, "history sync brought this one", "LATE2")

    assert pull() == 2
    assert lake_counts(lake) == store_counts(store)
    assert pull() == 0  # swept once, not again
    assert bridge(store, lake, *ALL)["messages"] == 0  # and the fast path agrees
    texts = [r[0] for r in lake_rows(lake, "text")]
    assert texts.count("urgent: a late delivery") == 1


def test_history_older_than_a_complete_chat_lands_once_on_both_paths(store, tmp_path):
    """A history sync after pairing brings messages older than a chat's start."""
    store = fresh_store(tmp_path, store)
    lake, paged_lake = tmp_path / "lake", tmp_path / "paged"
    options = ExtractOptions(max_chats=1000, max_messages=1_000_000)

    def paged() -> int:
        source = BridgeSource(store, ZoneInfo("Europe/London"), page_size=97)
        with LakeWriter(paged_lake) as writer:
            return asyncio.run(run_extract(writer, [source], options)).messages

    bridge(store, lake, *ALL)
    paged()
    chat = sorted(store_counts(store))[0]
    for n in range(3):  # one second holds three of them
        insert_late(store, chat, 0, f"old news {n}", f"OLD{n}",
                    stamp="2020-01-05 09:00:00+00:00")

    assert bridge(store, lake, *ALL)["messages"] == 3
    assert paged() == 3
    insert_late(store, chat, 0, "older still", "OLD9", stamp="2019-12-31 23:59:59+00:00")
    assert bridge(store, lake, *ALL)["messages"] == 1
    assert paged() == 1
    assert bridge(store, lake, *ALL)["messages"] == 0 and paged() == 0
    assert lake_counts(lake) == store_counts(store) == lake_counts(paged_lake)


def test_a_timestamp_that_is_no_time_is_left_out_with_a_warning(store, tmp_path):
    store = fresh_store(tmp_path, store)
    lake = tmp_path / "lake"
    chat = sorted(store_counts(store))[0]
    for mid, stamp in (("BAD1", "garbage"), ("BAD2", "1740823200"),
                       ("BAD3", "2025-13-45 99:99:99+01:00")):
        insert_late(store, chat, 0, "unreadable time", mid, stamp=stamp)
    done = walake("extract", "--source", "bridge", "--store", str(store), "--lake",
                  str(lake), *ZONE, *ALL, check=False)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"chat {chat}: 3 message(s)" in done.stderr and "left out" in done.stderr
    expected = store_counts(store)
    expected[chat] -= 3
    assert lake_counts(lake) == expected
