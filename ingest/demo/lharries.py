"""The read tools of lharries/whatsapp-mcp, reproduced over any bridge store.

Each function takes an open connection and returns the text blocks the upstream
server (mcp 1.6.0) would send: one compact ASCII-escaped JSON object per chat or
contact, or one formatted string for messages. The SQL keeps upstream's semantics on
purpose, quirks included: newest first with no tie-breaker on TEXT timestamps,
`after`/`before` compared as text, `LIMIT -1` meaning no limit, duplicate chat rows
when the newest second holds several messages, and a broken
`include_last_message=False`. `sqlite3.Error` propagates; the server decides how the
upstream would have reported it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

from ingest.demo.db import SenderNames, ToolFailure

MESSAGE_SELECT = (
    "SELECT messages.timestamp, messages.sender, chats.name, messages.content, "
    "messages.is_from_me, chats.jid, messages.id, messages.media_type "
    "FROM messages JOIN chats ON messages.chat_jid = chats.jid"
)
CHAT_SELECT = (
    "SELECT {c}.jid, {c}.name, {c}.last_message_time, {m}.content AS last_message, "
    "{m}.sender AS last_sender, {m}.is_from_me AS last_is_from_me FROM chats{ca}"
)
LAST_MESSAGE_JOIN = (
    "LEFT JOIN messages{ma} ON {c}.jid = {m}.chat_jid "
    "AND {c}.last_message_time = {m}.timestamp"
)
FULL_NAMES = {"c": "chats", "m": "messages", "ca": "", "ma": ""}
SHORT_NAMES = {"c": "c", "m": "m", "ca": " c", "ma": " m"}
NO_MESSAGES = "No messages to display."


def json_time(text: str | None) -> str | None:
    """A stored timestamp as pydantic writes a datetime: ISO, zero offset as `Z`."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() == timedelta(0):
        return moment.replace(tzinfo=None).isoformat() + "Z"
    return moment.isoformat()


