"""Benchmark `walake import` against whatstk and chat-miner on one generated export.

Generates an Android-style export (DD/MM/YYYY, HH:MM - Author: text) of N messages
with multi-line, media, system, edited and non-ASCII messages mixed in, then runs each
contender in its own process so peak RSS is its own:

    parse     walake's parser, the vectorized fast path import uses:
              bytes -> typed message frame (best of 3)
    parse_ref the strict reference parser: bytes -> Message objects (best of 3)
    land      walake end to end: read, parse, keys, write Parquet + raw to a new lake
              (batches land while later messages are still classified)
    whatstk   whatstk.df_from_whatsapp with the header format given
    chatminer chat-miner's WhatsAppParser.parse_file + get_df

Usage: .venv/bin/python bench/import_export.py [--messages N] [--rounds N]
           [--modes parse,parse_ref,land] [--skip-peers | --peers whatstk,chatminer]
           [--peer-python PYTHON]
cpu_seconds (land and the peers) is the process's CPU time: on a machine shared with
other work it moves less than the wall time, and land uses up to two cores. Rounds
interleave the contenders; each keeps its best round, and "rounds" lists them all with
the load average before each run.
whatstk and chat-miner are benchmark-only: pip install whatstk==0.9.1 chat-miner==0.6.0
(or `pip install -e '.[bench]'`) into this interpreter, or into another one given as
--peer-python (it runs this script for the peers only, so it needs no walake).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rss import peak_rss_mb  # noqa: E402

AUTHORS = ["Dara Quill", "Wren Tally", "Odell Price", "Jörg Weiß", "Zoë Faure",
           "Jean-Luc - Supplier", "+44 7700 900981", "Mei Tan"]
WORDS = ("price box order ship truck late ok thanks see you monday hall gate "
         "invoice pallet 40 bags kiln glaze 18:45: - tomorrow").split()
EXTRAS = ["👍", "Grüße", "ça marche", "🧑\u200d🍳", "明天发货"]
WHATSTK_FORMAT = "%d/%m/%Y, %H:%M - %name:"


def generate(path: Path, count: int, seed: int = 7) -> None:
    """Write a deterministic export of `count` messages to `path`."""
    rng = random.Random(seed)
    stamp = datetime(2019, 1, 1, 8, 0)
    out = []
    for index in range(count):
        stamp += timedelta(seconds=rng.randint(5, 90))
        head = f"{stamp:%d/%m/%Y}, {stamp:%H:%M} - "
        roll = rng.random()
        if index and roll < 0.01:
            out.append(head + f"{rng.choice(AUTHORS)} added {rng.choice(AUTHORS)}")
            continue
        body = " ".join(rng.choices(WORDS, k=rng.randint(2, 14)))
        if roll < 0.04:
            body = "<Media omitted>"
        elif roll < 0.06:
            body += "\n" + " ".join(rng.choices(WORDS, k=rng.randint(2, 8)))
        elif roll < 0.07:
            body += " <This message was edited>"
        elif roll < 0.20:
            body += " " + rng.choice(EXTRAS)
        out.append(head + f"{rng.choice(AUTHORS)}: {body}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def run_parse(path: Path) -> dict:
    from ingest.sources.export.fast import parse_fast

    data = path.read_bytes()
    best, count = float("inf"), 0
    for _ in range(3):
        start = time.perf_counter()
        parsed = parse_fast(path.name, data)
        best = min(best, time.perf_counter() - start)
        assert parsed is not None, "the fast path left this file to the reference"
        count = parsed.frame.height
        del parsed
    return {"messages": count, "seconds": best}


def run_parse_ref(path: Path) -> dict:
    from ingest.sources.export import parse_export

    data = path.read_bytes()
    best, count = float("inf"), 0
    for _ in range(3):
        start = time.perf_counter()
        parsed = parse_export(path.name, data)
        best = min(best, time.perf_counter() - start)
        count = len(parsed.messages)
        del parsed
    return {"messages": count, "seconds": best}


def run_land(path: Path) -> dict:
    from ingest.sources.export import ImportOptions, import_exports

    with tempfile.TemporaryDirectory() as folder:
        start, cpu = time.perf_counter(), time.process_time()
        [outcome] = import_exports(Path(folder) / "lake", [path],
                                   ImportOptions(tz="Europe/Berlin"))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        lake = Path(folder) / "lake"
        raw, parquet = (sum(p.stat().st_size for p in (lake / layer).rglob("*.*"))
                        for layer in ("raw", "messages"))
    assert outcome.error is None, outcome.error
    return {"messages": outcome.summary.new, "seconds": seconds,
            "cpu_seconds": round(cpu, 3), "raw_bytes": raw, "parquet_bytes": parquet,
            "batches": len(outcome.summary.batches)}


def run_whatstk(path: Path) -> dict:
    from whatstk.whatsapp.parser import df_from_whatsapp

    start, cpu = time.perf_counter(), time.process_time()
    frame = df_from_whatsapp(str(path), hformat=WHATSTK_FORMAT, max_size=None)
    return {"messages": len(frame), "seconds": time.perf_counter() - start,
            "cpu_seconds": round(time.process_time() - cpu, 3)}


def run_chatminer(path: Path) -> dict:
    import logging

    from chatminer.chatparsers import WhatsAppParser

    logging.disable(logging.INFO)
    start, cpu = time.perf_counter(), time.process_time()
    parser = WhatsAppParser(str(path))
    parser.parse_file()
    frame = parser.parsed_messages.get_df()
    return {"messages": len(frame), "seconds": time.perf_counter() - start,
            "cpu_seconds": round(time.process_time() - cpu, 3)}


PEERS = ("whatstk", "chatminer")
MODES = {"parse": run_parse, "parse_ref": run_parse_ref, "land": run_land,
         "whatstk": run_whatstk, "chatminer": run_chatminer}


def child(mode: str, path: Path) -> None:
    result = MODES[mode](path)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result))


def measure(mode: str, path: Path, python: str = sys.executable) -> dict:
    done = subprocess.run(
        [python, __file__, "--child", mode, str(path)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["msgs_per_s"] = round(result["messages"] / result["seconds"])
    return result


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in ("whatstk", "chat-miner", "polars", "pandas"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--modes", default="parse,parse_ref,land",
                        help="comma-separated walake modes: parse, parse_ref, land")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--peers", default="whatstk,chatminer",
                        help="comma-separated: whatstk, chatminer")
    parser.add_argument("--peer-python", default=sys.executable,
                        help="interpreter that has the peers installed")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "WhatsApp Chat with Bench.txt"
        generate(path, args.messages)
        peers = [] if args.skip_peers else [p for p in args.peers.split(",") if p]
        modes = [*(m for m in args.modes.split(",") if m), *peers]
        results = {"input": {"messages": args.messages,
                             "bytes": path.stat().st_size},
                   "versions": versions(), "load_average_start": os.getloadavg(),
                   "rounds": []}
        # Rounds interleave the contenders; the best time of each is kept, which is
        # the fairest figure on a machine shared with other work.
        for round_no in range(args.rounds):
            for mode in modes:
                load = os.getloadavg()[0]
                python = args.peer_python if mode in PEERS else sys.executable
                result = measure(mode, path, python)
                print(round_no, mode, f"load {load:.2f}", result, file=sys.stderr,
                      flush=True)
                results["rounds"].append({"round": round_no, "mode": mode,
                                          "load_1min": round(load, 2),
                                          **{k: result.get(k) for k in
                                             ("seconds", "cpu_seconds")}})
                kept = results.get(mode)
                best = kept is None or result.get("seconds", 1e9) < kept.get(
                    "seconds", 1e9)
                if best:
                    results[mode] = result
        results["load_average_end"] = os.getloadavg()
    for peer in PEERS:
        results.update(_ratios(results, peer))
    print(json.dumps(results, indent=1))


def _ratios(results: dict, peer: str) -> dict:
    """Peer time over walake time: of the best rounds, and round by round (each
    pair ran back to back, under about the same load)."""
    ratios = {}
    peer_result = results.get(peer, {})
    for mode in ("land", "parse"):
        ours = results.get(mode, {})
        if "seconds" in peer_result and "seconds" in ours:
            ratios[f"{mode}_vs_{peer}"] = round(
                peer_result["seconds"] / ours["seconds"], 2)
    if "cpu_seconds" in peer_result and "cpu_seconds" in results.get("land", {}):
        ratios[f"land_cpu_vs_{peer}"] = round(
            peer_result["cpu_seconds"] / results["land"]["cpu_seconds"], 2)
    by_round: dict[int, dict] = {}
    for run in results["rounds"]:
        by_round.setdefault(run["round"], {})[run["mode"]] = run.get("seconds")
    pairs = [r[peer] / r["land"] for r in by_round.values()
             if r.get(peer) and r.get("land")]
    if pairs:
        ratios[f"land_vs_{peer}_by_round"] = [round(x, 2) for x in pairs]
    return ratios


if __name__ == "__main__":
    main()
