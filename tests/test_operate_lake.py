"""Lake care end to end: compact, cleanup, rebuild, forget, performance, estimates.

Lakes are real: the demo store pulled through `walake extract`. Crashes are real
too: `WALAKE_CRASH_AT` kills the command with SIGKILL at a named point.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import zstandard
from lakecheck import lake_rows, walake

from ingest.demo.store import generate_store
from ingest.lake.manifest import MANIFEST_VERSION, Manifest

ZONE = ["--timezone", "Europe/London"]
ALL = ["--max-chats", "1000", "--max-messages", "1000000"]
COLS = ("message_key, chat_id, sender_id, sender_name, text, sent_at, sent_at_local, "
        "utc_offset_minutes, media_type, source_message_id, batch_id")
MARKER = "zebra-quokka-7731 secret plan"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "messages.db"
    generate_store(path, chats=6, messages_per_chat=200, seed=5)
    # One marked message per chat and one from a single sender, for the privacy scans
    con = sqlite3.connect(path)
    chats = [r[0] for r in con.execute(
        "select distinct chat_jid from messages where chat_jid != 'status@broadcast'")]
    for i, chat in enumerate(chats):
        row = list(con.execute("select * from messages where chat_jid = ? and "
                               "is_from_me = 0 order by timestamp limit 1",
                               (chat,)).fetchone())
        names = [d[0] for d in con.execute("select * from messages").description]
        row[names.index("id")] = f"MARK{i}"
        row[names.index("content")] = f"{MARKER} {chat}"
        con.execute(f"insert into messages values ({','.join('?' * len(row))})", row)
    con.commit()
    con.close()
    return path


def extract(store: Path, lake: Path, *extra: str, **kw) -> dict:  # noqa: ANN003
    done = walake("extract", "--store", str(store), "--lake", str(lake), *ZONE, *ALL,
                  "--batch-size", "1", "--json", "-q", *extra, **kw)
    return json.loads(done.stdout.splitlines()[0] and done.stdout) if done.stdout else {}


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "walake.toml"
    path.write_text(text)
    return path


@pytest.fixture()
def lake(store, tmp_path) -> Path:
    lake = tmp_path / "lake"
    small = config_file(tmp_path, "[source]\npage_size = 9\n")
    extract(store, lake, "--config", str(small))
    return lake


def rows(lake: Path) -> list[tuple]:
    return sorted(lake_rows(lake, COLS))


def parquet_count(lake: Path) -> int:
    return len(list((lake / "messages").rglob("*.parquet")))


def lake_bytes(lake: Path) -> dict[str, bytes]:
    """Every file of the lake, decompressed: zstd JSON lines, Parquet values, the rest."""
    found = {}
    for path in lake.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.endswith(".zst"):
            data = zstandard.ZstdDecompressor().stream_reader(data).read()
        elif path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            data = frame.write_csv().encode() if frame.height else b""
        found[path.relative_to(lake).as_posix()] = data
    return found


def holding(lake: Path, needle: str) -> list[str]:
    return [name for name, data in lake_bytes(lake).items() if needle.encode() in data]


# Compaction


def test_compact_merges_files_and_keeps_every_row(lake):
    before, files_before = rows(lake), parquet_count(lake)
    assert files_before >= 4

    done = walake("compact", "--lake", str(lake), "--json")
    summary = json.loads(done.stdout)

    assert rows(lake) == before
    assert parquet_count(lake) == summary["files_after"] == 1
    assert summary["files_before"] == files_before
    batches = Manifest.load(lake).batches.values()
    assert all(b["compacted_into"] == b["files"]["messages"] for b in batches)
    assert all((lake / b["files"]["raw"]).exists() for b in batches)
    again = json.loads(walake("compact", "--lake", str(lake), "--json").stdout)
    assert again["files_written"] == 0 and rows(lake) == before


@pytest.mark.parametrize("point", ["compact_written", "compact_recorded",
                                   "manifest_temp_written"])
def test_kill_during_compaction_loses_nothing(lake, point):
    before = rows(lake)

    done = walake("compact", "--lake", str(lake), check=False,
                  env={"WALAKE_CRASH_AT": f"{point}:1"})

    assert done.returncode == -9
    assert rows(lake) == before  # readers see the old files or the new, whole
    walake("compact", "--lake", str(lake))
    assert rows(lake) == before
    assert parquet_count(lake) == 1  # leftovers of the killed run are gone


def test_extract_compacts_after_itself_with_compress_old_data(store, tmp_path):
    lake = tmp_path / "lake"
    config = config_file(tmp_path, "[resources]\ncompress_old_data = true\n")

    extract(store, lake, "--config", str(config))

    assert parquet_count(lake) == 1
    assert len(Manifest.load(lake).batches) >= 4


# Retention


def age_batches(lake: Path, days: int) -> None:
    manifest = Manifest.load(lake)
    old = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    for info in manifest.batches.values():
        info["created_at"] = old
    manifest.save()


def test_cleanup_waits_for_compaction_then_removes_old_raw(lake):
    age_batches(lake, 40)
    raw_files = list((lake / "raw").rglob("*.zst"))

    waiting = json.loads(walake("cleanup", "--lake", str(lake), "--json").stdout)
    assert waiting["batches"] == 0 and waiting["waiting_for_compaction"] == len(raw_files)
    assert all(p.exists() for p in raw_files)

    walake("compact", "--lake", str(lake))
    dry = walake("cleanup", "--lake", str(lake), "--dry-run", "--days", "30")
    assert f"would remove {len(raw_files)} raw batch files" in dry.stdout
    assert all(p.exists() for p in raw_files)

    before = rows(lake)
    walake("cleanup", "--lake", str(lake), "--days", "30")
    assert not any(p.exists() for p in raw_files)
    assert rows(lake) == before


def test_cleanup_keeps_recent_raw(lake):
    walake("compact", "--lake", str(lake))
    done = json.loads(walake("cleanup", "--lake", str(lake), "--json").stdout)
    assert done["batches"] == 0 and list((lake / "raw").rglob("*.zst"))


# Rebuild


@pytest.mark.parametrize("source", ["mcp-text", "mcp-json", "bridge"])
def test_rebuild_gives_back_the_same_rows(store, tmp_path, source):
    lake = tmp_path / "lake"
    if source == "bridge":
        extract(store, lake, "--source", "bridge")
    else:
        profile = "lharries" if source == "mcp-text" else "json"
        config = config_file(tmp_path, f"[source]\nprofile = \"{profile}\"\n"
                                       "page_size = 9\n")
        extract(store, lake, "--config", str(config))
    before = rows(lake)

    done = json.loads(walake("rebuild", "--lake", str(lake), *ZONE, "--json").stdout)

    assert done["skipped"] == {} and len(done["rebuilt"]) >= 4
    assert rows(lake) == before


def test_rebuild_reports_batches_whose_raw_was_cleaned_up(lake):
    walake("compact", "--lake", str(lake))
    age_batches(lake, 40)
    walake("cleanup", "--lake", str(lake))
    before = rows(lake)

    done = walake("rebuild", "--lake", str(lake), *ZONE, check=False)

    assert done.returncode == 1  # batches could not be rebuilt (not a dry run)
    assert "rebuilt 0 batches" in done.stdout or "can rebuild 0" in done.stdout
    assert "raw file cleaned up on" in done.stdout
    assert rows(lake) == before


def test_kill_during_rebuild_keeps_old_rows(lake):
    before = rows(lake)
    done = walake("rebuild", "--lake", str(lake), *ZONE, check=False,
                  env={"WALAKE_CRASH_AT": "rebuild_written:1"})
    assert done.returncode == -9
    assert rows(lake) == before


# Forget


def chat_of(lake: Path) -> str:
    return sorted({r[1] for r in rows(lake) if not r[1].endswith("@g.us")})[0]


def test_forget_chat_removes_every_trace(store, lake):
    chat = chat_of(lake)
    marker = f"{MARKER} {chat}"
    assert holding(lake, marker)
    total = len(rows(lake))
    in_chat = sum(1 for r in rows(lake) if r[1] == chat)

    done = json.loads(walake("forget", "--chat", chat, "--lake", str(lake),
                             "--json").stdout)

    assert done["rows"] == {"messages": in_chat}
    assert done["raw_records"] > 0 and done["cursors"] == 1
    assert not [r for r in rows(lake) if r[1] == chat]
    assert len(rows(lake)) == total - in_chat
    assert holding(lake, marker) == []
    assert holding(lake, chat) == []  # not even its id: the blocklist holds a hash

    # Later pulls skip it
    extract(store, lake)
    assert not [r for r in rows(lake) if r[1] == chat]
    assert holding(lake, marker) == []


def test_forget_allow_again_lets_the_chat_come_back(store, lake):
    chat = chat_of(lake)
    walake("forget", "--chat", chat, "--lake", str(lake), "--allow-again")
    assert not [r for r in rows(lake) if r[1] == chat]
    extract(store, lake)
    assert [r for r in rows(lake) if r[1] == chat]


def same_person(row: tuple, sender: str) -> bool:
    """The row is the sender's, in either form the bridge stores (bare, or JID)."""
    user = sender.split("@")[0]
    return sender in row[2:4] or bool(row[2]) and row[2].split("@")[0] == user


