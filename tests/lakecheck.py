"""Helpers for tests: what a bridge store holds and what a lake holds, per chat."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
from click.testing import CliRunner

from ingest.cli import cli
from ingest.lake.manifest import Manifest

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def no_traceback(result: object) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception


def store_counts(store: Path, include_status: bool = False) -> dict[str, int]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
        rows = con.execute("select chat_jid, count(*) from messages group by 1").fetchall()
    return {j: n for j, n in rows if include_status or j != "status@broadcast"}


def lake_rows(lake: Path, columns: str = "chat_id, message_key") -> list[tuple]:
    files = [str(p) for p in Manifest.load(lake).parquet_files()]
    if not files:
        return []
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    return con.execute(f"select {columns} from read_parquet(?)", [files]).fetchall()


def lake_counts(lake: Path) -> dict[str, int]:
    """Distinct messages per chat, and asserts no key is stored twice."""
    rows = lake_rows(lake)
    keys = [k for _, k in rows]
    assert len(keys) == len(set(keys)), "a message is stored twice"
    counts: dict[str, int] = {}
    for chat, _ in rows:
        counts[chat] = counts.get(chat, 0) + 1
    return counts


def walake(*args: str, env: dict | None = None, check: bool = True,
           timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the real command line in a child process."""
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"walake {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_url(url: str, timeout: float) -> str:
    """The body at `url` once it answers; raises after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


LOCKER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("COMMIT")
"""


def lock_store(store: Path, seconds: float) -> subprocess.Popen:
    """Another process holds an exclusive lock on `store` for `seconds`."""
    holder = subprocess.Popen([sys.executable, "-c", LOCKER, str(store), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def insert_late(store: Path, chat: str, before_newest: int, text: str, mid: str,
                stamp: str | None = None) -> None:
    """A row written now whose time lies inside what the lake already holds (a late
    delivery), at the chat's `before_newest`-th newest time, or at `stamp`."""
    with sqlite3.connect(store) as con:
        stamps = [t for (t,) in con.execute(
            "select timestamp from messages where chat_jid = ? order by timestamp desc",
            (chat,))]
        row = con.execute("select sender, is_from_me from messages where chat_jid = ? "
                          "limit 1", (chat,)).fetchone()
        con.execute("insert into messages (id, chat_jid, sender, content, timestamp, "
                    "is_from_me, media_type) values (?, ?, ?, ?, ?, ?, '')",
                    (mid, chat, row[0], text, stamp or stamps[before_newest], row[1]))
