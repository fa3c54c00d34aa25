"""Chaos trials: SIGKILL walake at random points, inject server faults, then rerun and
check that the lake holds exactly the source's messages, none twice, and that every
view works.

    .venv/bin/python bench/chaos.py --trials 240 --workers 2 --out bench/out/chaos.json

Each trial copies a small generated store (and, for compact/forget/monitor, a lake
extracted from it), runs one command with a fault, then reruns it cleanly and checks:

- extract (MCP lharries, MCP json, bridge): the lake equals the store per chat; some
  trials append messages to the store between the crash and the rerun.
- import: the lake holds exactly the keys a clean import of the same exports gives.
- monitor: runs while messages are appended; after a clean `extract`, lake == store,
  and no message alerted twice.
- compact: the same keys as before compaction; forget: the same keys minus the chat,
  and a later extract does not bring the chat back.
- server faults: a run against a faulty demo server (WALAKE_DEMO_FAULTS), then a
  clean rerun.

Kills are named crash points (`WALAKE_CRASH_AT=point:n`, n random) or SIGKILL at a
random moment. Lost = expected keys missing; duplicated = rows whose key is stored
twice; extra = rows not in the source (e.g. a cut-off text). Figures go to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb

from ingest.demo.store import append_messages, generate_store
from ingest.lake.manifest import Manifest
from ingest.views import connect, view_names

ZONE = ["--timezone", "Europe/London"]
ALL = ["--max-chats", "1000", "--max-messages", "1000000"]
CONFIG = """[source]
page_size = 25
[extraction]
chat_delay_seconds = 0
message_delay_seconds = 0
retry_attempts = 4
[performance]
connection_timeout_seconds = 3
"""
WRITE_POINTS = ["raw_written", "parquet_written", "manifest_temp_written", "batch_recorded"]
SERVER_FAULTS = ["exit_after_calls", "hang_on_call", "error_on_call", "garbage_on_call",
                 "truncate_on_call", "noise_on_call", "slow_ms"]
KINDS = {  # trial kind: weight
    "extract_lharries": 5, "extract_json": 3, "extract_bridge": 3, "import": 3,
    "monitor": 3, "compact": 2, "forget": 2, "server_fault": 4,
}


# Running walake


def run(args: list[str], env: dict | None = None, kill_after: float | None = None,
        timeout: float = 120) -> tuple[int, str, str]:
    """walake ARGS in its own session; SIGKILL it after `kill_after` s if given."""
    full = {**os.environ, **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "ingest", *args], cwd=ROOT, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        if kill_after is not None:
            try:
                out, err = proc.communicate(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                out, err = proc.communicate()
        else:
            out, err = proc.communicate(timeout=timeout)
    finally:
        _reap_group(proc.pid)
    return proc.returncode, out, err


def _reap_group(pgid: int) -> None:
    """Kill what the killed walake left behind (its MCP server), as power loss would."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# Checks


def lake_keys(lake: Path, with_source: bool = False) -> list[tuple]:
    files = [str(p) for p in Manifest.load(lake).parquet_files()]
    if not files:
        return []
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    columns = "chat_id, message_key" + (", source" if with_source else "")
    return con.execute(f"select {columns} from read_parquet(?)", [files]).fetchall()


def stored_twice(keys: list[tuple]) -> int:
    """Rows whose key one source stored more than once (the views dedupe across
    sources by design: the same message from MCP and from the bridge is one row)."""
    pairs = [(k, s) for _, k, s in keys]
    return len(pairs) - len(set(pairs))


def alert_dupes(lake: Path) -> int:
    files = [str(p) for p in Manifest.load(lake).parquet_files("alerts")]
    if not files:
        return 0
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    n, distinct = con.execute("select count(*), count(distinct message_key) "
                              "from read_parquet(?)", [files]).fetchone()
    return n - distinct