def test_forget_sender_everywhere(store, lake):
    manifest_rows = rows(lake)
    sender = next(r[2] for r in manifest_rows if r[2] and r[1].endswith("@g.us"))
    theirs = [r for r in manifest_rows if same_person(r, sender)]
    others = {r[4] for r in manifest_rows if not same_person(r, sender)}
    texts = [r[4] for r in theirs if r[4] and r[4] not in others]
    assert texts

    done = json.loads(walake("forget", "--sender", sender, "--lake", str(lake),
                             "--json").stdout)

    assert done["rows"]["messages"] == len(theirs)
    assert not [r for r in rows(lake) if same_person(r, sender)]
    for text in texts[:20]:
        assert holding(lake, text) == [], text
    extract(store, lake)
    assert not [r for r in rows(lake) if same_person(r, sender)]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])  # fast and reference parse
def test_forgotten_sender_stays_out_of_a_later_import(tmp_path, encoding):
    lines = ["05/01/2024, 09:41 - Ken Obi: send me the spec sheet",
             "15/01/2024, 12:00 - Rosa Pimm: done"]
    later = [*lines, "16/01/2024, 01:30 - Ken Obi: the new private plan",
             "16/01/2024, 01:31 - Rosa Pimm: ok"]
    export, lake = tmp_path / "WhatsApp Chat with Rosa Pimm.txt", tmp_path / "lake"
    export.write_text("\n".join(lines) + "\n", encoding=encoding)
    walake("import", str(export), "--lake", str(lake), "--tz", "UTC")
    walake("forget", "--sender", "Ken Obi", "--lake", str(lake))

    export.write_text("\n".join(later) + "\n", encoding=encoding)
    done = walake("import", str(export), "--lake", str(lake), "--tz", "UTC")

    assert "1 new" in done.stdout
    assert [r[4] for r in rows(lake)] == ["done", "ok"]
    assert holding(lake, "Ken Obi") == []
    assert holding(lake, "private plan") == []


