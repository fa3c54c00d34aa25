"""Bridge store rows -> typed message rows with identity keys, in columns.

The store is read as JSON lines built by SQLite itself (`ROW_JSON`): the same bytes
are the raw layer ("as read from the store") and, parsed by Polars, the typed rows.
Keys follow `ingest.schema`: (chat, local wall second = the stored time with its
offset dropped, NFC text, ordinal among identical rows of that second).
"""

from __future__ import annotations

import io
import logging
from zoneinfo import ZoneInfo

import polars as pl

from ingest.schema import SOURCE_SCHEMA
from ingest.sources.decode import Chat, localize

# NOTE: the blobs (media_key and the two file hashes) are left out of the raw layer:
# media_key decrypts the media, and none of them serves analytics.
ROW_JSON = (
    "json_object('id', m.id, 'chat_jid', m.chat_jid, 'sender', m.sender, "
    "'content', m.content, 'timestamp', m.timestamp, 'is_from_me', m.is_from_me, "
    "'media_type', m.media_type, 'filename', m.filename, 'url', m.url, "
    "'file_length', m.file_length)"
)
# The local wall second of a stored timestamp, as identity and ordering use it.
SECOND_SQL = "replace(substr(m.timestamp, 1, 19), 'T', ' ')"
STORE_SCHEMA = {
    "id": pl.String(), "chat_jid": pl.String(), "sender": pl.String(),
    "content": pl.String(), "timestamp": pl.String(), "is_from_me": pl.Int64(),
    "media_type": pl.String(), "filename": pl.String(), "url": pl.String(),
    "file_length": pl.Int64(),
}
LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
log = logging.getLogger(__name__)


def parse_store_rows(lines: bytes) -> pl.DataFrame:
    """The store's rows from JSON lines, one column per stored field."""
    if not lines.strip():
        return pl.DataFrame(schema=STORE_SCHEMA)
    return pl.read_ndjson(io.BytesIO(lines), schema=STORE_SCHEMA)


def typed_rows(
    store: pl.DataFrame, chat: Chat, names: dict[str, str], tz: ZoneInfo
) -> pl.DataFrame:
    """MESSAGE_SCHEMA rows (no message_key yet) plus a `second` column.

    `names` maps JIDs to chat names, for the sender display name the way lharries
    shows it (a name when the sender's JID is a known chat, else the raw sender).
    """
    try:
        return _typed_rows(store, chat, names, tz)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
        # A timestamp that is no time (not written by the bridge): leave it out
        return _typed_rows(_readable_times(store, chat), chat, names, tz)


def _readable_times(store: pl.DataFrame, chat: Chat) -> pl.DataFrame:
    """The rows whose timestamp reads as a time; the others are left out, warned."""
    seconds = store["timestamp"].str.slice(0, 19).str.replace("T", " ", literal=True)
    readable = seconds.str.strptime(pl.Datetime("us"), LOCAL_FORMAT, strict=False)
    bad = store.filter(readable.is_null())
    log.warning(
        "chat %s: %d message(s) in the store have a timestamp that is not a time "
        "(e.g. message id %s: %r) and were left out; correct them in the store to "
        "pull them", chat.chat_id, bad.height, bad["id"][0], bad["timestamp"][0])
    return store.filter(readable.is_not_null())


def _typed_rows(
    store: pl.DataFrame, chat: Chat, names: dict[str, str], tz: ZoneInfo
) -> pl.DataFrame:
    ts = pl.col("timestamp")
    # The bridge's layout is fixed ("2025-03-30 02:00:05+01:00"): slice it; anything
    # else ("Z", no offset, fractions) goes through the slower general parse
    regular = store["timestamp"].str.len_bytes().eq(25).all() and store[
        "timestamp"
    ].str.slice(19, 1).is_in(["+", "-"]).all()
    if regular:
        sign = pl.when(ts.str.slice(19, 1) == "-").then(-1).otherwise(1)
        offset = sign * (
            ts.str.slice(20, 2).cast(pl.Int32) * 60 + ts.str.slice(23, 2).cast(pl.Int32)
        )
    else:
        found = ts.str.extract_groups(r"([+-])(\d\d):?(\d\d)$")
        sign = pl.when(found.struct[0] == "-").then(-1).otherwise(1)
        offset = pl.when(ts.str.ends_with("Z")).then(0).otherwise(
            sign * (found.struct[1].cast(pl.Int32) * 60 + found.struct[2].cast(pl.Int32))
        )
    second = ts.str.slice(0, 19)
    if not regular:
        second = second.str.replace("T", " ", literal=True)
    frame = store.with_columns(
        second.alias("second"), offset.cast(pl.Int32).alias("offset")
    ).with_columns(
        pl.col("second").str.strptime(pl.Datetime("us"), LOCAL_FORMAT, cache=False)
        .alias("local"),
    )
    if frame["offset"].null_count():
        frame = _offsets_from_zone(frame, tz)

    media = pl.col("media_type").fill_null("") != ""
    sender_jid = (
        pl.when(pl.col("sender").str.contains("@", literal=True))
        .then(pl.col("sender"))
        .otherwise(pl.col("sender") + "@s.whatsapp.net")
    )
    known = sender_jid.replace_strict(
        list(names), list(names.values()), default=None, return_dtype=pl.String
    )
    from_me = pl.col("is_from_me").fill_null(0) != 0
    return frame.select(
        pl.lit(None, pl.String).alias("message_key"),
        pl.lit("bridge").alias("source"),
        pl.col("id").alias("source_message_id"),
        pl.lit(chat.chat_id).alias("chat_id"),
        pl.lit(chat.name or None, pl.String).alias("chat_name"),
        pl.lit(chat.is_group).alias("is_group"),
        pl.col("sender").replace("", None).alias("sender_id"),
        pl.when(from_me).then(None)
        .otherwise(pl.coalesce(known, pl.col("sender"))).alias("sender_name"),
        from_me.alias("is_from_me"),
        (pl.col("local") - pl.duration(minutes=pl.col("offset")))
        .dt.replace_time_zone("UTC").alias("sent_at"),
        pl.col("local").alias("sent_at_local"),
        pl.col("offset").alias("utc_offset_minutes"),
        pl.col("content").fill_null("").alias("text"),
        pl.when(media).then(pl.col("media_type")).alias("media_type"),
        pl.when(media).then(pl.col("filename").replace("", None)).alias("media_filename"),
        pl.when(media).then(pl.col("file_length")).alias("media_size"),
        pl.lit(False).alias("is_system"),
        pl.lit(None, pl.Boolean).alias("is_deleted"),
        pl.lit(None, pl.Boolean).alias("is_edited"),
        pl.col("second"),
    ).cast(SOURCE_SCHEMA)


def _offsets_from_zone(frame: pl.DataFrame, tz: ZoneInfo) -> pl.DataFrame:
    """Offsets for timestamps stored without one (not written by the bridge)."""
    offsets = [
        off if off is not None else localize(local, tz)[1]
        for local, off in zip(frame["local"].to_list(), frame["offset"].to_list())
    ]
    return frame.with_columns(pl.Series("offset", offsets, pl.Int32))
