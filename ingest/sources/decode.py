"""Decoders: turn MCP tool output into chats and normalized message rows.

Two shapes are known. The lharries text format, where one text block holds records
`[YYYY-MM-DD HH:MM:SS] Chat: <name> From: <sender>: <content>\\n` and content may hold
newlines (records are split only on headers that name the chat being read); and JSON
message objects with ids (verygoodplugins/whatsapp-mcp), in `structuredContent` or as
JSON text blocks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from ingest.errors import ResponseUnreadable
from ingest.frames import PAGE_SCHEMA, empty_page, page_frame

EMPTY_TEXTS = ("No messages to display.", "No messages found")
MEDIA_PREFIX = re.compile(
    r"\[(?P<type>[a-z]+) - Message ID: (?P<id>[^ \]]*) - Chat JID: (?P<jid>[^\]]*)\] "
)
STAMP = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] "


@dataclass(frozen=True)
class Chat:
    chat_id: str
    name: str
    is_group: bool
    last_active: str | None = None


def is_group_jid(jid: str) -> bool:
    return jid.endswith("@g.us")


def parse_local(stamp: str) -> datetime:
    """`YYYY-MM-DD HH:MM:SS` as a naive datetime."""
    return datetime.fromisoformat(stamp)


UTC = ZoneInfo("UTC")


def localize(local: datetime, tz: ZoneInfo) -> tuple[datetime, int]:
    """UTC instant and offset (minutes) of a local wall time; fold=0 when ambiguous."""
    offset = local.replace(tzinfo=tz).utcoffset() or timedelta(0)
    return (local - offset).replace(tzinfo=UTC), int(offset.total_seconds() // 60)


# Chats


def decode_chats(texts: list[str], structured: Any) -> list[Chat]:
    """Chats from either server shape, de-duplicated by jid (first wins)."""
    objects = json_objects(texts, structured)
    chats: dict[str, Chat] = {}
    for obj in objects:
        jid = obj.get("jid") or obj.get("chat_jid")
        if not jid or jid in chats:
            continue
        chats[jid] = Chat(
            chat_id=jid,
            name=obj.get("name") or obj.get("chat_name") or "",
            is_group=bool(obj.get("is_group", is_group_jid(jid))),
            last_active=obj.get("last_message_time"),
        )
    return list(chats.values())


def json_objects(texts: list[str], structured: Any) -> list[dict]:
    """JSON objects from structuredContent.result, else from each text block."""
    if isinstance(structured, dict) and isinstance(structured.get("result"), list):
        return [o for o in structured["result"] if isinstance(o, dict)]
    found: list[dict] = []
    for text in texts:
        if text.strip().startswith(EMPTY_TEXTS):
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ResponseUnreadable(
                f"The server sent a block that is not JSON ({exc.msg} at {exc.pos}); "
                "check that --profile matches the server."
            ) from exc
        if isinstance(value, dict) and isinstance(value.get("result"), list):
            found.extend(value["result"])
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, dict))
        elif isinstance(value, dict):
            found.append(value)
    return found


# Messages: the lharries text format


def record_pattern(chat_name: str) -> re.Pattern[str]:
    chat = f"Chat: {re.escape(chat_name)} " if chat_name else ""
    return re.compile(rf"^{STAMP}{chat}From: ", re.MULTILINE)


def split_records(text: str, chat_name: str) -> tuple[list[str], list[str]]:
    """(timestamps, bodies) of the records; a body keeps its final line end.

    Only headers naming this chat can start a record, so pasted lines of other chats
    stay in their message. The server sorts newest first, so real headers have
    non-increasing times: of the candidates, the longest such sequence is taken
    as the real one, and a pasted header of this chat that breaks the order stays
    in its message. One that fits the order cannot be told apart in this format;
    the bridge source (#6) has no such ambiguity.
    """
    pattern = record_pattern(chat_name)
    quick = _split_in_order(pattern, text)
    if quick is not None:
        return quick
    starts = list(pattern.finditer(text))
    if text and (not starts or starts[0].start() != 0):
        raise ResponseUnreadable(
            f"The list_messages output for chat {chat_name!r} does not start with a "
            f"message header ({len(text)} characters of something else); the server "
            "may be a different kind: try --profile json."
        )
    kept = [starts[i] for i in ordered_headers([m.group(1) for m in starts])]
    ends = [m.start() for m in kept[1:]] + [len(text)]
    return ([m.group(1) for m in kept],
            [text[m.end() : end] for m, end in zip(kept, ends, strict=True)])


def _split_in_order(pattern: re.Pattern[str], text: str
                    ) -> tuple[list[str], list[str]] | None:
    """The common case in C speed: headers already newest first, none pasted out of
    order. None when the order breaks (then the careful path decides)."""
    parts = pattern.split(text)
    if not parts or parts[0] != "":
        return None
    stamps, bodies = parts[1::2], parts[2::2]
    if any(a < b for a, b in zip(stamps, stamps[1:])):
        return None
    return stamps, bodies


def ordered_headers(stamps: list[str]) -> list[int]:
    """Indexes of the longest non-increasing run of stamps that starts at index 0."""
    if not stamps:
        return []
    first = stamps[0]
    candidates = [i for i in range(1, len(stamps)) if stamps[i] <= first]
    # Patience method: tails[k] is the largest last stamp of a run of length k+1
    tails: list[str] = []
    tail_index: list[int] = []
    parent: dict[int, int | None] = {}
    for i in candidates:
        key = stamps[i]
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if tails[mid] >= key:
                lo = mid + 1
            else:
                hi = mid
        parent[i] = tail_index[lo - 1] if lo > 0 else None
        if lo == len(tails):
            tails.append(key)
            tail_index.append(i)
        else:
            tails[lo], tail_index[lo] = key, i
    chain: list[int] = []
    node = tail_index[-1] if tail_index else None
    while node is not None:
        chain.append(node)
        node = parent[node]
    return [0, *reversed(chain)]


def decode_text_messages(texts: list[str], chat: Chat, tz: ZoneInfo) -> pl.DataFrame:
    """A page frame (no keys yet) from lharries list_messages output, in server order.

    An answer with no content at all is how upstream reports a failed query (a
    locked or damaged store), and every record ends with a newline, so an answer
    that does not was cut off inside a line: both are unreadable, and asked again.
    A cut at a line end shows nothing (see `Profile.confirm_short_pages`).
    """
    if not texts:
        raise ResponseUnreadable(
            f"The server answered list_messages for chat {chat.name!r} with no "
            "content, which lharries/whatsapp-mcp does when its database query "
            "fails (a store locked or damaged); see the server's log if it persists."
        )
    text = "".join(texts)
    if not text.strip() or text.strip() in EMPTY_TEXTS:
        return empty_page()
    stamps, bodies = split_records(text, chat.name)
    if not text.endswith("\n"):
        raise ResponseUnreadable(
            f"The list_messages answer for chat {chat.name!r} stops in the middle "
            f"of a message (its last record, {len(bodies[-1])} characters, has "
            "no line end): the answer was cut off."
        )
    return text_frame(chat, stamps, bodies, tz)


def text_frame(chat: Chat, stamps: list[str], bodies: list[str], tz: ZoneInfo
               ) -> pl.DataFrame:
    """The page frame of records split off a text answer, built in columns.

    A body is `sender: content`, or only `sender` for a record with no content;
    a media record's content starts with its `[type - Message ID: ...] ` prefix.
    """
    records = pl.DataFrame({"second": stamps, "body": bodies},
                           schema={"second": pl.String(), "body": pl.String()})
    body = pl.col("body").str.strip_suffix("\n")
    parts = body.str.splitn(": ", 2)
    split = records.select(
        "second",
        pl.when(parts.struct[1].is_null())
        .then(body.str.strip_chars_end(":"))
        .otherwise(parts.struct[0]).alias("shown"),
        parts.struct[1].fill_null("").alias("content"),
    )
    local = _local_times(split["second"])
    sender_id, sender_name = _senders(chat, split["shown"])
    media = pl.col("content").str.extract_groups(MEDIA_PREFIX.pattern)
    has_media = media.struct.field("type").is_not_null()
    return split.with_columns(
        local, utc_offsets(split["second"], local, tz), sender_id, sender_name
    ).select(
        pl.lit(None, pl.String).alias("message_key"),
        pl.lit("mcp").alias("source"),
        media.struct.field("id").alias("source_message_id"),
        pl.lit(chat.chat_id).alias("chat_id"),
        pl.lit(chat.name or None, pl.String).alias("chat_name"),
        pl.lit(chat.is_group).alias("is_group"),
        "sender_id",
        "sender_name",
        (pl.col("shown") == "Me").alias("is_from_me"),
        (pl.col("sent_at_local") - pl.duration(minutes=pl.col("utc_offset_minutes")))
        .dt.replace_time_zone("UTC").alias("sent_at"),
        "sent_at_local",
        "utc_offset_minutes",
        pl.when(has_media)
        .then(pl.col("content").str.replace(MEDIA_PREFIX.pattern, ""))
        .otherwise(pl.col("content")).alias("text"),
        media.struct.field("type").alias("media_type"),
        pl.lit(None, pl.String).alias("media_filename"),
        pl.lit(None, pl.Int64).alias("media_size"),
        pl.lit(False).alias("is_system"),
        pl.lit(None, pl.Boolean).alias("is_deleted"),
        pl.lit(None, pl.Boolean).alias("is_edited"),
        "second",
    ).cast(PAGE_SCHEMA)


def _local_times(seconds: pl.Series) -> pl.Series:
    """Wall times of `YYYY-MM-DD HH:MM:SS` stamps; a stamp that is no real time is
    an unreadable answer (the header pattern only checks the digits)."""
    local = seconds.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    if local.null_count():
        bad = seconds.filter(local.is_null())[0]
        raise ResponseUnreadable(
            f"The server sent a message time {bad!r} that is not a real date and "
            "time; check the bridge's store."
        )
    return local.alias("sent_at_local")


def utc_offsets(seconds: pl.Series, local: pl.Series, tz: ZoneInfo) -> pl.Series:
    """UTC offset in minutes of each local wall time, as `localize` gives it.

    A page spans few local days: a day whose offset holds all day long is looked up
    once; the rows of a day with a change (a DST switch) are computed one by one.
    """
    days = seconds.str.slice(0, 10)
    unique = days.unique().to_list()
    steady = [_steady_day(day, tz) for day in unique]
    minutes = days.replace_strict(unique, steady, default=None, return_dtype=pl.Int32)
    changing = minutes.is_null().arg_true()
    if len(changing):
        exact = [localize(t, tz)[1] for t in local.gather(changing).to_list()]
        minutes = minutes.scatter(changing, pl.Series(exact, dtype=pl.Int32))
    return minutes.alias("utc_offset_minutes")


@lru_cache(maxsize=100_000)
def _steady_day(day: str, tz: ZoneInfo) -> int | None:
    """The day's offset in minutes when it is the same at every hour and fold
    (remembered: every page of a chat asks about the same days)."""
    start = datetime.fromisoformat(day).replace(tzinfo=tz)
    hours = [start + timedelta(hours=h) for h in range(24)]
    hours.append(start.replace(hour=23, minute=59, second=59))
    offsets = {t.replace(fold=f).utcoffset() for t in hours for f in (0, 1)}
    if len(offsets) != 1:
        return None
    return int((offsets.pop() or timedelta(0)).total_seconds() // 60)


def _senders(chat: Chat, shown: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(sender_id, sender_name) of records whose senders are shown as `shown`.

    In a direct chat the other person is the chat itself. Upstream's lookup by
    `jid LIKE %number%` can show a legacy group's name for them (one they created),
    so the chat's own id and name are taken instead. A page has few senders: each
    is judged once.
    """
    unique = shown.unique().to_list()
    pairs = [_sender(chat, name, name == "Me") for name in unique]
    ids = shown.replace_strict(unique, [p[0] for p in pairs], return_dtype=pl.String)
    names = shown.replace_strict(unique, [p[1] for p in pairs], return_dtype=pl.String)
    return ids.alias("sender_id"), names.alias("sender_name")


def _sender(chat: Chat, shown: str, from_me: bool) -> tuple[str | None, str | None]:
    """(sender_id, sender_name) of one sender as the text format shows it."""
    if from_me:
        return None, None
    if not chat.is_group:
        return chat.chat_id.partition("@")[0], chat.name or shown
    looks_like_id = shown.replace("+", "").isdigit() or "@" in shown
    return (shown if looks_like_id else None), shown


# Messages: JSON objects


def decode_json_messages(
    texts: list[str], structured: Any, chat: Chat, tz: ZoneInfo
) -> pl.DataFrame:
    """A page frame (no keys yet) of message objects, in server order."""
    if not texts and structured is None:
        return empty_page()
    objects = json_objects(texts, structured)
    return page_frame([json_row(obj, chat, tz) for obj in objects])


def json_row(obj: dict, chat: Chat, tz: ZoneInfo) -> dict:
    stamp = str(obj.get("timestamp") or "")
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ResponseUnreadable(
            f"Message {obj.get('id')!r} has an unreadable timestamp {stamp!r}."
        ) from exc
    if parsed.tzinfo is None:
        local = parsed
        sent_at, offset = localize(local, tz)
    else:
        # The wall time as the bridge wrote it is the local time; keep it as such.
        local = parsed.replace(tzinfo=None)
        delta = parsed.utcoffset() or timedelta(0)
        offset = int(delta.total_seconds() // 60)
        sent_at = parsed.astimezone(ZoneInfo("UTC"))
    media_type = obj.get("media_type") or None
    from_me = bool(obj.get("is_from_me"))
    return {
        "source": "mcp",
        "source_message_id": obj.get("id"),
        "chat_id": obj.get("chat_jid") or chat.chat_id,
        "chat_name": obj.get("chat_name") or chat.name or None,
        "is_group": chat.is_group,
        "sender_id": obj.get("sender_jid") or obj.get("sender") or None,
        "sender_name": obj.get("sender_name") or obj.get("sender_display"),
        "is_from_me": from_me,
        "sent_at": sent_at,
        "sent_at_local": local.replace(microsecond=0),
        "utc_offset_minutes": offset,
        "text": obj.get("content") or "",
        "media_type": media_type,
        "media_filename": obj.get("filename"),
        "media_size": obj.get("file_length"),
        "is_system": False,
        "is_deleted": bool(obj["deleted_at"]) if obj.get("deleted_at") else None,
        "is_edited": None,
    }