def test_forget_after_compaction(lake):
    walake("compact", "--lake", str(lake))
    chat = chat_of(lake)
    walake("forget", "--chat", chat, "--lake", str(lake))
    assert holding(lake, f"{MARKER} {chat}") == []
    assert parquet_count(lake) == 1


@pytest.mark.parametrize("point", ["forget_written", "forget_recorded"])
def test_kill_during_forget_then_rerun_finishes_it(lake, point):
    chat = chat_of(lake)
    marker = f"{MARKER} {chat}"

    done = walake("forget", "--chat", chat, "--lake", str(lake), check=False,
                  env={"WALAKE_CRASH_AT": f"{point}:1"})

    assert done.returncode == -9
    gone = not [r for r in rows(lake) if r[1] == chat]
    assert gone == (point == "forget_recorded")  # the manifest save is the commit
    walake("forget", "--chat", chat, "--lake", str(lake))
    assert not [r for r in rows(lake) if r[1] == chat]
    assert holding(lake, marker) == []


def test_forget_unknown_chat_is_an_error(lake):
    done = walake("forget", "--chat", "nobody@s.whatsapp.net", "--lake", str(lake),
                  check=False)
    assert done.returncode == 1
    assert "Error: No chat 'nobody@s.whatsapp.net' in this lake." in done.stderr


# Performance, estimates, logs, manifest


def test_performance_reports_machine_and_lake(lake):
    report = json.loads(walake("performance", "--lake", str(lake), "--json").stdout)
    assert report["machine"]["cpus"] >= 1 and report["machine"]["disk_free"] > 0
    facts = report["lake"]
    assert facts["messages"] == len(rows(lake))
    assert facts["files"]["messages"] == parquet_count(lake)
    assert facts["bytes_per_message"]["raw"] > 0
    assert facts["extract_rate"] > 0


