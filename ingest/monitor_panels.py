"""What the notebooks show: one function per panel, each a query of the views.

The notebooks (notebooks/monitor.py, notebooks/explore.py) hold no logic of their
own; they call these. Time windows end at the newest message in the lake, so a lake
that stopped updating still shows its last activity. Nothing here prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ingest.errors import IngestError
from ingest.lake.manifest import MANIFEST_NAME, Manifest
from ingest.views import connect
from ingest.words import plural

LAKE_ENV = "WALAKE_LAKE"
FEED_COLUMNS = (
    "alerted_at, sent_at_local, chat_name, sender_name, score, categories, excerpt, "
    "lag_seconds, message_key"
)


@dataclass(frozen=True)
class LakeOpen:
    """A connection over the lake, or the reason there is none and what to run."""

    lake: Path
    con: duckdb.DuckDBPyConnection | None
    problem: str | None = None


def notebook_lake(arg: str | None = None) -> Path:
    """The lake a notebook shows: `-- --lake PATH`, else $WALAKE_LAKE, else ./lake."""
    return Path(arg or os.environ.get(LAKE_ENV) or "lake").expanduser()


def open_lake(lake: Path) -> LakeOpen:
    """Connect to the lake's views; a missing or empty lake says what to run."""
    if not (lake / MANIFEST_NAME).is_file():
        return LakeOpen(lake, None, (
            f"No lake at `{lake}` yet. Fill one with `walake extract` (or try "
            "`walake demo`), then watch it with `walake monitor`. To show another "
            "lake, run `walake notebook monitor --lake PATH`."
        ))
    try:
        con = connect(lake, threads=1)
    except IngestError as exc:
        return LakeOpen(lake, None, f"The lake `{lake}` cannot be read: {exc}")
    if con.sql("select count(*) from lake_messages").fetchall()[0][0] == 0:
        con.close()
        return LakeOpen(lake, None, (
            f"The lake `{lake}` has no messages yet. Run `walake extract` (or "
            "`walake import EXPORT.zip`), then `walake monitor` for live alerts."
        ))
    return LakeOpen(lake, con)


def _window_start(con: duckdb.DuckDBPyConnection, hours: int) -> str:
    """`hours` before the lake's newest message, as a SQL timestamp literal.

    A constant, not a join with a max() subquery: DuckDB then pushes the window
    down to the Parquet scan, so a panel scores only the window's messages, not the
    whole lake, on every refresh. The newest time comes from the batches' own
    statistics (lake_messages), which copies of a message cannot move.
    """
    latest = con.sql("select max(sent_at) from lake_messages").fetchall()[0][0]
    if latest is None:
        return "null::timestamptz"
    start = latest.astimezone(UTC) - timedelta(hours=hours)
    return f"timestamptz '{start.isoformat()}'"


# Monitor notebook


def alert_feed(con: duckdb.DuckDBPyConnection, limit: int = 50) -> pl.DataFrame:
    """The newest alerts first."""
    return con.sql(
        f"select {FEED_COLUMNS} from alerts "
        f"order by alerted_at desc, sent_at desc, message_key limit {int(limit)}"
    ).pl()


