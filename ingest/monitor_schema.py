"""The alerts table the monitor appends to the lake (layer `alerts/`)."""

from __future__ import annotations

import polars as pl

# Column name -> Polars type, in file order. One row per alerted message_key.
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "message_key": pl.String(),
    "alerted_at": pl.Datetime("us", "UTC"),
    "session_id": pl.String(),
    "chat_id": pl.String(),
    "chat_name": pl.String(),
    "sender_id": pl.String(),
    "sender_name": pl.String(),
    "sent_at": pl.Datetime("us", "UTC"),
    "sent_at_local": pl.Datetime("us"),
    "score": pl.Float64(),
    "threshold": pl.Float64(),
    "categories": pl.List(pl.String()),
    "keywords": pl.List(pl.String()),
    "excerpt": pl.String(),
    "lag_seconds": pl.Float64(),  # alerted_at - sent_at
}

EXCERPT_CHARS = 160
