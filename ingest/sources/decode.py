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
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ingest.errors import ResponseUnreadable

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


class HourOffsets:
    """Offsets of a zone per local hour, for hours with one offset throughout.

    A text page holds thousands of rows but few distinct hours; an hour in which the
    offset changes (a DST switch) is never cached and is computed per row.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._hours: dict[str, timedelta | None] = {}

    def localize(self, stamp: str, local: datetime) -> tuple[datetime, int]:
        hour = stamp[:13]
        offset = self._hours.get(hour, False)
        if offset is False:
            offset = self._hours[hour] = self._steady_offset(local)
        if offset is None:
            return localize(local, self.tz)
        return (local - offset).replace(tzinfo=UTC), int(offset.total_seconds() // 60)

    def _steady_offset(self, local: datetime) -> timedelta | None:
        start = local.replace(minute=0, second=0, tzinfo=self.tz)
        end = local.replace(minute=59, second=59, tzinfo=self.tz)
        first, last = start.utcoffset(), end.utcoffset()
        folds = start.replace(fold=1).utcoffset(), end.replace(fold=1).utcoffset()
        return first if first == last and folds == (first, last) else None


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


def split_records(text: str, chat_name: str) -> list[tuple[str, str]]:
    """(timestamp, rest) per record.

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
    records = []
    for i, match in enumerate(kept):
        end = kept[i + 1].start() if i + 1 < len(kept) else len(text)
        body = text[match.end() : end]
        records.append((match.group(1), body[:-1] if body.endswith("\n") else body))
    return records


def _split_in_order(pattern: re.Pattern[str], text: str) -> list[tuple[str, str]] | None:
    """The common case in C speed: headers already newest first, none pasted out of
    order. None when the order breaks (then the careful path decides)."""
    parts = pattern.split(text)
    if not parts or parts[0] != "":
        return None
    stamps, bodies = parts[1::2], parts[2::2]
    if any(a < b for a, b in zip(stamps, stamps[1:])):
        return None
    return [
        (stamp, body[:-1] if body.endswith("\n") else body)
        for stamp, body in zip(stamps, bodies)
    ]


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


def decode_text_messages(
    texts: list[str], chat: Chat, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """Rows (without keys) from lharries list_messages output, in server order.

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
        return []
    records = split_records(text, chat.name)
    if not text.endswith("\n"):
        raise ResponseUnreadable(
            f"The list_messages answer for chat {chat.name!r} stops in the middle "
            f"of a message (its last record, {len(records[-1][1])} characters, has "
            "no line end): the answer was cut off."
        )
    rows = []
    offsets = HourOffsets(tz)
    for stamp, rest in records:
        sender, sep, content = rest.partition(": ")
        if not sep:
            sender, content = rest.rstrip(":"), ""
        rows.append(text_row(chat, stamp, sender, content, offsets))
    return rows


# TODO(#2): a dict per row, decoded and keyed in Python (~15 us a message on this
# machine), holds walake to 0.67-0.76 of a bare paging loop against a server as fast
# as the built-in one; pages decoded into columns (as bridge_rows does) would not.
def text_row(
    chat: Chat, stamp: str, sender: str, content: str, offsets: HourOffsets
) -> dict:
    local = parse_local(stamp)
    sent_at, offset = offsets.localize(stamp, local)
    media = MEDIA_PREFIX.match(content)
    media_type = media_id = None
    if media:
        media_type, media_id = media.group("type"), media.group("id")
        content = content[media.end() :]
    from_me = sender == "Me"
    sender_id, sender_name = _sender(chat, sender, from_me)
    return {
        "_second": stamp,
        "source": "mcp",
        "source_message_id": media_id,
        "chat_id": chat.chat_id,
        "chat_name": chat.name or None,
        "is_group": chat.is_group,
        "sender_id": sender_id,
        "sender_name": sender_name,
        "is_from_me": from_me,
        "sent_at": sent_at,
        "sent_at_local": local,
        "utc_offset_minutes": offset,
        "text": content,
        "media_type": media_type,
        "media_filename": None,
        "media_size": None,
        "is_system": False,
        "is_deleted": None,
        "is_edited": None,
    }


def _sender(chat: Chat, shown: str, from_me: bool) -> tuple[str | None, str | None]:
    """(sender_id, sender_name) of a record whose sender is shown as `shown`.

    In a direct chat the other person is the chat itself. Upstream's lookup by
    `jid LIKE %number%` can show a legacy group's name for them (one they created),
    so the chat's own id and name are taken instead.
    """
    if from_me:
        return None, None
    if not chat.is_group:
        return chat.chat_id.partition("@")[0], chat.name or shown
    looks_like_id = shown.replace("+", "").isdigit() or "@" in shown
    return (shown if looks_like_id else None), shown


# Messages: JSON objects


def decode_json_messages(
    texts: list[str], structured: Any, chat: Chat, tz: ZoneInfo
) -> list[dict[str, Any]]:
    if not texts and structured is None:
        return []
    return [json_row(obj, chat, tz) for obj in json_objects(texts, structured)]


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
