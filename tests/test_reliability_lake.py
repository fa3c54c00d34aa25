"""Storage faults, concurrency, hostile input and privacy of the lake.

Disk full is simulated in a child process that patches the lake's file writes to
raise ENOSPC (no tmpfs mount needed); damaged files are made by truncating them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from lakecheck import ROOT, lake_counts, store_counts, walake

from ingest.demo.store import generate_store
from ingest.lake.writer import warn_if_not_private
from ingest.monitor_panels import feed_markdown
from ingest.views import connect, view_names

ZONE = ["--timezone", "Europe/London"]
ALL = ["--max-chats", "1000", "--max-messages", "1000000"]
MARK = "quokka-zebra-5521"
HOSTILE = [
    f"{MARK} '); drop table messages; --",
    f"{MARK} <script>alert('x')</script> <img src=x onerror=alert(1)>",
    f"{MARK} bell\x07 esc\x1b[31m nul-free ctrl\x01\x02 tab\t cr\r end",
    f"{MARK} " + "long " * 200_000,  # a 1 MB message
    f"{MARK} ﷽ 🇧🇷 \u202egnp.exe mixed RTL",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "messages.db"
    generate_store(path, chats=3, messages_per_chat=60, seed=31)
    con = sqlite3.connect(path)
    names = [d[0] for d in con.execute("select * from messages").description]
    base = list(con.execute("select * from messages where chat_jid != 'status@broadcast' "
                            "and is_from_me = 0 order by timestamp limit 1").fetchone())
    for i, text in enumerate(HOSTILE):
        row = list(base)
        row[names.index("id")] = f"HOSTILE{i}"
        row[names.index("content")] = text
        con.execute(f"insert into messages values ({','.join('?' * len(row))})", row)
    con.commit()
    con.close()
    return path


def extract(store: Path, lake: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    return walake("extract", "--store", str(store), "--lake", str(lake), *ZONE, *ALL,
                  "--batch-size", "1", "--json", "-q", *extra, **kw)


def patched(lake: Path, store: Path, patch: str) -> subprocess.CompletedProcess:
    """`walake extract` in a child whose lake writes are patched by `patch`."""
    code = (
        "import errno, sys\n"
        "from ingest.lake import files, manifest, writer\n"
        "def full(*a, **k):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        f"{patch}\n"
        "from ingest.cli import main\n"
        f"sys.argv = ['walake', 'extract', '--store', {str(store)!r}, '--lake', "
        f"{str(lake)!r}, '--timezone', 'Europe/London', '--max-chats', '1000', "
        "'--max-messages', '1000000', '--batch-size', '1', '-q']\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=180)


# Storage faults


@pytest.mark.parametrize("where,patch", [
    ("batch", "n = [0]\n"
              "real = writer.LakeWriter._write_parquet\n"
              "def some(self, *a):\n"
              "    n[0] += 1\n"
              "    return full() if n[0] == 2 else real(self, *a)\n"
              "writer.LakeWriter._write_parquet = some"),
    ("manifest", "n = [0]\n"
                 "real = manifest.write_bytes_atomic\n"
                 "def some(*a):\n"
                 "    n[0] += 1\n"
                 "    return full() if n[0] == 3 else real(*a)\n"
                 "manifest.write_bytes_atomic = some"),
])
def test_disk_full_is_reported_and_a_rerun_completes(store, tmp_path, where, patch):
    lake = tmp_path / "lake"
    done = patched(lake, store, patch)

    assert done.returncode == 1, done.stderr
    assert "No space left on device" in done.stderr
    assert "Traceback" not in done.stderr
    assert MARK not in done.stderr
    lake_counts(lake)  # what landed is whole and once
    extract(store, lake)
    assert lake_counts(lake) == store_counts(store)


def test_corrupt_manifest_is_refused_with_what_to_do_then_bak_restores(store, tmp_path):
    lake = tmp_path / "lake"
    extract(store, lake)
    manifest = lake / "manifest.json"
    manifest.write_text(manifest.read_text()[:200])  # truncated

    done = extract(store, lake, check=False)
    assert done.returncode == 1
    assert "cannot be read" in done.stderr and f"cp {manifest}.bak {manifest}" in done.stderr
    (lake / "manifest.json.bak").replace(manifest)
    extract(store, lake)
    assert lake_counts(lake) == store_counts(store)


@pytest.mark.parametrize("backup", [True, False])
def test_missing_manifest_is_refused_and_no_batch_file_is_removed(store, tmp_path,
                                                                  backup):
    lake = tmp_path / "lake"
    extract(store, lake)
    extract(store, lake)  # a second save leaves manifest.json.bak
    before = sorted(p for p in lake.rglob("*") if p.is_file() and "logs" not in p.parts)
    (lake / "manifest.json").unlink()
    if not backup:
        (lake / "manifest.json.bak").unlink()
        before.remove(lake / "manifest.json.bak")
    before.remove(lake / "manifest.json")

    for args in (["sql", "select count(*) from messages", "--lake", str(lake)],
                 ["compact", "--lake", str(lake)]):
        done = walake(*args, check=False)
        assert done.returncode == 1, done.stdout
        assert "manifest" in done.stderr and "is missing" in done.stderr
        assert ("cp " in done.stderr) == backup
    done = extract(store, lake, check=False)
    assert done.returncode == 1 and "is missing" in done.stderr
    after = sorted(p for p in lake.rglob("*") if p.is_file() and "logs" not in p.parts)
    assert [p for p in before if p not in after] == []

    if backup:  # the copy is of the last save: every batch is still listed
        (lake / "manifest.json.bak").replace(lake / "manifest.json")
        assert lake_counts(lake) == store_counts(store)
        extract(store, lake)
        after = sorted(p for p in lake.rglob("*")
                       if p.is_file() and "logs" not in p.parts)
        assert [p for p in before if p not in after] == []
        assert lake_counts(lake) == store_counts(store)


def test_a_new_lake_gets_its_manifest_before_any_batch(store, tmp_path):
    lake = tmp_path / "lake"
    crashed = extract(store, lake, env={"WALAKE_CRASH_AT": "raw_written:1"},
                      check=False)
    assert crashed.returncode != 0
    assert json.loads((lake / "manifest.json").read_text())["batches"] == {}
    extract(store, lake)  # the unrecorded file is a leftover, removed; all lands
    assert lake_counts(lake) == store_counts(store)


def test_damaged_batch_file_is_detected_and_rebuilt_from_raw(store, tmp_path):
    lake = tmp_path / "lake"
    extract(store, lake)
    victim = sorted((lake / "messages").rglob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:100])

    done = walake("sql", "select count(*) from messages", "--lake", str(lake), check=False)
    assert done.returncode == 1
    assert "damaged batch file" in done.stderr and "walake rebuild" in done.stderr
    assert "Traceback" not in done.stderr
    walake("rebuild", "--lake", str(lake), *ZONE)
    assert lake_counts(lake) == store_counts(store)


# Concurrency


def test_readers_during_extract_never_see_a_partial_batch(store, tmp_path):
    lake = tmp_path / "lake"
    errors, counts = [], []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            if not (lake / "manifest.json").exists():
                continue
            try:
                con = connect(lake, threads=1)
                n, distinct = con.execute("select count(*), count(distinct message_key) "
                                          "from messages").fetchone()
                con.execute("select count(*) from opportunities").fetchone()
                con.close()
                counts.append(n)
                assert n == distinct
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        extract(store, lake, "--config", str(_small_pages(tmp_path)))
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert counts and counts == sorted(counts)  # only ever whole batches, growing
    assert lake_counts(lake) == store_counts(store)


def test_compact_while_monitor_runs_is_refused_and_safe(store, tmp_path):
    lake = tmp_path / "lake"
    extract(store, lake)
    monitor = subprocess.Popen(
        [sys.executable, "-m", "ingest", "monitor", "--store", str(store), "--lake",
         str(lake), *ZONE, "--interval", "0.5", "--duration", "30", "--json", "-q"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert monitor.stdout is not None
        for line in monitor.stdout:  # wait for the first tick
            if json.loads(line).get("event") == "tick" or '"tick"' in line:
                break
        done = walake("compact", "--lake", str(lake), check=False)
        assert done.returncode == 1
        assert "being written by another walake process" in done.stderr
    finally:
        monitor.terminate()
        monitor.wait(timeout=30)
    walake("compact", "--lake", str(lake))
    assert lake_counts(lake) == store_counts(store)


def _small_pages(tmp_path: Path) -> Path:
    path = tmp_path / "walake.toml"
    path.write_text("[source]\npage_size = 15\n[extraction]\nchat_delay_seconds = 0\n"
                    "message_delay_seconds = 0\n")
    return path


# Hostile input and privacy


def test_hostile_messages_land_as_text_and_views_work(store, tmp_path):
    lake = tmp_path / "lake"
    extract(store, lake)
    con = connect(lake, threads=1)
    texts = {r[0] for r in con.execute("select text from messages where text like ?",
                                       [f"{MARK}%"]).fetchall()}
    for name in view_names():
        con.execute(f"select count(*) from {name}").fetchone()
    assert texts == set(HOSTILE)  # byte for byte, control characters included


def test_notebook_feed_shows_markup_as_text():
    from datetime import datetime

    import polars as pl

    feed = pl.DataFrame({
        "sent_at_local": [datetime(2025, 1, 1, 9)], "chat_name": ["<b>chat</b>"],
        "sender_name": ["*x*"], "score": [3.0], "categories": [["urgent"]],
        "excerpt": ["<script>alert(1)</script> [link](javascript:alert(1))"],
    })
    text = feed_markdown(feed)
    assert "<script>" not in text and "\\<script\\>" in text
    assert "\\[link\\]" in text  # not a link


def test_lake_readable_by_others_is_warned_about(tmp_path, caplog):
    lake = tmp_path / "lake"
    lake.mkdir(mode=0o755)
    os.chmod(lake, 0o755)
    warning = warn_if_not_private(lake)
    assert warning and "chmod 700" in warning
    os.chmod(lake, 0o700)
    assert warn_if_not_private(lake) is None


def test_full_run_logs_no_message_text_and_files_are_private(store, tmp_path):
    lake = tmp_path / "lake"
    config = tmp_path / "walake.toml"
    config.write_text('[resources]\nlog_level = "INFO"\n')
    extract(store, lake)  # the lake exists, so the next runs log into it too
    runs = [
        extract(store, lake, "--config", str(config), env={
            "WALAKE_DEMO_FAULTS": "garbage_on_call=4,truncate_on_call=6"}),
        walake("monitor", "--store", str(store), "--lake", str(lake), *ZONE,
               "--interval", "0.5", "--duration", "0.05", "-q", "--config", str(config)),
        walake("report", "--lake", str(lake)),
        walake("compact", "--lake", str(lake), "--log-level", "INFO"),
    ]
    logged = "".join(p.read_text(errors="replace") for p in (lake / "logs").iterdir())
    logged += "".join(r.stderr for r in runs)
    assert logged.strip()  # something was logged
    assert MARK not in logged
    for path in [lake, *lake.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_the_manifest_copy_lists_the_newest_batch(tmp_path):
    lake, export = tmp_path / "lake", tmp_path / "WhatsApp Chat with Vera Kos.txt"
    export.write_text("29/12/2021, 16:45 - Vera Kos: first\n"
                      "29/12/2021, 16:46 - Vera Kos: second\n", encoding="utf-8")
    walake("import", str(export), "--lake", str(lake), "--tz", "UTC")
    batches = sorted((lake / "messages").rglob("*.parquet"))

    (lake / "manifest.json").unlink()
    (lake / "manifest.json.bak").replace(lake / "manifest.json")
    again = walake("import", str(export), "--lake", str(lake), "--tz", "UTC")

    assert "already imported" in again.stdout
    assert sorted((lake / "messages").rglob("*.parquet")) == batches
    assert sum(lake_counts(lake).values()) == 2
