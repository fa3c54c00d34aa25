"""A small lake as the monitor leaves it: history, a monitored batch, its alerts.

A helper module for the monitor and notebook tests (import it); it holds no tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest_views import msg

from ingest.lake.writer import LakeWriter, PendingBatch
from ingest.monitor_alerts import record_alerts

HOT_TEXT = "Urgent: looking for investment in our startup, call me asap"
WARM_TEXT = "Can you recommend someone? We need help with the business plan"
COLD_TEXT = "see you at lunch"


def pending(
    rows: list[dict[str, Any]], alert_after: dict[str, str] | None
) -> PendingBatch:
    batch = PendingBatch(source="mcp", rows=rows)
    for row in rows:
        batch.chats[row["chat_id"]] = (row["chat_name"], False)
    if alert_after is not None:
        batch.extra["monitor"] = {"alert_after": alert_after}
    return batch


def local_second(row: dict[str, Any]) -> str:
    return row["sent_at_local"].isoformat(" ", "seconds")


def history_rows() -> list[dict[str, Any]]:
    return [
        msg(HOT_TEXT + " (old)", at=0),
        msg(COLD_TEXT, at=5),
        msg("an older deal to sell", at=10, chat_id="c2", chat_name="Chat Two",
            sender_name="Bob"),
    ]


def new_rows() -> list[dict[str, Any]]:
    return [
        msg(HOT_TEXT, at=60),
        msg(COLD_TEXT + " again", at=61),
        msg(HOT_TEXT + " (mine)", at=62, is_from_me=True, sender_name="Me"),
        msg(WARM_TEXT, at=63, chat_id="c2", chat_name="Chat Two", sender_name="Bob"),
    ]


def make_monitored_lake(lake: Path, score: bool = True) -> Path:
    """History (no alerts), then one monitored batch with two hot new messages."""
    with LakeWriter(lake) as writer:
        writer.commit(pending(history_rows(), None))
        newest = {"c1": local_second(msg(at=5)), "c2": local_second(msg(at=10))}
        writer.commit(pending(new_rows(), newest))
        if score:
            record_alerts(writer, "session1", 2.0)
        writer.record_run({
            "command": "monitor", "status": "stopped", "ticks": 12,
            "messages": 4, "alerts": 2, "errors": 1,
            "recent_errors": ["The MCP server did not answer 'list_chats' in time"],
            "last_tick_at": (datetime.now(UTC) - timedelta(seconds=20)).isoformat(),
        })
    return lake
