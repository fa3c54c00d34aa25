"""Per-chat message counts: a bridge store vs a lake (distinct message keys).

Usage: python bench/compare_store_lake.py STORE LAKE [--include-status]
Exits 1 when any chat differs. Used for the proof against the real server.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.lake.manifest import Manifest  # noqa: E402


def store_counts(store: Path, include_status: bool) -> dict[str, int]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
        rows = con.execute("select chat_jid, count(*) from messages group by 1").fetchall()
    return {j: n for j, n in rows if include_status or j != "status@broadcast"}


def lake_counts(lake: Path) -> dict[str, int]:
    files = [str(p) for p in Manifest.load(lake).parquet_files()]
    if not files:
        return {}
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    rows = con.execute(
        "select chat_id, count(distinct message_key) from read_parquet(?) group by 1",
        [files],
    ).fetchall()
    return dict(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("lake", type=Path)
    parser.add_argument("--include-status", action="store_true")
    args = parser.parse_args()
    store = store_counts(args.store, args.include_status)
    lake = lake_counts(args.lake)
    differ = 0
    for jid in sorted(set(store) | set(lake)):
        a, b = store.get(jid, 0), lake.get(jid, 0)
        differ += a != b
        print(f"{jid:45} store {a:>8,} lake {b:>8,} {'OK' if a == b else 'DIFF'}")
    print(f"chats {len(store)}, store {sum(store.values()):,}, lake "
          f"{sum(lake.values()):,}, chats differing: {differ}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
