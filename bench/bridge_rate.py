"""Benchmark the bridge source: messages/s into the lake straight from the store.

Measures, on generated stores with the bridge's exact schema:
- `walake extract --source bridge` on a ~1,000,000-message store (100 chats x
  10,100): messages/s, wall time, peak RSS of the walake process;
- the same on a 100,000-message store (100 x 1,000);
- with --memory-series, stores of 10, 100, 200 and 500 chats of 10,100 messages
  (0.1M, 1M, 2M, 5M), to show that peak memory does not grow with the store; every run
  also reports its RSS at 25/50/75/100% of its time (a plateau, not a slope);
- the MCP path (`walake extract --store`, built-in lharries server over stdio) on
  that 100k store only (a 1M MCP pull takes minutes), and the bridge/MCP ratio on
  the same 100k store and against the 1M bridge rate.

Usage: python bench/bridge_rate.py [--out bench/out] [--skip-mcp] [--memory-series]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = (
    "import sys\n"
    "from bench.rss import RssTrace, peak_rss_mb\n"
    "trace = RssTrace()\n"
    "sys.argv = ['walake', 'extract', *sys.argv[1:]]\n"
    "from ingest.cli import main\n"
    "try:\n main()\nexcept SystemExit:\n pass\n"
    "print('RSS_KB', int(peak_rss_mb() * 1024), file=sys.stderr)\n"
    "print('RSS_TRACE', *trace.quartiles(), file=sys.stderr)"
)


def ensure_store(out: Path, chats: int, per_chat: int) -> Path:
    from ingest.demo.store import generate_store

    store = out / f"store-{chats}x{per_chat}.db"
    if not store.exists():
        generate_store(store, chats=chats, messages_per_chat=per_chat, tz="Europe/London")
    return store


def extract(store: Path, lake: Path, *extra: str) -> dict:
    """One `walake extract` in a child process; its own peak RSS is measured there."""
    shutil.rmtree(lake, ignore_errors=True)
    args = ["--store", str(store), "--lake", str(lake), "--timezone", "Europe/London",
            "--max-chats", "1000000", "--max-messages", "100000000", "--json", "-q",
            *extra]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True,
                          text=True, cwd=ROOT)
    if not done.stdout.strip():
        raise SystemExit(f"walake extract failed:\n{done.stderr}")
    wall = time.perf_counter() - started
    summary = json.loads(done.stdout)
    rss_kb = int(done.stderr.rsplit("RSS_KB", 1)[1].split()[0])
    trace = done.stderr.rsplit("RSS_TRACE", 1)[1].splitlines()[0].split()
    return {
        "messages": summary["messages"],
        "extract_seconds": round(summary["seconds"], 2),
        "process_wall_seconds": round(wall, 2),
        "messages_per_second": round(summary["messages_per_second"]),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "rss_mb_at_25_50_75_100_percent": [float(mb) for mb in trace],
        "batches": summary["batches"],
        "raw_bytes_per_message": round(summary["raw_bytes"] / summary["messages"], 1),
        "parquet_bytes_per_message": round(
            summary["parquet_bytes"] / summary["messages"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--skip-mcp", action="store_true")
    parser.add_argument(
        "--memory-series", action="store_true",
        help="also pull 10, 100, 200 and 500 chats of 10,100 messages (0.1M to 5M) to "
             "show peak memory does not grow with the store")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    big = ensure_store(args.out, 100, 10_100)
    small = ensure_store(args.out, 100, 1_000)
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "load_average_1m": os.getloadavg()[0]},
        "store_1m": {"path": big.name, "mb": round(big.stat().st_size / 2**20)},
    }
    result["bridge_1m"] = extract(big, args.out / "lake-bridge-1m", "--source", "bridge")
    result["bridge_100k"] = extract(small, args.out / "lake-bridge-100k",
                                    "--source", "bridge")
    if not args.skip_mcp:
        mcp = extract(small, args.out / "lake-mcp-100k", "--source", "mcp")
        result["mcp_100k"] = mcp
        result["ratio_bridge_to_mcp_same_100k_store"] = round(
            result["bridge_100k"]["messages_per_second"] / mcp["messages_per_second"], 1)
        result["ratio_bridge_1m_to_mcp_100k"] = round(
            result["bridge_1m"]["messages_per_second"] / mcp["messages_per_second"], 1)
    if args.memory_series:
        for chats in (10, 100, 200, 500):
            store = ensure_store(args.out, chats, 10_100)
            lake = args.out / f"lake-bridge-{chats}x10100"
            result[f"bridge_{chats}x10100"] = extract(store, lake, "--source", "bridge")
    result["machine"]["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
