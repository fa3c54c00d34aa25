"""End to end: `walake extract` against the built-in MCP server over real stdio."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from lakecheck import insert_late, lake_counts, lake_rows, store_counts, walake

from ingest.demo.store import append_messages, generate_store
from ingest.lake.writer import LakeWriter

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


def extract(store: Path, lake: Path, *extra: str, **kw) -> dict:  # noqa: ANN003
    done = walake("extract", "--store", str(store), "--lake", str(lake), *ZONE,
                  "--json", *extra, **kw)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def test_extract_lands_exactly_the_store(store, tmp_path):
    lake = tmp_path / "lake"
    summary = extract(store, lake, *ALL)

    assert lake_counts(lake) == store_counts(store)
    assert summary["messages"] == sum(store_counts(store).values())
    assert summary["status"] == "ok"


def test_rows_are_typed_and_media_keep_their_ids(store, tmp_path):
    lake = tmp_path / "lake"
    extract(store, lake, *ALL)
    rows = lake_rows(lake, "media_type, source_message_id, sent_at, sent_at_local, "
                           "utc_offset_minutes, is_group, chat_id")
    media = [r for r in rows if r[0]]
    assert media and all(r[1] for r in media)
    offsets = {r[4] for r in rows}
    assert offsets == {0, 60}  # the generated span crosses the DST change
    for _, _, sent_at, local, offset, is_group, chat_id in rows[:500]:
        assert sent_at.replace(tzinfo=None) + _minutes(offset) == local
        assert is_group == chat_id.endswith("@g.us")


def _minutes(n: int):  # noqa: ANN202
    from datetime import timedelta

    return timedelta(minutes=n)


def test_rerun_adds_nothing_and_new_messages_land_once(store, tmp_path):
    store = fresh_store(tmp_path, store)
    lake = tmp_path / "lake"
    extract(store, lake, *ALL)
    again = extract(store, lake, *ALL)
    assert again["messages"] == 0

    chat = next(iter(store_counts(store)))
    append_messages(store, chat, 12, same_second=4)
    third = extract(store, lake, *ALL)

    assert third["messages"] == 12
    assert lake_counts(lake) == store_counts(store)


def test_limits_take_newest_first_and_resume_widens(store, tmp_path):
    lake = tmp_path / "lake"
    first = extract(store, lake, "--max-chats", "3", "--max-messages", "40")
    counts = lake_counts(lake)
    assert len(counts) == 3 and first["chats_selected"] == 3
    assert all(40 <= n <= 45 for n in counts.values())  # whole seconds only

    extract(store, lake, "--resume", "--max-chats", "1000", "--max-messages", "1000000")
    assert lake_counts(lake) == store_counts(store)


def test_two_server_processes_give_the_same_lake(store, tmp_path):
    lake = tmp_path / "lake"
    summary = extract(store, lake, *ALL, "--concurrency", "2")
    assert lake_counts(lake) == store_counts(store)
    assert summary["messages"] == sum(store_counts(store).values())


def test_json_profile_keeps_ids_and_matches_the_text_profile(store, tmp_path):
    text_lake, json_lake = tmp_path / "text", tmp_path / "json"
    extract(store, text_lake, *ALL)
    extract(store, json_lake, *ALL, "--profile", "json")

    assert lake_counts(json_lake) == store_counts(store)
    keys = lambda lake: {k for _, k in lake_rows(lake)}  # noqa: E731
    assert keys(json_lake) == keys(text_lake)
    ids = lake_rows(json_lake, "source_message_id, sender_id, is_from_me")
    assert all(r[0] for r in ids)


@pytest.mark.parametrize(
    "point", ["raw_written", "parquet_written", "manifest_temp_written", "batch_recorded"]
)
def test_sigkill_then_rerun_gives_exactly_the_store(store, tmp_path, point):
    lake = tmp_path / "lake"
    killed = walake("extract", "--store", str(store), "--lake", str(lake), *ZONE, *ALL,
                    "--batch-size", "2", "-q", check=False,
                    env={"WALAKE_CRASH_AT": f"{point}:2"})
    assert killed.returncode == -9

    extract(store, lake, *ALL)
    assert lake_counts(lake) == store_counts(store)
    leftovers = [p for p in lake.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_second_writer_is_refused_at_once(store, tmp_path):
    lake = tmp_path / "lake"
    with LakeWriter(lake):
        done = walake("extract", "--store", str(store), "--lake", str(lake), *ZONE,
                      check=False, timeout=20)
    assert done.returncode == 1
    assert f"The lake {lake} is being written by another walake process (pid " in (
        done.stderr
    )
    assert "only one writer may use a lake at a time" in done.stderr


def test_lake_is_private_and_relocatable(store, tmp_path):
    lake = tmp_path / "lake"
    extract(store, lake, *ALL)
    for path in [lake, *lake.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path

    manifest = (lake / "manifest.json").read_text()
    assert str(tmp_path) not in manifest
    moved = tmp_path / "elsewhere" / "lake"
    moved.parent.mkdir()
    os.rename(lake, moved)
    assert extract(store, moved, *ALL)["messages"] == 0
    assert lake_counts(moved) == store_counts(store)


def test_server_too_new_is_reported_without_retry(store, tmp_path):
    done = walake("extract", "--store", str(store), "--lake", str(tmp_path / "lake"),
                  *ZONE, check=False, env={"WALAKE_DEMO_FAULTS": "validation_error=1"})
    assert done.returncode == 1
    assert "It runs an mcp release too new for lharries/whatsapp-mcp" in done.stderr
    assert "pin the server's mcp to 1.6.0" in done.stderr
    assert "retrying" not in done.stderr


def test_server_that_dies_mid_run_is_restarted(store, tmp_path):
    lake = tmp_path / "lake"
    summary = extract(store, lake, *ALL, env={"WALAKE_DEMO_FAULTS": "exit_after_calls=4"})
    assert summary["retries"] >= 1
    assert lake_counts(lake) == store_counts(store)


def test_missing_server_command_says_how_to_configure(tmp_path):
    config = tmp_path / "walake.toml"
    config.write_text("[extraction]\nmax_chats = 5\n")
    done = walake("extract", "--lake", str(tmp_path / "lake"), check=False,
                  env={"WALAKE_CONFIG": str(config)})
    assert done.returncode == 1
    assert "source.command is not set" in done.stderr


def test_json_profile_walks_right_whatever_the_configured_zone(store, tmp_path):
    """The json server's times carry offsets; a zone unlike the store's must not
    misplace the windows (it once looped forever)."""
    lake = tmp_path / "lake"
    wrong = ["--timezone", "America/New_York"]
    walake("extract", "--store", str(store), "--lake", str(lake), "--profile", "json",
           "--max-chats", "3", "--max-messages", "40", "-q", *wrong, timeout=60)
    walake("extract", "--store", str(store), "--lake", str(lake), "--profile", "json",
           *ALL, "-q", *wrong, timeout=60)
    assert lake_counts(lake) == store_counts(store)


def _before_the_start(store: Path, chat: str) -> str:
    with sqlite3.connect(store) as con:
        (first,) = con.execute("select min(timestamp) from messages where chat_jid = ?",
                               (chat,)).fetchone()
    return (datetime.fromisoformat(first) - timedelta(days=3)).isoformat(" ")


def test_a_recheck_lands_the_rows_the_server_got_late_once(store, tmp_path):
    """MCP answers carry no rowid, so rows the bridge stored late into seconds the
    cursors cover (a late delivery, a history sync) come with --recheck."""
    store = fresh_store(tmp_path, store)
    lake = tmp_path / "lake"
    extract(store, lake, *ALL)
    chats = sorted(store_counts(store))
    insert_late(store, chats[0], 1, "urgent: a late delivery", "LATE1")
    insert_late(store, chats[1], 250, "history sync brought this one", "LATE2")
    insert_late(store, chats[2], 0, "older than the chat's start", "LATE3",
                stamp=_before_the_start(store, chats[2]))

    assert extract(store, lake, *ALL)["messages"] == 0  # a normal pull cannot see them
    summary = extract(store, lake, *ALL, "--recheck")

    assert summary["messages"] == 3 and summary["status"] == "ok"
    assert lake_counts(lake) == store_counts(store)
    assert extract(store, lake, *ALL, "--recheck")["messages"] == 0
    texts = [r[0] for r in lake_rows(lake, "text")]
    assert texts.count("urgent: a late delivery") == 1
    with LakeWriter(lake) as writer:
        cursors = writer.manifest.cursors("mcp:lharries")
    assert all(len(c["ranges"]) == 1 and c["complete"] for c in cursors.values())


def test_a_recheck_keeps_to_what_the_cursor_covers(store, tmp_path):
    store = fresh_store(tmp_path, store)
    lake = tmp_path / "lake"
    extract(store, lake, *ALL[:2], "--max-messages", "100")
    chat = sorted(store_counts(store))[0]
    insert_late(store, chat, 10, "inside the pulled stretch", "LATE1")
    insert_late(store, chat, 0, "below it", "LATE2",
                stamp=_before_the_start(store, chat))

    summary = extract(store, lake, *ALL[:2], "--max-messages", "100", "--recheck")

    assert summary["messages"] == 1
    texts = [r[0] for r in lake_rows(lake, "text")]
    assert "inside the pulled stretch" in texts and "below it" not in texts
