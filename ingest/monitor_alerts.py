"""Alerts: score what a monitor tick landed with the views' SQL, record each hit once.

A monitor batch carries, per chat, the local second from which its rows count as new
(`monitor.alert_after`; history pulled for a chat seen for the first time carries
none). After a tick, every monitor batch newer than `monitor.alerted_through` is
scored through `message_scores`; the opportunities among its new rows that have no
alert yet become rows of the `alerts` table, and `alerted_through` moves in the same
manifest save. So a crash between landing messages and recording their alerts is
caught up by the next monitor, and no message is ever alerted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import polars as pl

from ingest.lake.writer import LakeWriter
from ingest.monitor_schema import ALERT_SCHEMA, EXCERPT_CHARS
from ingest.views import connect

log = logging.getLogger(__name__)

SECTION = "monitor"  # the manifest section the monitor keeps its progress in
NOTIFY_TIMEOUT_SECONDS = 10.0

# The new rows of the batches being scored, then their scores from the views.
NEW_ROWS_SQL = """
select distinct m.message_key, m.sent_at, m.ingested_at
from lake_messages m
join alert_candidates c on m.batch_id = c.batch_id and m.chat_id = c.chat_id
where strftime(m.sent_at_local, '%Y-%m-%d %H:%M:%S') >= c.alert_after
"""
ALERTS_SQL = f"""
with new_rows as ({NEW_ROWS_SQL})
select
    s.message_key, s.chat_id, s.chat_name, s.sender_id, s.sender_name, s.sent_at,
    s.sent_at_local, s.score, s.categories, s.keywords,
    left(regexp_replace(coalesce(s.text, ''), '\\s+', ' ', 'g'), {EXCERPT_CHARS})
        as excerpt
from message_scores s
semi join new_rows n on s.message_key = n.message_key
anti join alerts a on s.message_key = a.message_key
where s.is_opportunity
order by s.sent_at, s.message_key
"""
LAG_SQL = f"""
select
    count(*)::bigint as messages,
    max(epoch(ingested_at) - epoch(sent_at))::double as lag_max,
    avg(epoch(ingested_at) - epoch(sent_at))::double as lag_mean
from ({NEW_ROWS_SQL})
"""


@dataclass(frozen=True)
class Alert:
    """A message at or above the threshold, as printed and sent to --notify-command."""

    message_key: str
    alerted_at: datetime
    chat_id: str
    chat_name: str | None
    sender_id: str | None
    sender_name: str | None
    sent_at: datetime
    sent_at_local: datetime
    score: float
    categories: tuple[str, ...]
    excerpt: str
    lag_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "message_key": self.message_key,
            "alerted_at": self.alerted_at.isoformat(),
            "chat_id": self.chat_id,
            "chat_name": self.chat_name,
            "sender_id": self.sender_id,
            "sender_name": self.sender_name,
            "sent_at": self.sent_at.isoformat(),
            "sent_at_local": self.sent_at_local.isoformat(),
            "score": self.score,
            "categories": list(self.categories),
            "excerpt": self.excerpt,
            "lag_seconds": round(self.lag_seconds, 3),
        }


@dataclass(frozen=True)
class Scored:
    """What one scoring pass found: the alerts it recorded and the new rows' lag."""

    alerts: list[Alert]
    new_messages: int = 0
    lag_max: float | None = None
    lag_mean: float | None = None


def unscored_batches(writer: LakeWriter) -> dict[str, dict[str, str]]:
    """Monitor batches not yet scored: batch id -> {chat_id: alert_after}."""
    assert writer.manifest is not None
    through = writer.manifest.data.get(SECTION, {}).get("alerted_through", "")
    found = {}
    for batch_id, info in writer.manifest.batches.items():
        marks = info.get(SECTION)
        if batch_id > through and marks and marks.get("alert_after"):
            found[batch_id] = marks["alert_after"]
    return found