def store_counts(store: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
        rows = con.execute("select chat_jid, count(*) from messages "
                           "where chat_jid != 'status@broadcast' group by 1").fetchall()
    return dict(rows)


def views_work(lake: Path) -> str | None:
    try:
        con = connect(lake, threads=1)
        for name in view_names():
            con.execute(f"select count(*) from {name}").fetchone()
        con.close()
    except Exception as exc:  # noqa: BLE001 - reported as a failure of the trial
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def leftovers(lake: Path) -> list[str]:
    recorded = Manifest.load(lake).recorded_paths()
    found = []
    for layer in ("raw", "messages", "alerts"):
        for path in (lake / layer).rglob("*") if (lake / layer).exists() else []:
            rel = path.relative_to(lake).as_posix()
            if path.is_file() and rel not in recorded:
                found.append(rel)
    return found


def compare_counts(lake: Path, expected: dict[str, int]) -> dict:
    keys = lake_keys(lake, with_source=True)
    dup = stored_twice(keys)
    got = Counter(chat for chat, _ in {(c, k) for c, k, _ in keys})
    lost = sum(max(0, n - got.get(c, 0)) for c, n in expected.items())
    extra = sum(max(0, n - expected.get(c, 0)) for c, n in got.items())
    return {"lost": lost, "duplicated": dup, "extra": extra, "rows": len(keys)}


def compare_keys(lake: Path, expected: set[str]) -> dict:
    keys = lake_keys(lake, with_source=True)
    have = {k for _, k, _ in keys}
    return {"lost": len(expected - have), "duplicated": stored_twice(keys),
            "extra": len(have - expected), "rows": len(keys)}


# Fixtures (built once per worker directory)


def export_lines(chat: int, n: int, rng: random.Random) -> list[str]:
    lines = []
    minute = 0
    for i in range(n):
        minute += rng.choice([0, 0, 1, 3])
        day, hm = divmod(minute, 24 * 60)
        h, m = divmod(hm, 60)
        who = rng.choice(["Ana Lima", "Sam Reed", "Ilse Brandt"])
        text = rng.choice(["ok", "looking for a plumber asap", "deal?", "see you",
                           "multi\nline message", "<b>bold</b>", "'; drop table x; --"])
        lines.append(f"{1 + day:02d}/03/2024, {h:02d}:{m:02d} - {who}: {text} {i % 7}")
    return lines


class Fixtures:
    def __init__(self, base: Path, seed: int) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.config = base / "walake.toml"
        self.config.write_text(CONFIG)
        self.store = base / "messages.db"
        generate_store(self.store, chats=5, messages_per_chat=120, seed=seed)
        self.lake = base / "lake"  # the store extracted, many small batches
        code, out, err = run(["extract", "--store", str(self.store), "--lake",
                              str(self.lake), "--config", str(self.config), *ZONE, *ALL,
                              "--batch-size", "1", "--json", "-q"])
        assert code == 0, err
        self.lake_keys = {k for _, k in lake_keys(self.lake)}
        self.exports = base / "exports"
        self.exports.mkdir()
        rng = random.Random(seed)
        for i in range(4):
            path = self.exports / f"WhatsApp Chat with Chat {i}.txt"
            path.write_text("\n".join(export_lines(i, 150, rng)) + "\n", encoding="utf-8")
        ref = base / "import-ref"
        code, _, err = run(["import", str(self.exports), "--lake", str(ref),
                            "--tz", "Europe/London", "--me", "Sam Reed"])
        assert code == 0, err
        self.import_keys = {k for _, k in lake_keys(ref)}


# Trials


def crash_env(rng: random.Random, points: list[str], most: int) -> tuple[dict, str, float | None]:
    """A named crash point with a random count, or a random moment (None env)."""
    if rng.random() < 0.7:
        point = rng.choice(points)
        n = rng.randint(1, most)
        return {"WALAKE_CRASH_AT": f"{point}:{n}"}, f"crash:{point}", None
    return {}, "kill:random_time", rng.uniform(0.3, 3.5)


def trial(kind: str, seed: int, fx: Fixtures, work: Path) -> dict:
    rng = random.Random(seed)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    store = work / "messages.db"
    shutil.copy(fx.store, store)
    lake = work / "lake"
    common = ["--lake", str(lake), "--config", str(fx.config)]
    result: dict = {"kind": kind, "seed": seed}

    if kind.startswith("extract"):
        source = {"extract_lharries": ["--profile", "lharries"],
                  "extract_json": ["--profile", "json"],
                  "extract_bridge": ["--source", "bridge"]}[kind]
        args = ["extract", "--store", str(store), *common, *ZONE, *ALL, *source,
                "--batch-size", str(rng.choice([1, 2, 10])), "--json", "-q"]
        # Start from a lake the same source filled (the fixture lake is lharries':
        # another profile or the bridge keeps its own cursors and stores the rows
        # again, which the views dedupe by design)
        if kind == "extract_lharries" and rng.random() < 0.4:
            shutil.copytree(fx.lake, lake)
            append_messages(store, sorted(store_counts(store))[0], rng.randint(1, 30),
                            seed=seed)
        env, fault, when = crash_env(rng, WRITE_POINTS, 6)
        code, _, _ = run(args, env, when)
        if rng.random() < 0.5:  # the source moves on while walake is down
            chats = sorted(store_counts(store))
            append_messages(store, rng.choice(chats), rng.randint(1, 40), seed=seed + 1,
                            same_second=rng.choice([1, 3]))
        rerun, _, err = run(args)
        result.update(fault=fault, killed=code == -9, first_exit=code, rerun_exit=rerun)
        result.update(compare_counts(lake, store_counts(store)))
    elif kind == "server_fault":
        knob = rng.choice(SERVER_FAULTS)
        value = rng.randint(150, 600) if knob == "slow_ms" else rng.randint(1, 30)
        profile = rng.choice(["lharries", "json"])
        args = ["extract", "--store", str(store), *common, *ZONE, *ALL,
                "--profile", profile, "--batch-size", "1", "--json", "-q"]
        code, out, err = run(args, {"WALAKE_DEMO_FAULTS": f"{knob}={value}"}, timeout=180)
        result.update(fault=f"server:{knob}", profile=profile, first_exit=code,
                      traceback="Traceback" in err)
        result["faulty_run"] = compare_counts(lake, store_counts(store))
        rerun, _, err = run(args)
        result.update(rerun_exit=rerun, **compare_counts(lake, store_counts(store)))
    elif kind == "import":
        exports = work / "exports"
        shutil.copytree(fx.exports, exports)
        args = ["import", str(exports), "--lake", str(lake), "--tz", "Europe/London",
                "--me", "Sam Reed"]
        env, fault, when = crash_env(rng, WRITE_POINTS, 4)
        code, _, _ = run(args, env, when)
        rerun, _, err = run(args)
        result.update(fault=fault, killed=code == -9, first_exit=code, rerun_exit=rerun)
        result.update(compare_keys(lake, fx.import_keys))
    elif kind == "monitor":
        shutil.copytree(fx.lake, lake)
        args = ["monitor", "--store", str(store), *common, *ZONE, *ALL,
                "--interval", "0.3", "--duration", "6", "--json", "-q"]
        env, fault, when = crash_env(rng, WRITE_POINTS, 3)
        full = {**os.environ, **env}
        proc = subprocess.Popen([sys.executable, "-m", "ingest", *args], cwd=ROOT,
                                env=full, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        started = time.monotonic()
        chats = sorted(store_counts(store))
        deadline = started + (when if when is not None else 8.0)
        while proc.poll() is None and time.monotonic() < deadline:
            append_messages(store, rng.choice(chats), rng.randint(1, 4),
                            seed=rng.randint(0, 10**6))
            time.sleep(rng.uniform(0.1, 0.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if when is not None else signal.SIGINT)
        code = proc.wait(timeout=30)
        _reap_group(proc.pid)
        rerun, _, err = run(["extract", "--store", str(store), *common, *ZONE, *ALL,
                             "--json", "-q"])
        result.update(fault=fault, killed=code == -9, first_exit=code, rerun_exit=rerun,
                      alerts_duplicated=alert_dupes(lake))
        result.update(compare_counts(lake, store_counts(store)))
    elif kind == "compact":
        shutil.copytree(fx.lake, lake)
        points = ["compact_written", "compact_recorded", "manifest_temp_written"]
        env, fault, when = crash_env(rng, points, 1)
        code, _, _ = run(["compact", "--lake", str(lake)], env,
                         when and when / 4)
        rerun, _, err = run(["compact", "--lake", str(lake)])
        result.update(fault=fault, killed=code == -9, first_exit=code, rerun_exit=rerun)
        result.update(compare_keys(lake, fx.lake_keys))
    elif kind == "forget":
        shutil.copytree(fx.lake, lake)
        chat = rng.choice(sorted(store_counts(store)))
        gone = {k for c, k in lake_keys(lake) if c == chat}
        points = ["forget_written", "forget_recorded", "manifest_temp_written"]
        env, fault, when = crash_env(rng, points, 1)
        code, _, _ = run(["forget", "--chat", chat, "--lake", str(lake)], env,
                         when and when / 4)
        rerun, _, err = run(["forget", "--chat", chat, "--lake", str(lake)])
        # A forget that finished before the kill makes the rerun say "no such chat"
        ok_again = rerun == 0 or "No chat" in err
        again, _, err2 = run(["extract", "--store", str(store), *common, *ZONE, *ALL,
                              "--json", "-q"])
        result.update(fault=fault, killed=code == -9, first_exit=code,
                      rerun_exit=0 if ok_again else rerun, extract_after_exit=again)
        result.update(compare_keys(lake, fx.lake_keys - gone))
        err = err if not ok_again else err2
    result["views_error"] = views_work(lake)
    result["leftover_files"] = len(leftovers(lake))
    result["ok"] = (result["lost"] == 0 and result["duplicated"] == 0
                    and result["extra"] == 0 and result["views_error"] is None
                    and result["rerun_exit"] == 0 and result.get("alerts_duplicated", 0) == 0)
    if not result["ok"]:
        result["stderr_tail"] = err[-600:]
    shutil.rmtree(work, ignore_errors=True)
    return result


_FIXTURES: Fixtures | None = None


def worker(kind: str, seed: int, base: str) -> dict:
    global _FIXTURES
    root = Path(base) / f"w{os.getpid()}"
    if _FIXTURES is None:
        _FIXTURES = Fixtures(root / "fixtures", seed=5)
    started = time.monotonic()
    try:
        out = trial(kind, seed, _FIXTURES, root / "trial")
    except Exception as exc:  # noqa: BLE001 - a crash of the harness is a failed trial
        out = {"kind": kind, "seed": seed, "ok": False, "lost": 0, "duplicated": 0,
               "extra": 0, "harness_error": f"{type(exc).__name__}: {exc}"}
    out["seconds"] = round(time.monotonic() - started, 2)
    return out


def summarize(results: list[dict], seconds: float) -> dict:
    faults = Counter(r.get("fault", "?") for r in results)
    return {
        "trials": len(results),
        "seconds": round(seconds, 1),
        "by_kind": dict(Counter(r["kind"] for r in results)),
        "faults_injected": dict(sorted(faults.items())),
        "sigkills_delivered": sum(1 for r in results if r.get("killed")),
        "messages_lost": sum(r["lost"] for r in results),
        "messages_duplicated": sum(r["duplicated"] for r in results),
        "rows_extra": sum(r["extra"] for r in results),
        "alerts_duplicated": sum(r.get("alerts_duplicated", 0) for r in results),
        "views_failed": sum(1 for r in results if r.get("views_error")),
        "failed_trials": [r for r in results if not r.get("ok")],
        "server_fault_runs": {
            "first_run_exit_codes": dict(Counter(
                f"{r['fault']}={r['first_exit']}" for r in results
                if r["kind"] == "server_fault")),
            "lost_before_rerun": sum(r["faulty_run"]["lost"] for r in results
                                     if r["kind"] == "server_fault"),
            "extra_before_rerun": sum(r["faulty_run"]["extra"] for r in results
                                      if r["kind"] == "server_fault"),
            "tracebacks": sum(1 for r in results if r.get("traceback")),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=240)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--kinds", help="comma list of trial kinds (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "chaos.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kinds = args.kinds.split(",") if args.kinds else list(KINDS)
    weights = [KINDS[k] for k in kinds]
    plan = [(rng.choices(kinds, weights)[0], args.seed * 1000 + i)
            for i in range(args.trials)]
    base = Path(tempfile.mkdtemp(prefix="walake-chaos-"))
    started = time.monotonic()
    results = []
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(worker, kind, seed, str(base)) for kind, seed in plan]
        for n, future in enumerate(as_completed(futures), 1):
            r = future.result()
            results.append(r)
            print(f"[{n}/{len(plan)}] {r['kind']:17} {r.get('fault', '?'):32} "
                  f"lost={r['lost']} dup={r['duplicated']} extra={r['extra']} "
                  f"ok={r['ok']} {r['seconds']}s", flush=True)
    summary = summarize(results, time.monotonic() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "trials": results}, indent=1,
                                   default=str))
    shown = {k: v for k, v in summary.items() if k != "failed_trials"}
    print(json.dumps(shown, indent=1))
    print(f"failed trials: {len(summary['failed_trials'])} (details in {args.out})")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