def alert_totals(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Alerts ever, in the last 24 hours of the lake, and the newest alert's time."""
    total, recent, newest = con.sql(
        "select count(*)::bigint, "
        f"count(*) filter (where sent_at >= {_window_start(con, 24)})::bigint, "
        "max(alerted_at) from alerts"
    ).fetchall()[0]
    return {"alerts": total, "alerts_24h": recent, "newest": newest}


def feed_markdown(feed: pl.DataFrame, rows: int = 10) -> str:
    """The newest alerts as a markdown list (page text that a browser test can read)."""
    if feed.is_empty():
        return "_No alerts yet: `walake monitor` records one for each hot message._"
    lines = []
    for row in feed.head(rows).iter_rows(named=True):
        categories = ", ".join(row["categories"] or []) or "-"
        lines.append(
            f"- **{row['sent_at_local']:%Y-%m-%d %H:%M}** {row['chat_name'] or '?'}"
            f" · {row['sender_name'] or '?'} · score {row['score']:g} · {categories}"
            f" — {_md_text(row['excerpt'])}"
        )
    return "\n".join(lines)


def _md_text(text: str | None, width: int = 90) -> str:
    text = (text or "").replace("\n", " ")
    text = text if len(text) <= width else text[: width - 1] + "…"
    return "".join("\\" + c if c in "\\`*_[]<>#|" else c for c in text)


def messages_per_hour(con: duckdb.DuckDBPyConnection, hours: int = 48) -> pl.DataFrame:
    """Messages and opportunities per hour over the lake's last `hours` hours."""
    return con.sql(
        "select date_trunc('hour', sent_at) as hour, count(*)::bigint as messages, "
        "count(*) filter (where is_opportunity)::bigint as opportunities "
        f"from message_scores where sent_at > {_window_start(con, int(hours))} "
        "group by 1 order by 1"
    ).pl()


def top_chats(
    con: duckdb.DuckDBPyConnection, days: int = 7, limit: int = 10
) -> pl.DataFrame:
    """Chats with the most opportunities over the lake's last `days` days."""
    return con.sql(
        "select coalesce(chat_name, chat_id) as chat, count(*)::bigint as "
        "opportunities, max(score) as best_score, max(sent_at) as latest "
        f"from opportunities where sent_at > {_window_start(con, int(days) * 24)} "
        f"group by 1 order by 2 desc, 4 desc limit {int(limit)}"
    ).pl()


def top_categories(con: duckdb.DuckDBPyConnection, days: int = 7) -> pl.DataFrame:
    """Opportunities per category over the lake's last `days` days."""
    return con.sql(
        "select unnest(categories) as category, count(*)::bigint as opportunities "
        f"from opportunities where sent_at > {_window_start(con, int(days) * 24)} "
        "group by 1 order by 2 desc, 1"
    ).pl()


def chat_lag(con: duckdb.DuckDBPyConnection, limit: int = 20) -> pl.DataFrame:
    """Per chat: its newest message, when that landed, and the delay in between."""
    return con.sql(
        "select coalesce(chat_name, chat_id) as chat, "
        "max(sent_at) as last_message_at, arg_max(ingested_at, sent_at) as landed_at, "
        "round(epoch(arg_max(ingested_at, sent_at)) - epoch(max(sent_at)), 1) "
        "as lag_seconds from messages group by chat_id, chat_name "
        f"order by last_message_at desc limit {int(limit)}"
    ).pl()


def ingest_health(lake: Path) -> dict[str, Any]:
    """The last message batch, the last monitor and extract runs (from the manifest)."""
    manifest = Manifest.load(lake)
    batches = [
        (batch_id, info) for batch_id, info in manifest.batches.items()
        if "messages" in info.get("files", {})
    ]
    last = max(batches, default=None, key=lambda item: item[0])
    runs = manifest.runs
    return {
        "last_batch": (
            {"batch_id": last[0], **_batch_fields(last[1])} if last else None
        ),
        "monitor": _last(runs, "monitor"),
        "extract": _last(runs, "extract"),
        "failed_runs": sum(1 for r in runs if r.get("status") == "failed"),
    }


def _batch_fields(info: dict[str, Any]) -> dict[str, Any]:
    return {k: info.get(k) for k in ("source", "rows", "created_at")}


def _last(runs: list[dict[str, Any]], command: str) -> dict[str, Any] | None:
    return next((r for r in reversed(runs) if r.get("command") == command), None)


def health_markdown(health: dict[str, Any], now: datetime | None = None) -> str:
    """Ingest health as markdown lines: last batch, last monitor session, errors."""
    now = now or datetime.now(UTC)
    lines = []
    batch = health["last_batch"]
    if batch:
        lines.append(
            f"- Last batch **{batch['batch_id']}**: "
            f"{plural(batch['rows'], 'message')} from "
            f"{batch['source']}, {_ago(batch['created_at'], now)}"
        )
    run = health["monitor"]
    if run:
        lines.append(
            f"- Monitor {run.get('status')}: {plural(run.get('ticks', 0), 'tick')}, "
            f"{plural(run.get('messages', 0), 'new message')}, "
            f"{plural(run.get('alerts', 0), 'alert')}, "
            f"{plural(run.get('errors', 0), 'error')}; last tick "
            f"{_ago(run.get('last_tick_at'), now)}"
        )
        for error in (run.get("recent_errors") or [])[-3:]:
            lines.append(f"  - error: {_md_text(error, 160)}")
    else:
        lines.append("- No monitor session yet: run `walake monitor`.")
    if health["failed_runs"]:
        lines.append(f"- {health['failed_runs']} failed run(s) in the history")
    return "\n".join(lines)


def _ago(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "never"
    seconds = (now - datetime.fromisoformat(stamp)).total_seconds()
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{max(seconds, 0):.0f} s ago"


# Explore notebook


def chat_choices(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Chat labels (name and size) -> chat_id, most active first."""
    rows = con.sql(
        "select chat_id, coalesce(chat_name, chat_id), messages from chats "
        "order by messages desc, chat_id"
    ).fetchall()
    return {f"{name} ({n:,})": chat_id for chat_id, name, n in rows}


def category_choices(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.sql(
        "select distinct category from keywords order by 1").fetchall()]


def date_span(con: duckdb.DuckDBPyConnection) -> tuple[date, date]:
    """The first and last day with messages (local wall time)."""
    first, last = con.sql(
        "select min(sent_at_local)::date, max(sent_at_local)::date from messages"
    ).fetchall()[0]
    return first, last


@dataclass(frozen=True)
class Filters:
    """The explore notebook's controls, as one value the panels share."""

    search: str = ""
    chat_id: str | None = None
    categories: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    threshold: float = 2.0

    def where(self) -> tuple[str, list[Any]]:
        """A where clause over message_scores, and its parameters."""
        clauses, params = ["true"], []
        if self.search.strip():
            clauses.append("text ilike ?")
            params.append(f"%{self.search.strip()}%")
        if self.chat_id:
            clauses.append("chat_id = ?")
            params.append(self.chat_id)
        if self.categories:
            clauses.append("list_has_any(categories, ?::varchar[])")
            params.append(list(self.categories))
        if self.start:
            clauses.append("sent_at_local::date >= ?")
            params.append(self.start)
        if self.end:
            clauses.append("sent_at_local::date <= ?")
            params.append(self.end)
        return " and ".join(clauses), params


def pick(con: duckdb.DuckDBPyConnection, filters: Filters) -> str:
    """Score the messages that match `filters` once; returns the table to query.

    The threshold is the views' own variable, so `is_opportunity` follows it.
    """
    con.execute(f"set variable opportunity_threshold = {float(filters.threshold)!r}")
    where, params = filters.where()
    con.execute(
        f"create or replace temp table picked as select * from message_scores "
        f"where {where}", params
    )
    return "picked"


def search_messages(
    con: duckdb.DuckDBPyConnection, picked: str, limit: int = 200
) -> pl.DataFrame:
    """The picked messages, newest first, with their scores."""
    return con.sql(
        "select sent_at_local, chat_name, sender_name, text, score, categories, "
        f"is_opportunity from {picked} order by sent_at desc limit {int(limit)}"
    ).pl()


def picked_totals(con: duckdb.DuckDBPyConnection, picked: str) -> dict[str, int]:
    messages, opportunities, chats = con.sql(
        "select count(*)::bigint, count(*) filter (where is_opportunity)::bigint, "
        f"count(distinct chat_id)::bigint from {picked}"
    ).fetchall()[0]
    return {"messages": messages, "opportunities": opportunities, "chats": chats}


def score_distribution(con: duckdb.DuckDBPyConnection, picked: str) -> pl.DataFrame:
    """How many picked messages have each score (score 0 included)."""
    return con.sql(
        f"select score, count(*)::bigint as messages from {picked} "
        "group by 1 order by 1"
    ).pl()


def keyword_hits(
    con: duckdb.DuckDBPyConnection, picked: str, limit: int = 25
) -> pl.DataFrame:
    """Keywords found in the picked messages, most frequent first."""
    return con.sql(
        "select keyword, count(*)::bigint as messages from "
        f"(select unnest(keywords) as keyword from {picked}) "
        f"group by 1 order by 2 desc, 1 limit {int(limit)}"
    ).pl()


def opportunities_by_day(con: duckdb.DuckDBPyConnection, picked: str) -> pl.DataFrame:
    """Picked opportunities per day and category."""
    return con.sql(
        "select sent_at_local::date as day, unnest(categories) as category, "
        f"count(*)::bigint as opportunities from {picked} where is_opportunity "
        "group by 1, 2 order by 1, 2"
    ).pl()
