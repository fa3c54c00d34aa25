"""End to end: `walake monitor` against the demo server while another process writes.

The writer inserts messages the way the live bridge does (chat row, then message,
each its own transaction), with fixed texts so that which ones are over the
threshold is known in advance. Run as a script, this file is that writer.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from lakecheck import ROOT, lake_counts, store_counts

from ingest.demo.store import INSERT_CHAT, INSERT_MESSAGE, LocalClock, generate_store
from ingest.lake.manifest import Manifest
from ingest.schema import message_key
from ingest.views import connect

pytestmark = pytest.mark.slow
ZONE = "Europe/London"
INTERVAL = 1.0
HOT = "urgent: we are looking for investment, can you call asap? ({n})"  # score 7
COLD = "see you at lunch tomorrow, bring the photos ({n})"  # score 0
SENDER = "447700900777"


def append_live(store: Path, count: int, pause: float) -> None:
    """Insert `count` messages, alternately hot and cold, over the store's chats.

    Prints one JSON line per message once its transaction has committed.
    """
    clock = LocalClock(ZONE)
    con = sqlite3.connect(store, timeout=10, isolation_level=None)
    chats = con.execute(
        "select jid, name from chats where jid != 'status@broadcast' order by jid"
    ).fetchall()
    for n in range(count):
        jid, name = chats[n % len(chats)]
        text = (HOT if n % 2 == 0 else COLD).format(n=n)
        stamp = clock.text(int(time.time()))
        con.execute(INSERT_CHAT, (jid, name, stamp))
        con.execute(INSERT_MESSAGE, (f"3EB0LIVE{n:014d}", jid, SENDER, text, stamp, 0,
                                     "", "", "", None, None, None, 0))
        print(json.dumps({"chat": jid, "text": text, "stamp": stamp,
                          "hot": n % 2 == 0, "at": time.time()}), flush=True)
        time.sleep(pause)
    con.close()


def expected_key(added: dict) -> str:
    local = datetime.fromisoformat(added["stamp"][:19])
    return message_key(added["chat"], local, added["text"], 0)


class Monitor:
    """`walake monitor --json` in a child process; its events, read as they come."""

    def __init__(self, store: Path, lake: Path, *extra: str) -> None:
        command = [
            sys.executable, "-m", "ingest", "monitor", "--store", str(store),
            "--lake", str(lake), "--timezone", ZONE, "--interval", str(INTERVAL),
            "--max-messages", "100000", "--json", *extra,
        ]
        self.process = subprocess.Popen(command, cwd=ROOT, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.events: list[dict] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            event = json.loads(line)
            event["received_at"] = time.time()
            self.events.append(event)

    def of(self, kind: str) -> list[dict]:
        return [e for e in list(self.events) if e["event"] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {kind} event: {self.process.stderr.read()}")
            time.sleep(0.05)

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        self.reader.join(timeout=5)
        err = self.process.stderr.read()
        assert self.process.returncode == 0, err
        return err


def test_monitor_lands_every_message_once_and_alerts_each_hot_one(tmp_path):
    store, lake = tmp_path / "messages.db", tmp_path / "lake"
    generate_store(store, chats=6, messages_per_chat=120, seed=5)

    # The first tick pulls the history, which raises no alert
    monitor = Monitor(store, lake)
    monitor.wait_for("tick")
    assert monitor.of("alert") == []

    writer = subprocess.run(
        [sys.executable, __file__, str(store), "12", "0.4"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    added = [json.loads(line) for line in writer.stdout.splitlines()]
    hot = {expected_key(a): a for a in added if a["hot"]}
    monitor.wait_for("tick", len(monitor.of("tick")) + 2)  # two after the last write
    monitor.stop()

    # Every added message landed once, each hot one gave exactly one alert in time
    assert lake_counts(lake) == store_counts(store)
    alerts = monitor.of("alert")
    assert sorted(a["message_key"] for a in alerts) == sorted(hot)
    for alert in alerts:
        written = hot[alert["message_key"]]["at"]
        alerted = datetime.fromisoformat(alert["alerted_at"]).timestamp()
        assert alerted - written <= INTERVAL + 2, alert
        assert alert["score"] >= 2 and "urgent" in alert["categories"]
        assert alert["excerpt"].startswith("urgent: we are looking for investment")

    # The alerts table holds them once; the session's statistics are in the lake
    con = connect(lake)
    keys = [k for (k,) in con.sql("select message_key from alerts").fetchall()]
    assert sorted(keys) == sorted(hot)
    run = [r for r in Manifest.load(lake).runs if r["command"] == "monitor"][-1]
    assert run["status"] == "stopped" and run["alerts"] == len(hot)
    assert run["messages"] == sum(store_counts(store).values())
    assert run["ticks"] >= 3 and run["ticks_failed"] == 0
    assert 0 <= run["lag_seconds_max"] <= INTERVAL + 2

    # A restarted monitor finds nothing new and alerts nothing again
    again = Monitor(store, lake)
    again.wait_for("tick", 2)
    again.stop()
    assert again.of("alert") == []
    assert again.of("summary")[0]["messages"] == 0
    assert connect(lake).sql("select count(*) from alerts").fetchall()[0][0] == len(hot)


if __name__ == "__main__":
    append_live(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