def record_alerts(
    writer: LakeWriter,
    session_id: str,
    threshold: float,
    keywords_dir: Path | None = None,
) -> Scored:
    """Score the unscored monitor batches and append their alerts; idempotent."""
    assert writer.manifest is not None
    pending = unscored_batches(writer)
    if not pending:
        return Scored([])
    candidates = pl.DataFrame(
        [(b, chat, after) for b, chats in pending.items()
         for chat, after in chats.items()],
        schema={"batch_id": pl.String, "chat_id": pl.String, "alert_after": pl.String},
        orient="row",
    )
    con = connect(writer.lake, threads=1, threshold=threshold,
                  keywords_dir=keywords_dir, message_batches=set(pending))
    try:
        con.register("alert_candidates", candidates)
        found = con.sql(ALERTS_SQL).pl()
        messages, lag_max, lag_mean = con.sql(LAG_SQL).fetchall()[0]
    finally:
        con.close()

    now = datetime.now(UTC)
    frame = alert_frame(found, now, session_id, threshold)
    writer.commit_table("alerts", "monitor", frame,
                        marks={SECTION: {"alerted_through": max(pending)}})
    alerts = [alert_from_row(row) for row in frame.iter_rows(named=True)]
    return Scored(alerts, int(messages or 0), lag_max, lag_mean)


def alert_frame(
    found: pl.DataFrame, now: datetime, session_id: str, threshold: float
) -> pl.DataFrame:
    """Scored rows as rows of the alerts table (typed as ALERT_SCHEMA)."""
    if found.is_empty():
        return pl.DataFrame(schema=ALERT_SCHEMA)
    frame = found.with_columns(
        pl.lit(now, ALERT_SCHEMA["alerted_at"]).alias("alerted_at"),
        pl.lit(session_id, pl.String()).alias("session_id"),
        pl.lit(float(threshold)).alias("threshold"),
        (
            (pl.lit(now, ALERT_SCHEMA["alerted_at"]) - pl.col("sent_at"))
            .dt.total_microseconds() / 1e6
        ).alias("lag_seconds"),
    )
    return frame.select(list(ALERT_SCHEMA)).cast(ALERT_SCHEMA)


def alert_from_row(row: dict[str, Any]) -> Alert:
    return Alert(
        message_key=row["message_key"],
        alerted_at=row["alerted_at"],
        chat_id=row["chat_id"],
        chat_name=row["chat_name"],
        sender_id=row["sender_id"],
        sender_name=row["sender_name"],
        sent_at=row["sent_at"],
        sent_at_local=row["sent_at_local"],
        score=row["score"],
        categories=tuple(row["categories"] or ()),
        excerpt=row["excerpt"] or "",
        lag_seconds=row["lag_seconds"],
    )


async def notify(command: str, alert: Alert,
                 timeout: float = NOTIFY_TIMEOUT_SECONDS) -> str | None:
    """Run `command` (a shell line) with the alert as JSON on stdin; None if it worked.

    A command that fails or hangs is reported, never raised: notifications must
    not stop the monitor. The shell runs in a session of its own, so at the limit
    the whole group (the shell and whatever it started) is killed; its stderr goes
    to a file, so no pipe a leftover child holds open is ever waited on.
    """
    payload = json.dumps(alert.to_json(), ensure_ascii=False).encode() + b"\n"
    with tempfile.TemporaryFile() as err:
        try:
            process = await asyncio.create_subprocess_shell(
                command, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL, stderr=err, start_new_session=True,
            )
        except OSError as exc:
            return f"--notify-command could not start: {exc}"
        try:
            await asyncio.wait_for(process.communicate(payload), timeout)
        except TimeoutError:
            await stop_group(process)
            return f"--notify-command took over {timeout:g} s and was stopped"
        if process.returncode != 0:
            return (f"--notify-command exited with {process.returncode}: "
                    f"{last_line(err)[:200]}")
    return None


async def stop_group(process: asyncio.subprocess.Process) -> None:
    """Kill the process group `process` leads; wait a moment for the shell to go."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 1.0)


def last_line(stream: IO[bytes]) -> str:
    """The last line of what a command wrote to `stream` (a file), or ''."""
    stream.seek(0)
    text = stream.read().decode("utf-8", "replace").strip()
    return (text.splitlines() or [""])[-1]
