"""Benchmark: opportunity scoring of N generated messages, views vs a Python loop.

    .venv/bin/python bench/score_messages.py            # 10,000,000 messages
    .venv/bin/python bench/score_messages.py --keyword-percent 10   # a chat-like mix
    .venv/bin/python bench/score_messages.py --rows 1000000 --loop-sample 100000

1. Generates a lake of synthetic messages with Polars (keywords, inflected forms,
   decoys such as "ideal"/"dealer", phrases split by a line break, accents, emoji),
   written as Parquet batches with a manifest, like an ingest would.
2. In a child process (so its peak RSS is its own): `ingest.views.connect(lake)` and
   materialise `message_scores` (key, score, categories, keywords) into a table.
3. The same rules as a plain per-message Python loop on a sample, extrapolated to N:
   (a) one regex per keyword form set, the way such a loop is usually written, and
   (b) one combined regex per message (the fastest Python form of the same rules).
   Both loops must give the same scores as the views on the sample.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rss import peak_rss_mb  # noqa: E402
from ingest.lake.manifest import Manifest  # noqa: E402
from ingest.schema import MESSAGE_SCHEMA  # noqa: E402

FILLER = (
    "the a to and of in is it you that for on we this with be have are at not but "
    "can will just so what if about get all your me my like one do was when time "
    "know there up out they good see how now think going well yes no ok thanks "
    "today tomorrow week later morning evening call send photo video price team "
    "project client meetup office home family dinner lunch coffee plan idea great "
    "sure maybe soon maybe friend group chat news update check open close start "
    "ideal dealer sellers urgently connection businesslike hirer asapp introduction "
    "café naïve 🔥 👍 über ðeal"
).split()
KEYWORD_WORDS = (
    "urgent asap immediately emergency emergencies business startup investment "
    "funding hire hired hiring recommend recommended buy buying sell selling "
    "purchase purchased deal deals connect connecting introduce introduced meeting "
    "meetings partner #deal deal! (urgent) emergency. startups, partners?"
).split() + ["looking for", "looking\nfor", "need help", "Looking For", "NEED\nHELP"]
WORDS_PER_MESSAGE = 9
ROWS_PER_FILE = 1_000_000


def generate(lake: Path, rows: int, keyword_percent: int) -> None:
    """Write `rows` synthetic messages as Parquet batches recorded in a manifest.

    `keyword_percent` of the messages draw words from a vocabulary where about one
    word in ten is a keyword form (some with punctuation around them); the others
    draw from the filler words only, whose decoys ("ideal", "dealer", "urgently")
    look like keywords but are none. 100 is the worst case for the views (most
    messages hold keywords); real chats are nearer 5 to 10. Keys are unique, so
    each batch is marked new_keys, as LakeWriter.commit would mark it.
    """
    vocab = FILLER * 3 + KEYWORD_WORDS
    manifest = Manifest.load(lake)
    for start in range(0, rows, ROWS_PER_FILE):
        n = min(ROWS_PER_FILE, rows - start)
        index = pl.int_range(start, start + n, dtype=pl.UInt64, eager=True)
        frame = pl.DataFrame({"i": index})
        words = [
            (pl.col("i").hash(seed=j) % len(vocab)).cast(pl.Int64).alias(f"w{j}")
            for j in range(WORDS_PER_MESSAGE)
        ]
        frame = frame.with_columns(words)
        with_keywords = (pl.col("i").hash(seed=123) % 100) < keyword_percent
        texts = pl.concat_str(
            [
                pl.when(with_keywords | (pl.col(f"w{j}") < len(FILLER) * 3))
                .then(pl.col(f"w{j}"))
                .otherwise(pl.col(f"w{j}") % len(FILLER))
                .replace_strict(list(range(len(vocab))), vocab, return_dtype=pl.String)
                for j in range(WORDS_PER_MESSAGE)
            ],
            separator=" ",
        )
        base = pl.datetime(2024, 1, 1, time_zone="UTC")
        batch_id = manifest.take_batch_id()
        out = frame.select(
            pl.col("i").cast(pl.String).str.zfill(12).alias("message_key"),
            pl.lit("bench").alias("source"),
            pl.col("i").cast(pl.String).alias("source_message_id"),
            ("chat" + (pl.col("i") % 500).cast(pl.String)).alias("chat_id"),
            ("Chat " + (pl.col("i") % 500).cast(pl.String)).alias("chat_name"),
            ((pl.col("i") % 500) > 100).alias("is_group"),
            ("p" + (pl.col("i").hash(seed=99) % 5000).cast(pl.String))
            .alias("sender_id"),
            ("Person " + (pl.col("i").hash(seed=99) % 5000).cast(pl.String))
            .alias("sender_name"),
            ((pl.col("i") % 7) == 0).alias("is_from_me"),
            (base + pl.duration(seconds=pl.col("i") * 3)).alias("sent_at"),
            (base.dt.replace_time_zone(None)
             + pl.duration(seconds=pl.col("i") * 3 + 3600)).alias("sent_at_local"),
            pl.lit(60, dtype=pl.Int32).alias("utc_offset_minutes"),
            texts.alias("text"),
            pl.lit(None, dtype=pl.String).alias("media_type"),
            pl.lit(None, dtype=pl.String).alias("media_filename"),
            pl.lit(None, dtype=pl.Int64).alias("media_size"),
            pl.lit(False).alias("is_system"),
            pl.lit(False).alias("is_deleted"),
            pl.lit(False).alias("is_edited"),
            pl.lit(batch_id).alias("batch_id"),
            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("ingested_at"),
        ).cast(MESSAGE_SCHEMA)  # type: ignore[arg-type]
        relative = f"messages/src=bench/day=2024-01-01/{batch_id}.parquet"
        (lake / relative).parent.mkdir(parents=True, exist_ok=True)
        out.write_parquet(lake / relative, compression="zstd")
        manifest.record_batch(batch_id, {"source": "bench", "rows": n,
                                         "files": {"messages": relative},
                                         "new_keys": True})
    manifest.save()


def score_with_views(lake: Path, threads: int) -> dict:
    """Child process: connect, materialise message_scores, report time and RSS."""
    from ingest.views import connect

    started = time.perf_counter()
    con = connect(lake, threads=threads)
    setup = time.perf_counter() - started
    started = time.perf_counter()
    cpu_started = time.process_time()
    con.execute(
        "create table scores as "
        "select message_key, score, categories, keywords from message_scores"
    )
    scoring = time.perf_counter() - started
    scoring_cpu = time.process_time() - cpu_started
    rows, scored, opportunities, total = con.execute(
        "select count(*), count(*) filter (where score > 0), "
        "count(*) filter (where score >= 2), sum(score) from scores"
    ).fetchone()
    return {
        "setup_s": setup, "scoring_s": scoring, "scoring_cpu_s": scoring_cpu,
        "load_1min": os.getloadavg()[0], "rows": rows, "scored": scored,
        "score_ge_2": opportunities, "score_sum": total,
        "peak_rss_mb": peak_rss_mb(),
    }


def python_rules(lake: Path) -> tuple[list[tuple[re.Pattern, str, str, float]],
                                       re.Pattern, dict[str, tuple[str, str, float]]]:
    """The same rules as the views, for Python: forms and the combined pattern."""
    from ingest.views import connect

    con = connect(lake)
    forms = con.execute(
        "select form, category, keyword, weight from keyword_forms"
    ).fetchall()
    by_form = {form: (category, keyword, weight) for form, category, keyword, weight
               in forms}
    word = r"\w"  # Python's \w: Unicode letters, digits and "_"

    def alternation(items: list[str]) -> str:
        escaped = [re.escape(f).replace(r"\ ", r"\s+")
                   for f in sorted(items, key=lambda f: (-len(f), f))]
        return "|".join(escaped)

    per_keyword: dict[tuple[str, str, float], list[str]] = {}
    for form, (category, keyword, weight) in by_form.items():
        per_keyword.setdefault((category, keyword, weight), []).append(form)
    keyword_patterns = [
        (re.compile(rf"(?:^|\W)((?:{alternation(fs)}){word}*)", re.I), c, k, w)
        for (c, k, w), fs in per_keyword.items()
    ]
    combined = re.compile(rf"(?:^|\W)((?:{alternation(list(by_form))}){word}*)", re.I)
    return keyword_patterns, combined, by_form


def _normal(word: str) -> str:
    return re.sub(r"\s+", " ", word).lower()


def loop_per_keyword(texts: list[str | None], keyword_patterns: list) -> list[float]:
    scores = []
    for text in texts:
        score = 0.0
        if text:
            for pattern, _category, keyword, weight in keyword_patterns:
                for hit in pattern.findall(text):
                    if _normal(hit) in pattern_forms[keyword]:
                        score += weight
                        break
        scores.append(score)
    return scores


def loop_combined(texts: list[str | None], combined: re.Pattern,
                  by_form: dict[str, tuple[str, str, float]]) -> list[float]:
    scores = []
    for text in texts:
        hits: dict[str, float] = {}
        if text:
            for word in combined.findall(text):
                found = by_form.get(_normal(word))
                if found:
                    hits[found[1]] = found[2]
        scores.append(sum(hits.values()))
    return scores


pattern_forms: dict[str, set[str]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--loop-sample", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keyword-percent", type=int, default=100,
                        help="share of messages drawing from the keyword vocabulary")
    parser.add_argument("--lake", type=Path, default=None,
                        help="reuse or create this lake (default: a temp folder)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(score_with_views(args.lake, args.threads)))
        return

    lake = args.lake or Path(tempfile.mkdtemp(prefix="walake-bench-")) / "lake"
    lake.mkdir(parents=True, exist_ok=True)
    if not Manifest.load(lake).batches:
        started = time.perf_counter()
        generate(lake, args.rows, args.keyword_percent)
        elapsed = time.perf_counter() - started
        print(f"generated {args.rows:,} messages in {elapsed:.1f} s -> {lake}")

    child = subprocess.run(
        [sys.executable, __file__, "--child", "--lake", str(lake),
         "--threads", str(args.threads)],
        check=True, capture_output=True, text=True,
    )
    views = json.loads(child.stdout)
    rows = views["rows"]

    # The Python loops, on the first `loop_sample` rows, checked against the views.
    keyword_patterns, combined, by_form = python_rules(lake)
    for form, (_c, keyword, _w) in by_form.items():
        pattern_forms.setdefault(keyword, set()).add(form)
    sample_n = min(args.loop_sample, rows)
    from ingest.views import connect

    con = connect(lake, threads=args.threads)
    sample = con.execute(
        "select text, score from message_scores order by message_key limit ?",
        [sample_n],
    ).fetchall()
    texts = [t for t, _ in sample]
    expected = [s for _, s in sample]

    started, cpu_started = time.perf_counter(), time.process_time()
    got_per_keyword = loop_per_keyword(texts, keyword_patterns)
    per_keyword_s = (time.perf_counter() - started) * rows / sample_n
    per_keyword_cpu = (time.process_time() - cpu_started) * rows / sample_n
    started, cpu_started = time.perf_counter(), time.process_time()
    got_combined = loop_combined(texts, combined, by_form)
    combined_s = (time.perf_counter() - started) * rows / sample_n
    combined_cpu = (time.process_time() - cpu_started) * rows / sample_n
    mismatches = sum(a != b for a, b in zip(got_per_keyword, expected)) + sum(
        a != b for a, b in zip(got_combined, expected)
    )

    scoring = views["scoring_s"]
    print(f"rows: {rows:,}  scored > 0: {views['scored']:,}  "
          f"score >= 2: {views['score_ge_2']:,}  score sum: {views['score_sum']:,.0f}")
    cpu = views["scoring_cpu_s"]
    print(f"views: setup {views['setup_s']:.2f} s, scoring {scoring:.2f} s wall "
          f"({args.threads} threads), {cpu:.2f} s CPU, "
          f"peak RSS {views['peak_rss_mb']:,.0f} MB, "
          f"load average {views['load_1min']:.2f} on {os.cpu_count()} cores")
    print(f"python loop, one regex per keyword: {per_keyword_s:,.1f} s "
          f"(extrapolated from {sample_n:,} rows) -> views are "
          f"{per_keyword_s / scoring:,.0f}x faster (CPU: {per_keyword_cpu:,.1f} s, "
          f"{per_keyword_cpu / cpu:,.0f}x less)")
    print(f"python loop, one combined regex:    {combined_s:,.1f} s "
          f"(extrapolated from {sample_n:,} rows) -> views are "
          f"{combined_s / scoring:,.0f}x faster (CPU: {combined_cpu:,.1f} s, "
          f"{combined_cpu / cpu:,.0f}x less)")
    print(f"loop scores differing from the views on the sample: {mismatches}")
    print(f"cpu count: {os.cpu_count()}")


if __name__ == "__main__":
    main()
