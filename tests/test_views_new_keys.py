"""The new_keys mark: which batches the writer marks, and that `messages` is the same
with marks as without (the view only looks for copies of unmarked batches' keys)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest_views import msg
from lakecheck import walake

from ingest.demo.store import generate_store
from ingest.lake.compact import compact_lake
from ingest.lake.manifest import Manifest
from ingest.lake.writer import LakeWriter, PendingBatch
from ingest.schema import message_key
from ingest.views import connect

MESSAGES = ("select message_key, source, source_message_id, sender_id, text, batch_id "
            "from messages order by message_key")
SCORES = "select message_key, score, keywords from message_scores order by message_key"


def land(lake: Path, *batches: list[dict[str, Any]], source: str = "mcp") -> None:
    with LakeWriter(lake) as writer:
        for rows in batches:
            batch = PendingBatch(source=source, rows=rows)
            for row in rows:
                batch.chats[row["chat_id"]] = (row["chat_name"], False)
            writer.commit(batch)


def marks(lake: Path) -> dict[str, bool]:
    batches = Manifest.load(lake).batches
    return {b: info.get("new_keys", False) for b, info in sorted(batches.items())}


def unmarked_copy(lake: Path, tmp_path: Path) -> Path:
    """The same lake with every new_keys mark removed (as an older writer left it)."""
    copy = tmp_path / "unmarked"
    copy.mkdir()
    for path in lake.rglob("*"):
        if path.is_file() and path.name != ".lock":
            target = copy / path.relative_to(lake)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    for info in manifest["batches"].values():
        info.pop("new_keys", None)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def results(lake: Path, **options: Any) -> tuple[list, list]:
    with connect(lake, **options) as con:
        return con.sql(MESSAGES).fetchall(), con.sql(SCORES).fetchall()


def test_writer_marks_a_batch_only_when_its_keys_are_new(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    land(
        lake,
        [msg("urgent deal", key="a1"), msg("hi", key="a2", at=1)],
        [msg("urgent deal", key="a1"), msg("new", key="b1", at=2)],  # a copy of a1
        [msg("x", key="c1", at=3), msg("x", key="c1", at=3)],  # the same key twice
        [msg("asap", key="d1", at=4)],
    )

    assert marks(lake) == {"b00000001": True, "b00000002": False,
                           "b00000003": False, "b00000004": True}


def test_the_writer_remembers_every_key_it_landed(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    land(lake, [msg("old", key="k-old")])  # read from the files by the next writer
    batches = [[msg(f"m{i}", key=f"k{i:02d}", at=i), msg("x", key=f"x{i:02d}", at=i)]
               for i in range(40)]

    land(lake, *batches, [msg("again", key="k00")], [msg("again", key="k-old")],
         [msg("new", key="k-new")])

    assert list(marks(lake).values()) == [True] * 41 + [False, False, True]


def test_memory_holds_a_few_chats_and_the_rest_is_read_again(tmp_path: Path) -> None:
    """Keys of chats pushed out of memory are found again in the lake's files, so
    memory follows the chats in play (a long pull), not the size of the lake."""
    from ingest.lake.new_keys import HELD_CHATS

    lake = tmp_path / "lake"
    chats = HELD_CHATS + 8
    with LakeWriter(lake) as writer:
        for c in range(chats):
            rows = [msg(f"m{c}", key=f"k{c}", chat_id=f"c{c}", at=c)]
            batch = PendingBatch(source="mcp", rows=rows)
            batch.chats[f"c{c}"] = ("Chat", False)
            writer.commit(batch)
        assert len(writer.key_hashes.chats) == HELD_CHATS
        again = [msg("m0", key="k0", chat_id="c0", at=0)]  # chat c0 was pushed out
        batch = PendingBatch(source="bridge", rows=again)
        batch.chats["c0"] = ("Chat", False)
        writer.commit(batch)

    assert list(marks(lake).values()) == [True] * chats + [False]


def test_a_key_held_by_another_source_leaves_the_batch_unmarked(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    land(lake, [msg("deal", key="k1")], source="mcp")
    land(lake, [msg("deal", key="k1", source="bridge")], source="bridge")

    assert marks(lake) == {"b00000001": True, "b00000002": False}


def copies_lake(lake: Path) -> Path:
    """Copies in marked and unmarked batches, ranked by how much they say."""
    plain = msg("urgent deal", key="m1", sender_id=None)
    land(
        lake,
        [plain, msg("hello", key="m2", at=1), msg("lone", key="m3", at=2)],
        [plain | {"source_message_id": "wa-1", "sender_id": "alice", "source": "mcp"},
         msg("need help", key="m4", at=3)],
        [msg("asap", key="m5", at=4), msg("hello", key="m2", at=1, source="mcp")],
        [msg("buy it", key="m6", at=5)],
        [plain, msg("sell", key="m7", at=6)],
    )
    return lake


def test_marked_and_unmarked_lakes_give_the_same_messages(tmp_path: Path) -> None:
    lake = copies_lake(tmp_path / "lake")
    assert list(marks(lake).values()) == [True, False, False, True, False]

    marked = results(lake)

    assert marked == results(unmarked_copy(lake, tmp_path))
    assert [(r[0], r[2], r[5]) for r in marked[0]] == [
        ("m1", "wa-1", "b00000002"), ("m2", None, "b00000001"),
        ("m3", None, "b00000001"), ("m4", None, "b00000002"),
        ("m5", None, "b00000003"), ("m6", None, "b00000004"),
        ("m7", None, "b00000005"),
    ]


def test_a_compacted_file_of_marked_and_unmarked_batches(tmp_path: Path) -> None:
    lake = copies_lake(tmp_path / "lake")
    before = results(lake)
    with LakeWriter(lake) as writer:
        compact_lake(writer)
    files = {info["files"]["messages"] for info in Manifest.load(lake).batches.values()}
    assert len(files) == 1

    assert results(lake) == before
    assert results(unmarked_copy(lake, tmp_path)) == before


@pytest.mark.parametrize("batches", [
    {"b00000001", "b00000003"}, {"b00000002", "b00000004"}, {"b00000005"},
])
def test_some_batches_only_as_the_monitor_reads_them(tmp_path: Path,
                                                     batches: set[str]) -> None:
    lake = copies_lake(tmp_path / "lake")

    got = results(lake, message_batches=batches)

    assert got == results(unmarked_copy(lake, tmp_path), message_batches=batches)
    assert {r[5] for r in got[0]} <= batches


def test_rebuilt_batches_lose_the_mark(tmp_path: Path) -> None:
    store, lake = tmp_path / "messages.db", tmp_path / "lake"
    generate_store(store, chats=3, messages_per_chat=40, seed=3)
    walake("extract", "--store", str(store), "--lake", str(lake), "--timezone",
           "Europe/London", "--batch-size", "1", "-q")
    before = results(lake)
    assert all(marks(lake).values())

    done = json.loads(walake("rebuild", "--lake", str(lake), "--timezone",
                             "Europe/London", "--json").stdout)

    assert done["rebuilt"] and not any(marks(lake)[b] for b in done["rebuilt"])
    assert results(lake) == before


def test_an_import_over_rows_the_lake_holds_marks_only_new_keys(tmp_path: Path) -> None:
    """An import vouches for its keys (it keeps the rows whose keys the lake lacked):
    over MCP rows of the same chat and an earlier, shorter export, the marks hold and
    `messages` is what an unmarked lake gives."""
    lake = tmp_path / "lake"
    local = [datetime(2024, 3, 4, 9, i) for i in range(6)]
    land(lake, [msg(f"hello {i}", key=message_key("c1", local[i], f"hello {i}", 0),
                    sent_at=local[i].replace(tzinfo=UTC), sent_at_local=local[i],
                    utc_offset_minutes=0, source="mcp")
                for i in range(3)])
    lines = [f"04/03/2024, 09:0{i} - Ana: hello {i}" for i in range(6)]
    for name, count in (("short.txt", 4), ("long.txt", 6)):
        (tmp_path / name).write_text("\n".join(lines[:count]) + "\n", encoding="utf-8")
        walake("import", str(tmp_path / name), "--chat-id", "c1", "--lake", str(lake),
               "--tz", "UTC", "--date-order", "dmy")

    with connect(lake) as con:
        texts = [t for (t,) in con.sql("select text from messages order by text").fetchall()]
    assert texts == [f"hello {i}" for i in range(6)]
    assert all(marks(lake).values())
    assert results(lake) == results(unmarked_copy(lake, tmp_path))
