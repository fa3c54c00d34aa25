"""Benchmark the extract path: walake vs a bare MCP paging loop on the same store.

Measures, on generated bridge stores served by the built-in server over stdio:
- messages/s of `walake extract` (1 and 2 server processes) and of a bare loop that
  only lists chats and pages list_messages (no decoding, no lake), and their ratio;
- peak RSS of the walake process (the server processes are separate);
- bytes per message of the raw (.jsonl.zst) and Parquet layers.

Usage: python bench/extract_rate.py [--sizes 50x2000,100x10000] [--rounds N]
       python bench/extract_rate.py --store STORE --server PYTHON MAIN_PY [--rounds N]
The second form measures an external lharries/whatsapp-mcp server (its python and its
main.py) that serves STORE (copy STORE to its whatsapp-bridge/store/messages.db first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.compare_store_lake import store_counts  # noqa: E402
from bench.rss import peak_rss_mb  # noqa: E402
from ingest.sources.factory import demo_server_command  # noqa: E402
from ingest.sources.mcp_client import ServerCommand  # noqa: E402


async def bare_loop(cmd: ServerCommand, page: int = 5000) -> tuple[int, float]:
    """The least a client can do: list chats, page every chat's messages.

    Records are not parsed; a page shorter than the limit ends a chat (a page is
    counted full when it holds `page` headers, which pasted lines can only inflate).
    """
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=cmd.command, args=list(cmd.args))
    started = time.perf_counter()
    records = 0
    with open("/dev/null", "w") as devnull:
        transport = stdio_client(params, errlog=devnull)
        async with Client(transport, mode="legacy") as client:
            chats = await client.call_tool("list_chats", {"limit": -1})
            jids = {json.loads(b.text)["jid"] for b in chats.content}
            jids.discard("status@broadcast")
            for jid in jids:
                number = 0
                while True:
                    result = await client.call_tool("list_messages", {
                        "chat_jid": jid, "limit": page, "page": number,
                        "include_context": False,
                    })
                    text = result.content[0].text if result.content else ""
                    got = text.count("\n[") + 1 if text.startswith("[") else 0
                    records += got
                    if got < page:
                        break
                    number += 1
    return records, time.perf_counter() - started


def walake_extract(where: list[str], lake: Path, concurrency: int) -> dict:
    """Run the real command in a child process; its RSS is measured there."""
    code = (
        "import resource, sys, json, runpy;"
        "sys.argv=['walake','extract',*sys.argv[3:],'--lake',sys.argv[1],"
        "'--max-chats','1000000','--max-messages','100000000','--timezone',"
        "'Europe/London','--concurrency',sys.argv[2],'--json','-q'];"
        "from ingest.cli import main\n"
        "try:\n main()\nexcept SystemExit:\n pass\n"
        "from bench.rss import peak_rss_mb\n"
        "print('RSS_KB', int(peak_rss_mb() * 1024), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(lake), str(concurrency), *where],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    summary = json.loads(done.stdout)
    rss_kb = int(done.stderr.rsplit("RSS_KB", 1)[1].split()[0])
    summary["peak_rss_mb"] = round(rss_kb / 1024, 1)
    return summary


def layer_bytes(lake: Path) -> dict[str, int]:
    return {
        layer: sum(p.stat().st_size for p in (lake / layer).rglob("*") if p.is_file())
        for layer in ("raw", "messages")
    }


def external_config(out: Path, python: str, main: str) -> Path:
    config = out / "external-server.toml"
    config.write_text(
        f'[source]\nprofile = "lharries"\ncommand = "{python}"\nargs = ["{main}"]\n'
        "[extraction]\nchat_delay_seconds = 0.0\nmessage_delay_seconds = 0.0\n"
    )
    return config


def bench_store(store: Path, out: Path, server: list[str] | None, rounds: int) -> dict:
    """Bare loop, then walake with 1 and 2 server processes, on one store.

    With several rounds the three runs alternate (bare, 1, 2, bare, ...), so a
    machine whose load moves affects each alike; medians are reported.
    """
    if server:
        cmd = ServerCommand(server[0], (server[1],))
        where = ["--config", str(external_config(out, *server))]
    else:
        cmd = demo_server_command(store)
        where = ["--store", str(store)]
    records = sum(store_counts(store, include_status=False).values())
    runs: list[dict] = []
    for number in range(rounds):
        runs.append(one_round(number, cmd, where, store, out))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    bare = statistics.median(r["bare_seconds"] for r in runs)
    result: dict = {"store": store.name, "server": cmd.describe(), "rounds": rounds,
                    "load_average": [r["load"] for r in runs],
                    "bare_loop": {"messages": records, "seconds": round(bare, 2),
                                  "messages_per_second": round(records / bare)}}
    for concurrency in (1, 2):
        mine = [r[f"walake_{concurrency}"] for r in runs]
        seconds = statistics.median(m["seconds"] for m in mine)
        messages = mine[0]["messages"]
        result[f"walake_{concurrency}_server"] = {
            "messages": messages,
            "seconds": round(seconds, 2),
            "messages_per_second": round(messages / seconds),
            "ratio_to_bare": round(bare / seconds * messages / records, 2),
            "ratio_per_round": [round(r["bare_seconds"] / m["seconds"], 2)
                                for r, m in zip(runs, mine, strict=True)],
            "peak_rss_mb": max(m["peak_rss_mb"] for m in mine),
            "raw_bytes_per_message": mine[0]["raw_bytes_per_message"],
            "parquet_bytes_per_message": mine[0]["parquet_bytes_per_message"],
        }
    return result


def one_round(number: int, cmd: ServerCommand, where: list[str], store: Path,
              out: Path) -> dict:
    found: dict = {"round": number, "load": round(os.getloadavg()[0], 2)}
    _, found["bare_seconds"] = asyncio.run(bare_loop(cmd))
    for concurrency in (1, 2):
        lake = out / f"lake-{store.stem}-c{concurrency}"
        subprocess.run(["rm", "-rf", str(lake)], check=True)
        summary = walake_extract(where, lake, concurrency)
        sizes = layer_bytes(lake)
        found[f"walake_{concurrency}"] = {
            "messages": summary["messages"],
            "seconds": round(summary["seconds"], 2),
            "peak_rss_mb": summary["peak_rss_mb"],
            "raw_bytes_per_message": round(sizes["raw"] / summary["messages"], 1),
            "parquet_bytes_per_message": round(sizes["messages"] / summary["messages"],
                                               1),
        }
    found["bare_seconds"] = round(found["bare_seconds"], 2)
    return found


def generated(out: Path, chats: int, per_chat: int) -> Path:
    from ingest.demo.store import generate_store

    store = out / f"store-{chats}x{per_chat}.db"
    if not store.exists():
        generate_store(store, chats=chats, messages_per_chat=per_chat, tz="Europe/London")
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50x2000,100x10000")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--store", type=Path, help="measure this store only")
    parser.add_argument("--server", nargs=2, metavar=("PYTHON", "MAIN_PY"),
                        help="an external lharries server serving --store")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate the runs this many times; medians reported")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stores = [args.store] if args.store else [
        generated(args.out, *(int(x) for x in size.split("x")))
        for size in args.sizes.split(",")
    ]
    for store in stores:
        result = bench_store(store, args.out, args.server, args.rounds)
        print(json.dumps(result, indent=2), flush=True)
    print(f"bench driver peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
