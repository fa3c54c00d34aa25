"""Rebuild of a lake holding the same messages from two sources (MCP and the bridge).

Each source's copy is its own row: rebuild re-derives every batch from its own raw
records and must give back every copy, so the `messages` view, which prefers the copy
with the most information (the bridge's message ids, sender ids, media sizes), is
the same afterwards. Lakes are real: the demo store pulled through `walake extract`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lakecheck import lake_rows, walake

from ingest.demo.store import generate_store
from ingest.lake.manifest import Manifest
from ingest.views import connect

ZONE = ["--timezone", "Europe/London"]
ALL = ["--max-chats", "1000", "--max-messages", "1000000"]
VIEW = ("message_key, source, source_message_id, chat_id, sender_id, sender_name, "
        "text, sent_at, sent_at_local, media_type, media_size, batch_id")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "messages.db"
    generate_store(path, chats=5, messages_per_chat=120, seed=11)
    return path


@pytest.fixture()
def lake(store, tmp_path) -> Path:
    """MCP pages of 9 (walks that re-read the second they stop at), then the bridge."""
    lake = tmp_path / "lake"
    config = tmp_path / "walake.toml"
    config.write_text("[source]\npage_size = 9\n")
    common = ["--store", str(store), "--lake", str(lake), *ZONE, *ALL,
              "--batch-size", "2", "-q"]
    walake("extract", *common, "--config", str(config))
    walake("extract", *common, "--source", "bridge")
    return lake


def per_source(lake: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (source,) in lake_rows(lake, "source"):
        counts[source] = counts.get(source, 0) + 1
    return counts


def batch_rows(lake: Path) -> dict[str, int]:
    return {b: i["rows"] for b, i in Manifest.load(lake).batches.items()}


def view(lake: Path, columns: str = VIEW) -> list[tuple]:
    con = connect(lake)
    try:
        return sorted(con.execute(f"select {columns} from messages").fetchall())
    finally:
        con.close()


def rebuild(lake: Path, *extra: str) -> dict:
    return json.loads(walake("rebuild", "--lake", str(lake), *extra, "--json").stdout)


@pytest.mark.parametrize("extra", [[], ZONE], ids=["recorded-zone", "zone-given"])
def test_rebuild_keeps_every_source_copy(lake, extra):
    counts, batches, before = per_source(lake), batch_rows(lake), view(lake)
    assert set(counts) == {"mcp", "bridge"} and counts["mcp"] == counts["bridge"]
    assert all(row[2] is not None for row in before)  # the bridge copies' message ids
    sources = {i["source"] for i in Manifest.load(lake).batches.values()}
    assert sources == {"mcp", "bridge"} and len(batches) >= 4

    done = rebuild(lake, *extra)

    assert done["skipped"] == {}
    assert sorted(done["rebuilt"]) == sorted(batches)
    assert done["rows_after"] == done["rows_before"] == sum(counts.values())
    assert per_source(lake) == counts
    assert batch_rows(lake) == batches
    assert view(lake) == before
    again = rebuild(lake, *extra)  # and again: nothing drifts
    assert again["rows_after"] == again["rows_before"]
    assert per_source(lake) == counts and view(lake) == before


def mcp_times(lake: Path) -> list[tuple]:
    rows = lake_rows(lake, "source, message_key, sent_at")
    return sorted(row[1:] for row in rows if row[0] == "mcp")


def test_moving_the_zone_keeps_every_source_copy(lake):
    counts, times = per_source(lake), mcp_times(lake)
    ids = "message_key, source_message_id, sender_id, media_type, media_size"
    before = view(lake, ids)

    rebuild(lake, "--timezone", "America/New_York")

    assert per_source(lake) == counts
    assert set(Manifest.load(lake).data["zones"].values()) == {"America/New_York"}
    moved = mcp_times(lake)
    assert len(moved) == len(times) and moved != times
    assert view(lake, ids) == before  # the bridge copies still win, ids and all


def test_a_batch_that_would_shrink_keeps_its_rows_and_is_reported(lake):
    from ingest.lake.rewrite import write_raw_lines

    manifest = Manifest.load(lake)
    batch = sorted(b for b, i in manifest.batches.items() if i["source"] == "bridge")[0]
    write_raw_lines(lake, manifest.batches[batch]["files"]["raw"], [])  # emptied
    counts, batches, before = per_source(lake), batch_rows(lake), view(lake)

    done = walake("rebuild", "--lake", str(lake), "--json", check=False)

    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert list(summary["skipped"]) == [batch]
    assert "would lose rows" in summary["skipped"][batch]
    assert sorted(summary["rebuilt"]) == sorted(b for b in batches if b != batch)
    assert per_source(lake) == counts
    assert batch_rows(lake) == batches
    assert view(lake) == before


def test_batches_the_monitor_pulled_from_the_bridge_rebuild_and_forget(store, tmp_path):
    """The monitor's paged bridge reader keeps one raw record per page."""
    lake = tmp_path / "lake"
    common = ["--lake", str(lake), "--source", "bridge", "--store", str(store), *ZONE]
    walake("extract", *common, "--max-chats", "2", "--max-messages", "30", "-q")
    walake("monitor", *common, "--interval", "0.5", "--duration", "0.03", "-q")
    before, rows = view(lake), batch_rows(lake)
    assert len(before) > 60  # the monitor pulled the rest

    done = walake("rebuild", "--lake", str(lake))
    assert "rebuilt" in done.stdout
    assert batch_rows(lake) == rows
    assert [r[:-1] for r in view(lake)] == [r[:-1] for r in before]

    sender = next(r[4] for r in before if r[4] and not r[4].endswith("@g.us"))
    walake("forget", "--sender", sender, "--lake", str(lake))
    assert all(sender not in (r[4], (r[4] or "").split("@")[0]) for r in view(lake))