def parse_bound(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ToolFailure(
            f"Invalid date format for '{name}': {value}. Please use ISO-8601 format."
        ) from None


def sql_text(moment: datetime) -> str:
    """How Python's sqlite3 adapter binds a datetime: `isoformat(" ")`."""
    return moment.isoformat(" ")


def format_message(row: tuple, names: SenderNames) -> str:
    """One upstream text record: `[ts] Chat: <name> From: <who>: <content>\\n`."""
    stamp, sender, chat_name, content, from_me, chat_jid, msg_id, media = row[:8]
    line = f"[{datetime.fromisoformat(stamp):%Y-%m-%d %H:%M:%S}] "
    if chat_name:
        line += f"Chat: {chat_name} "
    prefix = ""
    if media:
        prefix = f"[{media} - Message ID: {msg_id} - Chat JID: {chat_jid}] "
    who = "Me" if from_me else names.name(sender)
    return f"{line}From: {who}: {prefix}{content}\n"


def format_messages(rows: list[tuple], names: SenderNames) -> str:
    if not rows:
        return NO_MESSAGES
    return "".join(format_message(row, names) for row in rows)


def _message_filters(args: dict) -> tuple[list[str], list]:
    after = parse_bound("after", args.get("after"))
    before = parse_bound("before", args.get("before"))
    clauses, params = [], []
    for clause, value in (
        ("messages.timestamp > ?", after and sql_text(after)),
        ("messages.timestamp < ?", before and sql_text(before)),
        ("messages.sender = ?", args.get("sender_phone_number")),
        ("messages.chat_jid = ?", args.get("chat_jid")),
    ):
        if value:
            clauses.append(clause)
            params.append(value)
    if args.get("query"):
        clauses.append("LOWER(messages.content) LIKE LOWER(?)")
        params.append(f"%{args['query']}%")
    return clauses, params


def list_messages(conn: sqlite3.Connection, args: dict) -> list[str]:
    """Matches newest first, each optionally wrapped in its chat context."""
    clauses, params = _message_filters(args)
    limit, page = args.get("limit", 20), args.get("page", 0)
    sql = MESSAGE_SELECT
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY messages.timestamp DESC LIMIT ? OFFSET ?"
    rows = conn.execute(sql, (*params, limit, page * limit)).fetchall()

    if args.get("include_context", True) and rows:
        rows = _with_context(
            conn, rows, args.get("context_before", 1), args.get("context_after", 1)
        )
    return [format_messages(rows, SenderNames(conn))]


def _with_context(conn: sqlite3.Connection, rows: list, before: int, after: int):
    out: list[tuple] = []
    for row in rows:
        target, earlier, later = message_context(conn, row[6], before, after)
        out.extend(earlier)
        out.append(target)
        out.extend(later)
    return out


def message_context(conn: sqlite3.Connection, message_id: str, before: int, after: int):
    """(target, before newest-first, after oldest-first); looked up by id alone."""
    found = conn.execute(
        MESSAGE_SELECT + " WHERE messages.id = ?", (message_id,)
    ).fetchone()
    if not found:
        raise ToolFailure(f"Message with ID {message_id} not found")
    stamp, chat_jid = found[0], found[5]
    near = MESSAGE_SELECT + " WHERE messages.chat_jid = ? AND messages.timestamp "
    earlier = conn.execute(
        near + "< ? ORDER BY messages.timestamp DESC LIMIT ?", (chat_jid, stamp, before)
    ).fetchall()
    later = conn.execute(
        near + "> ? ORDER BY messages.timestamp ASC LIMIT ?", (chat_jid, stamp, after)
    ).fetchall()
    return found, earlier, later


def message_json(row: tuple) -> dict:
    stamp, sender, chat_name, content, from_me, chat_jid, msg_id, media = row[:8]
    return {
        "timestamp": json_time(stamp), "sender": sender, "content": content,
        "is_from_me": from_me, "chat_jid": chat_jid, "id": msg_id,
        "chat_name": chat_name, "media_type": media,
    }


def get_message_context(conn: sqlite3.Connection, args: dict) -> list[str]:
    target, earlier, later = message_context(
        conn, args["message_id"], args.get("before", 5), args.get("after", 5)
    )
    body = {
        "message": message_json(target),
        "before": [message_json(r) for r in earlier],
        "after": [message_json(r) for r in later],
    }
    return [json.dumps(body)]


def chat_json(row: tuple) -> str:
    jid, name, last_time, last_message, last_sender, last_from_me = row
    return json.dumps({
        "jid": jid, "name": name, "last_message_time": json_time(last_time),
        "last_message": last_message, "last_sender": last_sender,
        "last_is_from_me": last_from_me,
    })


def list_chats(conn: sqlite3.Connection, args: dict) -> list[str]:
    parts, params = [CHAT_SELECT.format(**FULL_NAMES)], []
    if args.get("include_last_message", True):
        parts.append(LAST_MESSAGE_JOIN.format(**FULL_NAMES))
    if args.get("query"):
        parts.append("WHERE (LOWER(chats.name) LIKE LOWER(?) OR chats.jid LIKE ?)")
        params += [f"%{args['query']}%"] * 2
    last_active = args.get("sort_by", "last_active") == "last_active"
    parts.append("ORDER BY " + ("chats.last_message_time DESC" if last_active
                                else "chats.name"))
    limit, page = args.get("limit", 20), args.get("page", 0)
    parts.append("LIMIT ? OFFSET ?")
    rows = conn.execute(" ".join(parts), (*params, limit, page * limit)).fetchall()
    return [chat_json(row) for row in rows]


def get_chat(conn: sqlite3.Connection, args: dict) -> list[str]:
    sql = CHAT_SELECT.format(**SHORT_NAMES)
    if args.get("include_last_message", True):
        sql += " " + LAST_MESSAGE_JOIN.format(**SHORT_NAMES)
    row = conn.execute(sql + " WHERE c.jid = ?", (args["chat_jid"],)).fetchone()
    return [chat_json(row)] if row else []


def get_direct_chat_by_contact(conn: sqlite3.Connection, args: dict) -> list[str]:
    joined = CHAT_SELECT + " " + LAST_MESSAGE_JOIN
    row = conn.execute(
        joined.format(**SHORT_NAMES)
        + " WHERE c.jid LIKE ? AND c.jid NOT LIKE '%@g.us' LIMIT 1",
        (f"%{args['sender_phone_number']}%",),
    ).fetchone()
    return [chat_json(row)] if row else []


def get_contact_chats(conn: sqlite3.Connection, args: dict) -> list[str]:
    limit, page = args.get("limit", 20), args.get("page", 0)
    rows = conn.execute(
        "SELECT DISTINCT chats.jid, chats.name, chats.last_message_time, "
        "messages.content, messages.sender, messages.is_from_me FROM chats "
        "JOIN messages ON chats.jid = messages.chat_jid "
        "WHERE messages.sender = ? OR chats.jid = ? "
        "ORDER BY chats.last_message_time DESC LIMIT ? OFFSET ?",
        (args["jid"], args["jid"], limit, page * limit),
    ).fetchall()
    return [chat_json(row) for row in rows]


def search_contacts(conn: sqlite3.Connection, args: dict) -> list[str]:
    pattern = f"%{args['query']}%"
    rows = conn.execute(
        "SELECT DISTINCT jid, name FROM chats WHERE (LOWER(name) LIKE LOWER(?) "
        "OR LOWER(jid) LIKE LOWER(?)) AND jid NOT LIKE '%@g.us' "
        "ORDER BY name, jid LIMIT 50",
        (pattern, pattern),
    ).fetchall()
    return [
        json.dumps({"phone_number": jid.split("@")[0], "name": name, "jid": jid})
        for jid, name in rows
    ]


def get_last_interaction(conn: sqlite3.Connection, args: dict) -> list[str]:
    row = conn.execute(
        MESSAGE_SELECT + " WHERE messages.sender = ? OR chats.jid = ? "
        "ORDER BY messages.timestamp DESC LIMIT 1",
        (args["jid"], args["jid"]),
    ).fetchone()
    return [format_message(row, SenderNames(conn))] if row else []