def test_estimate_from_measured_figures_or_defaults(lake, tmp_path):
    measured = json.loads(walake("config", "--estimate-resources", "--lake", str(lake),
                                 "--max-chats", "10", "--max-messages", "100",
                                 "--json").stdout)
    assert measured["basis"] == "measured" and measured["messages"] == 1000
    assert measured["disk_bytes"] > 0 and measured["seconds"] > 0

    empty = walake("config", "--estimate-resources", "--lake", str(tmp_path / "none"))
    assert ("basis: The lake is empty, so these figures use the documented defaults "
            "(see ingest/estimate.py).") in empty.stdout


def test_logs_go_to_a_private_file_in_the_lake(lake):
    walake("compact", "--lake", str(lake), "--log-level", "INFO")
    log = lake / "logs" / "walake.log"
    assert "compacted" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_manifest_v1_migrates(lake):
    data = json.loads((lake / "manifest.json").read_text())
    data["version"] = 1
    del data["blocklist"], data["next_file_seq"]
    (lake / "manifest.json").write_text(json.dumps(data))
    manifest = Manifest.load(lake)
    assert manifest.data["version"] == MANIFEST_VERSION == 2
    assert manifest.data["blocklist"] == {"chats": {}, "senders": {}}


# Regressions: forget must be exact, rebuild must never lose rows, zones are kept


def raw_records(lake: Path) -> dict[str, int]:
    """Raw records per chat, over every raw file the manifest lists."""
    from ingest.lake.rewrite import RAW_LAYER, files_by_layer, read_raw_lines

    manifest = Manifest.load(lake)
    found: dict[str, int] = {}
    for relative in files_by_layer(manifest, RAW_LAYER):
        for line in read_raw_lines(lake, relative):
            record = json.loads(line)
            chat = record.get("chat_id") or record.get("chat_jid")
            found[chat] = found.get(chat, 0) + 1
    return found


def snapshot(lake: Path) -> dict[str, bytes]:
    return {k: v for k, v in lake_bytes(lake).items()
            if not k.startswith("logs/") and k != ".lock"}


@pytest.mark.parametrize("args", [["--chat", "x"], ["--sender", "Ana"],
                                  ["--chat", "nobody@s.whatsapp.net"]])
def test_forget_unknown_changes_nothing(lake, args):
    before = snapshot(lake)

    done = walake("forget", *args, "--lake", str(lake), check=False)

    assert done.returncode == 1
    assert f"No {args[0][2:]} '{args[1]}' in this lake." in done.stderr
    assert "nothing was changed" in done.stderr
    if args[0] == "--chat":
        assert 'walake sql "select chat_id, chat_name from chats"' in done.stderr
    assert snapshot(lake) == before  # no raw record lost, nothing blocklisted


def test_forget_one_chat_keeps_the_other_chats_raw_records(lake):
    chat = chat_of(lake)
    records = raw_records(lake)
    assert len(records) >= 4 and records[chat] > 0
    before = rows(lake)

    done = json.loads(walake("forget", "--chat", chat, "--lake", str(lake),
                             "--json").stdout)

    assert done["raw_records"] == records[chat]
    assert raw_records(lake) == {c: n for c, n in records.items() if c != chat}
    assert not any(i.get("raw_redacted") for i in Manifest.load(lake).batches.values())
    plan = json.loads(walake("rebuild", "--lake", str(lake), "--dry-run",
                             "--json").stdout)
    assert plan["skipped"] == {}
    assert len(plan["rebuilt"]) == len(Manifest.load(lake).batches)
    walake("rebuild", "--lake", str(lake))
    assert rows(lake) == [r for r in before if r[1] != chat]


