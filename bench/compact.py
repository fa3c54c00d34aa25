"""Compaction of many small batches: time, Parquet files before/after, view query time.

    .venv/bin/python bench/compact.py --batches 1000 --rows 50 --lake /tmp/bench-lake
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest.lake.compact import compact_lake
from ingest.lake.writer import LakeWriter, PendingBatch
import duckdb

from ingest.views import LAKE_TABLES, committed_files, lake_table_sql

# The base relation every walake view reads (the scoring views on top are being
# reworked elsewhere; their cost above this scan does not depend on file count).
QUERIES = {
    "count": "select count(*), count(distinct chat_id) from lake_messages",
    "per_chat_day": "select chat_id, sent_at::date, count(*) from lake_messages "
                    "group by all",
    "text_search": "select count(*) from lake_messages where regexp_matches(text, "
                   "'(?i)\\bpython\\b')",
}


def connect(lake: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    table = LAKE_TABLES[0]
    con.execute(lake_table_sql(table, committed_files(lake, table.layer)))
    return con


def fill(lake: Path, batches: int, rows: int) -> None:
    start = datetime(2026, 1, 1)
    n = 0
    with LakeWriter(lake) as writer:
        for b in range(batches):
            chat = f"4477009{b % 40:05d}@s.whatsapp.net"
            pending = PendingBatch(source="mcp")
            for _ in range(rows):
                local = start + timedelta(seconds=n * 37)
                pending.rows.append({
                    "message_key": f"{n:032x}", "source": "mcp", "chat_id": chat,
                    "chat_name": f"Chat {b % 40}", "is_group": False,
                    "sender_id": chat, "sender_name": "Someone", "is_from_me": n % 3 == 0,
                    "sent_at": local.replace(tzinfo=UTC), "sent_at_local": local,
                    "utc_offset_minutes": 0, "text": f"message {n} about a python job",
                    "is_system": False,
                })
                n += 1
            pending.raw.append({"chat_id": chat, "texts": ["..."]})
            pending.chats[chat] = (f"Chat {b % 40}", False)
            writer.commit(pending)


def time_queries(lake: Path, repeat: int = 3) -> dict[str, float]:
    timings = {}
    started = time.perf_counter()
    con = connect(lake)
    timings["connect"] = time.perf_counter() - started
    for name, sql in QUERIES.items():
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            con.sql(sql).fetchall()
            best = min(best, time.perf_counter() - t)
        timings[name] = best
    con.close()
    return {k: round(v, 4) for k, v in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--lake", type=Path, default=Path("/tmp/walake-bench-compact"))
    args = parser.parse_args()
    shutil.rmtree(args.lake, ignore_errors=True)

    t = time.perf_counter()
    fill(args.lake, args.batches, args.rows)
    fill_seconds = time.perf_counter() - t
    parquet = lambda: len(list((args.lake / "messages").rglob("*.parquet")))  # noqa: E731
    before_files = parquet()
    before = time_queries(args.lake)

    with LakeWriter(args.lake) as writer:
        t = time.perf_counter()
        summary = compact_lake(writer)
        seconds = time.perf_counter() - t
    after = time_queries(args.lake)
    print(json.dumps({
        "batches": args.batches, "rows_per_batch": args.rows,
        "fill_seconds": round(fill_seconds, 2),
        "compact_seconds": round(seconds, 2),
        "files_before": before_files, "files_after": parquet(),
        "bytes_before": summary.bytes_before, "bytes_after": summary.bytes_after,
        "query_seconds_before": before, "query_seconds_after": after,
    }, indent=2))


if __name__ == "__main__":
    main()
