"""Resource estimates for an extract: disk, memory and time, from the lake's own
measurements (bytes per message, recent rates) or, for an empty lake, from the
documented defaults below. Every figure says which of the two it came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ingest.config import Config
from ingest.extract import ROWS_PER_MB
from ingest.performance import lake_facts

# Defaults for an empty lake, measured on the demo store (2 cores, 2026):
# raw .jsonl.zst ≈ 60 B/message, Parquet ≈ 90 B/message, MCP extract ≈ 1,500 msg/s
# without pacing, and a process base of about 150 MB with ~1 KB per row held.
DEFAULT_BYTES_PER_MESSAGE = {"raw": 60.0, "messages": 90.0}
DEFAULT_RATE = 1500.0
BASE_MEMORY_MB = 150
BYTES_PER_ROW_IN_MEMORY = 1024


@dataclass
class Estimate:
    chats: int
    messages_per_chat: int
    messages: int
    disk_bytes: int
    disk_by_layer: dict[str, int]
    memory_mb: int
    seconds: float
    pacing_seconds: float
    basis: str  # "measured" or "defaults"
    basis_detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def estimate_resources(
    lake: Path, config: Config, max_chats: int | None = None,
    max_messages: int | None = None,
) -> Estimate:
    """What an extract of the configured (or given) size will take."""
    ex = config.extraction
    chats = max_chats or ex.max_chats
    per_chat = max_messages or ex.max_messages_per_chat
    messages = chats * per_chat

    facts = lake_facts(lake) if (lake / "manifest.json").exists() else None
    measured = facts is not None and facts.messages > 0
    if measured:
        per_message = {k: v for k, v in facts.bytes_per_message.items() if v}
        rate = facts.extract_rate or DEFAULT_RATE
        detail = (f"{facts.messages:,} messages in the lake"
                  + (f", {facts.runs_measured} measured run(s)" if facts.extract_rate
                     else "; no measured extract run, default rate"))
    else:
        per_message = dict(DEFAULT_BYTES_PER_MESSAGE)
        rate = DEFAULT_RATE
        detail = ("the lake is empty, so these figures use the documented defaults "
                  "(see ingest/estimate.py)")

    by_layer = {k: int(v * messages) for k, v in per_message.items()}
    rows_held = min(messages, config.performance.memory_limit_mb * ROWS_PER_MB)
    memory = BASE_MEMORY_MB + rows_held * BYTES_PER_ROW_IN_MEMORY // (1024 * 1024)
    pacing = 0.0
    if config.source.kind == "mcp":
        pacing = max(0, chats - 1) * ex.chat_delay_seconds / max(
            1, config.performance.max_concurrent_requests)
    return Estimate(
        chats=chats, messages_per_chat=per_chat, messages=messages,
        disk_bytes=sum(by_layer.values()), disk_by_layer=by_layer,
        memory_mb=int(memory), seconds=round(messages / rate + pacing, 1),
        pacing_seconds=round(pacing, 1),
        basis="measured" if measured else "defaults", basis_detail=detail,
    )