def test_forget_sender_of_a_bridge_lake_is_exact(store, tmp_path):
    lake = tmp_path / "lake"
    extract(store, lake, "--source", "bridge")
    everything = rows(lake)
    group = sorted({r[1] for r in everything if r[1].endswith("@g.us")})[0]
    marker = f"{MARKER} {group}"
    sender = next(r[2] for r in everything if r[4] == marker)
    records = raw_records(lake)
    assert holding(lake, marker)

    done = json.loads(walake("forget", "--sender", sender, "--lake", str(lake),
                             "--json").stdout)

    theirs = [r for r in everything if same_person(r, sender)]
    assert done["rows"]["messages"] == len(theirs)
    assert done["raw_records"] == len(theirs)  # one store row per raw line
    assert holding(lake, marker) == []
    after = raw_records(lake)
    for chat, n in records.items():
        assert after.get(chat, 0) == n - sum(1 for r in theirs if r[1] == chat)
    assert rows(lake) == [r for r in everything if not same_person(r, sender)]


def test_rebuild_never_loses_rows(lake):
    from ingest.lake.rewrite import write_raw_lines

    manifest = Manifest.load(lake)
    batch = sorted(manifest.batches)[0]
    write_raw_lines(lake, manifest.batches[batch]["files"]["raw"], [])  # emptied
    before = rows(lake)

    plan = walake("rebuild", "--lake", str(lake), "--dry-run", check=False)
    assert plan.returncode == 0
    assert f"{batch}: its raw records give 0 rows" in plan.stdout
    done = walake("rebuild", "--lake", str(lake), check=False)

    assert done.returncode == 1
    assert f"{batch}: its raw records give 0 rows" in done.stdout
    assert "would lose rows" in done.stdout
    assert rows(lake) == before
    assert Manifest.load(lake).batches[batch]["rows"] > 0


def test_rebuild_without_timezone_keeps_times(lake):
    assert Manifest.load(lake).data["zones"] == {"mcp:lharries": "Europe/London"}
    before = rows(lake)

    walake("rebuild", "--lake", str(lake), env={"TZ": "America/New_York"})

    assert rows(lake) == before


def test_a_different_zone_is_refused_until_the_lake_moves(store, lake, tmp_path):
    manifest = (lake / "manifest.json").read_bytes()
    other = ["--timezone", "America/New_York"]
    done = walake("extract", "--store", str(store), "--lake", str(lake), *other, *ALL,
                  "-q", check=False)
    assert done.returncode == 1
    assert "read with local times in Europe/London" in done.stderr
    assert "--timezone Europe/London" in done.stderr
    assert "walake rebuild --timezone America/New_York" in done.stderr
    assert (lake / "manifest.json").read_bytes() == manifest
    config = config_file(tmp_path, '[source]\ntimezone = "America/New_York"\n')
    done = walake("monitor", "--store", str(store), "--lake", str(lake), "--config",
                  str(config), "--duration", "0.05", "-q", check=False)
    assert done.returncode == 1 and "Europe/London" in done.stderr

    # No zone: the recorded one, whatever this machine's is
    walake("extract", "--store", str(store), "--lake", str(lake), *ALL, "-q",
           env={"TZ": "Asia/Tokyo"})
    assert Manifest.load(lake).data["zones"] == {"mcp:lharries": "Europe/London"}

    # Moving the lake: every row re-read in the new zone, then pulls use it
    before = rows(lake)
    walake("rebuild", "--lake", str(lake), *other)
    assert Manifest.load(lake).data["zones"] == {"mcp:lharries": "America/New_York"}
    moved = rows(lake)
    assert len(moved) == len(before) and moved != before
    walake("extract", "--store", str(store), "--lake", str(lake), *other, *ALL, "-q")
    assert len(rows(lake)) == len(before)


def test_manifest_without_zones_loads(lake):
    data = json.loads((lake / "manifest.json").read_text())
    del data["zones"]
    (lake / "manifest.json").write_text(json.dumps(data))
    manifest = Manifest.load(lake)
    assert manifest.data["zones"] == {} and manifest.zone("mcp:lharries") is None


def test_forgetting_an_imported_chat_leaves_no_trace_of_its_name(tmp_path):
    export, lake = tmp_path / "WhatsApp Chat with Angel Syndicate.txt", tmp_path / "lake"
    export.write_text("05/01/2024, 09:41 - Ken Obi: the deck is ready\n"
                      "15/01/2024, 12:00 - Rosa Pimm: thanks\n", encoding="utf-8")
    walake("import", str(export), "--lake", str(lake), "--tz", "UTC")

    walake("forget", "--chat", "Angel Syndicate", "--lake", str(lake))

    assert rows(lake) == []
    assert holding(lake, "Angel Syndicate") == []
    assert holding(lake, "angel syndicate") == []
